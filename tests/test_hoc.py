"""HoC as the paper defines it (one row per sentence, 10 hallmarks, "none" = all-zero target) and BLURB's
abstract-level HoC (the same sentences, scored per abstract), on the real release in ../shared/data/en/HoC.

Counts and labels are checked against an independent plain reading of the raw files written here the way
BigBIO's hallmarks_of_cancer script reads them (`labels.split("<")[1:]`, "" -> none, `AND`, `--`, NULL
dropped), not with biobench's reader."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from biobench.cards import get_card
from biobench.data import load_task

# Counts this card's rule gives (seed 42, BLURB's abstract counts); BLURB's own lists give 12,119 / 1,798 /
# 3,547 sentences over the same abstract counts (BigBIO), which the card's notes state.
SENTENCES = {"train": 12257, "validation": 1773, "test": 3434}
ABSTRACTS = {"train": 1295, "validation": 186, "test": 371}
# BigBIO's (and qanastek/HoC's) class-name order: "none" at index 7, which the paper's loader drops.
BIGBIO_NAMES = ["evading growth suppressors", "tumor promoting inflammation", "enabling replicative immortality",
                "cellular energetics", "resisting cell death", "activating invasion and metastasis",
                "genomic instability and mutation", "none", "inducing angiogenesis",
                "sustaining proliferative signaling", "avoiding immune destruction"]


def plain_read(root: Path) -> dict[str, list[set[str]]]:
    """PMID -> the lower-cased hallmark set of each sentence, read as BigBIO's script does."""
    out = {}
    for text_file in sorted((root / "text").glob("*.txt")):
        sentences = text_file.read_text(encoding="utf8").strip("\n").split("\n")
        labels = (root / "labels" / text_file.name).read_text(encoding="utf8").strip("\n").split("<")[1:]
        assert len(sentences) == len(labels), text_file
        per_sentence = []
        for label in labels:
            label = label.strip() or "none"
            tops = {part.strip().split("--")[0].lower().strip() for part in label.split("AND")}
            per_sentence.append(tops - {"null", "none"})
        out[text_file.stem] = per_sentence
    return out


@pytest.fixture(scope="module")
def raw(shared_data):
    return plain_read(shared_data / "en" / "HoC")


@pytest.fixture(scope="module")
def hoc(shared_data):
    return load_task(get_card("hoc"), shared_data)


def test_sentence_and_abstract_counts_per_split_match_a_plain_count(hoc, raw):
    pmids = sorted(raw)
    random.Random(42).shuffle(pmids)  # the card's rule, re-done by hand
    cut = {"train": pmids[:1295], "validation": pmids[1295:1481], "test": pmids[1481:]}
    assert {s: len(p) for s, p in cut.items()} == ABSTRACTS
    assert {s: sum(len(raw[p]) for p in cut[s]) for s in cut} == SENTENCES
    assert sum(SENTENCES.values()) == sum(len(v) for v in raw.values()) == 17464 and len(raw) == 1852
    for split, split_pmids in cut.items():
        rows = hoc.splits[split]
        assert len(rows) == SENTENCES[split]
        assert set(rows["group"]) == set(split_pmids)


def test_no_abstract_in_two_splits_and_ids_name_their_abstract(hoc):
    groups = {s: set(hoc.splits[s]["group"]) for s in hoc.splits}
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["test"]
                or groups["validation"] & groups["test"])
    for split in hoc.splits:
        ids, group = hoc.splits[split]["id"], hoc.splits[split]["group"]
        assert all(i.rsplit("_", 1)[0] == g for i, g in zip(ids, group))
        assert len(set(ids)) == len(ids)


def test_every_sentence_has_the_labels_of_the_plain_reading(hoc, raw):
    rows = {r["id"]: r for s in hoc.splits for r in hoc.splits[s]}
    assert len(rows) == 17464
    for pmid, per_sentence in raw.items():
        for k, labels in enumerate(per_sentence):
            assert {x.lower() for x in rows[f"{pmid}_{k}"]["labels"]} == labels, f"{pmid}_{k}"
    assert sum(not r["labels"] for r in rows.values()) == 13021  # "none" (13,010) and NULL-only (11) sentences
    assert hoc.notes["hoc"]["train"]["null_labels_dropped"] == 11


