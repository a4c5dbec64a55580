"""Renderers for a computed `Leaderboard`: rich, Markdown, CSV, LaTeX (booktabs) and HTML.

Nothing here computes a statistic: every number comes from `biobench.leaderboard`. One table
layout (`_main_rows`, `_delta_rows`, `_example_rows`) is written once against a small formatter per
target, so the Markdown, LaTeX, HTML and terminal tables always say the same thing. Imports go one way:
this module uses `biobench.leaderboard`, never the reverse; `render` (records or folders -> text) is here.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from biobench.leaderboard import (
    ALPHA, CODE_MARK, CODE_NOTE, DEFINITION_MARK, DEFINITION_NOTE, OVERALL_TEST, PER_TASK_TEST, PUBLISHED_MARK,
    PUBLISHED_NOTE, SIGN_FLIP_DRAWS, STD_NOTE, TIE_EPS, Group, Leaderboard, build, load_records,
)
from biobench.records import RunRecord

FORMATS = ("rich", "md", "csv", "tex", "html")
LANG_NAMES = {"en": "English", "fr": "French"}
DECIMALS = 1


# ----------------------------------------------------------------------------------------------
# Formatters: how one target writes a score, a dash, bold text


class _Plain:
    pm = " ± "
    dash = "—"
    dagger = PUBLISHED_MARK

    def esc(self, text: str) -> str:
        return text

    def bold(self, text: str) -> str:
        return f"**{text}**"

    def small(self, text: str) -> str:
        return text


class _Rich(_Plain):
    def esc(self, text: str) -> str:
        from rich.markup import escape

        return escape(text)

    def bold(self, text: str) -> str:
        return f"[bold]{text}[/bold]"

    def small(self, text: str) -> str:
        return f"[dim]{text}[/dim]"


class _Html(_Plain):
    def esc(self, text: str) -> str:
        return html.escape(text)

    def bold(self, text: str) -> str:
        return f"<b>{text}</b>"

    def small(self, text: str) -> str:
        return f"<small>{text}</small>"


class _Latex(_Plain):
    pm = r"$\pm$"
    dash = "--"
    dagger = r"$^\dagger$"
    _SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
                "—": "--", "±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "≥": r"$\geq$",
                "‡": r"$^\ddagger$", "§": r"\S{}", "≤": r"$\leq$", "<": r"$<$", ">": r"$>$"}

    def esc(self, text: str) -> str:
        return "".join(self._SPECIAL.get(ch, ch) for ch in text)

    def bold(self, text: str) -> str:
        return rf"\textbf{{{text}}}"

    def small(self, text: str) -> str:
        return rf"{{\scriptsize {text}}}"


def _num(x: float, signed: bool = False) -> str:
    return f"{x:+.{DECIMALS}f}" if signed else f"{x:.{DECIMALS}f}"


def _p(p: float | None) -> str:
    """Three decimals, except where rounding would lift a significant p to the threshold itself: 50/1001 =
    0.04995 is bold (p < 0.05), so it prints as 0.0499, not as a bold 0.050."""
    if p is None:
        return "—"
    if p < 0.001:
        return "<0.001"
    text = f"{p:.3f}"
    if p < ALPHA <= float(text):
        text = f"{math.floor(p * 10_000) / 10_000:.4f}"
    return text


def _best(values: list[float | None]) -> set[int]:
    """Indices of the best value at the printed precision (all of them when tied)."""
    shown = [round(v, DECIMALS) if v is not None else None for v in values]
    present = [v for v in shown if v is not None]
    if len(present) < 2:
        return set()
    top = max(present)
    return {i for i, v in enumerate(shown) if v == top}


def _missing_text(missing: tuple[str, ...], total: int) -> str:
    if len(missing) <= 3:
        return "missing: " + ", ".join(missing)
    return f"missing {len(missing)} of {total} tasks"


# ----------------------------------------------------------------------------------------------
# One layout for every target


def _title(g: Group, board: Leaderboard) -> str:
    lang = LANG_NAMES.get(g.language, g.language)
    metric = "test score (primary metric)" if board.metric == "primary" else "dev score (primary metric)"
    suite = f" · suite {g.suite}" if g.suite else ""
    return f"{lang} ({g.language}) · protocol '{g.protocol}'{suite} · {metric}"


def _main_header(g: Group) -> list[str]:
    head = ["Model", *g.tasks, "Avg"]
    if g.common_averages:
        head.append(f"Avg ({len(g.common_tasks)} common)")
    return head + ["Rank", "p vs next"]


def _main_rows(g: Group, f: _Plain) -> list[list[str]]:
    columns: list[list[float | None]] = [[g.cells[(m, t)].mean if (m, t) in g.cells else None for m in g.models]
                                         for t in g.tasks]
    columns.append([g.averages[m].value for m in g.models])
    if g.common_averages:
        columns.append([g.common_averages[m] for m in g.models])
    best = [_best(col) for col in columns]
    rows = []
    for i, m in enumerate(g.models):
        label = f.esc(m) + (" " + f.dagger if any(g.cells[(m, t)].published for t in g.tasks if (m, t) in g.cells)
                            else "")
        if m == g.baseline:
            label += " " + f.small("(baseline)")
        row = [label]
        for j, t in enumerate(g.tasks):
            c = g.cells.get((m, t))
            if c is None:
                row.append(f.dash)
                continue
            text = _num(c.mean)
            text = f.bold(text) if i in best[j] else text
            if c.definition_diff:
                text += f.esc(" " + DEFINITION_MARK)
            if c.code_flag:
                text += f.esc(" " + CODE_MARK)
            if c.published:  # the row label carries the mark: published rows are never mixed with runs
                text += f.small(f" ({c.n})" if c.n else "")
            elif c.std is not None:
                text += f.small(f"{f.pm}{_num(c.std)} ({c.n})")
            else:
                text += f.small(f" ({c.n})")
            row.append(text)
        avg = g.averages[m]
        if avg.value is None:
            row.append(f.dash + " " + f.small(f.esc(f"({_missing_text(avg.missing, len(g.tasks))})")))
        else:
            row.append(f.bold(_num(avg.value)) if i in best[len(g.tasks)] else _num(avg.value))
        if g.common_averages:
            v = g.common_averages[m]
            row.append(f.bold(_num(v)) if i in best[len(g.tasks) + 1] else _num(v))
        if m in g.ranks:
            row.append(str(g.ranks[m]))
        else:
            row.append(f.dash + (" " + f.small(f.esc(f"({DEFINITION_MARK})")) if m in g.unranked else ""))
        row.append(_p(g.p_next.get(m)) if m in g.p_next else f.dash)
        rows.append(row)
    return rows


def _delta_header(g: Group) -> list[str]:
    k = len(g.tasks)
    return ["Model", *[f"Δ {t}" for t in g.tasks], "Δ Avg", "W/T/L", "sig. W/L", f"p ({k} tasks)"]


def _per_model_rows(g: Group, f: _Plain, cell: Callable, tail: Callable | None = None) -> list[list[str]]:
    """One row per compared model: its name, `cell(delta)` for every task, then `tail(comparison)`."""
    rows = []
    for m in g.models:
        c = g.comparisons.get(m)
        if c is None:
            continue
        rows.append([f.esc(m), *(cell(c.deltas.get(t)) for t in g.tasks), *(tail(c) if tail else [])])
    return rows


def _delta_rows(g: Group, f: _Plain) -> list[list[str]]:
    def cell(d) -> str:
        if d is None:
            return f.dash
        if d.delta is None:
            return f.dash + " " + f.small(f.esc(f"({d.reason})"))
        text = _num(d.delta, signed=True)
        if d.p_holm is not None:
            p_text = f"p={_p(d.p_holm)}".replace("p=<", "p<") + f", n={d.n_pairs}"
            return (f.bold(text) if d.p_holm < ALPHA else text) + f.small(f" ({f.esc(p_text)})")
        why = d.excluded or d.reason
        pairs = f"n={d.n_pairs}, " if d.n_pairs else ""
        return text + f.small(f.esc(f" ({pairs}no p: {why})"))

    def tail(c) -> list[str]:
        avg = f.dash
        if c.avg_delta is not None:
            scope = "" if c.complete else f.small(f" ({len(c.tasks)}/{len(g.tasks)} tasks)")
            avg = _num(c.avg_delta, signed=True) + scope
        return [avg, f"{c.wins}/{c.ties}/{c.losses}",
                f"{c.sig_wins}/{c.sig_losses}" if c.sig_wins is not None else f.dash,
                _p(c.p) if c.p is not None else f.dash + " " + f.small(f.esc(f"({c.p_reason})"))]

    return _per_model_rows(g, f, cell, tail)


def _example_header(g: Group) -> list[str]:
    return ["Model", *[f"Δ {t} [95% CI] p" for t in g.tasks]]


def _example_rows(g: Group, f: _Plain) -> list[list[str]]:
    """Per task: the example-level delta, its bootstrap interval and p (or why there is none)."""
    def cell(d) -> str:
        ex = d.example if d else None
        if ex is None:
            return f.dash
        if ex.p is None:
            return f.dash + " " + f.small(f.esc(f"({ex.reason})"))
        text = f.esc(f"{_num(ex.delta, signed=True)} [{_num(ex.low, signed=True)}, {_num(ex.high, signed=True)}]")
        text = f.bold(text) if ex.p < ALPHA else text
        p_text = f" p={_p(ex.p)}".replace("p=<", "p<") + f" ({ex.seeds} seed(s) x {ex.examples} ex.)"
        return text + f.small(f.esc(p_text))

    return _per_model_rows(g, f, cell)


def _has_example_tests(g: Group) -> bool:
    """Only when some delta is between two runs (a published mean has no predictions to resample)."""
    return any(d.example is not None and not (g.cells[(m, t)].published or g.cells[(g.baseline, t)].published)
               for m, c in g.comparisons.items() for t, d in c.deltas.items())


def _example_title(g: Group) -> str:
    return (f"Δ vs baseline {g.baseline} over test examples (paired bootstrap, {g.example_resamples} resamples)")


def _footnotes(g: Group, board: Leaderboard) -> list[str]:
    notes = [STD_NOTE + "; bold: best in the column at the printed precision."]
    if g.has_published:
        notes.append(PUBLISHED_NOTE + ".")
    set_text = f"the tasks of suite '{g.suite}'" if g.suite else "all tasks of this table"
    notes.append(f"Avg: unweighted mean of the task means over {set_text} ({len(g.tasks)}); "
                 "a model missing any of them gets no Avg.")
    if g.common_averages:
        notes.append(f"Avg ({len(g.common_tasks)} common): over the tasks every model has: "
                     + ", ".join(g.common_tasks) + ".")
    incomplete = [m for m in g.models if g.averages[m].missing and len(g.averages[m].missing) > 3]
    for m in incomplete:
        notes.append(f"{m} misses: " + ", ".join(g.averages[m].missing) + ".")
    exact_text = (f"all 2^{len(g.tasks)} sign patterns" if len(g.tasks) <= 20
                  else f"{SIGN_FLIP_DRAWS} random sign patterns")
    notes.append(f"Rank by Avg; p vs next: {OVERALL_TEST} against the next-ranked model ({exact_text}).")
    if any(c.definition_diff for c in g.cells.values()):
        notes.append(DEFINITION_NOTE + ".")
    if any(c.code_flag for c in g.cells.values()):
        notes.append(CODE_NOTE + ".")
    if g.baseline:
        notes.append(f"Δ: model minus baseline '{g.baseline}', over the seeds both ran. Per-task p: {PER_TASK_TEST}; "
                     f"bold Δ: Holm p < {ALPHA}; 'no p' names why. Overall p: {OVERALL_TEST}, over the tasks with "
                     f"a comparable Δ. W/T/L: per-task wins/ties/losses (tie: |Δ| < {TIE_EPS}); sig. W/L: Holm p < {ALPHA}.")
        if any(c.published for c in g.cells.values()):
            notes.append("Where either side is a published mean, per-task tests are impossible (no per-seed "
                         "values): Δ is a difference of means; only the overall test over task means is reported.")
        if _has_example_tests(g):
            from biobench.significance import EXAMPLE_TEST

            notes.append(f"Over test examples: {EXAMPLE_TEST}; {g.example_resamples} resamples; bold: p < {ALPHA}. "
                         "It covers test-set sampling, not seed variance (the seed test does).")
    metrics = sorted({(t, ", ".join(ms)) for t, ms in g.metrics.items()}, key=lambda x: g.tasks.index(x[0]))
    notes.append("Metrics: " + "; ".join(f"{t} {ms}" for t, ms in metrics) + ".")
    return notes + g.notes


def _general_notes(board: Leaderboard) -> list[str]:
    return list(board.notes)


def _problems(board: Leaderboard) -> list[str]:
    return [str(p) for p in board.problems]


# ----------------------------------------------------------------------------------------------
# Markdown


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *map(line, rows)])


def to_markdown(board: Leaderboard) -> str:
    f = _Plain()
    out = []
    for g in board.groups:
        out += [f"## {_title(g, board)}", "", _md_table(_main_header(g), _main_rows(g, f)), ""]
        if g.comparisons:
            out += [f"Δ vs baseline **{g.baseline}**", "", _md_table(_delta_header(g), _delta_rows(g, f)), ""]
        if _has_example_tests(g):
            out += [_example_title(g), "", _md_table(_example_header(g), _example_rows(g, f)), ""]
        out += [f"- {n}" for n in _footnotes(g, board)] + [""]
    if not board.groups:
        out += ["No table: no usable records.", ""]
    out += [f"- {n}" for n in _general_notes(board)]
    if board.problems:
        out += ["", "### Problems (records not counted)", ""] + [f"- `{p}`" for p in _problems(board)]
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# CSV: the tidy table plus one "Avg" row per model and table


CSV_COLUMNS = ["protocol", "language", "model", "source", "task", "metric", "mean", "std_ddof1", "n",
               "delta", "n_pairs", "p", "p_holm", "p_reason", "ex_delta", "ex_low", "ex_high", "ex_p", "ex_resamples",
               "ex_reason", "rank", "mark", "note"]


def csv_rows(board: Leaderboard) -> list[dict[str, Any]]:
    rows = []
    for g in board.groups:
        for m in g.models:
            cmp_ = g.comparisons.get(m)
            for t in g.tasks:
                c = g.cells.get((m, t))
                if c is None:
                    continue
                d = cmp_.deltas.get(t) if cmp_ else None
                ex = d.example if d else None
                marks = (DEFINITION_MARK if c.definition_diff else "") + (CODE_MARK if c.code_flag else "")
                rows.append({
                    "protocol": g.protocol, "language": g.language, "model": m, "source": c.source, "task": t,
                    "metric": c.metric, "mean": c.mean, "std_ddof1": c.std, "n": c.n,
                    "delta": d.delta if d else None, "n_pairs": d.n_pairs if d else None, "p": d.p if d else None,
                    "p_holm": d.p_holm if d else None,
                    "p_reason": ((d.excluded or d.reason) if d and d.p is None else ""),
                    "ex_delta": ex.delta if ex else None, "ex_low": ex.low if ex else None,
                    "ex_high": ex.high if ex else None, "ex_p": ex.p if ex else None,
                    "ex_resamples": ex.resamples if ex and ex.p is not None else None,
                    "ex_reason": ex.reason if ex else "", "rank": None, "mark": marks,
                    "note": "; ".join(x for x in (("published mean" if c.published else ""), c.definition_diff) if x),
                })
            avg = g.averages[m]
            sources = {g.cells[(m, t)].source for t in g.tasks if (m, t) in g.cells}
            rows.append({
                "protocol": g.protocol, "language": g.language, "model": m, "source": "+".join(sorted(sources)),
                "task": "Avg", "metric": "", "mean": avg.value, "std_ddof1": None, "n": len(g.tasks) - len(avg.missing),
                "delta": cmp_.avg_delta if cmp_ else None, "n_pairs": None, "p": cmp_.p if cmp_ else None,
                "p_holm": None, "p_reason": cmp_.p_reason if cmp_ else "", "rank": g.ranks.get(m),
                "mark": DEFINITION_MARK if m in g.unranked else "",
                "note": "; ".join(x for x in (avg.reason or f"mean over {len(g.tasks)} tasks", g.unranked.get(m, "")) if x),
            })
    return rows


def to_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(board):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# LaTeX (booktabs)


def _tex_table(header: list[str], rows: list[list[str]], caption: str, notes: list[str], f: _Latex) -> str:
    spec = "l" + "c" * (len(header) - 1)
    lines = [
        r"\begin{table}[t]", r"\centering", r"\small", r"\resizebox{\linewidth}{!}{%",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(f.esc(h) for h in header) + r" \\", r"\midrule",
        *[" & ".join(r) + r" \\" for r in rows],
        r"\bottomrule", r"\end{tabular}}",
        rf"\caption{{{f.esc(caption)}}}",
        r"\par\smallskip\footnotesize " + " ".join(f.esc(n) for n in notes),
        r"\end{table}",
    ]
    return "\n".join(lines)


def to_latex(board: Leaderboard) -> str:
    f = _Latex()
    out = ["% biobench leaderboard. Needs \\usepackage{booktabs} and \\usepackage{graphicx}.", ""]
    for g in board.groups:
        out += [_tex_table(_main_header(g), _main_rows(g, f), _title(g, board), _footnotes(g, board), f), ""]
        if g.comparisons:
            out += [_tex_table(_delta_header(g), _delta_rows(g, f), f"{_title(g, board)}: Δ vs {g.baseline}",
                               [], f), ""]
        if _has_example_tests(g):
            out += [_tex_table(_example_header(g), _example_rows(g, f), f"{_title(g, board)}: {_example_title(g)}",
                               [], f), ""]
    for n in _general_notes(board):
        out.append("% " + n)
    for p in _problems(board):
        out.append("% problem: " + p.replace("\n", " "))
    return "\n".join(out).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------
# HTML: one self-contained page (inline CSS, plots as inline PNG)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1600px}
h1{font-size:22px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:12px 0;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{border-bottom:2px solid #444;background:#fafafa} td:first-child,th:first-child{text-align:left}
small{color:#666} ul.notes{font-size:12px;color:#444} .problems{color:#a33;font-size:12px}
img{max-width:100%;border:1px solid #eee;margin:8px 0} .wrap{overflow-x:auto}
"""


