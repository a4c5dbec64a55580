"""Example-level significance (issue 16): per-example predictions kept beside each record, rescored on
resampled test sets. References are computed here with the libraries the metrics come from
(scikit-learn, seqeval, scipy) and by enumerating every resample of a tiny test set."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from biobench.leaderboard import build, load_records
from biobench.leaderboard_render import render_board
from biobench.protocols import resolve_protocol
from biobench.records import RecordError, RunRecord, read_predictions, read_record, record_path, write_record
from biobench.significance import example_scores, paired_bootstrap

FIXTURE_RUNS = Path(__file__).resolve().parent / "fixtures" / "leaderboard_runs"


# The kinds' hook, rescored, equals the kind's own score ------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def _kind(name, tokenizer, labels, train):
    from biobench.kinds import get_kind

    return get_kind(name)(tokenizer, resolve_protocol("smoke", "en", name), 32, labels, train)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hook_rescored_equals_the_kind_score(tokenizer, seed):
    rng = np.random.default_rng(seed)
    words = ["aspirin", "causes", "mild", "headache", "in", "some", "patients", "with", "cancer", "."]
    tags = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]
    ner_rows = {"tokens": [list(rng.choice(words, size=rng.integers(1, 9))) for _ in range(30)]}
    ner_rows["tags"] = [list(rng.choice(tags, size=len(t))) for t in ner_rows["tokens"]]
    text = [" ".join(rng.choice(words, size=5)) for _ in range(40)]
    cases = [
        ("token_ner", ["Chemical", "Disease"], ner_rows, ["seqeval_f1", "seqeval_precision", "seqeval_recall"]),
        ("classification", ["a", "b", "c"], {"text": text, "label": list(rng.choice(["a", "b", "c"], size=40))},
         ["micro_f1", "macro_f1", "weighted_f1", "accuracy"]),
        ("multilabel", ["x", "y", "z", "w"],
         {"text": text, "labels": [list(rng.choice(["x", "y", "z", "w"], size=rng.integers(0, 3), replace=False))
                                   for _ in range(40)]}, ["micro_f1", "macro_f1"]),
        ("similarity", None, {"text": text, "text_pair": text[::-1], "score": list(rng.uniform(0, 4, size=40))},
         ["pearson", "spearman"]),
    ]
    for name, labels, rows, metrics in cases:
        kind = _kind(name, tokenizer, labels, rows)
        enc = kind.encode(rows)
        width = len(kind.output_names) if kind.has_labels else 1
        if name == "token_ner":
            outputs = [rng.normal(size=(len(f["input_ids"]), width)) for f in enc.features]
        else:
            outputs = [rng.normal(size=width) for _ in enc.features]
        scores = kind.score(enc, outputs)
        ex = kind.example_predictions(enc, outputs)
        assert len(ex["gold"]) == len(ex["pred"]) == len(next(iter(rows.values())))
        json.dumps(ex)  # plain JSON values
        for metric in metrics:
            got = example_scores(name, metric, ex["gold"], ex["pred"], ex.get("labels")).observed()
            assert got == pytest.approx(scores[metric], abs=1e-3), (name, metric)


# The bootstrap against every resample of a tiny test set --------------------------------------------


def test_bootstrap_equals_the_enumeration_of_all_resamples():
    """n = 4 examples, 2 seeds, macro-F1 over 3 classes: all 4^4 = 256 ordered resamples, each scored
    with scikit-learn; the function given the same 256 resamples must give the same deltas, interval, p."""
    gold = [0, 1, 2, 1]
    runs = {"model": [[0, 1, 2, 2], [0, 1, 1, 1]], "base": [[0, 2, 2, 2], [1, 1, 2, 0]]}
    rows = np.array(list(itertools.product(range(4), repeat=4)))

    def macro(g, p):
        return 100 * f1_score(g, p, labels=[0, 1, 2], average="macro", zero_division=0)

    cache = {}  # macro-F1 ignores order: the 256 resamples are 35 multisets, each scored once
    ref = []
    for idx in rows:
        key = tuple(sorted(idx))
        if key not in cache:
            g = [gold[i] for i in key]
            cache[key] = np.mean([macro(g, [runs["model"][s][i] for i in key]) - macro(g, [runs["base"][s][i] for i in key])
                                  for s in range(2)])
        ref.append(cache[key])
    ref = np.array(ref)
    observed = np.mean([macro(gold, runs["model"][s]) - macro(gold, runs["base"][s]) for s in range(2)])
    p_ref = np.mean(np.abs(ref - observed) >= abs(observed) - 1e-9)

    pairs = [(example_scores("classification", "macro_f1", gold, runs["model"][s], ["a", "b", "c"]),
              example_scores("classification", "macro_f1", gold, runs["base"][s], ["a", "b", "c"])) for s in range(2)]
    res = paired_bootstrap(pairs, index=rows)
    assert res.delta == pytest.approx(observed)
    assert res.deltas == pytest.approx(ref)
    assert res.p == pytest.approx(p_ref) and res.resamples == 256
    # the interval inverts the test: the D0 whose shifted p, counted here resample by resample, is >= 0.05
    assert _kept_by_brute_force(ref, observed, exact=True, lo=res.low, hi=res.high)


def _kept_by_brute_force(deltas, observed, *, exact, lo, hi):
    """Every D0 on a fine grid (and just inside and outside each end): in [lo, hi] exactly when the shifted
    test of H0: delta = D0, p(D0) = #{|d* - d| >= |d - D0|} / B (exact) or (1 + #) / (1 + B), is >= 0.05."""
    total = len(deltas)
    span = float(np.max(np.abs(np.asarray(deltas) - observed))) + 1
    grid = list(np.linspace(observed - span, observed + span, 2001)) + [lo - 1e-6, lo + 1e-6, hi - 1e-6, hi + 1e-6]
    for d0 in grid:
        count = sum(1 for d in deltas if abs(d - observed) >= abs(observed - d0) - 1e-9)
        p = count / total if exact else (1 + count) / (1 + total)
        if (p >= 0.05) != (lo <= d0 <= hi):
            return False
    return True


