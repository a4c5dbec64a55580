"""Pretraining speed: biobench's loop (plain and `--fast`) beside the plain Hugging Face Trainer MLM recipe,
same GPU, same call.

For ModernBERT-base (and -large with `--sizes base,large`), random init from the config's defaults (built
here, no hub; MiniLM's tokenizer, whose 30,522 ids fit ModernBERT's 50,368-row embedding, so the output layer
costs what the real one does), on packed PubMed abstracts at each `--seq-lens` (1024: batch 32; 8192: batch 4;
32,768 tokens a step either way), bf16:

- `trainer`: `Trainer` + `AutoModelForMaskedLM` (SDPA, dense sliding-window masks, full prediction head) +
  `DataCollatorForLanguageModeling(mlm_probability=0.3)` on the same packed sequences, its default optimizer
  (fused AdamW), LR 2e-4. MLM only: plain Hugging Face has no causal mode for an encoder.
- `plain`: `biobench pretrain` (`loop.train`) without speed options, both arms: `mlm` (phase 1 at 30% masking)
  and `detour` (phase 1 CLM), the same steps each.
- `fast`: the same with `--fast` (per-layer compile, flex attention for the local layers, fused AdamW).

Tokens/s is the steady rate: the steps after the first `--warmup-steps` (compilation, autotuning, allocator
warm-up), timed between two host syncs (biobench: its own log windows; Trainer: a callback that synchronizes at
two steps). Peak memory is `torch.cuda.max_memory_allocated` over the run. MFU counts 6 x (matmul parameters
of the encoder + head, the decoder at the predicted fraction of positions) + 12 x layers x hidden x attended
keys per token (global layers: the sequence, half of it when causal; local: 129, 65 when causal), against
989 TFLOP/s (dense bf16, H100/H200).

Checks that fail the benchmark (exit 1): before the runs, one batch through the plain and the fast model must
give the same loss and gradient norm to bf16 tolerance, for both objectives; in a fast run, dynamo must not
compile more graphs than `fast.expected_graphs` (one per distinct layer structure, plus the loss), nor hit its recompile limit (made an error
here) - so a silent fall back to eager cannot pass as a measurement.

    python benchmarks/pretrain_speed.py --corpus CORPUS --tokenizer MINILM_DIR [--out DIR]
        [--sizes base,large] [--seq-lens 1024,8192] [--variants trainer,plain,fast] [--steps 40]

Prints ONE table (Markdown) and writes it, with every measurement, to --out.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

SIZES = {  # ModernBERT's published base and large shapes (the rest: ModernBertConfig defaults)
    "base": dict(hidden_size=768, intermediate_size=1152, num_hidden_layers=22, num_attention_heads=12),
    "large": dict(hidden_size=1024, intermediate_size=2624, num_hidden_layers=28, num_attention_heads=16),
    "tiny": dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4),  # CPU dry runs
}
CUDA = torch.cuda.is_available()  # without a GPU: a dry run of the script itself (--sizes tiny), no numbers to keep
PEAK_TFLOPS = 989.0
LOG_EVERY = 5


def build_model(size: str, tokenizer_dir: Path, folder: Path) -> str:
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForMaskedLM

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    ModernBertForMaskedLM(ModernBertConfig(**SIZES[size])).save_pretrained(folder, safe_serialization=True)
    return str(folder)


def packed(corpus: str, tokenizer_dir: str, seq_len: int, n: int) -> list[list[int]]:
    """The first n sequences of biobench's stream (seed 0): what both runners train on."""
    from transformers import AutoTokenizer

    from biobench.pretrain.corpus import corpus_files, text_sequences

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    stream = text_sequences(corpus_files([corpus]), tokenizer, seq_len, seed=0, shuffle_buffer=10_000)
    return [next(stream) for _ in range(n)]


