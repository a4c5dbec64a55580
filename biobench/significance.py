"""Significance over test examples: a paired bootstrap on the per-example predictions records keep.

Why. With 5 seeds a paired t-test over seeds has 4 degrees of freedom and little power, and it only
sees one number per run. The test set holds hundreds to thousands of examples; resampling them asks
whether the difference would hold on another test set drawn from the same population (Efron &
Tibshirani 1993; in NLP Berg-Kirkpatrick et al. 2012, Dror et al. 2018). It does NOT cover the
seed-to-seed variance of fine-tuning, which the seed t-test does: the two answer different questions,
and the leaderboard shows both.

How. Each record's side file (`records.read_predictions`) holds the gold and predicted value of every
test example. A metric is written as a function of SUMS of per-example statistics (NER F1 from
per-sentence true positives / predicted / gold entity counts, classification F1 from per-class
counts, Pearson from moments...), so one resample is a weighted sum: `counts @ stats`. One resample
draws n example indices with replacement, the SAME indices for both models and every shared seed
(paired, and pooled over seeds); its statistic is the mean over seeds of (metric of the model -
metric of the baseline). Reported: the observed delta (the mean of the per-seed deltas, as the seed
table's paired delta), the two-sided p of the shifted bootstrap: p = (1 + #{|d* - d| >= |d|}) / (1 + B)
(under H0 the resampled deltas centred on 0 reach the observed one that often), and the 95 % interval
that this test gives: every delta D0 it would not reject at 5 %, d +- a quantile of |d* - d|. So the
interval excludes 0 exactly when p < 0.05. (The percentile interval of the d* answers another question
and, on a skewed bootstrap distribution, can contain 0 beside a p below 0.05: the leaderboard would
then print a significant delta whose interval says otherwise.) Spearman's rank correlation is not a
sum: its resamples are ranked one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
EXAMPLE_TEST = ("paired bootstrap over test examples, pooled over the shared seeds (same resampled examples "
                "for both models and every seed); two-sided shifted-bootstrap p; 95 % interval: the deltas this "
                "test does not reject at 5 % (it excludes 0 exactly when p < 0.05)")
_TOL = 1e-9


@dataclass
class ExampleScores:
    """One run's test predictions, ready to be rescored on resampled example sets.

    `stats` (n x k): per-example statistics whose column sums determine the metric; `finalize(sums)`
    maps (B x k) sums to B metric values (0-100). Metrics that are not functions of sums (Spearman) set
    `rescore(idx)` instead: (B x n) example indices -> B metric values.
    """

    n: int
    stats: np.ndarray | None = None
    finalize: Callable[[np.ndarray], np.ndarray] | None = None
    rescore: Callable[[np.ndarray], np.ndarray] | None = None

    def observed(self) -> float:
        return float(self.resampled(np.arange(self.n)[None, :])[0])

    def resampled(self, idx: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
        """Metric on each row of `idx` (B x n example indices); `counts` (B x n, how often each example
        was drawn) may be passed when already computed for the same `idx`."""
        if self.rescore is not None:
            return self.rescore(idx)
        if counts is None:
            counts = draw_counts(idx, self.n)
        return self.finalize(counts @ self.stats)


def draw_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(B x n) example indices -> (B x n) how many times each example was drawn."""
    return np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)


def _f1(tp, n_pred, n_gold):
    denom = n_pred + n_gold
    return np.where(denom > 0, 200.0 * tp / np.where(denom > 0, denom, 1), 0.0)


def _ner_stats(gold: Sequence[Sequence[int]], pred: Sequence[Sequence[int]], labels: Sequence[str], metric: str):
    """Per sentence: (true positive, predicted, gold) entity counts, entities as seqeval's default mode
    reads them (a lone I-X opens an entity; no entity crosses a sentence)."""
    from seqeval.metrics.sequence_labeling import get_entities

    out = np.zeros((len(gold), 3))
    for i, (g, p) in enumerate(zip(gold, pred)):
        ge = set(get_entities([labels[t] for t in g]))
        pe = set(get_entities([labels[t] for t in p]))
        out[i] = (len(ge & pe), len(pe), len(ge))
    return out


def _span_stats(gold, pred, partial: bool):
    """Per document, as `metrics.span_scores` counts: (correct predictions, predictions, found gold, gold);
    exact: a triple in both sets; partial: a same-label overlap."""
    out = np.zeros((len(gold), 4))
    for i, (g, p) in enumerate(zip(gold, pred)):
        ge, pe = {tuple(x) for x in g}, {tuple(x) for x in p}
        if partial:
            correct = sum(any(s < b and a < e and gl == lab for a, b, gl in ge) for s, e, lab in pe)
            found = sum(any(s < b and a < e and pl == lab for a, b, pl in pe) for s, e, lab in ge)
        else:
            correct = found = len(ge & pe)
        out[i] = (correct, len(pe), found, len(ge))
    return out


