"""`biobench run`: the sweep, models x tasks x seeds, one record per cell (biobench/sweep.py).

    biobench run --model M [--model M2 ...] (--suite S | --tasks T1,T2) (--seeds N | --seed-list 1,2,3)
                 --out DIR [--resume | --no-resume | --overwrite never|failed|always] [--shard i/n]
                 [--protocol paper|smoke|FILE] [--epochs N] [--lr X] [--batch-size N] [--max-length N]
                 [--max-steps N] [--fast] [--compile] [--data-dir DIR] [--device cpu|cuda] [--runs-per-gpu N]
                 [--trust-remote-code] [--baseline M] [--json]

Resuming is the default: a re-run skips every cell whose record is `ok` for the same model weights,
card, data and protocol, loads it into the summary and the leaderboard, and reruns missing, failed
and stale cells (`--overwrite failed`, the same as `--resume`). `--overwrite never` keeps any existing
record (failures are not retried); `--overwrite always` (= `--no-resume`) runs every cell again.
A cell that fails gets a `failed` record with its error and the sweep goes on.

`--seeds N` means seeds 0..N-1; `--seed-list` names them. `--shard i/n` (0-based) runs the cells whose
index in the sorted grid is i modulo n: e.g. `--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`,
every shard writing into the same --out. With CUDA: one worker per visible GPU (x --runs-per-gpu);
on CPU one worker. At the end: the leaderboard of --out and a one-line summary.

Exit codes: 0 every cell ok (run or skipped), 1 some cell failed or is still running elsewhere,
2 bad input (unknown task/suite/model folder, bad flag), reported before anything trains.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from biobench.commands.finetune import OVERRIDE_FLAGS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split("\n\n", 1)[1]
    p.add_argument("--model", action="append", required=True, metavar="M",
                   help="hub id (org/name), local folder or installed alias (minilm); repeat for several models")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", metavar="S", help="every task of this suite (see `biobench tasks --suite`)")
    which.add_argument("--tasks", action="append", metavar="T1,T2", help="comma-separated task names or card files")
    seeds = p.add_mutually_exclusive_group(required=True)
    seeds.add_argument("--seeds", type=int, metavar="N", help="seeds 0..N-1")
    seeds.add_argument("--seed-list", metavar="S1,S2", help="exactly these seeds, e.g. 1,2,3")
    p.add_argument("--out", required=True, metavar="DIR", help="records folder: DIR/<model>/<task>/seed-<S>.json")
    p.add_argument("--resume", dest="resume", action="store_true", default=True,
                   help="skip cells already recorded ok with the same identity (the default)")
    p.add_argument("--no-resume", dest="resume", action="store_false", help="same as --overwrite always")
    p.add_argument("--overwrite", choices=["never", "failed", "always"],
                   help="existing records: never rerun / rerun failed and stale ones (default) / rerun all")
    p.add_argument("--shard", metavar="i/n", help="run only shard i of n (0-based) of the sorted grid")
    p.add_argument("--protocol", default="paper", help="paper | smoke | a YAML file of hyper-parameters")
    for name, kind in OVERRIDE_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, help=f"override the protocol's {name}")
    p.add_argument("--fast", action="store_true",
                   help="speed options as in `biobench finetune --fast` (recorded in the protocol, never mixed)")
    p.add_argument("--compile", action="store_true",
                   help="as in `biobench finetune --compile` (recorded in the protocol, never mixed)")
    p.add_argument("--data-dir", help="local data mirror (default: $BIOBENCH_DATA_DIR, else the card's hub id)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    p.add_argument("--runs-per-gpu", type=int, default=1, metavar="N",
                   help="concurrent runs per GPU (small models leave a GPU idle; default 1)")
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)  # CPU worker processes (tests)
    p.add_argument("--trust-remote-code", action="store_true", help="allow the models' own Python code to run")
    p.add_argument("--baseline", metavar="M", help="leaderboard baseline (default: the first --model when several)")
    p.add_argument("--no-leaderboard", dest="leaderboard", action="store_false", help="skip the final table")
    p.add_argument("--json", action="store_true", help="one JSON document (summary + every cell) on stdout")


def _fail(msg: str) -> int:
    print("biobench run: " + " ".join(msg.split()), file=sys.stderr)  # one line, whatever the message
    return 2


def run(args: argparse.Namespace) -> int:
    from biobench import sweep
    from biobench.cards import get_card, load_registry, suite_tasks
    from biobench.models import check_model
    from biobench.protocols import resolve_protocol, speed_flags

    if args.overwrite and not args.resume and args.overwrite != "always":
        return _fail(f"--no-resume contradicts --overwrite {args.overwrite}")
    overwrite = args.overwrite or ("failed" if args.resume else "always")
    overrides = {n: getattr(args, n) for n in OVERRIDE_FLAGS if getattr(args, n) is not None}
    overrides.update(speed_flags(args.fast, args.compile))  # the same switches in finetune and run
    # Everything that can be checked before training is checked here, for every cell.
    try:
        registry = load_registry()
        specs = suite_tasks(args.suite, registry) if args.suite else [
            t.strip() for group in args.tasks for t in group.split(",") if t.strip()]
        if not specs:
            return _fail("no tasks given")
        cards = {}
        for spec in specs:
            card = get_card(spec, registry)
            resolve_protocol(args.protocol, card.language, card.kind, card.protocol, overrides)
            cards[card.name] = spec
        models = list(dict.fromkeys(args.model))
        for m in models:
            check_model(m)
        if any(get_card(spec, registry).kind == "token_ner" for spec in cards.values()):
            from biobench.kinds.words import check_models_for_word_split  # refused here, not as failed records

            check_models_for_word_split(models, trust_remote_code=args.trust_remote_code)
        seeds = sweep.parse_seeds(args.seeds, args.seed_list)
        shard = sweep.parse_shard(args.shard)
        devices = sweep.worker_devices(args.device, args.runs_per_gpu, args.workers)
    except (ValueError, OSError) as exc:  # CardError, ModelError, bad protocol or flag
        return _fail(str(exc))

    grid = sweep.plan_grid(models, cards, seeds)
    cells = sweep.shard_cells(grid, *shard)
    opts = sweep.SweepOptions(out=args.out, protocol=args.protocol, overrides=overrides, data_dir=args.data_dir,
                              overwrite=overwrite, trust_remote_code=args.trust_remote_code, task_specs=cards)
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    shard_txt = f", shard {shard[0]}/{shard[1]}: {len(cells)} of {len(grid)} cells" if shard[1] > 1 else ""
    err.print(f"biobench run: {len(models)} model(s) x {len(cards)} task(s) x {len(seeds)} seed(s) = "
              f"{len(grid)} cells{shard_txt} · protocol {args.protocol} · overwrite {overwrite} · out {args.out}")
    try:
        summary = sweep.run_sweep(cells, opts, devices=devices, progress=not args.json)
    except KeyboardInterrupt:
        err.print("biobench run: interrupted; finished cells are recorded, run the same command again to resume")
        return 130

    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    elif args.leaderboard and Path(args.out).is_dir():
        _print_leaderboard(args.out, args.baseline or (models[0] if len(models) > 1 else None))
    for r in summary.results:
        if r.outcome == "failed":
            err.print(f"[red]failed[/] {r.model} · {r.task} · seed {r.seed}: {r.error}  ({r.path})")
    err.print(f"biobench run: {summary.line()}")
    return 0 if summary.count("failed") == summary.count("busy") == 0 else 1


def _print_leaderboard(out: str, baseline: str | None) -> None:
    """The leaderboard of everything in --out (skipped cells' records included), as `biobench leaderboard`."""
    from rich.console import Console

    from biobench.leaderboard import build, load_records
    from biobench.leaderboard_render import rich_renderables

    records, problems = load_records([out])
    try:
        board = build(records, baseline=baseline, problems=problems)
    except ValueError:  # baseline has no usable record (e.g. all its cells failed)
        board = build(records, problems=problems)
    if not board.groups:
        print("biobench run: no ok records to tabulate yet", file=sys.stderr)
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 240))
    for item in rich_renderables(board):
        console.print(item)