def flops_per_token(config, seq_len: int, objective: str, mask_rate: float) -> float:
    h, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    per_layer = 3 * h * h + h * h + 3 * h * config.intermediate_size  # Wqkv, Wo, gated MLP (Wi is 2 x inter)
    predicted = 1.0 if objective == "clm" else mask_rate
    matmul = layers * per_layer + predicted * (h * h + h * vocab)
    causal = 0.5 if objective == "clm" else 1.0
    n_global = sum(t == "full_attention" for t in config.layer_types)
    keys = n_global * seq_len * causal + (layers - n_global) * (2 * config.sliding_window + 1) * causal
    return 6 * matmul + 12 * h * keys


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


# ---- the runners ----------------------------------------------------------------------------------------------

def run_trainer(init: str, sequences: list[list[int]], micro: int, steps: int, warmup: int) -> dict:
    from transformers import (AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainerCallback, TrainingArguments)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in (warmup, steps):
                sync()
                marks[state.global_step] = time.perf_counter()

    marks: dict[int, float] = {}
    tokenizer = AutoTokenizer.from_pretrained(init)
    model = AutoModelForMaskedLM.from_pretrained(init, attn_implementation="sdpa")
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=micro, max_steps=steps, learning_rate=2e-4,
                                 bf16=CUDA, use_cpu=not CUDA, dataloader_num_workers=2, report_to="none", save_strategy="no",
                                 logging_strategy="no", disable_tqdm=True, seed=0)
        trainer = Trainer(model=model, args=args, data_collator=collator,
                          train_dataset=[{"input_ids": s} for s in sequences[: steps * micro]], callbacks=[Clock()])
        start = time.perf_counter()
        trainer.train()
    seq_len = len(sequences[0])
    return {"objective": "mlm", "tokens_per_s": (steps - warmup) * micro * seq_len / (marks[steps] - marks[warmup]),
            "first_steps_s": marks[warmup] - start, "optimizer": args.optim}


def run_biobench(init: str, corpus: str, objective: str, seq_len: int, micro: int, steps: int, warmup: int,
                 fast: bool) -> dict:
    batch_tokens = micro * seq_len
    from biobench.pretrain import fast as fast_path
    from biobench.pretrain.config import PretrainConfig
    from biobench.pretrain.loop import train

    from transformers import AutoConfig, AutoModelForMaskedLM

    with torch.device("meta"):
        expected = fast_path.expected_graphs(AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(init)))
    with tempfile.TemporaryDirectory() as out:
        cfg = PretrainConfig(init=init, corpus=[corpus], objective=objective, tokens=steps * batch_tokens, out=out,
                             seq_len=seq_len, micro_batch=micro, batch_tokens=batch_tokens, decay_fraction=0.0,
                             warmup_tokens=batch_tokens, precision="bf16" if CUDA else "fp32", log_every=LOG_EVERY, fast=fast)
        graphs_before = fast_path.compiled_graphs()
        start = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - start
        lines = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    steady = [r for r in lines if r["step"] > warmup]
    seconds = sum(LOG_EVERY * batch_tokens / r["tokens_per_s"] for r in steady)
    return {"objective": "clm" if objective == "detour" else "mlm",
            "tokens_per_s": len(steady) * LOG_EVERY * batch_tokens / seconds,
            "first_steps_s": sum(LOG_EVERY * batch_tokens / r["tokens_per_s"] for r in lines if r["step"] <= warmup),
            "wall_s": wall, "graphs": fast_path.compiled_graphs() - graphs_before, "expected_graphs": expected,
            "loss_first_last": (lines[0]["loss"], lines[-1]["loss"])}


# ---- the pre-check: fast == plain on one batch ------------------------------------------------------------------

