"""The padding NaN of local attention, before and after biobench's padding-safe mask (GPU check, not a test).

ModernBERT-base (random init from `ModernBertConfig()`, built by `finetune_speed.build_modernbert`), the
training batches `biobench finetune --fast` forms (length-grouped, padded to multiples of 16), one
forward and backward per batch at the initial weights, bf16 autocast, no optimizer step. For each task
and each attention set-up it counts batches with a non-finite loss, hidden state or gradient, and prints
the first bad batch's shape and its largest padding:

- `sdpa`: the model as transformers builds it;
- `padding-safe`: after `biobench.attention.use_padding_safe_sdpa` (what `train_and_score` does).

A batch whose shortest row is padded by more than ModernBERT's half window (64 tokens) has padding
queries that see no key in the local layers; on CUDA the memory-efficient SDPA backward then gives NaN
gradients (see biobench/attention.py). The check fails (exit 1) if `padding-safe` has any bad batch.

    python benchmarks/padding_nan.py --data-dir DATA --minilm MINILM_DIR [--tasks hoc,anatem] [--batches 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import finetune_speed  # a sibling script: benchmarks/ is sys.path[0] when this runs as one


def check(model: str, task: str, data_dir: str, safe: bool, n_batches: int) -> dict:
    from biobench import finetune as ft
    from biobench import models
    from biobench.attention import use_padding_safe_sdpa
    from biobench.cards import get_card
    from biobench.data import load_task

    card = get_card(task)
    kind, enc = finetune_speed.prepared(model, card, load_task(card, data_dir))
    collate = kind.collator(pad_to_multiple_of=ft.GRAPH_PAD)
    torch.manual_seed(0)
    net, _ = models.load_model(model, kind.head, **kind.model_kwargs())
    if safe:
        use_padding_safe_sdpa(net)
    net.cuda().train()
    features = enc["train"].features
    batches = ft.length_grouped_batches([len(f["input_ids"]) for f in features], 16, torch.Generator().manual_seed(1))
    bad, first = 0, None
    for j, idx in enumerate(batches[:n_batches]):
        batch = {k: v.cuda() for k, v in collate([features[i] for i in idx]).items()}
        labels = batch.pop("labels")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(**batch, output_hidden_states=True)
        loss = kind.loss(out.logits, labels)
        net.zero_grad(set_to_none=True)
        loss.backward()
        nan_grads = sum(1 for p in net.parameters() if p.grad is not None and not torch.isfinite(p.grad).all())
        nan_hidden = sum(1 for h in out.hidden_states if not torch.isfinite(h).all())
        if nan_grads or nan_hidden or not torch.isfinite(loss):
            bad += 1
            if first is None:
                pad = batch["attention_mask"].shape[1] - batch["attention_mask"].sum(1)
                first = {"batch": j, "shape": list(batch["input_ids"].shape), "max_padding": int(pad.max()),
                         "loss": float(loss), "nan_hidden_states": nan_hidden, "nan_weight_grads": nan_grads}
    return {"task": task, "attention": net.config._attn_implementation, "batches": min(n_batches, len(batches)),
            "bad": bad, "first_bad": first}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--minilm", required=True, help="MiniLM-L6 folder (its tokenizer serves the random ModernBERT)")
    p.add_argument("--tasks", default="hoc,anatem")
    p.add_argument("--batches", type=int, default=200, help="training batches per task (default %(default)s)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("padding_nan: needs a CUDA GPU (the NaN is a CUDA kernel's)", file=sys.stderr)
        return 2
    import transformers

    started = time.time()
    model = finetune_speed.build_modernbert(Path(args.minilm), Path(tempfile.mkdtemp()) / "modernbert-base-random")
    rows = []
    for task in args.tasks.split(","):
        for safe in (False, True):
            rows.append(check(model, task, args.data_dir, safe, args.batches))
            print(json.dumps(rows[-1]), flush=True)
    lines = [f"# Padding NaN check ({time.strftime('%Y-%m-%d')})", "",
             f"- command: `python benchmarks/padding_nan.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
             f"- device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}, transformers {transformers.__version__}",
             f"- wall time: {time.time() - started:.0f} s", "",
             "| task | attention | batches | bad batches | first bad: batch, shape, max padding, NaN weight grads |",
             "|---|---|---:|---:|---|"]
    for r in rows:
        f = r["first_bad"]
        first = "-" if f is None else f"{f['batch']}, {f['shape']}, {f['max_padding']}, {f['nan_weight_grads']}"
        lines.append(f"| {r['task']} | {r['attention']} | {r['batches']} | {r['bad']} | {first} |")
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "padding_nan.md").write_text(text + "\n")
    return 1 if any(r["bad"] for r in rows if r["attention"] != "sdpa") else 0


if __name__ == "__main__":
    sys.exit(main())