def test_the_interval_excludes_zero_exactly_when_p_is_below_005():
    """A skewed bootstrap distribution (a rare class decides the metric), where the percentile interval of
    the resampled deltas contains 0 beside p < 0.05: the replication's HoC row showed p = 0.050 in bold
    beside [-2.1, +0.1]. The reported interval must agree with p on every case, and be the test's inversion."""
    rng = np.random.default_rng(7)
    disagreed = 0
    for case in range(40):
        n = 60
        gold = rng.integers(0, 2, size=n)
        gold[: 3 + case % 5] = 2  # a rare class: macro-F1 jumps when a resample drops or repeats it
        base = np.where(rng.random(n) < 0.7, gold, rng.integers(0, 3, size=n))
        model = np.where(rng.random(n) < 0.6 + 0.01 * case, gold, base)
        pairs = [(example_scores("classification", "macro_f1", gold.tolist(), model.tolist(), ["a", "b", "c"]),
                  example_scores("classification", "macro_f1", gold.tolist(), base.tolist(), ["a", "b", "c"]))]
        res = paired_bootstrap(pairs, resamples=400, seed=case)
        assert (res.p < 0.05) == (not res.low <= 0 <= res.high), (case, res.p, res.low, res.high)
        low, high = np.percentile(res.deltas, [2.5, 97.5])
        disagreed += (res.p < 0.05) != (not low <= 0 <= high)
        if case < 5:
            assert _kept_by_brute_force(res.deltas, res.delta, exact=False, lo=res.low, hi=res.high), case
    assert disagreed >= 1  # the cases include the skew that fooled the percentile interval