def check_fast_equals_plain(init: str, sequences: list[list[int]], micro: int) -> list[dict]:
    """Loss and gradient norm of one bf16 batch, plain model vs fast model (compiled layers + flex attention)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from biobench.pretrain import fast
    from biobench.pretrain.objectives import clm_labels, lm_loss, mask_generator, mask_tokens, set_causal

    torch._dynamo.reset()  # the runs before must not count against the recompile limit made an error in main
    tokenizer = AutoTokenizer.from_pretrained(init)
    ids = torch.tensor(sequences[:micro])
    device = torch.device("cuda" if CUDA else "cpu")
    plain = AutoModelForMaskedLM.from_pretrained(init, attn_implementation="sdpa").to(device)
    quick = copy.deepcopy(plain)
    fast.enable(quick, flex=CUDA, compile_backend="inductor" if CUDA else "aot_eager")
    rows = []
    for objective in ("mlm", "clm"):
        causal = objective == "clm"
        if causal:
            inputs, labels = ids, clm_labels(ids)
        else:
            inputs, labels = mask_tokens(ids, 0.3, mask_generator(0, 0), mask_id=tokenizer.mask_token_id,
                                         vocab_size=len(tokenizer), special_ids=tokenizer.all_special_ids)
        result = {}
        for name, model in (("plain", plain), ("fast", quick)):
            model.zero_grad(set_to_none=True)
            set_causal(model, causal)
            model.sparse_prediction = not causal  # as the loop sets it
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=CUDA):
                masks = fast.attention_masks(model, ids.shape[1], causal, device)
                loss = lm_loss(model, inputs.to(device), labels.to(device), causal, masks)
            loss.backward()
            norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
            result[name] = (loss.item(), norm.item())
        (l0, g0), (l1, g1) = result["plain"], result["fast"]
        rows.append({"objective": objective, "loss_plain": l0, "loss_fast": l1, "grad_norm_plain": g0,
                     "grad_norm_fast": g1, "ok": abs(l1 - l0) <= 1e-2 * abs(l0) and abs(g1 - g0) <= 5e-2 * abs(g0)})
    del plain, quick
    return rows


# ---- main ---------------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="pretraining text (e.g. pretrain/en/pubmed_abstracts_1MB)")
    parser.add_argument("--tokenizer", required=True, type=Path, help="a folder with MiniLM's tokenizer files")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sizes", default="base")
    parser.add_argument("--seq-lens", default="1024,8192")
    parser.add_argument("--variants", default="trainer,plain,fast")
    parser.add_argument("--batch-tokens", type=int, default=32_768, help="tokens a step (default %(default)s)")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run (default %(default)s)")
    parser.add_argument("--sdpa-first", choices=["cudnn"], help="experiment: put this SDPA kernel first in "
                        "PyTorch's priority order for the whole process (the global layers' attention; cuDNN is last "
                        "by default, while attention_kernels.py times it at 0.6-0.7x flash on an H200)")
    parser.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the rate (default %(default)s)")
    args = parser.parse_args()
    if args.steps % LOG_EVERY or args.warmup_steps % LOG_EVERY or args.warmup_steps >= args.steps:
        parser.error(f"--steps and --warmup-steps: multiples of {LOG_EVERY}, warmup < steps")
    import torch._dynamo

    for flag in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):  # a silent eager fall back is an error
        if hasattr(torch._dynamo.config, flag):
            setattr(torch._dynamo.config, flag, True)

    if args.sdpa_first:  # before any compilation: dynamo picks the SDPA kernel when it traces
        from torch.nn.attention import SDPBackend

        first = {"cudnn": SDPBackend.CUDNN_ATTENTION}[args.sdpa_first]
        order = [int(first)] + [b for b in torch._C._get_sdp_priority_order() if b != int(first)]
        torch._C._set_sdp_priority_order(order)
    import transformers

    header = (f"{torch.cuda.get_device_name() if CUDA else 'CPU (dry run)'} · torch {torch.__version__} · transformers {transformers.__version__} · "
              f"Python {platform.python_version()} · {args.batch_tokens:,} tokens a step, bf16, steady rate over steps "
              f"{args.warmup_steps + 1}-{args.steps}" + (f", SDPA {args.sdpa_first} first" if args.sdpa_first else ""))
    print(header, flush=True)
    records, failures, work = [], [], Path(tempfile.mkdtemp(prefix="pretrain-speed-"))
    for size in args.sizes.split(","):
        init = build_model(size, args.tokenizer, work / size)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(init)
        for seq_len in map(int, args.seq_lens.split(",")):
            micro = args.batch_tokens // seq_len
            sequences = packed(args.corpus, init, seq_len, args.steps * micro)
            if "fast" in args.variants:
                for row in check_fast_equals_plain(init, sequences, micro):
                    print(f"check {size} {seq_len} {row}", flush=True)
                    records.append({"check": True, "size": size, "seq_len": seq_len, **row})
                    if not row["ok"]:
                        failures.append(f"{size} {seq_len} {row['objective']}: fast and plain differ")
            for variant in args.variants.split(","):
                arms = ["mlm"] if variant == "trainer" else ["mlm", "detour"]
                for arm in arms:
                    torch._dynamo.reset()
                    gc.collect()
                    if CUDA:
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                    label = f"{size} {seq_len} {variant} {arm}"
                    try:
                        if variant == "trainer":
                            result = run_trainer(init, sequences, micro, args.steps, args.warmup_steps)
                        else:
                            result = run_biobench(init, args.corpus, arm, seq_len, micro, args.steps,
                                                  args.warmup_steps, fast=variant == "fast")
                    except Exception:  # noqa: BLE001 - record and go on with the other runs
                        failures.append(f"{label}: {traceback.format_exc().splitlines()[-1]}")
                        print(traceback.format_exc(), file=sys.stderr)
                        continue
                    if variant == "fast" and result["graphs"] > result["expected_graphs"]:
                        failures.append(f"{label}: {result['graphs']} graphs compiled (expected <= "
                                        f"{result['expected_graphs']}: "
                                        "a recompile or a graph break)")
                    result.update(size=size, seq_len=seq_len, variant=variant, arm=arm,
                                  peak_gib=torch.cuda.max_memory_allocated() / 2**30 if CUDA else 0.0,
                                  mfu=result["tokens_per_s"] * flops_per_token(
                                      config, seq_len, result["objective"], 0.3) / (PEAK_TFLOPS * 1e12))
                    records.append(result)
                    print(f"{label}: {result['tokens_per_s']:,.0f} tokens/s, peak {result['peak_gib']:.1f} GiB", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    table = render(header, [r for r in records if not r.get("check")], [r for r in records if r.get("check")], failures)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pretrain_speed.md").write_text(table + "\n")
        (args.out / "pretrain_speed.json").write_text(json.dumps({"header": header, "argv": sys.argv, "records": records,
                                                                  "failures": failures}, indent=1) + "\n")
    return 1 if failures else 0


def render(header: str, runs: list[dict], checks: list[dict], failures: list[str]) -> str:
    trainer = {(r["size"], r["seq_len"]): r["tokens_per_s"] for r in runs if r["variant"] == "trainer"}
    lines = [header, "",
             "| size | seq | runner | phase 1 | tokens/s | × Trainer | peak GiB | MFU | first steps s | graphs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        base = trainer.get((r["size"], r["seq_len"]))
        ratio = f"{r['tokens_per_s'] / base:.2f}" if base else "-"
        name = {"trainer": "HF Trainer", "plain": "biobench", "fast": "biobench --fast"}[r["variant"]]
        lines.append(f"| {r['size']} | {r['seq_len']} | {name} | {r['objective'].upper()} | {r['tokens_per_s']:,.0f} | "
                     f"{ratio} | {r['peak_gib']:.1f} | {100 * r['mfu']:.0f}% | {r['first_steps_s']:.1f} | "
                     f"{r.get('graphs', '-')} |")
    fast = {(r["size"], r["seq_len"], r["objective"]): r["tokens_per_s"] for r in runs if r["variant"] == "fast"}
    for size, seq_len, objective in fast:
        if objective == "clm" and (size, seq_len, "mlm") in fast:
            mlm, clm = fast[(size, seq_len, "mlm")], fast[(size, seq_len, "clm")]
            lines.append(f"\n{size} {seq_len} --fast: CLM / MLM = {clm / mlm:.3f}")
    for c in checks:
        lines.append(f"\ncheck {c['size']} {c['seq_len']} {c['objective'].upper()}: loss plain {c['loss_plain']:.5f} "
                     f"fast {c['loss_fast']:.5f}; grad norm plain {c['grad_norm_plain']:.4f} fast "
                     f"{c['grad_norm_fast']:.4f} -> {'ok' if c['ok'] else 'FAILED'}")
    lines += [f"\nFAILED: {f}" for f in failures]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
