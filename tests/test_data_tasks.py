"""Split rules, source selection, the six packaged tasks and `biobench data check`."""

from __future__ import annotations

import json

import pytest

from biobench.cards import get_card, parse_card
from biobench.data import DataError, load_task
from biobench.data.splits import apply_rule, check_rule, holdout, random_split
from test_data_readers import make_card


def _rows(groups):
    return [{"id": f"{g}{k}", "group": g} for g in groups for k in range(2)]


def test_random_split_hand_example():
    # Groups sorted a..j, shuffled by random.Random(7): i d b e h a j g c f; cuts at 6 and 8.
    rows = _rows("jihgfedcba")
    out = random_split(rows, seed=7, fractions=[0.6, 0.2, 0.2])
    assert {s: {r["group"] for r in out[s]} for s in out} == {
        "train": set("idbeha"), "validation": set("jg"), "test": set("cf")}
    assert sum(len(v) for v in out.values()) == len(rows)
    again = random_split(list(reversed(rows)), seed=7, fractions=[0.6, 0.2, 0.2])  # input order is irrelevant
    assert {s: sorted(r["id"] for r in again[s]) for s in again} == {s: sorted(r["id"] for r in out[s]) for s in out}


def test_holdout_hand_example_and_rule_text():
    # Groups a..e shuffled by random.Random(3): a c d e b -> the first two are validation.
    train, validation = holdout(_rows("edcba"), seed=3, count=2)
    assert {r["group"] for r in validation} == {"a", "c"} and {r["group"] for r in train} == {"b", "d", "e"}
    final, text = apply_rule({"rule": "holdout", "seed": 3, "fraction": 0.4},
                             {"train": _rows("abcde"), "test": _rows("z")})
    assert {r["group"] for r in final["validation"]} == {"a", "c"} and final["test"] == _rows("z")
    assert "first 2 of the 5" in text and "random.Random(3)" in text


@pytest.mark.parametrize("rule, needle", [
    ({"rule": "stratified", "seed": 1}, "'rule' one of"),
    ({"rule": "random", "seed": 1, "fractions": [0.5, 0.5]}, "'fractions'"),
    ({"rule": "holdout", "seed": 1}, "exactly one of 'count'"),
    ({"rule": "holdout", "seed": "42", "count": 3}, "integer 'seed'"),
    ({"rule": "holdout", "seed": 1, "count": 3, "shuffle": True}, "unknown 'shuffle'"),
])
def test_bad_split_rule_names_card_field(rule, needle):
    with pytest.raises(DataError, match=needle) as err:
        check_rule(rule, "x.yaml")
    assert "x.yaml: field 'data.split'" in str(err.value)


def test_biosses_real_split_sizes_and_determinism(fixture_data):
    card = get_card("biosses")
    a, b = load_task(card, fixture_data), load_task(card, fixture_data)  # the sample is the whole corpus
    assert {s: len(d) for s, d in a.splits.items()} == {"train": 64, "validation": 16, "test": 20}
    assert a.splits["test"]["id"] == b.splits["test"]["id"] and a.data_sha256 == b.data_sha256
    assert a.labels is None
    ids = [set(a.splits[s]["id"]) for s in a.splits]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    row = next(r for split in a.splits.values() for r in split if r["id"] == "1")
    assert row["score"] == 4.0 and row["text"].startswith("It has recently been shown that Craf")


def test_no_data_anywhere_says_where_to_obtain_and_put_it(tmp_path, monkeypatch):
    monkeypatch.delenv("BIOBENCH_DATA_DIR", raising=False)
    card = get_card("gad")  # local only, no hub
    with pytest.raises(DataError) as err:
        load_task(card, None)
    msg = str(err.value)
    assert "no data directory given" in msg and "SciCrunch/bio_electra" in msg and "BIOBENCH_DATA_DIR" in msg
    with pytest.raises(DataError, match=r"GAD-BioBERT-fold1 does not exist") as err:
        load_task(card, tmp_path)  # a data dir without the task: never a silent hub fallback
    assert "en/GAD-BioBERT-fold1 laid out as the card expects (train:" in str(err.value)


def test_data_dir_from_environment(fixture_data, monkeypatch):
    monkeypatch.setenv("BIOBENCH_DATA_DIR", str(fixture_data))
    assert len(load_task(get_card("ncbi_disease")).splits["test"]) == 150  # the sample's test sentences


def test_holdout_card_may_not_list_validation(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.tsv").write_text("A\tO\n")
    card = make_card(tmp_path, data={"local": {"dir": "d", "format": "conll", "files": {
        "train": "a.tsv", "validation": "a.tsv", "test": "a.tsv"}}, "split": {"rule": "holdout", "seed": 1, "count": 1},
        "obtain": "x"})
    with pytest.raises(DataError, match="field 'data.local.files.validation'"):
        load_task(parse_card(card), tmp_path)


def test_labels_from_train_reject_unseen_test_label(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "tr.tsv").write_text("A\tB-X\n")
    (tmp_path / "d" / "te.tsv").write_text("A\tB-Y\n")
    card = make_card(tmp_path, labels=None, data={"local": {"dir": "d", "format": "conll", "files": {
        "train": "tr.tsv", "validation": "tr.tsv", "test": "te.tsv"}}, "obtain": "x"})
    with pytest.raises(DataError, match="split 'test' has label 'Y', never seen in train"):
        load_task(parse_card(card), tmp_path)


def test_data_check_json_ncbi(fixture_data, capsys):
    from biobench.cli import main

    assert main(["data", "check", "ncbi_disease", "--data-dir", str(fixture_data), "--json"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert report["sizes"] == {"train": 400, "validation": 150, "test": 150}  # the sample's first sentences
    test_tsv = (fixture_data / "en/NCBI-disease-IOB/test.tsv").read_text().splitlines()
    assert report["label_counts"]["test"] == {"Disease": sum(line.endswith("\tB-Disease") for line in test_tsv)}
    assert report["notes"]["split_rule"].startswith("official") and len(report["data_sha256"]) == 64


def test_data_check_human_output_and_error_status(fixture_data, tmp_path, capsys):
    from biobench.cli import main

    assert main(["data", "check", "biosses", "--data-dir", str(fixture_data)]) == 0  # clister (similarity) is not here
    out = capsys.readouterr().out
    assert "biosses" in out and "score mean" in out and "random.Random(42)" in out
    assert main(["data", "check", "gad", "--data-dir", str(tmp_path), "--json"]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert report["status"] == "error" and "does not exist" in report["error"]
