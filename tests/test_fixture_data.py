"""The corpus samples in tests/fixtures/data read through the real cards and readers, every count checked
against a plain count of the files themselves (lines, tags, annotation lines); and, given the full corpus
mirror, that each sample is exactly the cut its SOURCE.md describes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

from biobench.cards import get_card, parse_card
from biobench.data import load_task
from biobench.data.schema import label_counts


def sample_card(name: str, folder: Path, split: dict) -> object:
    """The packaged card `name` with another split rule (a card's group counts fit only the full release)."""
    raw = yaml.safe_load(Path(get_card(name).path).read_text(encoding="utf-8"))
    raw["data"]["split"] = split
    raw["data"].pop("fetch", None)  # its manifest stays beside the packaged card; this copy reads, never fetches
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return parse_card(path)


def conll_counts(path: Path) -> tuple[int, int]:
    """(sentences, entity starts) of an IOB2 TSV file, counted by hand."""
    blocks = [b for b in path.read_text(encoding="utf-8").split("\n\n") if b.strip()]
    starts = sum(line.split("\t")[-1].startswith("B-") for b in blocks for line in b.splitlines())
    return len(blocks), starts


def brat_counts(folder: Path) -> tuple[int, int, int]:
    """(documents, text-bound entities, discontinuous entities) of a BRAT folder, counted by hand."""
    anns = sorted(folder.glob("*.ann"))
    entities = [line.split("\t")[1] for a in anns for line in a.read_text(encoding="utf-8").splitlines()
                if line.startswith("T")]
    return len(anns), len(entities), sum(";" in e for e in entities)


def test_ncbi_disease_sample(fixture_data):
    task = load_task(get_card("ncbi_disease"), fixture_data)
    folder = fixture_data / "en/NCBI-disease-IOB"
    for split, name in (("train", "train.tsv"), ("validation", "devel.tsv"), ("test", "test.tsv")):
        sentences, starts = conll_counts(folder / name)
        assert len(task.splits[split]) == sentences
        assert label_counts("token_ner", task.splits[split]) == {"Disease": starts}
    assert [len(task.splits[s]) for s in ("train", "validation", "test")] == [400, 150, 150]
    assert task.splits["train"][0]["tokens"][:4] == ["Identification", "of", "APC2", ","]


def test_jnlpba_sample_brat_and_holdout_by_abstract(fixture_data):
    task = load_task(get_card("jnlpba"), fixture_data)
    root = fixture_data / "en/JNLPBA-standoff/standoff"
    (n_train, e_train, _), (n_test, e_test, _) = brat_counts(root / "train"), brat_counts(root / "test")
    assert task.notes["documents"] == {"train": n_train, "test": n_test} == {"train": 8, "test": 3}
    flat = task.notes["flattening"]
    assert flat["train"]["entities"] == e_train and flat["test"]["entities"] == e_test
    counted = {s: sum(label_counts("token_ner", task.splits[s]).values()) for s in task.splits}
    assert counted["train"] + counted["validation"] == e_train and counted["test"] == e_test
    groups = {s: set(task.splits[s]["group"]) for s in task.splits}
    assert len(groups["validation"]) == 1 and len(groups["train"]) == 7  # holdout fraction 0.1 of 8, rounded
    assert not groups["train"] & groups["validation"]


def test_quaero_emea_sample_flattening_adds_up(fixture_data):
    task = load_task(get_card("quaero_emea_token"), fixture_data)  # the flat token stand-in
    flat = task.notes["flattening"]
    for split, folder in (("train", "train"), ("validation", "dev"), ("test", "test")):
        _, entities, discontinuous = brat_counts(fixture_data / "fr/quaero/corpus" / folder / "EMEA")
        f = flat[split]
        assert (f["entities"], f["discontinuous"]) == (entities, discontinuous)
        assert f["kept"] + f["nested"] + f["crossing"] + f["duplicate"] == entities
        assert sum(label_counts("token_ner", task.splits[split]).values()) == \
            f["kept"] - task.notes["alignment"][split]["unaligned"]
    assert flat["validation"]["discontinuous"] > 0  # the sample keeps the corpus's hard case


def test_hoc_sample_one_row_per_sentence(fixture_data, tmp_path):
    card = sample_card("hoc", tmp_path, {"rule": "random", "seed": 42, "fractions": [0.7, 0.1, 0.2]})
    task = load_task(card, fixture_data)
    labels = sorted((fixture_data / "en/HoC/labels").iterdir())
    sentences = sum(p.read_text(encoding="utf-8").count("<") for p in labels)
    assert sum(len(d) for d in task.splits.values()) == sentences
    groups = {s: set(task.splits[s]["group"]) for s in task.splits}
    assert sorted(len(g) for g in groups.values()) == [4, 8, 28]  # 40 abstracts cut 70 / 10 / 20
    assert set().union(*groups.values()) == {p.stem for p in labels}


def test_pubmedqa_sample_official_test_and_holdout(fixture_data):
    task = load_task(get_card("pubmedqa"), fixture_data)
    folder = fixture_data / "en/PubMedQA"
    data = json.loads((folder / "ori_pqal.json").read_text(encoding="utf-8"))
    truth = json.loads((folder / "test_ground_truth.json").read_text(encoding="utf-8"))
    assert sorted(task.splits["test"]["id"]) == sorted(truth)
    assert label_counts("classification", task.splits["test"]) == dict(Counter(truth.values()))
    pool = len(data) - len(truth)
    assert (len(task.splits["train"]), len(task.splits["validation"])) == (pool - 50, 50)  # card: holdout 50


def test_frenchmedmcqa_sample(fixture_data):
    task = load_task(get_card("frenchmedmcqa"), fixture_data)
    corpus = fixture_data / "fr/frenchmedmcqa/corpus"
    for split, name in (("train", "train.json"), ("validation", "dev.json"), ("test", "test.json")):
        raw = json.loads((corpus / name).read_text(encoding="utf-8"))
        assert task.splits[split]["id"] == [r["id"] for r in raw]


def test_every_sample_folder_names_its_source_and_licence(fixture_data):
    folders = [p.parent for p in fixture_data.rglob("SOURCE.md")]
    assert len(folders) == 8
    for folder in folders:
        text = (folder / "SOURCE.md").read_text(encoding="utf-8")
        assert "Origin" in text and "Licen" in text and "Kept" in text, folder
    assert (fixture_data / "LICENSES/GPL-3.0.txt").read_text().lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    total = sum(p.stat().st_size for p in fixture_data.rglob("*") if p.is_file())
    assert total < 800_000  # a few hundred KB in the repository


# --- against the full mirror ---------------------------------------------------------------------

def test_samples_are_the_cuts_their_source_md_describes(fixture_data, shared_data):
    """Byte-identical prefixes and whole files where the SOURCE.md says so; JSON subsets record for record."""
    same = [p for p in fixture_data.rglob("*") if p.is_file() and p.suffix in {".txt", ".ann", ".tsv"}
            and "LICENSES" not in p.parts and p.name != "PubMedAbstract_1MB.txt"
            and p.parent.name != "NCBI-disease-IOB"]
    for p in same:
        assert p.read_bytes() == (shared_data / p.relative_to(fixture_data)).read_bytes(), p
    for p in [fixture_data / "pretrain/en/pubmed_abstracts_1MB/PubMedAbstract_1MB.txt",
              *(fixture_data / "en/NCBI-disease-IOB").glob("*.tsv")]:
        assert (shared_data / p.relative_to(fixture_data)).read_bytes().startswith(p.read_bytes().rstrip(b"\n")), p
    for rel in ("en/PubMedQA/ori_pqal.json", "en/PubMedQA/test_ground_truth.json"):
        full = json.loads((shared_data / rel).read_text(encoding="utf-8"))
        part = json.loads((fixture_data / rel).read_text(encoding="utf-8"))
        assert all(full[k] == v for k, v in part.items()), rel
    for name in ("train.json", "dev.json", "test.json"):
        rel = f"fr/frenchmedmcqa/corpus/{name}"
        part = json.loads((fixture_data / rel).read_text(encoding="utf-8"))
        assert json.loads((shared_data / rel).read_text(encoding="utf-8"))[:len(part)] == part
