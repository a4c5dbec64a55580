"""The one entry point: `biobench <command> ...`.

Each command lives in `biobench/commands/<name>.py` with two functions, `add_arguments(parser)`
and `run(args) -> int`, and is imported only when used, so `biobench tasks` starts without torch.

Errors reach the user as one line (`biobench <command>: <what and where>`), from one handler here:
bad input (a card, a data file, a model, a flag: ValueError / OSError) exits 2, anything else 1. The
traceback is shown only with `--debug` (anywhere on the line) or BIOBENCH_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = {
    "tasks": "list the task registry",
    "data": "check a task's splits and labels, or fetch a public corpus from its pinned release",
    "finetune": "one fine-tune-and-score run: model x task x seed -> one record",
    "run": "the sweep: models x tasks x seeds, resumable",
    "leaderboard": "tables from records: mean +/- std, averages, deltas, significance",
    "pretrain": "continued pretraining: MLM twin or CLM detour, HF checkpoint out",
    "pretokenize": "tokenize and pack a pretraining corpus once, for every rank and both arms",
    "corpus": "a task-adaptive pretraining corpus: training-split text of tasks + raw text, no held-out text",
    "analyze": "analyses of checkpoints: `analyze cka A B --control C --text FILE` (layer-wise 1 - linear CKA)",
    "demo": "end-to-end run on bundled real samples, printing a leaderboard",
}


def _command_module(name: str):
    return importlib.import_module(f"biobench.commands.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biobench", description=__doc__.splitlines()[0])
    from biobench import __version__

    parser.add_argument("--version", action="version", version=f"biobench {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also BIOBENCH_DEBUG=1); accepted anywhere")
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


# Arguments that name a model: an installed alias (`--model minilm`) becomes its folder here, once, so
# every command, record and leaderboard sees the same identity as when the folder is given.
MODEL_ARGS = ("model", "init", "baseline", "tokenizer")


def _resolve_models(args: argparse.Namespace) -> None:
    from biobench.models import resolve_model

    for attr in MODEL_ARGS:
        value = getattr(args, attr, None)
        if isinstance(value, str):
            setattr(args, attr, resolve_model(value))
        elif isinstance(value, list):
            setattr(args, attr, [resolve_model(v) if isinstance(v, str) else v for v in value])


def debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("BIOBENCH_DEBUG", "").strip() not in ("", "0")


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a YAML or hub error spans several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != "--debug"]
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
    try:
        _resolve_models(args)
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"biobench {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        user_error = isinstance(exc, (ValueError, OSError))  # CardError, DataError, ModelError, missing files
        what = one_line(exc) if user_error else f"{type(exc).__name__}: {one_line(exc)} (--debug: the traceback)"
        print(f"biobench {args.command}: {what}", file=sys.stderr)
        return 2 if user_error else 1


if __name__ == "__main__":
    raise SystemExit(main())
