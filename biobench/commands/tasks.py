"""`biobench tasks`: list the registry (name, language, kind, metric, max length, data here?)."""

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

    table = Table(title=f"biobench tasks ({len(rows)})" + (f" - suite {args.suite}" if args.suite else ""))
    for col in ("task", "lang", "kind", "metric", "max len", "data here", "hub"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["task"], r["language"], r["kind"], r["metric"], str(r["max_length"]),
                      "yes" if r["data_here"] else "no", r["hub"] or "-")
    Console().print(table)
    if data_dir is None:
        Console(stderr=True).print("[dim]no --data-dir / BIOBENCH_DATA_DIR given: 'data here' is only checked against a local mirror[/dim]")
    return 0