def test_label_mapping_on_real_rows(hoc):
    from biobench.kinds.multilabel import Multilabel
    from biobench.protocols import resolve_protocol

    card = get_card("hoc")
    kind = Multilabel(None, resolve_protocol("paper", "en", "multilabel"), 512, card.labels, None)
    rows = {r["id"]: r for s in hoc.splits for r in hoc.splits[s]}
    picked = [rows[i] for i in ("11724768_0", "11724768_3", "11978176_4", "12634122_5")]
    targets = np.array(kind.targets({"labels": [r["labels"] for r in picked]}))
    assert targets.shape == (4, 10)
    assert targets[0].sum() == 0  # a sentence with no label ("none"): all-zero target
    assert targets[2].sum() == 0  # " NULL" only: all-zero target too
    assert [card.labels[k] for k in np.flatnonzero(targets[1])] == ["Sustaining proliferative signaling"]
    # qanastek/HoC's published example row (the paper's loader): 12634122_5 has label ids [9, 5, 0, 6].
    assert picked[3]["text"].startswith("Genes that were overexpressed in OM3 included oncogenes")
    published = {BIGBIO_NAMES[k] for k in (9, 5, 0, 6)}
    assert {card.labels[k].lower() for k in np.flatnonzero(targets[3])} == published
    assert len(card.labels) == 10 and "none" not in {x.lower() for x in card.labels}


def test_blurb_card_has_the_same_sentences_and_scores_them_per_abstract(hoc, shared_data, minilm_path):
    from transformers import AutoTokenizer

    from biobench.kinds.multilabel import Multilabel
    from biobench.protocols import resolve_protocol

    card = get_card("hoc_blurb")
    assert card.suites == ("blurb",) and get_card("hoc").suites == ("paper-en",)
    assert (card.unit, get_card("hoc").unit) == ("abstract", "sentence")  # records state it (definition.unit)
    blurb = load_task(card, shared_data)
    for split in hoc.splits:
        assert blurb.splits[split]["id"] == hoc.splits[split]["id"]
    kind = Multilabel(AutoTokenizer.from_pretrained(minilm_path), resolve_protocol("blurb", "en", "multilabel"), 512,
                      card.labels, None, scoring=card.scoring)
    test = blurb.splits["test"]
    gold = np.array(kind.targets(test), dtype=int)
    groups = test["group"]
    # Predict each abstract's whole label set on its first sentence only, nothing elsewhere.
    first: dict[str, int] = {}
    union: dict[str, np.ndarray] = {}
    for i, g in enumerate(groups):
        first.setdefault(g, i)
        union[g] = np.maximum(union.get(g, 0), gold[i])
    pred = np.zeros_like(gold)
    for g, i in first.items():
        pred[i] = union[g]
    logits = [np.where(row > 0, 3.0, -3.0) for row in pred]
    enc = kind.encode(test)  # the encoding keeps each row's abstract for scoring
    assert enc.meta == groups
    scores = kind.score(enc, logits)
    assert scores["micro_f1_document"] == 100.0  # every abstract's union is right
    tp = int((gold & pred).sum())
    assert scores["micro_f1"] == pytest.approx(100 * 2 * tp / (gold.sum() + pred.sum()), abs=1e-3)
    assert scores["micro_f1"] < 90  # at sentence level most of those labels sit on the wrong sentence


def test_random_rule_cut_at_group_counts():
    """The rule the HoC cards use: sorted groups shuffled with random.Random(seed), cut at fixed counts."""
    from biobench.data import DataError
    from biobench.data.splits import apply_rule, check_rule

    rows = [{"id": f"{g}_{k}", "group": g} for g in "abcdefghij" for k in range(2)]
    rule = {"rule": "random", "seed": 7, "counts": [6, 1, 3]}
    check_rule(rule, "card.yaml")
    out, text = apply_rule(rule, {"train": rows})
    groups = sorted("abcdefghij")
    random.Random(7).shuffle(groups)
    assert [sorted({r["group"] for r in out[s]}) for s in ("train", "validation", "test")] == \
        [sorted(groups[:6]), sorted(groups[6:7]), sorted(groups[7:])]
    assert "cut at group counts [6, 1, 3]" in text
    with pytest.raises(DataError, match="card.yaml: field 'data.split': 'counts' .* adds up to 9, but the data has 10"):
        apply_rule({"rule": "random", "seed": 7, "counts": [5, 1, 3]}, {"train": rows}, "card.yaml")
    for bad in ({"counts": [6, 1, 3], "fractions": [0.6, 0.1, 0.3]}, {"counts": [6, 0, 4]}, {"counts": [6, 4]}):
        with pytest.raises(DataError, match="card.yaml: field 'data.split'"):
            check_rule({"rule": "random", "seed": 7, **bad}, "card.yaml")