def _span_prf(metric: str) -> Callable[[np.ndarray], np.ndarray]:
    which = metric.rsplit("_", 1)[1]

    def finalize(s):
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(s[:, 1] > 0, s[:, 0] / np.where(s[:, 1] > 0, s[:, 1], 1), 0.0)
            recall = np.where(s[:, 3] > 0, s[:, 2] / np.where(s[:, 3] > 0, s[:, 3], 1), 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / np.where(precision + recall > 0,
                                                                                    precision + recall, 1), 0.0)
        return 100.0 * {"precision": precision, "recall": recall, "f1": f1}[which]
    return finalize


def _prf(metric: str, prefix: str) -> Callable[[np.ndarray], np.ndarray]:
    """(tp, predicted, gold) sums -> precision, recall or F1 (x 100, 0 where undefined)."""
    which = metric.removeprefix(prefix)

    def finalize(s):
        tp, n_pred, n_gold = s[:, 0], s[:, 1], s[:, 2]
        if which == "precision":
            return np.where(n_pred > 0, 100.0 * tp / np.where(n_pred > 0, n_pred, 1), 0.0)
        if which == "recall":
            return np.where(n_gold > 0, 100.0 * tp / np.where(n_gold > 0, n_gold, 1), 0.0)
        return _f1(tp, n_pred, n_gold)
    return finalize


def _per_class(gold_hot: np.ndarray, pred_hot: np.ndarray) -> np.ndarray:
    """(n x 3L): per example and class, tp, fp, fn indicators."""
    tp = gold_hot * pred_hot
    return np.concatenate([tp, pred_hot - tp, gold_hot - tp], axis=1)


def _class_f1(metric: str, n_labels: int) -> Callable[[np.ndarray], np.ndarray]:
    """Per-class (tp, fp, fn) sums -> micro / macro / support-weighted F1 as scikit-learn computes them
    over every class of the label set (zero_division=0)."""
    def finalize(s):
        tp, fp, fn = s[:, :n_labels], s[:, n_labels:2 * n_labels], s[:, 2 * n_labels:]
        if metric in ("micro_f1", "accuracy"):
            return _f1(tp.sum(1), (tp + fp).sum(1), (tp + fn).sum(1))
        f1 = _f1(tp, tp + fp, tp + fn)
        if metric == "macro_f1":
            return f1.mean(1)
        support = tp + fn
        total = support.sum(1)
        return np.where(total > 0, (f1 * support).sum(1) / np.where(total > 0, total, 1), 0.0)
    return finalize


def _pearson(s):
    n, x, y, xx, yy, xy = (s[:, i] for i in range(6))
    cov = n * xy - x * y
    var = (n * xx - x * x) * (n * yy - y * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1)), 0.0)
    return 100.0 * r


def example_scores(kind: str, metric: str, gold: list, pred: list, labels: Sequence[str] | None = None,
                   documents: Sequence[Any] | None = None) -> ExampleScores:
    """A side file's gold / pred (the form `Kind.example_predictions` exports) -> rescorable statistics.
    `documents` (multilabel `micro_f1_document`): the document of each row; the document is then the unit
    resampled, its label sets the union over its rows. ValueError names what is not supported."""
    if kind == "multilabel" and metric == "micro_f1_document":
        if documents is None:
            raise ValueError("micro_f1_document needs the document of each row ('documents')")
        merged: dict[str, tuple[set, set]] = {}
        for doc, g, p in zip(documents, gold, pred):
            gs, ps = merged.setdefault(str(doc), (set(), set()))
            gs.update(g)
            ps.update(p)
        gold, pred = [sorted(g) for g, _ in merged.values()], [sorted(p) for _, p in merged.values()]
        metric = "micro_f1"
    n = len(gold)
    if kind == "token_ner" and metric in ("seqeval_f1", "seqeval_precision", "seqeval_recall"):
        if not labels:
            raise ValueError("token_ner predictions need their tag list ('labels')")
        return ExampleScores(n, _ner_stats(gold, pred, labels, metric), _prf(metric, "seqeval_"))
    if kind == "span_ner" and metric.startswith(("exact_span_", "partial_span_")):
        return ExampleScores(n, _span_stats(gold, pred, metric.startswith("partial")), _span_prf(metric))
    if kind == "classification" and metric in ("micro_f1", "macro_f1", "weighted_f1", "accuracy"):
        size = len(labels) if labels else 1 + max(max(gold, default=0), max(pred, default=0))
        eye = np.eye(size)
        return ExampleScores(n, _per_class(eye[np.asarray(gold, int)], eye[np.asarray(pred, int)]), _class_f1(metric, size))
    if kind == "multilabel" and metric in ("micro_f1", "macro_f1"):
        size = len(labels) if labels else 1 + max((x for s in gold + pred for x in s), default=0)
        hot = lambda sets: np.array([np.isin(np.arange(size), s) for s in sets], dtype=float).reshape(n, size)  # noqa: E731
        g, p = hot(gold), hot(pred)
        if metric == "micro_f1":  # per example: summed over labels
            tp = (g * p).sum(1, keepdims=True)
            stats = np.concatenate([tp, p.sum(1, keepdims=True) - tp, g.sum(1, keepdims=True) - tp], axis=1)
            return ExampleScores(n, stats, _class_f1("micro_f1", 1))
        return ExampleScores(n, _per_class(g, p), _class_f1("macro_f1", size))
    if kind == "similarity" and metric == "pearson":
        x, y = np.asarray(gold, float), np.asarray(pred, float)
        return ExampleScores(n, np.stack([np.ones(n), x, y, x * x, y * y, x * y], axis=1), _pearson)
    if kind == "similarity" and metric == "spearman":
        from scipy.stats import rankdata

        x, y = np.asarray(gold, float), np.asarray(pred, float)

        def rescore(idx):
            rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)
            ones = np.ones_like(rx)
            sums = np.stack([ones.sum(1), rx.sum(1), ry.sum(1), (rx * rx).sum(1), (ry * ry).sum(1), (rx * ry).sum(1)], 1)
            return _pearson(sums)
        return ExampleScores(n, rescore=rescore)
    raise ValueError(f"no example-level scorer for {kind} / {metric}")


