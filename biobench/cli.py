"""The one entry point: `biobench <command> ...`.

Each command lives in `biobench/commands/<name>.py` with two functions, `add_arguments(parser)`
and `run(args) -> int`, and is imported only when used, so `biobench tasks` starts without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "tasks": "list the task registry",
    "data": "load tasks and check their splits and labels",
    "finetune": "one fine-tune-and-score run: model x task x seed -> one record",
    "run": "the sweep: models x tasks x seeds, resumable",
    "leaderboard": "tables from records: mean +/- std, averages, deltas, significance",
    "pretrain": "continued pretraining: MLM twin or CLM detour, HF checkpoint out",
    "pretokenize": "tokenize and pack a pretraining corpus once, for every rank and both arms",
    "demo": "end-to-end run on bundled real samples, printing a leaderboard",
}


def _command_module(name: str):
    return importlib.import_module(f"biobench.commands.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biobench", description=__doc__.splitlines()[0])
    from biobench import __version__

    parser.add_argument("--version", action="version", version=f"biobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:  # only import the module of the command being run
            try:
                _command_module(name).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != f"biobench.commands.{name}":
                    raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        module = _command_module(args.command)
    except ModuleNotFoundError as exc:
        if exc.name == f"biobench.commands.{args.command}":
            print(f"biobench {args.command}: not available in this version", file=sys.stderr)
            return 2
        raise
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