def test_a_significant_p_never_prints_as_the_threshold():
    from biobench.leaderboard_render import _p

    assert _p(50 / 1001) == "0.0499"  # < 0.05, bold: not "0.050"
    assert _p(0.05) == "0.050" and _p(51 / 1001) == "0.051" and _p(0.0123) == "0.012" and _p(0.0004) == "<0.001"


def test_random_resamples_approach_the_exact_bootstrap():
    """n = 5 (3,125 resamples, enumerated) vs 20,000 random ones: p and interval agree closely."""
    gold = [1, 0, 1, 1, 0]
    a, b = [1, 0, 1, 0, 0], [0, 0, 1, 0, 1]
    pairs = [(example_scores("classification", "accuracy", gold, a, ["n", "y"]),
              example_scores("classification", "accuracy", gold, b, ["n", "y"]))]
    exact = paired_bootstrap(pairs, index=np.array(list(itertools.product(range(5), repeat=5))))
    drawn = paired_bootstrap(pairs, resamples=20_000, seed=1)
    assert drawn.delta == exact.delta == pytest.approx(40.0)
    assert abs(drawn.p - exact.p) < 0.02
    assert drawn.low == pytest.approx(exact.low, abs=1e-9) and drawn.high == pytest.approx(exact.high, abs=1e-9)


# Side files -------------------------------------------------------------------------------------


def test_side_file_round_trip_and_tampering_is_caught(tmp_path):
    rec = RunRecord(model="m", model_sha="", task="t", language="en", kind="classification", seed=0,
                    protocol={"name": "smoke"}, metric="accuracy", primary=50.0)
    path = write_record(rec, tmp_path / "seed-0.json", predictions={"gold": [0, 1], "pred": [0, 0], "labels": ["a", "b"]})
    back = read_record(path)
    assert back.predictions["file"] == "seed-0.pred.json.gz" and back.predictions["examples"] == 2
    assert read_predictions(back, path)["pred"] == [0, 0]
    side = tmp_path / "seed-0.pred.json.gz"
    side.write_bytes(gzip.compress(json.dumps({"gold": [0, 1], "pred": [1, 1]}).encode()))
    with pytest.raises(RecordError, match="seed-0.pred.json.gz: sha256 differs"):
        read_predictions(back, path)
    records, problems = load_records([tmp_path])  # the side file is not taken for a record
    assert len(records) == 1 and problems == []


def _write_runs(root: Path, rng) -> dict:
    """Two models x 3 seeds on one 200-example binary task; the model is right more often."""
    gold = rng.integers(0, 2, size=200).tolist()
    out = {}
    for model, p_right in (("base", 0.70), ("new", 0.78)):
        for seed in (0, 1, 2):
            pred = [g if rng.random() < p_right else 1 - g for g in gold]
            score = round(100 * np.mean(np.array(pred) == np.array(gold)), 4)
            out[(model, seed)] = score
            rec = RunRecord(model=model, model_sha=("1" if model == "base" else "2") * 64, task="t1", language="en",
                            kind="classification", seed=seed, protocol=resolve_protocol("smoke", "en", "classification").to_dict(),
                            metric="accuracy", primary=score, test={"accuracy": score}, data_sha256="d")
            write_record(rec, record_path(root, model, "t1", seed),
                         predictions={"gold": gold, "pred": pred, "labels": ["n", "y"]})
    return out


def test_leaderboard_reports_the_example_level_interval_in_every_format(tmp_path):
    scores = _write_runs(tmp_path, np.random.default_rng(0))
    board = build(load_records([tmp_path])[0], baseline="base", resamples=500)
    g = board.groups[0]
    d = g.comparisons["new"].deltas["t1"]
    seed_delta = np.mean([scores[("new", s)] - scores[("base", s)] for s in (0, 1, 2)])
    assert d.delta == pytest.approx(seed_delta) and d.example.delta == pytest.approx(seed_delta, abs=1e-3)
    assert d.example.resamples == 500 and d.example.seeds == 3 and d.example.examples == 200
    assert d.example.low < d.example.delta < d.example.high
    for fmt in ("md", "csv", "tex", "html", "rich"):
        text = render_board(board, fmt)
        assert "500 resamples" in text or fmt == "csv", fmt
        assert f"{d.example.low:+.1f}" in text or fmt == "csv", fmt
    assert "ex_p" in render_board(board, "csv").splitlines()[0]
    assert "[bold]" not in render_board(board, "rich")  # markup applied, not printed


