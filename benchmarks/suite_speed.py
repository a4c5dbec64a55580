"""Suite speed: how many fine-tuning runs one GPU does per hour, and whether the paper's English suite fits in one.

Part 1, `sweep` (several runs on one GPU). The same small grid (default: MiniLM-L6 x gad, ncbi_disease x
seeds 1..4 = 8 cells; 1 epoch (--sweep-epochs), batch 16, LR 5e-5, paper protocol, the `--fast` options
length_grouping and cuda_graphs, with --compile also compile_layers) goes through `biobench.sweep.run_sweep` twice, into two output folders: once with one
run at a time (runs_per_gpu 1: the sweep runs its cells in this process) and once with N runs at once
on the same GPU (`--runs-per-gpu N`, default 4: N worker processes, as `biobench run --runs-per-gpu N`).
Reported: wall seconds, runs per hour, the speed-up, peak GPU memory (nvidia-smi `memory.used` of that
GPU polled every 0.5 s: the workers are other processes, torch's counters here cannot see them) and the
test score of every cell in both sweeps with its difference. GPU kernels (and CPU thread counts) are not
bitwise deterministic, so the differences are reported, never assumed to be zero.

Part 2, `suite` (the paper's English suite within 1 GPU-hour?). ModernBERT-base (random init from
`ModernBertConfig()` defaults, built by `finetune_speed.build_modernbert`, no hub), one seed, TWO epochs
of `train_and_score` per `paper-en` task whose data is under --data-dir, paper protocol with the fast
options (and `compile_layers` with --compile). Epoch 1 carries the one-time costs (first steps, graph
captures, compilation), epoch 2 is the steady state; the record's history times each epoch's training
and dev scoring (prediction + scoring, done after every epoch to keep the best state). With the time of
`load_task` (a sweep loads the data again for every cell), the record's setup_s and test_s, and keep_s
(copying the best dev state to the host, counted at every epoch: an upper bound) it projects the paper
protocol for each task:

    GPU-s(task) = 5 seeds x [load + setup + once + E x (train/epoch + dev/epoch + keep) + test]

with E the epochs of `resolve_protocol("paper", ...)` (20 for NER, 10 for the others), train/epoch and
dev/epoch those of epoch 2, and `once` = (epoch 1 - epoch 2), the one-time cost. With --warm the second
--seeds seed runs right after the first in the same process, as a sweep worker runs a task's seeds (its
compiled layers are kept), and seeds 2-5 are projected from it instead: GPU-s = run(seed 1) + 4 x run(seed 2). With --max-train-samples
(or --limit) the epochs run on a seeded random subset (`finetune.subsample`) and the steady epoch is
scaled linearly by full size / measured size (per split); `once` is not scaled, though the full training
set has a few more bucket shapes to capture than the subset (each a fraction of a second).

Tasks without data here (cos, deid, phenotype, social_history: credentialed or private) are projected
from ABSENT_SIZES (documents before the card's split rule and mean sub-tokens per document; each entry
names its source, and a number we found nowhere is marked ASSUMPTION): their train / dev / test tokens are
documents x tokens x the card's split fractions, and each phase costs those tokens x the seconds per
token measured on the tasks of the same kind here (pooled: sum of seconds / sum of tokens; token_ner
from AnatEM, BC5CDR, JNLPBA, NCBI-disease; multilabel from HoC); load + setup and keep are the same-kind
means. Linear in tokens: long clinical notes (phenotype, 8192 tokens) fill the GPU better than short
sentences but pay more attention per token in ModernBERT's global layers; neither is modelled.

The total is compared with 60 GPU-minutes, and divided by the part-1 speed-up for runs packed N per GPU:
an extrapolation from a small MiniLM grid to ModernBERT-base, which fills more of the GPU per run.

    python benchmarks/suite_speed.py --data-dir DATA --minilm MINILM_DIR [--out DIR]

About 6 minutes on one H200 (estimate: part 1 about 2, part 2 about 3-4 at full epochs). Prints ONE
Markdown report and writes it, with every raw number, to --out (suite_speed.md, suite_speed.json; the
two sweeps' records in sweep-x1/ and sweep-xN/).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch

SWEEP_TASKS = ("gad", "ncbi_disease")
SUITE = "paper-en"
FLAGS = dict(epochs=1, batch_size=16, lr=5e-5)  # the paper's English settings, one epoch
SUITE_EPOCHS = 2  # part 2: epoch 1 = one-time costs + an epoch, epoch 2 = the steady state
FAST = dict(length_grouping=True, cuda_graphs=True)  # what `biobench finetune/run --fast` sets
PAPER_SEEDS = 5
BUDGET_MIN = 60.0

# The paper-en tasks whose data cannot be staged here (credentialed or private). Their sizes are in none
# of tasks/en/*.yaml, ../shared/DESIGN.md, ../shared/reference/paper-tables.md, ../shared/data/README.md
# or ../shared/data/en/README.md, so each entry names its source; ASSUMPTION marks a number we found
# published nowhere (edit it when the real size is known). docs: documents before the card's split rule;
# tokens: mean sub-tokens per document (after truncation at the card's max_length).
ABSENT_SIZES = {
    "phenotype": dict(docs=2102, tokens=1500, source=(
        "docs: 1,102 discharge summaries + 1,000 nursing progress notes (Moseley et al., LREC 2020, the "
        "corpus of PhysioNet phenotype-annotations-mimic); tokens/note: ASSUMPTION (discharge summaries run "
        "to thousands of tokens, nursing notes to a few hundred)")),
    "deid": dict(docs=2434, tokens=300, source=(
        "docs: 2,434 nursing notes (Neamatullah et al. 2008, PhysioNet deidentifiedmedicaltext 1.0; "
        "public description, not checked against the release); tokens/note: ASSUMPTION")),
    "cos": dict(docs=1000, tokens=400, source=(
        "ASSUMPTION, docs and tokens: no published size found (UW BioNLP events-COS-corpus, the release "
        "BioClinical-ModernBERT's README links)")),
    "social_history": dict(docs=500, tokens=150, source=(
        "ASSUMPTION, docs and tokens: no published size found (UW BioNLP SocialHistoryMTSamples, the "
        "release BioClinical-ModernBERT's README links)")),
}


def _sibling(name: str):
    """A sibling benchmark script as a module (benchmarks/ is not a package)."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module(name)


