"""`biobench data check TASK... [--suite S] [--data-dir DIR] [--json]`: load tasks and show what
was read (split sizes, label counts per split, source, data hash, loader notes), so a user sees a
wrong layout, a missing split or a flattening loss before spending GPU time on it.

`biobench data fetch TASK... [--suite S] [--to DIR]`: download each public corpus from the release its
card pins (`data.fetch`), check every file's sha256 and lay it out as the card expects; a corpus that
cannot be fetched (credentialed, not public, or not pinned) prints how to obtain it."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from biobench.cards import SPLITS, CardError, load_registry, suite_tasks


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["check", "fetch"],
                   help="check: load each task and report its splits; fetch: download the pinned public release")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="task names (or card files)")
    p.add_argument("--suite", help="also every task of this suite")
    p.add_argument("--data-dir", help="local data mirror (default: $BIOBENCH_DATA_DIR; without it: the hub)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--to", metavar="DIR", help="fetch: the data directory to fill (default: --data-dir, then "
                   "$BIOBENCH_DATA_DIR)")


def check_task(card, data_dir) -> dict[str, Any]:
    """Load one task and summarise it (the JSON form of `data check`)."""
    from biobench.data import load_task
    from biobench.data.schema import label_counts

    loaded = load_task(card, data_dir)
    report: dict[str, Any] = {
        "task": card.name, "kind": card.kind, "status": "ok", "source": loaded.source,
        "data_sha256": loaded.data_sha256, "release": card.data.release,
        "sizes": {s: len(loaded.splits[s]) for s in SPLITS}, "labels": loaded.labels,
    }
    if card.kind == "similarity":
        report["scores"] = {s: _score_stats(loaded.splits[s]["score"]) for s in SPLITS}
    else:
        report["label_counts"] = {s: label_counts(card.kind, loaded.splits[s]) for s in SPLITS}
    report["notes"] = loaded.notes
    return report


def _score_stats(scores: list[float]) -> dict[str, float]:
    return {"min": min(scores), "mean": round(statistics.fmean(scores), 4), "max": max(scores)}


def run(args: argparse.Namespace) -> int:
    from biobench.data import DataError, resolve_data_dir

    registry = load_registry()
    names = list(args.tasks) + (suite_tasks(args.suite, registry) if args.suite else [])
    if not names:
        print(f"biobench data {args.action}: name at least one TASK or a --suite", file=sys.stderr)
        return 2
    if args.action == "fetch":
        return fetch(names, registry, args.to or args.data_dir or os.environ.get("BIOBENCH_DATA_DIR"))
    data_dir = resolve_data_dir(args.data_dir)
    reports = []
    for name in dict.fromkeys(names):
        try:
            from biobench.cards import get_card

            card = get_card(name, registry)
            if args.json:
                reports.append(check_task(card, data_dir))
            else:
                from rich.console import Console

                with Console(stderr=True).status(f"loading {name}"):
                    reports.append(check_task(card, data_dir))
        except (DataError, CardError) as exc:
            reports.append({"task": name, "status": "error", "error": str(exc)})
    if args.json:
        print(json.dumps(reports, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(r["status"] == "ok" for r in reports) else 1


def _print_report(report: dict[str, Any]) -> None:
    import yaml
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if report["status"] != "ok":
        from rich.markup import escape

        one_line = " ".join(str(report["error"]).split())  # one line, never re-wrapped to the terminal
        console.print(f"[bold red]{escape(report['task'])}: error:[/bold red] {escape(one_line)}", highlight=False,
                      soft_wrap=True)
        return
    table = Table(title=f"{report['task']} ({report['kind']})", title_justify="left")
    table.add_column("")
    for split in SPLITS:
        table.add_column(split, justify="right")
    table.add_row("examples", *(f"{report['sizes'][s]:,}" for s in SPLITS))
    if "scores" in report:
        for stat in ("min", "mean", "max"):
            table.add_row(f"score {stat}", *(f"{report['scores'][s][stat]:.2f}" for s in SPLITS))
    else:
        for label in report["labels"]:
            table.add_row(label, *(f"{report['label_counts'][s].get(label, 0):,}" for s in SPLITS))
    console.print(table)
    console.print(f"source: {report['source']}\ndata_sha256: {report['data_sha256'][:12]}\n"
                  f"release: {report['release']}", highlight=False, soft_wrap=True)
    notes = {k: v for k, v in report["notes"].items() if k != "release"}
    console.print(yaml.safe_dump({"notes": notes}, sort_keys=False, allow_unicode=True, width=110,
                                 default_flow_style=None).rstrip(),
                  highlight=False, markup=False)
    console.print()


def fetch(names: list[str], registry, to: str | None) -> int:
    """Fetch each task's pinned release into `to`; 0 only if every named task's data is now in place."""
    from biobench.cards import get_card
    from biobench.data import DataError
    from biobench.data.fetch import fetch_task

    if not to:
        print("biobench data fetch: name the data directory to fill with --to DIR (or set BIOBENCH_DATA_DIR)",
              file=sys.stderr)
        return 2
    to_dir = Path(to).expanduser().resolve()
    missing = 0
    for name in dict.fromkeys(names):
        try:
            card = get_card(name, registry)
        except CardError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            missing += 1
            continue
        if card.data.fetch is None:
            print(f"{name}: not fetched (the card pins no public files); obtain it by hand: {card.data.obtain}",
                  flush=True)
            missing += 1
            continue
        try:
            got = fetch_task(card, to_dir)
        except DataError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr, flush=True)
            missing += 1
            continue
        print(f"{name}: {got.summary()}", flush=True)
    if missing < len(dict.fromkeys(names)):
        print(f"data directory: {to_dir} (use --data-dir {to_dir} or export BIOBENCH_DATA_DIR={to_dir})")
    return 0 if missing == 0 else 1