def test_a_record_without_predictions_says_so(tmp_path):
    _write_runs(tmp_path, np.random.default_rng(1))
    for side in tmp_path.rglob("*.pred.json.gz"):
        if "new" in str(side):
            side.unlink()
    board = build(load_records([tmp_path])[0], baseline="base", resamples=100)
    ex = board.groups[0].comparisons["new"].deltas["t1"].example
    assert ex.p is None and "unreadable" in ex.reason


# Real records: the example-level test and the seed test agree in direction ------------------------


@pytest.mark.skipif(not FIXTURE_RUNS.is_dir(), reason="no committed real records")
def test_example_and_seed_tests_agree_on_real_records():
    """Real CPU runs (MiniLM vs a random-init tiny BERT, smoke protocol, 3 seeds; see the folder's README)."""
    records, problems = load_records([FIXTURE_RUNS])
    assert problems == []
    baseline = next(r.model for r in records if "tiny-bert" in r.model)
    board = build(records, baseline=baseline, resamples=1000)
    both = 0
    for g in board.groups:
        for cmp_ in g.comparisons.values():
            for d in cmp_.deltas.values():
                assert d.example is not None and d.example.p is not None, d.example
                assert d.example.delta == pytest.approx(d.delta, abs=1e-3)  # the same paired delta
                if d.p is not None and d.p < 0.05 and d.example.p < 0.05:
                    assert np.sign(d.delta) == np.sign(d.example.delta) == np.sign(d.example.low)
                    both += 1
    assert both >= 1


def test_span_statistics_rescore_like_span_scores():
    """span_ner's side files ([start, end, label] per document) against biobench.metrics.span_scores."""
    span_scores = pytest.importorskip("biobench.metrics").__dict__.get("span_scores")
    if span_scores is None:
        pytest.skip("no span_scores in biobench.metrics")
    rng = np.random.default_rng(0)

    def doc():
        return sorted({(int(s), int(s + rng.integers(1, 6)), str(rng.choice(["A", "B"])))
                       for s in rng.integers(0, 30, size=rng.integers(0, 5))})

    gold = [[list(t) for t in doc()] for _ in range(25)]
    pred = [[list(t) for t in doc()] for _ in range(25)]
    want = span_scores([[tuple(t) for t in g] for g in gold], [[tuple(t) for t in p] for p in pred])
    for metric in ("exact_span_f1", "exact_span_precision", "partial_span_f1", "partial_span_recall"):
        assert example_scores("span_ner", metric, gold, pred).observed() == pytest.approx(want[metric], abs=1e-3), metric


def test_document_level_multilabel_resamples_documents():
    """BLURB's HoC (micro_f1_document): rows gathered by document, against biobench.metrics.multilabel_scores."""
    from biobench.metrics import multilabel_scores

    rng = np.random.default_rng(3)
    docs = [f"d{i // 3}" for i in range(30)]  # 10 documents of 3 rows
    gold = rng.integers(0, 2, size=(30, 4))
    pred = rng.integers(0, 2, size=(30, 4))
    want = multilabel_scores(gold, pred, documents=docs)["micro_f1_document"]
    sets = lambda m: [np.flatnonzero(r).tolist() for r in m]  # noqa: E731
    scores = example_scores("multilabel", "micro_f1_document", sets(gold), sets(pred), ["a", "b", "c", "d"], docs)
    assert scores.n == 10 and scores.observed() == pytest.approx(want, abs=1e-3)