# ----------------------------------------------------------------------------------------------
# Part 1: the same grid at 1 and N runs per GPU


class GpuMemoryPoller:
    """Peak `memory.used` (MiB) of one GPU, all processes included, from nvidia-smi every `every` s.
    `peak` stays None where nvidia-smi is missing (CPU dry runs)."""

    def __init__(self, gpu: str | None, every: float = 0.5) -> None:
        self.gpu, self.every = gpu, every
        self.baseline = self.peak = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def read(self) -> int | None:
        if self.gpu is None or shutil.which("nvidia-smi") is None:
            return None
        try:
            out = subprocess.run(["nvidia-smi", "-i", self.gpu, "--query-gpu=memory.used",
                                  "--format=csv,noheader,nounits"], check=False, capture_output=True, text=True,
                                 timeout=10)
            return int(out.stdout.split()[0])
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            used = self.read()
            if used is not None:
                self.peak = max(self.peak or 0, used)

    def __enter__(self) -> GpuMemoryPoller:
        self.baseline = self.peak = self.read()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def sweep_devices(device: str, n: int) -> list[str]:
    """N workers on ONE device: the first visible GPU N times (1: the sweep's own process), or N CPU
    worker processes for a dry run (the sweep's hidden `--workers`)."""
    from biobench.sweep import worker_devices

    if device == "cpu":
        return worker_devices("cpu", 1, cpu_workers=n)
    return worker_devices("cuda", n)[:n]


