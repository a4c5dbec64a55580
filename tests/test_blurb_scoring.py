"""BLURB's scoring definitions: relation extraction without the negative class (ChemProt, DDI, GAD under
--protocol blurb), HoC gathered per abstract, and the card field that picks the definition per protocol.

Every expected score is counted by brute force from a hand-built confusion or label set, not taken from
the code under test."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from biobench.cards import CardError, get_card, parse_card
from biobench.metrics import classification_scores, multilabel_scores
from test_finetune import FAST, make_task, serve, tiny_model  # noqa: F401  (fixtures)


def from_confusion(confusion: list[list[int]]) -> tuple[list[int], list[int]]:
    """Gold and predicted class ids with confusion[g][p] examples of gold g predicted as p."""
    gold, pred = [], []
    for g, row in enumerate(confusion):
        for p, count in enumerate(row):
            gold += [g] * count
            pred += [p] * count
    return gold, pred


def brute_positive_f1(gold: list[int], pred: list[int], negative: int) -> tuple[float, float, float]:
    """Count example by example: TP = correct and not negative; precision over non-negative predictions,
    recall over non-negative gold (BLUE's eval_rel.py / BLURB)."""
    tp = sum(1 for g, p in zip(gold, pred) if g == p and p != negative)
    predicted = sum(1 for p in pred if p != negative)
    actual = sum(1 for g in gold if g != negative)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 100 * precision, 100 * recall, 100 * f1


def test_positive_micro_f1_on_a_hand_built_confusion():
    # classes: 0 CPR:3, 1 CPR:4, 2 false. Rows gold, columns predicted.
    confusion = [[5, 1, 2],   # CPR:3: 5 right, 1 as CPR:4, 2 missed (predicted false)
                 [0, 3, 1],   # CPR:4: 3 right, 1 missed
                 [4, 2, 30]]  # false: 4 + 2 false alarms, 30 right
    gold, pred = from_confusion(confusion)
    s = classification_scores(gold, pred, 3, negative=2)
    # TP = 5 + 3 = 8; predicted positive = column sums 9 + 6 = 15; gold positive = 8 + 4 = 12.
    # P = 8/15, R = 8/12, F1 = 2*8 / (15 + 12) = 16/27.
    assert s["micro_precision_positive"] == pytest.approx(100 * 8 / 15, abs=1e-3)
    assert s["micro_recall_positive"] == pytest.approx(100 * 8 / 12, abs=1e-3)
    assert s["micro_f1_positive"] == pytest.approx(100 * 16 / 27, abs=1e-3)
    # With "false" counted, micro-F1 is accuracy: (5 + 3 + 30) / 48.
    assert s["micro_f1"] == pytest.approx(100 * 38 / 48, abs=1e-3) == s["accuracy"]
    assert "micro_f1_positive" not in classification_scores(gold, pred, 3)  # no negative class: not computed


@pytest.mark.parametrize("seed", range(20))
def test_positive_micro_f1_matches_brute_force_on_random_confusions(seed):
    rng = random.Random(seed)
    n_labels = rng.randint(2, 6)
    negative = rng.randrange(n_labels)
    confusion = [[rng.choice([0, 0, 1, 2, 5, 9]) for _ in range(n_labels)] for _ in range(n_labels)]
    confusion[0][0] += 1  # never empty
    gold, pred = from_confusion(confusion)
    s = classification_scores(gold, pred, n_labels, negative=negative)
    expected = brute_positive_f1(gold, pred, negative)
    got = (s["micro_precision_positive"], s["micro_recall_positive"], s["micro_f1_positive"])
    assert got == pytest.approx(expected, abs=1e-3)


def test_positive_micro_f1_of_a_binary_task_is_the_f1_of_the_positive_class():
    # GAD: "0" negative, "1" association. gold 1 1 1 0 0, pred 1 0 1 1 0: TP 2, P 2/3, R 2/3.
    s = classification_scores([1, 1, 1, 0, 0], [1, 0, 1, 1, 0], 2, negative=0)
    assert s["micro_f1_positive"] == pytest.approx(100 * 2 / 3, abs=1e-3)


def brute_document_f1(gold: list[set], pred: list[set], documents: list[str]) -> float:
    """Union per document, then count (document, label) pairs."""
    gold_doc: dict[str, set] = {}
    pred_doc: dict[str, set] = {}
    for g, p, d in zip(gold, pred, documents):
        gold_doc.setdefault(d, set()).update(g)
        pred_doc.setdefault(d, set()).update(p)
    tp = sum(len(gold_doc[d] & pred_doc[d]) for d in gold_doc)
    n_pred = sum(len(s) for s in pred_doc.values())
    n_gold = sum(len(s) for s in gold_doc.values())
    return 100 * 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


def hot(sets: list[set], n: int) -> np.ndarray:
    return np.array([[int(k in s) for k in range(n)] for s in sets])


def test_document_micro_f1_gathers_the_sentences_of_an_abstract():
    # Abstract A: sentence 1 gold {0}, sentence 2 gold {1}; the model finds label 1 on sentence 1 and
    # label 0 on sentence 2: every sentence is wrong, the abstract is right.
    gold = [{0}, {1}, set(), {2}]
    pred = [{1}, {0}, {2}, set()]
    documents = ["A", "A", "B", "B"]
    s = multilabel_scores(hot(gold, 3), hot(pred, 3), documents=documents)
    assert s["micro_f1"] == 0.0  # sentence level: TP 0
    # abstract level: A gold {0, 1} pred {0, 1}; B gold {2} pred {2}: P = R = F1 = 1.
    assert s["micro_f1_document"] == 100.0 == brute_document_f1(gold, pred, documents)
    assert "micro_f1_document" not in multilabel_scores(hot(gold, 3), hot(pred, 3))


@pytest.mark.parametrize("seed", range(10))
def test_document_micro_f1_matches_brute_force(seed):
    rng = random.Random(seed)
    n, n_labels = 60, 4
    documents = [f"d{rng.randrange(12)}" for _ in range(n)]
    subsets = [set(c) for r in range(n_labels + 1) for c in itertools.combinations(range(n_labels), r)]
    gold = [rng.choice(subsets[:6]) for _ in range(n)]
    pred = [rng.choice(subsets[:6]) for _ in range(n)]
    s = multilabel_scores(hot(gold, n_labels), hot(pred, n_labels), documents=documents)
    assert s["micro_f1_document"] == pytest.approx(brute_document_f1(gold, pred, documents), abs=1e-3)


def test_multilabel_threshold_is_a_strict_logit_rule():
    """The paper's English code predicts a label when its logit > 0; a logit of exactly 0 does not fire,
    and a tiny positive one does (a float64 sigmoid would round it to 0.5)."""
    from biobench.kinds.multilabel import Multilabel
    from biobench.protocols import resolve_protocol

    kind = Multilabel(None, resolve_protocol("paper", "en", "multilabel"), 32, ["a", "b", "c"], {"labels": []})
    outputs = [np.array([0.0, 1e-20, -1e-20])]
    assert kind.predicted(outputs).tolist() == [[False, True, False]]


# --- cards: which definition under which protocol ------------------------------------------------

def test_blurb_cards_name_their_definitions():
    for task, negative in (("chemprot", "false"), ("ddi", "false"), ("gad", "0")):
        card = get_card(task)
        assert card.scoring["negative_class"] == negative and negative in card.labels
        assert card.metric_for("blurb") == "micro_f1_positive"
        assert card.metric_for("paper") == card.metric == "micro_f1"  # the paper keeps "false" (ChemProt)
        assert card.metric_for("smoke") == "micro_f1"
    assert get_card("hoc_blurb").metric_for("blurb") == "micro_f1_document"
    assert get_card("hoc").metric_for("paper") == get_card("hoc").metric_for("blurb") == "micro_f1"
    # the other BLURB tasks score as BLURB's paper states: entity F1, Pearson, accuracy
    for task, metric in (("ncbi_disease", "seqeval_f1"), ("bc5cdr_chem", "seqeval_f1"),
                         ("bc5cdr_disease", "seqeval_f1"), ("bc2gm", "seqeval_f1"), ("jnlpba", "seqeval_f1"),
                         ("biosses", "pearson"), ("pubmedqa", "accuracy")):
        assert get_card(task).metric_for("blurb") == metric, task


CARD = """name: t
version: 1
language: en
kind: {kind}
metric: {metric}
max_length: 64
labels: ["a", "false"]
citation: test
data: {{local: {{dir: d, format: tsv, files: {{train: a.tsv, validation: a.tsv, test: a.tsv}}}}, obtain: test}}
"""


@pytest.mark.parametrize("kind, metric, scoring, field", [
    ("classification", "micro_f1", "{metric: {blurb: micro_f1_positive}}", "scoring.metric.blurb"),  # no negative class
    ("classification", "micro_f1_positive", "{}", "'metric'"),
    ("classification", "micro_f1", "{negative_class: none}", "scoring.negative_class"),  # not a label
    ("classification", "micro_f1", "{metric: {blurb: seqeval_f1}}", "scoring.metric.blurb"),  # not this kind's
    ("classification", "micro_f1", "{documents: true}", "scoring.documents"),  # a multilabel option
    ("multilabel", "micro_f1_document", "{}", "'metric'"),  # no documents
    ("multilabel", "micro_f1", "{documents: 1}", "scoring.documents"),
    ("token_ner", "seqeval_f1", "{negative_class: a}", "'scoring'"),
])
def test_bad_scoring_is_refused_naming_the_field(tmp_path, kind, metric, scoring, field):
    path = tmp_path / "t.yaml"
    path.write_text(CARD.format(kind=kind, metric=metric) + f"scoring: {scoring}\n")
    with pytest.raises(CardError, match=field) as err:
        parse_card(path)
    assert str(path) in str(err.value)


# --- the loop: the record says which definition produced its number ------------------------------

def test_blurb_protocol_records_the_positive_class_score(tmp_path, tiny_model, serve):  # noqa: F811
    import dataclasses

    import biobench.finetune as ft

    card, task_data = make_task(tmp_path, "classification")
    card = dataclasses.replace(card, scoring={"negative_class": "well", "metric": {"blurb": "micro_f1_positive"}})
    serve(task_data)
    blurb = ft.run_cell(tiny_model, card, seed=1, out=tmp_path / "b", protocol="blurb", overrides=FAST, progress=False)
    paper = ft.run_cell(tiny_model, card, seed=1, out=tmp_path / "p", protocol="paper", overrides=FAST, progress=False)
    assert blurb.status == paper.status == "ok", (blurb.error, paper.error)
    assert blurb.metric == "micro_f1_positive" and blurb.primary == blurb.test["micro_f1_positive"]
    assert paper.metric == "micro_f1" and paper.primary == paper.test["micro_f1"]
    assert blurb.notes["scoring"] == paper.notes["scoring"] == {"negative_class": "well"}
    assert blurb.definition["metric"] == "micro_f1_positive" and paper.definition["metric"] == "micro_f1"
    # the best epoch is the one with the best dev score under the protocol's metric
    best = max(blurb.history, key=lambda h: h["dev"]["micro_f1_positive"])
    assert blurb.best_epoch == best["epoch"]
