"""`biobench leaderboard DIR…`: tables from records (mean ± std, averages, ranks, deltas, significance).

Problems met while loading (unreadable JSON, duplicates, mixed versions or protocols inside a cell,
failed runs) are printed on stderr, one line per file, and the rest of the table still builds.
Exit 0 when a table was built, 1 when no usable record was found, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("rich", "md", "csv", "tex", "html")
_BY_SUFFIX = {".md": "md", ".markdown": "md", ".csv": "csv", ".tex": "tex", ".html": "html", ".htm": "html",
              ".txt": "rich"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", metavar="DIR", help="folders (or files) of records, e.g. results/published runs/")
    p.add_argument("--baseline", metavar="M", help="model to compare every other model against (deltas, p-values)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from -o's suffix, else rich)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the table here instead of stdout")
    p.add_argument("--suite", metavar="S", help="only the tasks of this suite; averages need all of them")
    p.add_argument("--metric", choices=("primary", "dev"), default="primary",
                   help="test score of the primary metric (default) or its dev score")
    p.add_argument("--compare-anyway", action="store_true",
                   help="rank and test published cells of another task definition (marked ‡) against runs all the same")
    p.add_argument("--resamples", type=int, default=1000, metavar="B",
                   help="paired bootstrap resamples over test examples per task delta (with --baseline; 0: off)")


def run(args: argparse.Namespace) -> int:
    from biobench.leaderboard import build, load_records
    from biobench.leaderboard_render import render_board, rich_renderables

    fmt = args.format or (_BY_SUFFIX.get(Path(args.output).suffix.lower(), "rich") if args.output else "rich")
    records, problems = load_records(args.dirs)
    try:
        board = build(records, baseline=args.baseline, suite=args.suite, metric=args.metric, problems=problems,
                      compare_anyway=args.compare_anyway, resamples=max(0, args.resamples))
    except ValueError as exc:  # unknown baseline or suite: a usage error, said plainly
        print(f"biobench leaderboard: {exc}", file=sys.stderr)
        return 2
    for problem in board.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not board.groups:
        print("biobench leaderboard: no usable records in " + ", ".join(args.dirs), file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_text(render_board(board, fmt), encoding="utf-8")
        print(f"wrote {args.output} ({fmt})", file=sys.stderr)
    elif fmt == "rich":
        from rich.console import Console

        console = Console()
        if not console.is_terminal:  # piped: never squeeze the table to a default 80 columns
            console = Console(width=max(console.width, 240))
        elif console.width < 160:
            print("note: the table is wide; widen the terminal or use --format md / -o FILE.html",
                  file=sys.stderr)
        for item in rich_renderables(board):
            console.print(item)
    else:
        sys.stdout.write(render_board(board, fmt))
    return 0