def run_grid(model: str, tasks: list[str], seeds: list[int], n: int, args, overrides: dict, out: Path) -> dict:
    """One sweep of the grid with n runs at once; every cell is run (overwrite always)."""
    from biobench.sweep import SweepOptions, plan_grid, run_sweep

    devices = sweep_devices(args.device, n)
    opts = SweepOptions(out=str(out), protocol="paper", overrides=overrides, data_dir=args.data_dir,
                        overwrite="always")
    gpu = devices[0].split(":", 1)[1] if devices[0].startswith("cuda:") else None
    with GpuMemoryPoller(gpu) as mem:
        summary = run_sweep(plan_grid([model], tasks, seeds), opts, devices=devices, progress=False)
    ok = [r for r in summary.results if r.outcome == "done"]
    durations = [r.duration_s for r in ok]
    return {"runs_per_gpu": n, "devices": devices, "out": str(out), "cells": len(summary.results), "ok": len(ok),
            "wall_s": round(summary.wall_s, 2), "runs_per_hour": len(ok) / summary.wall_s * 3600,
            "mean_run_s": sum(durations) / len(durations) if durations else None,
            "gpu_mib_baseline": mem.baseline, "gpu_mib_peak": mem.peak,
            "scores": {f"{r.task}/{r.seed}": r.primary for r in summary.results},
            "failures": [f"{r.task} seed {r.seed}: {r.error}" for r in summary.results if r.outcome != "done"],
            "summary": summary.to_dict()}


def part_sweep(model: str, args, overrides: dict, out: Path) -> dict:
    """The grid at 1 run per GPU, then at N; speed-up and per-cell score differences."""
    tasks, seeds, n = args.sweep_tasks.split(","), args.seed_list, args.runs_per_gpu
    runs = []
    for count in (1, n):
        gc.collect()
        if args.device == "cuda":
            torch.cuda.empty_cache()  # the in-process sweep's cached blocks would count in the next baseline
        runs.append(run_grid(model, tasks, seeds, count, args, overrides, out / f"sweep-x{count}"))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "summary"}, default=str), flush=True)
    one, many = runs
    diffs = []
    for cell, a in one["scores"].items():
        b = many["scores"].get(cell)
        task, seed = cell.rsplit("/", 1)
        diffs.append({"task": task, "seed": int(seed), "x1": a, f"x{n}": b,
                      "delta": None if a is None or b is None else b - a})
    deltas = [abs(d["delta"]) for d in diffs if d["delta"] is not None]
    complete = all(r["ok"] == r["cells"] for r in runs)  # walls of sweeps with failed cells do not compare
    return {"model": model, "label": args.sweep_model, "tasks": tasks, "seeds": seeds, "runs_per_gpu": n,
            "runs": runs, "speed_up": one["wall_s"] / many["wall_s"] if complete else None,
            "diffs": diffs, "max_abs_delta": max(deltas) if deltas else None}


# ----------------------------------------------------------------------------------------------
# Part 2: one epoch per paper-en task, projected to the paper protocol


@contextlib.contextmanager
def counting_tokens():
    """Records carry windows and truncation counts but no token counts, and the absent tasks are scaled
    by tokens: inside this block every split that `train_and_score` encodes also notes its sub-tokens
    (`notes.encoding.<split>.tokens`, padding excluded)."""
    from biobench import finetune

    plain = finetune.get_kind

    def get_kind(name: str):
        base = plain(name)

        class Counted(base):
            def encode(self, rows):
                enc = super().encode(rows)
                enc.notes["tokens"] = sum(len(f["input_ids"]) for f in enc.features)
                return enc

        return Counted

    finetune.get_kind = get_kind
    try:
        yield
    finally:
        finetune.get_kind = plain


def paper_epochs(card) -> int:
    from biobench.protocols import resolve_protocol

    return resolve_protocol("paper", card.language, card.kind, card.protocol, {}).epochs


def measure_task(model: str, card, args, flags: dict, seed: int) -> dict:
    """One seed, two epochs: the record's timings, sizes and token counts; the steady epoch scaled to full splits."""
    from biobench.data import load_task
    from biobench.finetune import train_and_score
    from biobench.protocols import resolve_protocol

    t0 = time.time()
    task_data = load_task(card, args.data_dir)
    load_s = time.time() - t0
    protocol = resolve_protocol("paper", card.language, card.kind, card.protocol, dict(flags, epochs=SUITE_EPOCHS))
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with counting_tokens():
        rec = train_and_score(model, card, task_data, seed, protocol, device=args.device, progress=False)
    timing, enc = rec.notes["timing"], rec.notes["encoding"]
    first, steady = rec.history[0], rec.history[-1]
    run = {"train": rec.n_train, "validation": rec.n_dev, "test": rec.n_test}
    full = rec.notes.get("subset", {}).get("full_sizes", run)
    scale = {s: full[s] / run[s] for s in run}
    return {"task": card.name, "kind": card.kind, "here": True, "seed": seed, "score": rec.primary,
            "metric": card.metric, "n_run": run, "n_full": full, "scale": scale,
            "tokens": {s: enc[s]["tokens"] for s in enc}, "windows": {s: enc[s].get("windows") for s in enc},
            "load_s": load_s, "setup_s": timing["setup_s"], "test_s": timing["test_s"],
            "epoch_s": [(h["train_s"], h["dev_s"]) for h in rec.history],
            "train_s": steady["train_s"], "dev_s": steady["dev_s"],  # steady epoch, measured size
            "once_s": max(0.0, first["train_s"] - steady["train_s"]) + max(0.0, first["dev_s"] - steady["dev_s"]),
            "keep_s": timing["keep_s"] / len(rec.history),
            "train_epoch_s": steady["train_s"] * scale["train"], "dev_epoch_s": steady["dev_s"] * scale["validation"],
            "test_full_s": timing["test_s"] * scale["test"], "epochs": paper_epochs(card),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if args.device == "cuda" else None,
            "graphs": rec.notes.get("cuda_graphs"), "compiled": rec.notes.get("compile_layers"),
            "record": rec.to_dict()}


