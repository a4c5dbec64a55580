"""Issue 16: each defect a reviewer found, as a test (every one of these failed on the code before the fix).

Known answers are computed here, plainly: exact enumerations with Fractions of the printed decimals,
means of paired differences by hand, protocols resolved through the public preset function.
"""

from __future__ import annotations

import csv
import html
import importlib.util
import io
import itertools
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from biobench.leaderboard import build, load_records, sign_flip_test
from biobench.leaderboard_render import render_board
from biobench.protocols import resolve_protocol
from biobench.records import RunRecord, write_record

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "results" / "published"
FORMATS = ("md", "csv", "tex", "html", "rich")


def _paper_protocol(kind="classification", language="en", **flags):
    return resolve_protocol("paper", language, kind, None, flags).to_dict()


def rec(model, task, seed, score, *, sha="a" * 64, protocol=None, kind="classification", language="en",
        versions=None, **kw) -> RunRecord:
    return RunRecord(model=model, model_sha=sha, task=task, language=language, kind=kind, seed=seed,
                     protocol=protocol or _paper_protocol(kind, language), metric="micro_f1", primary=score,
                     test={"micro_f1": score}, versions=versions or {"biobench": "0.1.0"},
                     data_sha256=f"data-{task}", card_version=1, **kw)


def brute_sign_flip(deltas: list[Fraction]) -> Fraction:
    """Every sign pattern, summed exactly: the share whose |sum| reaches the observed |sum|."""
    observed = abs(sum(deltas))
    hits = sum(abs(sum(s * d for s, d in zip(signs, deltas))) >= observed
               for signs in itertools.product((1, -1), repeat=len(deltas)))
    return Fraction(hits, 2 ** len(deltas))


# 1. exact ties ----------------------------------------------------------------------------------


def test_sign_flip_counts_patterns_that_tie_the_observed_sum():
    # one-decimal means: 90.4 - 90.5 and 80.2 - 80.1 are -0.1 and +0.1 exactly, but not in floating point
    deltas = [90.4 - 90.5, 80.2 - 80.1, 70.3 - 70.1]
    exact = [Fraction("90.4") - Fraction("90.5"), Fraction("80.2") - Fraction("80.1"), Fraction("70.3") - Fraction("70.1")]
    assert brute_sign_flip(exact) == Fraction(6, 8)  # +-0.1 swapped keeps the sum 0.2: a tie, counted
    assert sign_flip_test(deltas) == 0.75
    assert sign_flip_test(exact) == 0.75


def test_beyond_20_tasks_the_draws_approach_the_exact_count():
    """21 tasks: 100,000 random sign patterns vs the exact distribution of signed sums (a plain dynamic
    programme over integer tenths)."""
    from collections import Counter

    tenths = [3, -1, 4, 1, -5, 9, 2, -6, 5, 3, 5, -8, 9, 7, -9, 3, 2, 3, -8, 4, 6]
    sums = Counter({0: 1})
    for v in tenths:
        nxt = Counter()
        for total, ways in sums.items():
            nxt[total + v] += ways
            nxt[total - v] += ways
        sums = nxt
    observed = abs(sum(tenths))
    exact_p = sum(w for total, w in sums.items() if abs(total) >= observed) / 2 ** len(tenths)
    p = sign_flip_test([Fraction(v, 10) for v in tenths])
    assert abs(p - exact_p) < 0.005 and p != exact_p  # drawn, not enumerated