@dataclass
class BootstrapResult:
    delta: float
    low: float
    high: float
    p: float
    resamples: int
    deltas: np.ndarray  # the resampled deltas


def paired_bootstrap(pairs: Sequence[tuple[ExampleScores, ExampleScores]], *, resamples: int = 1000, seed: int = 0,
                     index: np.ndarray | None = None, chunk: int = 100) -> BootstrapResult:
    """Paired bootstrap of mean-over-seeds(metric(model) - metric(baseline)) over the test examples.

    `pairs`: one (model, baseline) per shared seed, all on the same n examples. `index` (B x n example
    indices) replaces the random draws, e.g. every one of the n^n resamples of a tiny test set: p is then
    the plain fraction (no +1), an exact bootstrap p."""
    n = pairs[0][0].n
    if any(a.n != n or b.n != n for a, b in pairs):
        raise ValueError("every run of a bootstrap must have the same test examples")
    observed = float(np.mean([a.observed() - b.observed() for a, b in pairs]))
    rng = np.random.default_rng(seed)
    total = len(index) if index is not None else resamples
    out = []
    for start in range(0, total, chunk):
        idx = index[start:start + chunk] if index is not None else rng.integers(0, n, size=(min(chunk, total - start), n))
        counts = draw_counts(idx, n)  # once for every run of the chunk
        out.append(np.mean([a.resampled(idx, counts) - b.resampled(idx, counts) for a, b in pairs], axis=0))
    deltas = np.concatenate(out)
    spread = np.abs(deltas - observed)
    extreme = int(np.sum(spread >= abs(observed) - _TOL))
    exact = index is not None  # enumerated resamples: p is the plain fraction
    p = extreme / total if exact else (1 + extreme) / (1 + total)
    half = _test_interval_half_width(spread, exact)
    return BootstrapResult(observed, observed - half, observed + half, float(min(1.0, p)), total, deltas)


def _test_interval_half_width(spread: np.ndarray, exact: bool) -> float:
    """Half-width h of the interval that inverts the shifted test: D0 is kept when
    p(D0) = (1 + #{|d* - d| >= |d - D0|}) / (1 + B) >= alpha (plain fraction when exact), i.e. when at most
    K = ceil(alpha (1 + B) - 1) - 1 of the |d* - d| reach |d - D0|, i.e. when |d - D0| <= the (K+1)-th largest."""
    alpha, total = 1 - CONFIDENCE, len(spread)
    bound = alpha * total if exact else alpha * (1 + total) - 1  # counts below it are rejections
    allowed = int(np.ceil(bound - 1e-9)) - 1  # 1e-9: 0.05 * 1000 is 50.00000000000004 in floating point
    if allowed < 0:  # too few resamples to reject anything: the interval is unbounded
        return float("inf")
    return float(np.sort(spread)[::-1][allowed]) + _TOL  # + the test's own tolerance on ties


def load_example_scores(record, record_file) -> tuple[list, ExampleScores]:
    """A record's side file -> (gold, rescorable scores), checked: rescoring must give the record's test score.
    Raises RecordError (side file missing, altered) or ValueError (no scorer, score mismatch), naming the file."""
    from biobench.records import read_predictions

    raw = read_predictions(record, record_file)
    scores = example_scores(record.kind, record.metric, raw["gold"], raw["pred"], raw.get("labels"), raw.get("documents"))
    target = (record.test or {}).get(record.metric, record.primary)
    if target is not None and abs(scores.observed() - target) > 1e-3:
        raise ValueError(f"{record_file}: its predictions rescore to {scores.observed():.4f}, the record says "
                         f"{target} (metric {record.metric})")
    return raw["gold"], scores