def extrapolate_task(card, measured: list[dict]) -> dict:
    """A task without data: ABSENT_SIZES' tokens x the seconds per token of measured tasks of its kind."""
    size = ABSENT_SIZES.get(card.name)
    if size is None:
        raise ValueError(f"no data here and no entry in ABSENT_SIZES for '{card.name}'")
    refs = [m for m in measured if m["kind"] == card.kind] or measured
    if not refs:
        raise ValueError("nothing measured to extrapolate from")
    fractions = (card.data.split or {}).get("fractions") or [0.8, 0.1, 0.1]
    docs = dict(zip(("train", "validation", "test"), (size["docs"] * f for f in fractions), strict=True))
    tokens = {s: n * size["tokens"] for s, n in docs.items()}

    def per_token(phase: str, split: str) -> float:
        return sum(m[phase] for m in refs) / sum(m["tokens"][split] for m in refs)

    def mean(key: str) -> float:
        return sum(m[key] for m in refs) / len(refs)

    row = {"task": card.name, "kind": card.kind, "here": False, "n_full": {s: round(n) for s, n in docs.items()},
            "tokens": tokens, "size": size, "refs": [m["task"] for m in refs],
            "load_s": mean("load_s"), "setup_s": mean("setup_s"), "keep_s": mean("keep_s"), "once_s": mean("once_s"),
            "train_epoch_s": tokens["train"] * per_token("train_s", "train"),
            "dev_epoch_s": tokens["validation"] * per_token("dev_s", "validation"),
            "test_full_s": tokens["test"] * per_token("test_s", "test"), "epochs": paper_epochs(card)}
    if all("warm" in m for m in refs):  # seeds 2-5: the same tokens at the warm rates, warm one-time costs
        warm = [m["warm"] for m in refs]
        row["warm"] = dict(row, **{key: sum(w[key] for w in warm) / len(warm)
                                   for key in ("load_s", "setup_s", "keep_s", "once_s")})
        for phase, split, key in (("train_s", "train", "train_epoch_s"), ("dev_s", "validation", "dev_epoch_s"),
                                  ("test_s", "test", "test_full_s")):
            row["warm"][key] = tokens[split] * sum(w[phase] for w in warm) / sum(w["tokens"][split] for w in warm)
    return row


def one_seed_s(row: dict) -> float:
    """GPU-seconds of one paper-protocol run: load + setup + once + E epochs + test."""
    per_epoch = row["train_epoch_s"] + row["dev_epoch_s"] + row["keep_s"]
    return row["load_s"] + row["setup_s"] + row["once_s"] + row["epochs"] * per_epoch + row["test_full_s"]


def project(row: dict) -> float:
    """GPU-seconds of the paper protocol for one task: 5 seeds of the measured run or, with --warm, the
    first seed as measured (cold) and the other 4 as the second seed measured in the same process (warm:
    compiled layers, cuDNN/cuBLAS handles and the allocator kept, as in a sweep worker)."""
    if "warm" not in row:
        return PAPER_SEEDS * one_seed_s(row)
    return one_seed_s(row) + (PAPER_SEEDS - 1) * one_seed_s(row["warm"])


