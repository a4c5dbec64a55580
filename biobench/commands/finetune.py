"""`biobench finetune`: one fine-tune-and-score run (model x task x seed) -> one record.

Exit codes: 0 ok (or resumed), 1 the run failed (its record says why), 2 bad input (unknown
task, bad flag, missing data or model), reported in one line before anything trains.
"""

from __future__ import annotations

import argparse
import json
import sys

# Flags that override one hyper-parameter of the resolved protocol (protocol field -> flag).
OVERRIDE_FLAGS = {"epochs": int, "lr": float, "batch_size": int, "max_length": int, "max_steps": int}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="hub id (org/name), local folder (safetensors) or installed alias (minilm)")
    p.add_argument("--task", required=True, help="task name (see `biobench tasks`) or a card .yaml file")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--protocol", default="paper", help="paper | smoke | a YAML file of hyper-parameters")
    for name, kind in OVERRIDE_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=f"override the protocol's {name}")
    p.add_argument("--fast", action="store_true",
                   help="speed options: length-grouped batches and, on CUDA, one graph per padded shape "
                        "(protocol fields length_grouping and cuda_graphs; recorded, never mixed with plain runs)")
    p.add_argument("--compile", action="store_true",
                   help="on CUDA, torch.compile each encoder layer (protocol field compile_layers): 1.2-1.8x per "
                        "epoch for ModernBERT-base, after 20-40 s of compilation in a process's first epoch")
    p.add_argument("--out", default="runs", help="records folder (default: runs/)")
    p.add_argument("--data-dir", help="local data mirror (default: $BIOBENCH_DATA_DIR, else the card's hub id)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code to run")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="train even if an ok record matches")
    p.add_argument("--json", action="store_true", help="print the record as one JSON document")


def run(args: argparse.Namespace) -> int:
    from biobench.finetune import run_cell
    from biobench.protocols import speed_flags
    from biobench.records import record_path

    overrides = {name: getattr(args, name) for name in OVERRIDE_FLAGS if getattr(args, name) is not None}
    overrides.update(speed_flags(getattr(args, "fast", False), getattr(args, "compile", False)))
    before = _stamp(record_path(args.out, args.model, _task_name(args.task), args.seed))
    try:
        if _kind(args.task) == "token_ner":  # a tokenizer the word-split rule refuses is a model error: no record
            from biobench.kinds.words import check_models_for_word_split

            check_models_for_word_split([args.model], trust_remote_code=args.trust_remote_code)
        record = run_cell(args.model, args.task, args.seed, out=args.out, protocol=args.protocol,
                          overrides=overrides, data_dir=args.data_dir, resume=args.resume, device=args.device,
                          trust_remote_code=args.trust_remote_code, progress=not args.json)
    except (ValueError, OSError) as exc:  # CardError, DataError, ModelError, bad protocol, missing files
        print("biobench finetune: " + " ".join(str(exc).split()), file=sys.stderr)  # one line
        return 2
    path = record_path(args.out, args.model, record.task, args.seed)
    resumed = before is not None and _stamp(path) == before  # run_cell returned the record already there
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        _summary(record, path, resumed)
    if record.status != "ok":
        if args.json:
            print(record.error, file=sys.stderr)
        return 1
    return 0


def _task_name(task: str) -> str:
    """The record folder's task name: a card file's stem is its name (cards.parse_card checks it)."""
    from pathlib import Path

    return Path(task).stem if task.endswith((".yaml", ".yml")) else task


def _kind(task: str) -> str:
    """The task's kind, from its card (a registered name or a card file)."""
    from biobench.cards import get_card, parse_card

    return (parse_card(task) if task.endswith((".yaml", ".yml")) else get_card(task)).kind


def _stamp(path) -> tuple[int, int] | None:
    """(inode, mtime) of a record file: a record written by this run replaces the file (atomic rename)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _summary(record, path, resumed: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    from biobench.records import model_slug

    console = Console()
    title = f"{record.task} · {model_slug(record.model)} · seed {record.seed} · protocol {record.protocol.get('name')}"
    if record.status != "ok":
        console.print(f"[bold red]failed[/] {title}\n{record.error}\nrecord: {path}")
        return
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("dev (best epoch)", justify="right")
    table.add_column("test", justify="right")
    for name in record.test:
        style = "bold" if name == record.metric else ""
        table.add_row(name, f"{record.dev.get(name, float('nan')):.2f}", f"{record.test[name]:.2f}", style=style)
    console.print(table)
    where = f"already recorded ({path}); --no-resume to run again" if resumed else f"record: {path}"
    console.print(f"primary [bold]{record.metric} = {record.primary:.2f}[/] · best epoch {record.best_epoch}/"
                  f"{record.epochs_run} · {record.duration_s:.0f} s on {record.device}\n{where}", highlight=False, soft_wrap=True)