def _script():
    spec = importlib.util.spec_from_file_location("make_published", PUBLISHED / "make_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_p_vs_next_on_the_papers_rows_is_the_exact_enumeration():
    """The 15 'p vs next' values of `biobench leaderboard results/published` against a plain enumeration of
    all 2^k sign patterns over the paper's printed decimals (read from paper-tables.md as text)."""
    board = build(load_records([PUBLISHED])[0])
    scores = {(r["language"], r["model"]): {t: Fraction(f"{v:.1f}") for t, v in r["scores"].items()}
              for r in _script().paper_rows()}
    checked = {}
    for g in board.groups:
        ranked = sorted(g.ranks, key=g.ranks.get)
        for a, b in zip(ranked, ranked[1:]):
            deltas = [scores[(g.language, a)][t] - scores[(g.language, b)][t] for t in g.tasks]
            assert g.p_next[a] == brute_sign_flip(deltas), a
            checked[a] = g.p_next[a]
    assert len(checked) == 15
    # the two values the reviewer recomputed (issue 16): exact 0.951 and 0.955, not 0.938 and 0.952
    assert round(checked["MLM large 50B"], 3) == 0.951
    assert round(checked["BioClinical-ModernBERT-base"], 3) == 0.955


# 2. identity by weights ---------------------------------------------------------------------------


def test_different_weights_under_one_name_are_separate_rows():
    records = [rec("models/ckpt", "t1", 0, 80.0, sha="a" * 64), rec("models/ckpt", "t1", 1, 82.0, sha="a" * 64),
               rec("models/ckpt", "t1", 2, 60.0, sha="b" * 64)]
    g = build(records).groups[0]
    assert sorted(g.models) == ["models/ckpt @aaaaaaaa", "models/ckpt @bbbbbbbb"]
    assert g.cell("models/ckpt @aaaaaaaa", "t1").n == 2 and g.cell("models/ckpt @aaaaaaaa", "t1").mean == 81.0
    assert g.cell("models/ckpt @bbbbbbbb", "t1").n == 1
    assert "models/ckpt @bbbbbbbb" in render_board(build(records), "md")


def test_a_hub_id_and_a_local_copy_of_the_same_weights_are_one_model():
    content = "c" * 64
    hub = rec("org/model", "t1", 0, 80.0, sha="0123abcd" * 5, weights_sha256=content)  # model_sha: the hub commit
    local = rec("/data/copies/org-model", "t1", 1, 84.0, sha=content)  # a local folder's model_sha: content hash
    board = build([hub, local])
    g = board.groups[0]
    assert g.models == ["org/model"] and g.cell("org/model", "t1").n == 2
    assert any("run under several names" in n and "/data/copies/org-model" in n for n in board.notes)


def test_weights_sha256_is_one_hash_for_a_hub_snapshot_and_its_local_copy(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from biobench.provenance import weights_sha256

    commit = "f" * 40
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(b"weights bytes")
    (snap / "config.json").write_text("{}")
    refs = tmp_path / "hub" / "models--org--tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text(commit)
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").write_bytes(b"weights bytes")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights_sha256(str(copy)) == weights_sha256("org/tiny") != ""
    (copy / "model.safetensors").write_bytes(b"other weights")
    assert weights_sha256(str(copy)) != weights_sha256("org/tiny")


# 3. paired deltas, pair counts and reasons ------------------------------------------------------


def _paired_case():
    base = {0: 70.0, 1: 71.0, 2: 72.0}
    new = {0: 71.0, 1: 72.5, 2: 73.1, 3: 80.0, 4: 81.0}  # seeds 3 and 4 have no baseline partner
    records = [rec("base", "t1", s, v, sha="1" * 64) for s, v in base.items()]
    records += [rec("new", "t1", s, v, sha="2" * 64) for s, v in new.items()]
    records += [rec("base", "t2", s, 50.0 + s, sha="1" * 64) for s in (0, 1)]
    records += [rec("new", "t2", s, 55.0 + s, sha="2" * 64) for s in (5, 6)]  # no shared seed at all
    return records, base, new


def test_delta_is_the_mean_of_paired_differences_and_shows_its_pair_count():
    records, base, new = _paired_case()
    board = build(records, baseline="base")
    d = board.groups[0].comparisons["new"].deltas
    paired = [new[s] - base[s] for s in (0, 1, 2)]  # 1.0, 1.5, 1.1
    assert d["t1"].delta == pytest.approx(sum(paired) / 3) and d["t1"].n_pairs == 3
    from scipy import stats

    assert d["t1"].p == pytest.approx(stats.ttest_rel([new[s] for s in (0, 1, 2)], [base[s] for s in (0, 1, 2)]).pvalue)
    assert d["t2"].delta is None and "no shared seeds" in d["t2"].reason
    for fmt in FORMATS:
        text = render_board(board, fmt)
        assert "n=3" in text or fmt == "csv", fmt
        assert "no shared seeds" in text, fmt
    rows = list(csv.DictReader(io.StringIO(render_board(board, "csv"))))
    t1 = next(r for r in rows if r["model"] == "new" and r["task"] == "t1")
    assert t1["n_pairs"] == "3" and float(t1["delta"]) == pytest.approx(sum(paired) / 3)
    t2 = next(r for r in rows if r["model"] == "new" and r["task"] == "t2")
    assert t2["delta"] == "" and "no shared seeds" in t2["p_reason"]


def test_a_missing_p_value_always_says_why():
    one = [rec("base", "t1", 0, 70.0, sha="1" * 64), rec("new", "t1", 0, 72.0, sha="2" * 64)]
    board = build(one, baseline="base")
    d = board.groups[0].comparisons["new"].deltas["t1"]
    assert d.p is None and d.n_pairs == 1 and "n<2" in d.reason
    for fmt in FORMATS:
        assert "n<2" in html.unescape(render_board(board, fmt)).replace("$<$", "<"), fmt


# 4. protocol identity by resolved hyper-parameters ----------------------------------------------


def test_protocols_are_identified_by_their_hyper_parameters_not_their_name():
    plain = resolve_protocol("smoke", "en", "classification").to_dict()
    other = resolve_protocol("smoke", "en", "classification", None, {"lr": 3e-4}).to_dict()
    assert plain["name"] == other["name"] == "smoke" and plain["lr"] != 3e-4
    records = [rec("m", "t1", s, 60.0, protocol=plain) for s in (0, 1)]
    records += [rec("m", "t1", s, 90.0, protocol=other) for s in (2, 3)]
    board = build(records)
    assert sorted(g.protocol for g in board.groups) == ["smoke", "smoke+lr=3e-4"]
    assert all(g.cell("m", "t1").n == 2 for g in board.groups)  # never averaged across
    assert {g.protocol: g.cell("m", "t1").mean for g in board.groups} == {"smoke": 60.0, "smoke+lr=3e-4": 90.0}
    assert "protocol 'smoke+lr=3e-4'" in render_board(board, "md")


# 5. published cells of another task definition -------------------------------------------------


def _definition_case():
    """Runs of chemprot (the bio_electra release, as its card declares) and gad next to two published rows."""
    records = [r for r in load_records([PUBLISHED / "ModernBERT-base", PUBLISHED / "PubMedBERT__512"])[0]
               if r.task in ("chemprot", "gad")]
    release = {"chemprot": "SciCrunch/bio_electra@7a53526 chemprot", "gad": "SciCrunch/bio_electra@7a53526 gad"}
    for s in (0, 1, 2):
        for task, score in (("chemprot", 88.0 + s), ("gad", 80.0 + s)):
            records.append(rec("mine", task, s, score, data_release=release[task],
                               definition={"kind": "classification", "metric": "micro_f1", "release": release[task]}))
    return records


def test_a_published_cell_of_another_definition_is_marked_and_not_ranked_or_tested():
    records = _definition_case()
    board = build(records, suite_tasks=["chemprot", "gad"], baseline="ModernBERT-base")
    g = board.groups[0]
    pub = g.cell("ModernBERT-base", "chemprot")
    assert "release" in pub.definition_diff and "BLUE" in pub.definition_diff
    assert not g.cell("ModernBERT-base", "gad").definition_diff  # the paper states no GAD release: nothing to compare
    assert g.ranks == {"mine": 1}  # the published rows have an Avg but no rank against the runs
    assert set(g.unranked) == {"ModernBERT-base", "PubMedBERT (512)"}
    d = g.comparisons["mine"].deltas["chemprot"]
    assert d.excluded and d.p is None
    assert g.comparisons["mine"].tasks == ("gad",)  # only gad enters the Avg delta and the overall test
    for fmt in FORMATS:
        text = render_board(board, fmt)
        assert ("‡" in text) or (r"\ddagger" in text), fmt
    # the published rows between themselves stay comparable
    between = g.comparisons["PubMedBERT (512)"].deltas["chemprot"]
    assert not between.excluded
    anyway = build(records, suite_tasks=["chemprot", "gad"], baseline="ModernBERT-base", compare_anyway=True).groups[0]
    assert set(anyway.ranks) == {"mine", "ModernBERT-base", "PubMedBERT (512)"}
    assert anyway.comparisons["mine"].tasks == ("chemprot", "gad") and anyway.cell("ModernBERT-base", "chemprot").definition_diff


def test_a_kind_difference_is_found_from_the_records_alone():
    """French NER: the paper's numbers are span-level; a token-level run in the same column is another task."""
    pub = [r for r in load_records([PUBLISHED / "MLM__base"])[0] if r.task == "quaero_emea"]
    assert pub[0].definition["kind"] == "span_ner"
    runs = [RunRecord(model="mine", model_sha="d" * 64, task="quaero_emea", language="fr", kind="token_ner", seed=s,
                      protocol=_paper_protocol("token_ner", "fr"), metric="seqeval_f1", primary=60.0 + s)
            for s in (0, 1)]
    g = build(pub + runs).groups[0]
    assert "kind: published 'span_ner' vs run 'token_ner'" in g.cell("MLM base", "quaero_emea").definition_diff


# 6. provenance and file modes -----------------------------------------------------------------------


def test_records_carry_the_code_and_library_versions(tmp_path):
    """What `run_cell` stamps on a record: biobench version, commit and source hash, the library versions,
    the weights' content hash and the card's task definition."""
    from types import SimpleNamespace

    from biobench.cards import get_card
    from biobench.finetune import new_record

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights")
    card = get_card("gad")
    record = new_record(str(ckpt), card, SimpleNamespace(data_sha256="d"), 0,
                        resolve_protocol("smoke", card.language, card.kind))
    v = record.versions
    for key in ("biobench", "biobench_commit", "biobench_source", "python", "torch", "transformers", "datasets",
                "numpy", "scikit-learn", "scipy", "seqeval"):
        assert key in v, key
    assert len(v["biobench_source"]) == 64 and v["numpy"] and v["seqeval"] and v["scikit-learn"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert v["biobench_commit"].removesuffix("-dirty") == head.stdout.strip()
    import hashlib

    assert record.weights_sha256 == hashlib.sha256(b"model.safetensors" + b"weights").hexdigest()
    assert record.definition["kind"] == card.kind and record.definition["release"] == card.data.release


def test_the_source_hash_changes_with_the_code(tmp_path):
    from biobench.provenance import source_sha256

    (tmp_path / "a.py").write_text("x = 1\n")
    before = source_sha256(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_sha256(tmp_path) != before


def test_the_source_hash_is_the_same_from_a_checkout_and_installed(tmp_path):
    """A wheel or `pip install --target` copy holds biobench/tasks/__init__.py (pyproject maps biobench.tasks
    to the top-level tasks/); the checkout does not. The same code must hash the same in both, or records made
    on a GPU machine (installed) and here (editable) would be flagged as made by different code."""
    import shutil

    from biobench.provenance import PACKAGE_DIR, source_sha256

    installed = tmp_path / "site" / "biobench"
    shutil.copytree(PACKAGE_DIR, installed, ignore=shutil.ignore_patterns("__pycache__"))
    (installed / "tasks").mkdir()
    shutil.copy(PACKAGE_DIR.parent / "tasks" / "__init__.py", installed / "tasks" / "__init__.py")
    assert source_sha256(installed) == source_sha256(PACKAGE_DIR)
    (installed / "tasks" / "__init__.py").write_text("# another\n")  # and it is still part of the code
    assert source_sha256(installed) != source_sha256(PACKAGE_DIR)


def test_records_made_by_different_code_are_flagged():
    old = {"biobench": "0.1.0", "biobench_source": "1" * 64}
    new = {"biobench": "0.1.0", "biobench_source": "2" * 64}
    records = [rec("m", "t1", s, 70.0, versions=old) for s in (0, 1)] + [rec("m", "t2", 0, 60.0, versions=old)]
    records += [rec("m", "t2", 1, 61.0, versions=new)]
    board = build(records)
    g = board.groups[0]
    assert g.cell("m", "t2").n == 2  # flagged, still counted
    assert g.cell("m", "t2").code_flag and not g.cell("m", "t1").code_flag
    for fmt in FORMATS:
        text = render_board(board, fmt)
        assert "§" in text or r"\S{}" in text, fmt
    assert "src 222222222222" in render_board(board, "md")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_record_files_get_the_process_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_record(rec("m", "t1", 0, 70.0), tmp_path / "seed-0.json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_prediction_side_files_get_the_process_umask_too(tmp_path):
    old = os.umask(0o022)
    try:
        write_record(rec("m", "t1", 0, 70.0), tmp_path / "seed-0.json",
                     predictions={"gold": [1, 0], "pred": [1, 1], "labels": ["a", "b"]})
    finally:
        os.umask(old)
    assert (tmp_path / "seed-0.pred.json.gz").stat().st_mode & 0o777 == 0o644


def test_imports_go_one_way():
    """records <- significance <- leaderboard <- leaderboard_render: no module imports one above it."""
    import ast

    def imported(module: str) -> set[str]:
        tree = ast.parse((REPO / "biobench" / f"{module}.py").read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        return names

    assert not {"biobench.leaderboard_render"} & imported("leaderboard")
    assert not {"biobench.leaderboard", "biobench.leaderboard_render"} & imported("significance")
    assert not {"biobench.leaderboard", "biobench.significance"} & imported("records")


def test_cli_compare_anyway_and_resamples(tmp_path, capsys):
    from biobench.cli import main

    runs = tmp_path / "runs"
    for r in _definition_case():
        if r.source == "run":
            write_record(r, runs / r.task / f"seed-{r.seed}.json")
    files = [str(PUBLISHED / "ModernBERT-base" / t / "published.json") for t in ("chemprot", "gad")]
    args = ["leaderboard", str(runs), *files, "--baseline", "ModernBERT-base", "--format", "csv"]
    assert main(args) == 0
    avg = {r["model"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["task"] == "Avg"}
    assert avg["mine"]["rank"] == "1" and avg["ModernBERT-base"]["rank"] == ""
    assert avg["ModernBERT-base"]["mark"] == "‡"
    assert main(args + ["--compare-anyway", "--resamples", "0"]) == 0
    avg = {r["model"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out)) if r["task"] == "Avg"}
    assert avg["ModernBERT-base"]["rank"] in ("1", "2") and avg["mine"]["rank"] in ("1", "2")