def part_suite(model: str, args, flags: dict) -> dict:
    """Measure every paper-en task with data here, then extrapolate the others from them."""
    from biobench.cards import get_card, suite_tasks
    from biobench.data.load import local_available

    names = args.tasks.split(",") if args.tasks else suite_tasks(SUITE)
    cards = [get_card(n) for n in names]
    measured, absent, failures = [], [], []
    for card in cards:
        if not local_available(card, Path(args.data_dir)):
            absent.append(card)
            continue
        gc.collect()
        if args.device == "cuda":
            torch.cuda.empty_cache()
        t0 = time.time()
        try:
            row = measure_task(model, card, args, flags, args.seed_list[0])
        except Exception as exc:
            failures.append(f"{card.name}: {type(exc).__name__}: {exc}")
            print(traceback.format_exc()[-2000:], file=sys.stderr, flush=True)
            continue
        if args.warm:  # a second seed in the same process: what seeds 2-5 cost in a sweep worker
            try:
                row["warm"] = measure_task(model, card, args, flags, args.seed_list[1])
            except Exception as exc:
                failures.append(f"{card.name} (warm seed): {type(exc).__name__}: {exc}")
        row["wall_s"] = time.time() - t0
        for run in (row, row.get("warm")):
            if run and _sibling("finetune_speed").graphs_fell_back(run["graphs"], run["record"]["epochs_run"]):
                failures.append(f"{card.name}: cuda graphs fell back to eager steps: {run['graphs']}")
        measured.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("record", "graphs", "warm")}, default=str), flush=True)
    rows = list(measured)
    for card in absent:
        try:
            rows.append(extrapolate_task(card, measured))
        except ValueError as exc:
            failures.append(f"{card.name}: {exc}")
    for row in rows:
        row["gpu_s"] = project(row)
    order = {c.name: k for k, c in enumerate(cards)}
    rows.sort(key=lambda r: order[r["task"]])
    return {"model": "ModernBERT-base (random init)", "flags": flags, "rows": rows, "failures": failures,
            "total_gpu_s": sum(r["gpu_s"] for r in rows),
            "measured_gpu_s": sum(r["gpu_s"] for r in rows if r["here"])}


# ----------------------------------------------------------------------------------------------
# Report


