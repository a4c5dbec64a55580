"""Readers on the full real corpora (a mirror: `pytest --data-dir=DIR`, skipped without one; the in-repo samples
are read in test_fixture_data.py) and on small malformed files written here.

Every malformed-file test checks that the message names the file (and line) so a user can fix it.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest
import yaml

from biobench.cards import parse_card
from biobench.data import DataError, load_task
from biobench.data.schema import label_counts
from biobench.data.spans import Entity, document_rows


def make_card(folder: Path, name: str = "t", **fields) -> Path:
    """Write a minimal valid card (token_ner over a CoNLL file) updated with `fields`."""
    card = {"name": name, "version": 1, "language": "en", "kind": "token_ner", "max_length": 128,
            "labels": ["Disease"], "citation": "test",
            "data": {"local": {"dir": "d", "format": "conll",
                               "files": {"train": "a.tsv", "validation": "a.tsv", "test": "a.tsv"}},
                     "obtain": "from the test"}}
    if "metric" not in fields:  # a card must name its metric: the kind's first one
        from biobench.cards import KIND_METRICS

        card["metric"] = KIND_METRICS[fields.get("kind") or "token_ner"][0]
    for key, value in fields.items():
        if value is None:
            card.pop(key, None)
        else:
            card[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(card), encoding="utf-8")
    return path


def load(tmp_path: Path, files: dict[str, str], **card_fields):
    """Write `files` below tmp_path/d, a card reading them, and load it."""
    for rel, text in files.items():
        p = tmp_path / "d" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return load_task(parse_card(make_card(tmp_path, **card_fields)), tmp_path)


def local(fmt: str, files: dict, **options) -> dict:
    return {"local": {"dir": "d", "format": fmt, "files": files, **({"options": options} if options else {})},
            "obtain": "from the test"}


# --- CoNLL ---------------------------------------------------------------------------------------

def test_conll_ncbi_disease_real(shared_data):
    from biobench.cards import get_card

    task = load_task(get_card("ncbi_disease"), shared_data)
    sizes = {s: len(d) for s, d in task.splits.items()}
    assert sizes == {"train": 5424, "validation": 923, "test": 940}
    assert [label_counts("token_ner", task.splits[s])["Disease"] for s in sizes] == [5134, 787, 960]
    first = task.splits["train"][0]
    assert first["tokens"][:4] == ["Identification", "of", "APC2", ","]
    assert first["id"] == "train.tsv:1" and set(first["tags"]) <= {"O", "B-Disease", "I-Disease"}
    assert task.labels == ["Disease"] and task.source.startswith("local:")


def test_conll_docstart_groups_and_columns(tmp_path):
    text = "-DOCSTART-\tO\n\nA\tx\tB-Disease\nb\tx\tO\n\nC\tx\tO\n-DOCSTART-\tO\n\nD\tx\tI-Disease\n"
    task = load(tmp_path, {"a.tsv": text}, data={**local("conll", {s: "a.tsv" for s in ("train", "validation", "test")},
                                                          token_column=0, tag_column=2)})
    rows = task.splits["train"]
    assert rows["tokens"] == [["A", "b"], ["C"], ["D"]]
    assert rows["tags"] == [["B-Disease", "O"], ["O"], ["I-Disease"]]
    assert rows["group"] == ["a.tsv#doc1", "a.tsv#doc1", "a.tsv#doc2"]


@pytest.mark.parametrize("text, line, needle", [
    ("A\tO\nb\tO\tX\n", 2, "expected 2 columns"),
    ("A\tO\n\nb\tB-Chemical\n", 3, "does not declare"),
    ("A\tO\nb\tX-Disease\n", 2, "malformed tag"),
])
def test_conll_errors_name_file_and_line(tmp_path, text, line, needle):
    with pytest.raises(DataError, match=needle) as err:
        load(tmp_path, {"a.tsv": text})
    assert f"a.tsv:{line}:" in str(err.value)


def test_empty_split_names_split_and_file(tmp_path):
    files = {"train": "a.tsv", "validation": "empty.tsv", "test": "a.tsv"}
    with pytest.raises(DataError, match=r"split 'validation' is empty \(read from empty.tsv\)"):
        load(tmp_path, {"a.tsv": "A\tO\n", "empty.tsv": "\n"}, data=local("conll", files))


def test_missing_file_is_named(tmp_path):
    files = {"train": "a.tsv", "validation": "a.tsv", "test": "nope.tsv"}
    with pytest.raises(DataError, match=r"d/nope.tsv: file not found"):
        load(tmp_path, {"a.tsv": "A\tO\n"}, data=local("conll", files))


# --- tabular -------------------------------------------------------------------------------------

def test_tsv_ragged_row(tmp_path):
    data = local("tsv", {"train": "a.tsv"}, columns={"text": "text", "label": "label"})
    data["split"] = {"rule": "random", "seed": 1, "fractions": [0.5, 0.25, 0.25]}
    with pytest.raises(DataError, match="expected 2 columns") as err:
        load(tmp_path, {"a.tsv": "text\tlabel\nfine\t1\nragged\t1\textra\n"}, kind="classification",
             labels=None, data=data)
    assert "a.tsv:3:" in str(err.value)


def test_tabular_unknown_label_and_bad_score(tmp_path):
    data = local("csv", {"train": "a.csv", "validation": "a.csv", "test": "a.csv"},
                 columns={"text": 0, "label": 1}, header=False)
    with pytest.raises(DataError, match="label 'maybe' is not declared") as err:
        load(tmp_path, {"a.csv": "x,yes\ny,maybe\n"}, kind="classification", labels=["yes", "no"], data=data)
    assert "a.csv:2:" in str(err.value)
    data = local("tsv", {"train": "b.tsv", "validation": "b.tsv", "test": "b.tsv"},
                 columns={"text": "s1", "text_pair": "s2", "score": "score"})
    with pytest.raises(DataError, match="column 'score': expected a number") as err:
        load(tmp_path, {"b.tsv": "s1\ts2\tscore\na\tb\t1.5\nc\td\thigh\n"}, kind="similarity", labels=None, data=data)
    assert "b.tsv:3:" in str(err.value)


def test_gad_real_per_file_header_options(shared_data):
    from biobench.cards import get_card

    task = load_task(get_card("gad"), shared_data)
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 4261, "validation": 535, "test": 534}
    assert label_counts("classification", task.splits["test"]) == {"0": 253, "1": 281}
    train_counts = label_counts("classification", task.splits["train"])
    val_counts = label_counts("classification", task.splits["validation"])
    assert train_counts["1"] + val_counts["1"] == 2520 and train_counts["0"] + val_counts["0"] == 2276
    test0 = task.splits["test"][0]
    assert test0["text"].startswith("These results suggest that the C1772T") and test0["label"] == "1"
    assert test0["text_pair"] is None


def test_jsonl_and_parquet_multilabel(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"doc": ["p1", "p2"], "body": ["t1", "t2"], "tags": ["a|b", ""]}),
                   tmp_path / "d" / "v.parquet")
    files = {"train": "a.jsonl", "validation": {"file": "v.parquet"}, "test": "a.jsonl"}
    data = local("jsonl", files, columns={"id": "doc", "text": "body", "labels": "tags"}, label_separator="|")
    data["local"]["format"] = "jsonl"
    data["local"]["files"]["validation"] = "a.jsonl"
    task = load(tmp_path, {"a.jsonl": '{"doc": "d1", "body": "x", "tags": ["a"]}\n\n{"doc": "d2", "body": "y", '
                                      '"tags": "b|a"}\n'}, kind="multilabel", labels=None, data=data)
    assert task.splits["train"]["labels"] == [["a"], ["b", "a"]] and task.labels == ["a", "b"]
    data["local"].update(format="parquet", files={s: "v.parquet" for s in ("train", "validation", "test")})
    task = load(tmp_path, {}, kind="multilabel", labels=["a", "b"], data=data)
    assert task.splits["test"]["id"] == ["p1", "p2"] and task.splits["test"]["labels"] == [["a", "b"], []]


# --- BRAT ----------------------------------------------------------------------------------------

def _brat(tmp_path, text: str, ann: str, labels=("A", "B")):
    data = local("brat", {s: "docs" for s in ("train", "validation", "test")})
    return load(tmp_path, {"docs/x.txt": text, "docs/x.ann": ann}, labels=list(labels), data=data)


def test_brat_offsets_outside_text(tmp_path):
    with pytest.raises(DataError, match="outside the text") as err:
        _brat(tmp_path, "abc def", "T1\tA 0 3\tabc\nT2\tA 4 9\tdef\n")
    assert "x.ann:2:" in str(err.value)


def test_brat_text_mismatch(tmp_path):
    with pytest.raises(DataError, match="does not equal the text") as err:
        _brat(tmp_path, "abc def", "T1\tA 0 3\tabd\n")
    assert "x.ann:1:" in str(err.value)


def test_brat_unknown_type_names_ann_line(tmp_path):
    with pytest.raises(DataError, match="label 'C' is not declared") as err:
        _brat(tmp_path, "abc def", "T1\tA 0 3\tabc\n#1\tAnnotatorNotes T1\tC001\nT2\tC 4 7\tdef\n")
    assert "x.ann:3:" in str(err.value)


def test_brat_hard_cases_exact_tags_and_counts(tmp_path):
    #        0         1         2         3         4
    #        0123456789012345678901234567890123456789012345
    text = "Big red dog ran. Cat-like fox saw HIV1 X\nNew line"
    ann = "\n".join([
        "T1\tA 0 11\tBig red dog",        # outer
        "T2\tB 4 11\tred dog",            # nested in T1 -> lost (nested)
        "T3\tB 0 11\tBig red dog",        # same span, second in file -> lost (duplicate)
        "T4\tA 17 20\tCat",               # same start as T5, shorter -> lost (nested)
        "T5\tB 17 25\tCat-like",          # kept
        "T6\tA 21 29\tlike fox",          # crosses T5 -> lost (crossing)
        "T7\tA 34 37;39 40\tHIV X",       # discontinuous -> extent 34..40 'HIV1 X'
        "T8\tB 34 37\tHIV",               # nested in T7's extent -> lost, so 'HIV1' is not split
        "R1\tRel Arg1:T1 Arg2:T5",        # other line types are counted, not read
        "A1\tNeg T1",
    ]) + "\n"
    task = _brat(tmp_path, text, ann)
    rows = task.splits["train"]
    assert rows["tokens"] == [["Big", "red", "dog", "ran", "."], ["Cat", "-", "like", "fox", "saw", "HIV1", "X"],
                              ["New", "line"]]
    assert rows["tags"] == [["B-A", "I-A", "I-A", "O", "O"],
                            ["B-B", "I-B", "I-B", "O", "O", "B-A", "I-A"], ["O", "O"]]
    assert set(rows["group"]) == {"docs/x"}
    flat = task.notes["flattening"]["train"]
    assert {k: flat[k] for k in ("entities", "kept", "nested", "crossing", "duplicate", "discontinuous")} == \
        {"entities": 8, "kept": 3, "nested": 3, "crossing": 1, "duplicate": 1, "discontinuous": 1}
    assert task.notes["alignment"]["train"] == {"forced_splits": 0, "unaligned": 0}
    assert task.notes["ann_lines"]["train"] == {"annotator_notes": 0, "ignored": {"A": 1, "R": 1}}


def test_forced_split_inside_a_word_and_sentence_rule():
    text = "Anti-Ro(SSA) antibodies. pH 7 is fine! 2 more.\nnext"
    ents = [Entity("T1", "P", ((0, 7),), 1), Entity("T2", "P", ((13, 17),), 2),  # 'anti' of 'antibodies'
            Entity("T3", "Q", ((25, 29),), 3)]  # 'pH 7': a sentence end '!' later, digit after it
    rows, stats = document_rows("doc", text, ents)
    assert [r["tokens"] for r in rows] == [
        ["Anti", "-", "Ro", "(", "SSA", ")", "anti", "bodies", ".", "pH", "7", "is", "fine", "!"],
        ["2", "more", "."], ["next"]]
    assert rows[0]["tags"][:9] == ["B-P", "I-P", "I-P", "O", "O", "O", "B-P", "O", "O"]
    assert rows[0]["tags"][9:11] == ["B-Q", "I-Q"]
    assert stats["forced_splits"] == 1 and stats["unaligned"] == 0
    # '. pH' is not a sentence end (lower-case next); a sentence never ends inside an entity:
    rows, _ = document_rows("doc", "A. B c.", [Entity("T1", "P", ((0, 4),), 1)])
    assert [r["tokens"] for r in rows] == [["A", ".", "B", "c", "."]]


def test_jnlpba_real_counts(shared_data):
    from biobench.cards import get_card

    task = load_task(get_card("jnlpba"), shared_data)
    flat = task.notes["flattening"]
    assert flat["train"]["entities"] == 51301 and flat["test"]["entities"] == 8662
    assert flat["train"]["by_type"] == {"DNA": 9533, "RNA": 951, "cell_line": 3830, "cell_type": 6718,
                                        "protein": 30269}
    for split in ("train", "test"):
        assert flat[split]["kept"] == flat[split]["entities"]  # no nesting in JNLPBA
        assert task.notes["alignment"][split]["unaligned"] == 0
    assert task.notes["documents"] == {"train": 2000, "test": 404}
    counted = {s: sum(label_counts("token_ner", task.splits[s]).values()) for s in task.splits}
    assert counted["train"] + counted["validation"] == 51301 and counted["test"] == 8662
    groups = {s: set(task.splits[s]["group"]) for s in task.splits}
    assert len(groups["validation"]) == 200 and len(groups["train"]) == 1800
    assert not groups["train"] & groups["validation"]


def test_quaero_emea_real_flattening(shared_data):
    from biobench.cards import get_card

    task = load_task(get_card("quaero_emea_token"), shared_data)  # the flat token stand-in
    flat = task.notes["flattening"]
    assert [flat[s]["entities"] for s in ("train", "validation", "test")] == [2695, 2260, 2204]
    assert [flat[s]["discontinuous"] for s in ("train", "validation", "test")] == [27, 15, 42]
    for s in flat:
        f = flat[s]
        assert f["kept"] + f["nested"] + f["crossing"] + f["duplicate"] == f["entities"]
        assert sum(label_counts("token_ner", task.splits[s]).values()) == f["kept"] - \
            task.notes["alignment"][s]["unaligned"]
    assert task.splits["train"][5]["tokens"][:3] == ["Prialt", "est", "indiqué"]
    assert task.splits["train"][5]["tags"][:3] == ["B-CHEM", "O", "B-DISO"]


# --- HoC -----------------------------------------------------------------------------------------

def test_hoc_real(shared_data):
    from biobench.cards import get_card

    task = load_task(get_card("hoc"), shared_data)  # one row per sentence (tests/test_hoc.py: the full checks)
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 12257, "validation": 1773, "test": 3434}
    assert len(task.labels) == 10 and "NULL" not in task.labels
    assert task.notes["hoc"]["train"] == {"abstracts": 1852, "sentences": 17464, "abstracts_without_label": 272,
                                          "sentences_without_label": 13021, "null_labels_dropped": 11}
    rows = {r["id"]: r for s in task.splits for r in task.splits[s]}
    assert rows["11724768_3"]["labels"] == ["Sustaining proliferative signaling"] and rows["11724768_0"]["labels"] == []
    assert rows["11724768_0"]["text"].startswith("Ghrelin was identified in the stomach")
    totals = {}
    for s in task.splits:
        for label, n in label_counts("multilabel", task.splits[s]).items():
            totals[label] = totals.get(label, 0) + n
    assert totals["Sustaining proliferative signaling"] == 993 and totals["Cellular energetics"] == 213  # sentences


def test_hoc_marker_count_mismatch(tmp_path):
    data = local("hoc", {"train": "."})
    data["split"] = {"rule": "random", "seed": 0, "fractions": [0.4, 0.3, 0.3]}
    with pytest.raises(DataError, match="expected one '<' per sentence") as err:
        load(tmp_path, {"text/1.txt": "One .\nTwo .\n", "labels/1.txt": "< <A--x< "}, kind="multilabel",
             labels=["A"], data=data)
    assert "labels/1.txt" in str(err.value)


# --- hub -----------------------------------------------------------------------------------------

def test_hub_path_normalises_classlabels(tmp_path):
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=["O", "B-Disease",
                                                                                        "I-Disease"]))})
    hub_dir = tmp_path / "hubrepo"
    for split, n in (("train", 3), ("validation", 2), ("test", 2)):
        ds = datasets.Dataset.from_dict({"id": [f"{split}{i}" for i in range(n)],
                                         "tokens": [["a", "b"]] * n, "ner_tags": [[1, 2]] * n}, features=features)
        ds.to_parquet(str(hub_dir / f"{split}.parquet"))
    card = make_card(tmp_path, data={"hub": {"path": str(hub_dir), "columns": {"tags": "ner_tags"}},
                                     "obtain": "nowhere"})
    task = load_task(parse_card(card), data_dir=None)
    assert task.splits["train"][0] == {"id": "train0", "group": "train0", "tokens": ["a", "b"],
                                       "tags": ["B-Disease", "I-Disease"]}
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 3, "validation": 2, "test": 2}
    assert task.source == f"hub:{hub_dir}@main" and len(task.data_sha256) == 64
