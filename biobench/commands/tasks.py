"""`biobench tasks`: list the registry (name, language, kind, metric, max length, data here?, hub id)."""

from __future__ import annotations

import argparse
import json

from biobench.cards import load_registry, suite_tasks


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", help="only tasks of this language (en, fr)")
    p.add_argument("--suite", help="only tasks of this suite")
    p.add_argument("--data-dir", help="local data mirror (default: $BIOBENCH_DATA_DIR)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def run(args: argparse.Namespace) -> int:
    from biobench.data import resolve_data_dir
    from biobench.data.load import local_available

    registry = load_registry()
    names = suite_tasks(args.suite, registry) if args.suite else sorted(registry)
    cards = [registry[n] for n in names if not args.lang or registry[n].language == args.lang]
    data_dir = resolve_data_dir(args.data_dir)
    rows = []
    for c in cards:
        rows.append({
            "task": c.name, "language": c.language, "kind": c.kind, "metric": c.metric,
            "max_length": c.max_length, "suites": list(c.suites), "version": c.version,
            "hub": c.data.hub.path if c.data.hub else None,
            "local_dir": c.data.local.dir if c.data.local else None,
            "data_here": local_available(c, data_dir),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    # Fits 80 columns and never cuts a name, kind or metric: one space between columns, and the hub
    # column holds the hub ids only where they fit whole (else yes / -, the ids being in --json).
    cells = [[r["task"], r["language"], r["kind"], r["metric"], str(r["max_length"]), "yes" if r["data_here"] else "no"]
             for r in rows]
    headers = ("task", "lang", "kind", "metric", "length", "data")  # data: its folder is in the mirror
    width = sum(max([len(h)] + [len(c[i]) for c in cells]) + 1 for i, h in enumerate(headers))
    console = Console()
    hub_ids = width + max([3] + [len(r["hub"] or "") for r in rows]) <= console.width
    table = Table(title=f"biobench tasks ({len(rows)})" + (f" - suite {args.suite}" if args.suite else ""),
                  box=None, padding=(0, 1, 0, 0), title_justify="left", header_style="bold underline")
    for col in headers + ("hub",):
        table.add_column(col, no_wrap=True)
    for r, c in zip(rows, cells):
        table.add_row(*c, (r["hub"] or "-") if hub_ids else ("yes" if r["hub"] else "-"))
    console.print(table)
    if not hub_ids:
        Console(stderr=True).print("[dim]hub ids: biobench tasks --json, or a wider terminal[/dim]")
    if data_dir is None:
        Console(stderr=True).print("[dim]'data' is checked against a local mirror: --data-dir or BIOBENCH_DATA_DIR[/dim]")
    return 0
