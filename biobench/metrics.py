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
from collections.abc import Sequence

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


def classification_scores(gold: Sequence[int], pred: Sequence[int], n_labels: int) -> dict[str, float]:
    """Single-label: micro / macro / support-weighted F1 and accuracy over all `n_labels` classes.

    Every class of the label set counts (also one absent from the gold of this split), so macro-F1
    is comparable between dev and test; absent classes score 0 rather than warn.
    """
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(range(n_labels))
    return {
        "micro_f1": _pct(f1_score(gold, pred, labels=labels, average="micro", zero_division=0)),
        "macro_f1": _pct(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": _pct(f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)),
        "accuracy": _pct(accuracy_score(gold, pred)),
    }


def multilabel_scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Multi-label: micro and macro F1 on 0/1 indicator matrices (examples x labels)."""
    from sklearn.metrics import f1_score

    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    return {
        "micro_f1": _pct(f1_score(gold, pred, average="micro", zero_division=0)),
        "macro_f1": _pct(f1_score(gold, pred, average="macro", zero_division=0)),
    }


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
