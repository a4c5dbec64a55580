"""Metrics: thin wrappers over seqeval, scikit-learn and scipy.stats, every score on 0-100.

Nothing here re-implements what those libraries do; the wrappers only fix the options the field
uses and the names records carry (cards.KIND_METRICS lists the names a card may pick as primary).

NER is scored twice on purpose. seqeval's default mode is conlleval-compatible and lenient: an
`I-X` with no `B-X` before it still opens an entity. Strict IOB2 mode drops such entities. Papers
mix the two silently (seqeval issue #23), so records carry both and the card names the one it reports.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np


def _pct(value: float) -> float:
    return round(100.0 * float(value), 4)


def ner_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level micro precision / recall / F1 in seqeval's default and strict IOB2 modes.

    One seqeval call per mode (what its `f1_score(..., mode=...)` calls inside): NER scores the dev
    split every epoch, and six separate calls took 3 s a time on AnatEM's dev split.
    """
    from seqeval.metrics.sequence_labeling import precision_recall_fscore_support as default_mode
    from seqeval.metrics.v1 import precision_recall_fscore_support as strict_mode
    from seqeval.scheme import IOB2

    gold, pred = [list(s) for s in gold], [list(s) for s in pred]
    out: dict[str, float] = {}
    for suffix, (prf, options) in (("", (default_mode, {})), ("_strict", (strict_mode, {"scheme": IOB2}))):
        precision, recall, f1, _ = prf(gold, pred, average="micro", zero_division=0, **options)
        out[f"seqeval_precision{suffix}"] = _pct(precision)
        out[f"seqeval_recall{suffix}"] = _pct(recall)
        out[f"seqeval_f1{suffix}"] = _pct(f1)
    return out


def classification_scores(gold: Sequence[int], pred: Sequence[int], n_labels: int,
                          negative: int | None = None) -> dict[str, float]:
    """Single-label: micro / macro / support-weighted F1 and accuracy over all `n_labels` classes.

    Every class of the label set counts (also one absent from the gold of this split), so macro-F1
    is comparable between dev and test; absent classes score 0 rather than warn. Over all classes,
    micro-F1 equals accuracy.

    `negative`: the index of a "no relation" class (ChemProt's "false", DDI's "false", GAD's "0").
    Relation-extraction benchmarks (BLUE's eval_rel.py, BLURB) average over the other classes only:
    a true positive is a correct non-negative prediction, precision divides by the non-negative
    predictions and recall by the non-negative gold (`micro_precision_positive`,
    `micro_recall_positive`, `micro_f1_positive`). The negative class stays a class the model predicts.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = list(range(n_labels))
    out = {
        "micro_f1": _pct(f1_score(gold, pred, labels=labels, average="micro", zero_division=0)),
        "macro_f1": _pct(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": _pct(f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)),
        "accuracy": _pct(accuracy_score(gold, pred)),
    }
    if negative is not None:
        positive = [k for k in labels if k != negative]
        precision, recall, f1, _ = precision_recall_fscore_support(gold, pred, labels=positive, average="micro",
                                                                   zero_division=0)
        out.update(micro_precision_positive=_pct(precision), micro_recall_positive=_pct(recall),
                   micro_f1_positive=_pct(f1))
    return out


def multilabel_scores(gold: np.ndarray, pred: np.ndarray, documents: Sequence[str] | None = None) -> dict[str, float]:
    """Multi-label: micro and macro F1 on 0/1 indicator matrices (examples x labels).

    `documents`: the document of each row (HoC: the abstract of each sentence). Adds
    `micro_f1_document`: a document's gold and predicted labels are the union over its rows, and
    micro-F1 is taken over (document, label) pairs, as BLURB scores HoC at the abstract level.
    """
    from sklearn.metrics import f1_score

    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    out = {
        "micro_f1": _pct(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": _pct(f1_score(gold, pred, average="macro", zero_division=0)),
    }
    if documents is not None:
        names, index = np.unique(np.asarray(documents, dtype=object).astype(str), return_inverse=True)
        doc_gold = np.zeros((len(names), gold.shape[1]), dtype=int)
        doc_pred = np.zeros_like(doc_gold)
        np.maximum.at(doc_gold, index, gold)  # union over the document's rows
        np.maximum.at(doc_pred, index, pred)
        out["micro_f1_document"] = _pct(f1_score(doc_gold, doc_pred, average="micro", zero_division=0))
    return out


def similarity_scores(gold: Sequence[float], pred: Sequence[float]) -> dict[str, float]:
    """Pearson and Spearman correlation x 100.

    A constant prediction (an untrained or collapsed regressor) has no defined correlation; it is
    reported as 0 (no linear / rank agreement) so that epoch selection and averages stay numeric.
    """
    from scipy.stats import pearsonr, spearmanr

    out = {}
    for name, fn in (("pearson", pearsonr), ("spearman", spearmanr)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's ConstantInputWarning; handled just below
            value = float(fn(np.asarray(gold, dtype=float), np.asarray(pred, dtype=float))[0])
        out[name] = 0.0 if math.isnan(value) else _pct(value)
    return out


def span_scores(gold: Sequence[Iterable[tuple[int, int, str]]],
                pred: Sequence[Iterable[tuple[int, int, str]]]) -> dict[str, float]:
    """Span NER, as the paper's evaluator (tabib `evaluation/span_evaluator.py`): per document the SET of
    (char start, char end, label) triples, true / false positives and false negatives summed over
    documents, then micro precision / recall / F1. Nested and crossing entities are just more triples.

    `exact_span_*`: a triple counts when it is in both sets. `partial_span_*`: a prediction is correct when it
    overlaps (shares a character with) a gold entity of the same label, and a gold entity is found when a
    prediction of its label overlaps it; precision and recall are those two shares. (tabib stops at the
    first overlapping gold per prediction, in set order, so its partial recall can depend on iteration
    order; this definition does not.) No library scores character spans with nesting, hence the code.
    """
    if len(gold) != len(pred):
        raise ValueError(f"span_scores: {len(gold)} gold documents but {len(pred)} predicted")
    counts = {"exact": [0, 0, 0, 0], "partial": [0, 0, 0, 0]}  # correct preds, all preds, found golds, all golds
    for g, p in zip(gold, pred):
        g, p = set(map(tuple, g)), set(map(tuple, p))
        hit = len(g & p)
        counts["exact"] = [a + b for a, b in zip(counts["exact"], (hit, len(p), hit, len(g)))]
        by_label: dict[str, list[tuple[int, int]]] = {}
        for s, e, label in g:
            by_label.setdefault(label, []).append((s, e))
        correct = sum(any(s < ge and gs < e for gs, ge in by_label.get(label, ())) for s, e, label in p)
        found = sum(any(s < pe and ps < e for ps, pe, pl in p if pl == label) for s, e, label in g)
        counts["partial"] = [a + b for a, b in zip(counts["partial"], (correct, len(p), found, len(g)))]
    out: dict[str, float] = {}
    for mode, (correct, n_pred, found, n_gold) in counts.items():
        precision = correct / n_pred if n_pred else 0.0
        recall = found / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out |= {f"{mode}_span_precision": _pct(precision), f"{mode}_span_recall": _pct(recall),
                f"{mode}_span_f1": _pct(f1)}
    return out