def _html_table(header: list[str], rows: list[list[str]], f: _Html) -> str:
    head = "".join(f"<th>{f.esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<div class='wrap'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _axes(n_models: int, columns: list[str], height: float):
    """A figure for grouped bars: one group per column, one bar per model."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(7.0, 0.22 * n_models * len(columns) + 2), height))
    cmap = matplotlib.colormaps["tab20" if n_models > 10 else "tab10"]
    return fig, fig.add_subplot(), np.arange(len(columns)), 0.8 / max(1, n_models), cmap


def _finish(fig, ax, x, columns: list[str], ylabel: str, title: str, n_models: int):
    ax.set_xticks(x, columns, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(3, n_models), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return fig


def _bars_figure(g: Group):
    """Per-task means, one bar per model, error bars = std over seeds; published means hatched."""
    import numpy as np

    fig, ax, x, width, cmap = _axes(len(g.models), g.tasks, 4.2)
    for i, m in enumerate(g.models):
        cells = [g.cells.get((m, t)) for t in g.tasks]
        means = [c.mean if c else np.nan for c in cells]
        errs = [c.std if c and c.std is not None else 0.0 for c in cells]
        published = all(c is None or c.published for c in cells)
        ax.bar(x + (i - (len(g.models) - 1) / 2) * width, means, width, yerr=errs, capsize=2,
               label=m + (f" {PUBLISHED_MARK}" if published else ""), color=cmap(i % cmap.N),
               hatch="//" if published else None, edgecolor="#555" if published else "white", linewidth=0.3,
               error_kw={"elinewidth": 0.8})
    title = (f"{LANG_NAMES.get(g.language, g.language)} · protocol '{g.protocol}': "
             "mean over seeds, error bars ± std (ddof=1); hatched: published means")
    return _finish(fig, ax, x, g.tasks, "score (%)", title, len(g.models))


def _delta_figure(g: Group):
    """Per-task delta vs the baseline per model (* Holm p < alpha); Avg only over the full task set."""
    import numpy as np

    models = [m for m in g.models if m in g.comparisons]
    cols = [*g.tasks, "Avg"]
    fig, ax, x, width, cmap = _axes(len(models), cols, 4.0)
    for i, m in enumerate(models):
        c = g.comparisons[m]
        vals = [c.deltas[t].delta if t in c.deltas and c.deltas[t].delta is not None else np.nan for t in g.tasks]
        vals.append(c.avg_delta if c.complete and c.avg_delta is not None else np.nan)
        pos = x + (i - (len(models) - 1) / 2) * width
        ax.bar(pos, vals, width, label=m, color=cmap(g.models.index(m) % cmap.N))
        for j, t in enumerate(g.tasks):
            d = c.deltas.get(t)
            if d is not None and d.p_holm is not None and d.p_holm < ALPHA:
                ax.annotate("*", (pos[j], vals[j]), ha="center", va="bottom" if vals[j] >= 0 else "top")
    ax.axhline(0, color="#333", linewidth=0.8)
    title = f"Δ vs baseline '{g.baseline}' (* Holm-corrected paired t-test p < {ALPHA})"
    return _finish(fig, ax, x, cols, f"Δ vs {g.baseline} (points)", title, len(models))


def to_html(board: Leaderboard) -> str:
    f = _Html()
    try:
        import matplotlib  # noqa: F401

        plots = True
    except ImportError:
        plots = False
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<title>biobench leaderboard</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>biobench leaderboard</h1>"]
    for g in board.groups:
        parts.append(f"<h2>{f.esc(_title(g, board))}</h2>")
        parts.append(_html_table(_main_header(g), _main_rows(g, f), f))
        if g.comparisons:
            parts.append(f"<h3>Δ vs baseline {f.esc(g.baseline)}</h3>")
            parts.append(_html_table(_delta_header(g), _delta_rows(g, f), f))
        if _has_example_tests(g):
            parts.append(f"<h3>{f.esc(_example_title(g))}</h3>")
            parts.append(_html_table(_example_header(g), _example_rows(g, f), f))
        parts.append("<ul class='notes'>" + "".join(f"<li>{f.esc(n)}</li>" for n in _footnotes(g, board)) + "</ul>")
        if plots:
            parts.append(f"<img alt='per-task scores, {f.esc(g.language)} {f.esc(g.protocol)}' "
                         f"src='{_png(_bars_figure(g))}'>")
            if g.comparisons:
                parts.append(f"<img alt='delta vs baseline' src='{_png(_delta_figure(g))}'>")
        else:
            parts.append("<p><small>plots need matplotlib: pip install 'biobench[plots]'</small></p>")
    if not board.groups:
        parts.append("<p>No table: no usable records.</p>")
    if board.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{f.esc(n)}</li>" for n in board.notes) + "</ul>")
    if board.problems:
        parts.append("<h2>Problems (records not counted)</h2><ul class='problems'>"
                     + "".join(f"<li><code>{f.esc(p)}</code></li>" for p in _problems(board)) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------------------------
# rich


def _rich_table(table_cls, title: str, header: list[str], rows: list[list[str]]):
    table = table_cls(title=title, title_justify="left", header_style="bold")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*r)
    return table


def rich_renderables(board: Leaderboard) -> list:
    from rich.table import Table
    from rich.text import Text

    f = _Rich()
    out: list = []
    for g in board.groups:
        out.append(_rich_table(Table, _title(g, board), _main_header(g), _main_rows(g, f)))
        if g.comparisons:
            out.append(_rich_table(Table, f"Δ vs baseline {g.baseline}", _delta_header(g), _delta_rows(g, f)))
        if _has_example_tests(g):
            out.append(_rich_table(Table, _example_title(g), _example_header(g), _example_rows(g, f)))
        out.append(Text("\n".join(f"• {n}" for n in _footnotes(g, board)), style="dim"))
    if not board.groups:
        out.append(Text("No table: no usable records."))
    if board.notes:
        out.append(Text("\n".join(f"• {n}" for n in board.notes)))
    return out


def to_rich_text(board: Leaderboard, width: int = 200) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    for r in rich_renderables(board):
        console.print(r)
    if board.problems:
        console.print("Problems (records not counted):")
        for p in _problems(board):
            console.print(f"  {p}", markup=False, highlight=False)
    return console.export_text()


def render_board(board: Leaderboard, fmt: str = "rich", *, width: int = 200) -> str:
    if fmt == "rich":
        return to_rich_text(board, width=width)
    if fmt == "md":
        return to_markdown(board)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "tex":
        return to_latex(board)
    if fmt == "html":
        return to_html(board)
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def render(records_or_dirs, baseline: str | None = None, fmt: str = "rich", *, suite: str | None = None,
           metric: str = "primary", width: int = 200, compare_anyway: bool = False, resamples: int = 1000) -> str:
    """Records (RunRecord objects) or folders/files of records -> the table as text in `fmt`.

    Loading problems are part of the output (a "problems" section), never an exception.
    """
    items = list(records_or_dirs) if not isinstance(records_or_dirs, (str, Path)) else [records_or_dirs]
    records = [x for x in items if isinstance(x, RunRecord)]
    paths = [x for x in items if not isinstance(x, RunRecord)]
    loaded, problems = load_records(paths) if paths else ([], [])
    board = build(records + loaded, baseline=baseline, suite=suite, metric=metric, problems=problems,
                  compare_anyway=compare_anyway, resamples=resamples)
    return render_board(board, fmt, width=width)