def _num(x, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def report_sweep(res: dict) -> list[str]:
    n = res["runs_per_gpu"]
    grid = f"{res['label']} x {', '.join(res['tasks'])} x seeds {','.join(map(str, res['seeds']))}"
    lines = [f"## 1. Several runs on one GPU: {grid}", "",
             "| runs per GPU | cells ok | wall s | runs/hour | speed-up | mean s per run | GPU MiB peak (before) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["runs"]:
        speed = 1.0 if r["runs_per_gpu"] == 1 else res["speed_up"]
        lines.append(f"| {r['runs_per_gpu']} | {r['ok']}/{r['cells']} | {r['wall_s']:.1f} | {r['runs_per_hour']:.0f} | "
                     f"{_num(speed, 2)} | {_num(r['mean_run_s'])} | {_num(r['gpu_mib_peak'], 0)} "
                     f"({_num(r['gpu_mib_baseline'], 0)}) |")
    lines += ["", f"Test scores, {n} runs per GPU against 1 (same cells, same seeds): max |Δ| = "
              f"{_num(res['max_abs_delta'], 2)}"
              + (" (equal)" if res["max_abs_delta"] == 0 else " (GPU kernels are not bitwise deterministic)"), "",
              f"| task | seed | score x1 | score x{n} | Δ |", "|---|---:|---:|---:|---:|"]
    for d in res["diffs"]:
        delta = "n/a" if d["delta"] is None else f"{d['delta']:+.2f}"
        lines.append(f"| {d['task']} | {d['seed']} | {_num(d['x1'], 2)} | {_num(d['x' + str(n)], 2)} | {delta} |")
    return lines + [""]


def _how(row: dict) -> str:
    if not row["here"]:
        assumed = " (ASSUMPTION)" if "ASSUMPTION" in row["size"]["source"] else ""
        return (f"extrapolated by tokens from {', '.join(row['refs'])}: {row['size']['docs']:,} docs x "
                f"{row['size']['tokens']:,} tokens{assumed}, see below")
    scaled = [f"{s} x{row['scale'][s]:.2f}" for s in ("train", "validation", "test") if row["scale"][s] != 1]
    return "measured, full splits" if not scaled else "measured on subsets, scaled: " + ", ".join(scaled)


def report_suite(res: dict, speed_up: float | None, n: int) -> list[str]:
    total_min = res["total_gpu_s"] / 60
    lines = ["## 2. The paper's English suite on one GPU: ModernBERT-base (random init), 5 seeds", "",
             ("| task | kind | data here? | train samples | train s/epoch | dev s/epoch | paper epochs | "
              "GPU-s, 5 seeds | how |"),
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        a = "" if r["here"] else "≈"
        samples = f"{r['n_full']['train']:,}" if r["here"] else f"≈{r['n_full']['train']:,} docs"
        lines.append(f"| {r['task']} | {r['kind']} | {'yes' if r['here'] else 'no'} | {samples} | "
                     f"{a}{r['train_epoch_s']:,.1f} | {a}{r['dev_epoch_s']:,.1f} | {r['epochs']} | {a}{r['gpu_s']:,.0f} | "
                     f"{_how(r)} |")
    verdict = f"{'within' if total_min <= BUDGET_MIN else 'OVER'} {BUDGET_MIN:.0f} GPU-min"
    if res["failures"]:
        verdict += f"; INCOMPLETE: {len(res['failures'])} task failure(s), below"
    lines.append(f"| **total** | | | | | | | **{res['total_gpu_s']:,.0f} s = {total_min:,.1f} GPU-min** | **{verdict}** |")
    lines += ["", (f"- Tasks with data here only: {res['measured_gpu_s'] / 60:,.1f} GPU-min. Per task: 5 seeds x "
                   "(load + setup + once + epochs x (train + dev + keep-best) + test), one run after the other on "
                   "one GPU; train and dev per epoch from the steady epoch 2, `once` = epoch 1 - epoch 2 (warm-up, "
                   "graph captures, compilation).")]
    if any("warm" in r for r in res["rows"]):
        lines.append("- `--warm`: seeds 2-5 are projected from a second seed run in the same process (as a sweep "
                     "worker runs them: compiled layers kept), seed 1 from the first: " + ", ".join(
                         f"{r['task']} {one_seed_s(r):,.0f} s then {one_seed_s(r['warm']):,.0f} s"
                         for r in res["rows"] if "warm" in r) + ".")
    if speed_up:
        packed = total_min / speed_up
        lines.append(f"- Packed {n} runs per GPU: {packed:,.1f} GPU-min ({'within' if packed <= BUDGET_MIN else 'OVER'} "
                     f"{BUDGET_MIN:.0f}) = the total / the speed-up {speed_up:.2f} of part 1. EXTRAPOLATION: that "
                     "speed-up was measured on part 1's small grid, not on ModernBERT-base, which fills more of the GPU "
                     "per run, so its gain from packing may be smaller.")
    else:
        lines.append("- Packed runs: n/a (part 1 did not run or failed: no speed-up measured).")
    absent = [r for r in res["rows"] if not r["here"]]
    if absent:
        lines.append("- Sizes of the tasks without data here (`ABSENT_SIZES`; the card's split fractions give train / "
                     "dev / test):")
        lines += [f"  - {r['task']}: {r['size']['docs']:,} docs x {r['size']['tokens']:,} tokens. {r['size']['source']}"
                  for r in absent]
    return lines + [""]


def header(argv, args, started: float) -> list[str]:
    import transformers

    import biobench

    if args.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        device = (f"{props.name} ({props.total_memory / 2**30:.0f} GiB), {os.cpu_count()} CPU cores, "
                  f"CUDA {torch.version.cuda}, driver {_sibling('finetune_speed')._driver()}")
    else:
        device = f"CPU, {os.cpu_count()} cores: a DRY RUN of the script (no numbers worth keeping)"
    caps = [f"{flag} {value}" for flag, value in (("--limit", args.limit), ("--max-length", args.max_length),
                                                    ("--max-train-samples", args.max_train_samples)) if value]
    command = " ".join(sys.argv[1:] if argv is None else argv)
    return [f"# biobench suite speed ({time.strftime('%Y-%m-%d')})", "",
            f"- command: `python benchmarks/suite_speed.py {command}`",
            f"- device: {device}",
            (f"- versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
             f"{transformers.__version__}, biobench {biobench.__version__}"),
            ("- setting: paper protocol, batch 16, LR 5e-5, length_grouping + cuda_graphs (`--fast`)"
             + (" + compile_layers (`--compile`)" if args.compile else "") + ", bf16 autocast on CUDA; part 1: "
             f"{args.sweep_epochs} epoch(s) per cell; part 2: {SUITE_EPOCHS} epochs"
             + (f"; caps: {', '.join(caps)}" if caps else "")),
            f"- total wall time: {time.time() - started:.0f} s", ""]


# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="local mirror laid out like ../shared/data")
    p.add_argument("--minilm", required=True, help="MiniLM-L6 folder (safetensors, bf16 is fine)")
    p.add_argument("--out", default="benchmarks/results/latest-suite", help="where the report, raw numbers and records go")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: a dry run of the script")
    p.add_argument("--parts", default="sweep,suite", help="sweep (part 1), suite (part 2) or both")
    p.add_argument("--runs-per-gpu", type=int, default=4, help="part 1: runs at once in the packed sweep (CPU: workers)")
    p.add_argument("--seeds", default="1,2,3,4", help="part 1 grid seeds; part 2 runs the first one")
    p.add_argument("--sweep-tasks", default=",".join(SWEEP_TASKS), help="part 1 tasks")
    p.add_argument("--sweep-model", default="minilm", choices=["minilm", "modernbert"], help="part 1 model")
    p.add_argument("--tasks", help=f"part 2 tasks (default: suite {SUITE})")
    p.add_argument("--max-train-samples", type=int, help="part 2: measure each epoch on at most N training samples "
                   "(seeded subset) and scale linearly")
    p.add_argument("--compile", action="store_true", help="also compile_layers (biobench finetune --compile)")
    p.add_argument("--sweep-epochs", type=int, default=1, help="part 1: epochs per cell (default 1)")
    p.add_argument("--warm", action="store_true", help="part 2: also measure the second --seeds seed in the same "
                   "process and project seeds 2-5 from it (a sweep worker keeps compiled layers between cells)")
    p.add_argument("--limit", type=int, help="dry runs: every split of every run subsampled to N examples")
    p.add_argument("--max-length", type=int, help="dry runs: inputs cut to N tokens")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= {"sweep", "suite"}:
        p.error(f"--parts: sweep and/or suite, got {args.parts}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("suite_speed: needs a CUDA GPU (or --device cpu for a dry run)", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from biobench.sweep import parse_seeds

    args.seed_list = parse_seeds(seed_list=args.seeds)
    max_train = min([n for n in (args.max_train_samples, args.limit) if n], default=None)
    caps = {k: v for k, v in dict(max_train_examples=max_train, max_eval_examples=args.limit,
                                  max_length=args.max_length).items() if v}
    flags = dict(FLAGS, **FAST, **caps)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work = Path(tempfile.mkdtemp())
    try:
        paths = {"minilm": args.minilm}
        if "suite" in parts or args.sweep_model == "modernbert":
            paths["modernbert"] = _sibling("finetune_speed").build_modernbert(Path(args.minilm),
                                                                              work / "modernbert-base-random")
        if args.compile:
            flags["compile_layers"] = True
        sweep_flags = dict(flags, epochs=args.sweep_epochs)
        sweep = part_sweep(paths[args.sweep_model], args, sweep_flags, out) if "sweep" in parts else None
        suite = part_suite(paths["modernbert"], args, flags) if "suite" in parts else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    failures = [f for r in (sweep["runs"] if sweep else []) for f in r["failures"]] + (suite["failures"] if suite else [])
    text = header(argv, args, started)
    if sweep:
        text += report_sweep(sweep)
    if suite:
        text += report_suite(suite, sweep and sweep["speed_up"], args.runs_per_gpu)
    text += [f"- FAILURE: {f}" for f in failures]
    (out / "suite_speed.md").write_text("\n".join(text) + "\n")
    raw = {"argv": sys.argv[1:] if argv is None else argv, "flags": flags, "absent_sizes": ABSENT_SIZES,
           "sweep": sweep, "suite": suite, "failures": failures, "wall_s": time.time() - started}
    (out / "suite_speed.json").write_text(json.dumps(raw, indent=1, default=str))
    print("\n" + "\n".join(text), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
