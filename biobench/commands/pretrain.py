"""`biobench pretrain`: continued pretraining of an encoder, the MLM twin or the CLM detour.

    biobench pretrain --init M --corpus PATH... --objective mlm|detour --tokens N --out DIR
                      [--seq-len 8192] [--micro-batch 8] [--batch-tokens N] [--lr 2e-4] [--warmup-tokens N]
                      [--decay-fraction 0.1] [--mask-rate 0.3] [--decay-mask-rate 0.15] [--freeze PHASE:A-B ...]
                      [--weight-decay 1e-5] [--optimizer decoupled_adamw|adamw] [--seed 0] [--precision auto|bf16|fp32]
                      [--checkpoint-every STEPS] [--keep-checkpoint] [--resume] [--max-steps N] [--log-every STEPS] [--fast]

Phases: `phase1` (detour: causal attention + next-token loss through the MLM head; mlm: masking at --mask-rate)
for --tokens tokens, then `decay` (bidirectional MLM at --decay-mask-rate) for --decay-fraction of them. The
optimizer state carries over; the LR schedule restarts: linear warmup over --warmup-tokens then constant in
phase 1, a 1-sqrt cooldown from --lr to 10% of it in the decay. Both arms read the same token stream for the
same --seed. The optimizer is AdamW with the paper's decoupled weight decay (Composer's DecoupledAdamW: each step
shrinks weights by weight_decay x lr_t / lr_peak; none on biases and norms).
Multi-GPU: `accelerate launch [--config_file runners/accelerate/ddp.yaml] -m biobench pretrain ...`.

--out DIR receives the final checkpoint (safetensors, bidirectional, loadable with AutoModelForMaskedLM and by
`biobench finetune`) with its tokenizer, pretrain_config.json (the exact configuration), log.jsonl (one line
per optimizer step), and checkpoint.pt (weights + optimizer, for --resume) only with --checkpoint-every or
--keep-checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from biobench.pretrain.config import PretrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split("\n\n", 1)[1]
    d = PretrainConfig("", [], "", 0)  # defaults, in one place
    p.add_argument("--init", required=True, metavar="M", help="checkpoint to continue: hub id or local folder (needs a masked-LM architecture and a tokenizer)")
    p.add_argument("--corpus", required=True, nargs="+", metavar="PATH", help=".txt (one document per line), .jsonl, .json, .parquet files, folders of them, or a hub dataset id")
    p.add_argument("--objective", required=True, choices=["mlm", "detour"], help="phase 1: mlm (the twin) or detour (CLM)")
    p.add_argument("--tokens", required=True, type=_count, metavar="N", help="phase-1 token budget (e.g. 200000, 2e9)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="packed sequence length (default %(default)s)")
    p.add_argument("--micro-batch", type=int, default=d.micro_batch, help="sequences per forward pass and process (default %(default)s)")
    p.add_argument("--batch-tokens", type=_count, metavar="N", help="optimizer batch in tokens, reached by gradient accumulation; a multiple of micro-batch x seq-len x processes (default: one micro-batch per process)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default %(default)s)")
    p.add_argument("--warmup-tokens", type=_count, metavar="N", help="phase-1 linear warmup (default: min(100M, 10%% of --tokens))")
    p.add_argument("--decay-fraction", type=float, default=d.decay_fraction, help="decay-phase tokens as a fraction of --tokens (default %(default)s)")
    p.add_argument("--mask-rate", type=float, default=d.mask_rate, help="phase-1 MLM masking rate, twin arm (default %(default)s)")
    p.add_argument("--decay-mask-rate", type=float, default=d.decay_mask_rate, help="decay-phase masking rate (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="weight decay per step at the peak LR, not on biases and norms (default %(default)s)")
    p.add_argument("--optimizer", choices=["decoupled_adamw", "adamw"], default=d.optimizer, help="decoupled_adamw: weights shrink by weight-decay x lr_t / lr_peak per step, as the paper's Composer DecoupledAdamW; adamw: by lr_t x weight-decay, as torch.optim.AdamW (default %(default)s)")
    p.add_argument("--grad-clip", type=float, default=d.grad_clip, help="gradient-norm clipping, 0 for none (default %(default)s)")
    p.add_argument("--freeze", action="append", default=[], metavar="PHASE:A-B", help="freeze encoder layers A..B during phase1 or decay (repeatable)")
    p.add_argument("--seed", type=int, default=d.seed, help="data order (of text; a pretokenized pack keeps the order it was packed in), masking, dropout, and the head drawn by --init-missing-head (default %(default)s)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=d.precision, help="bf16 autocast; auto = bf16 on a GPU that has it (default %(default)s)")
    p.add_argument("--text-field", default=d.text_field, help="text field of JSON/JSONL/Parquet/hub records (default %(default)s)")
    p.add_argument("--shuffle-buffer", type=int, default=d.shuffle_buffer, help="documents in the seeded shuffle buffer, 0 keeps file order (default %(default)s)")
    p.add_argument("--init-missing-head", action="store_true", help="accept a checkpoint without masked-LM head weights (e.g. a sentence-transformers BertModel); the head starts from random init")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="STEPS", help="write checkpoint.pt every STEPS optimizer steps and at the end (default: never)")
    p.add_argument("--keep-checkpoint", action="store_true", help="write checkpoint.pt (weights + optimizer state, about 3x the model) at the end, to continue the run later")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt; refuses if the configuration differs")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps in all, without a checkpoint, as if killed (smoke tests)")
    p.add_argument("--log-every", type=int, default=d.log_every, metavar="STEPS", help="log.jsonl line every STEPS steps; the host waits for the GPU only then (default %(default)s; 10 or more on a GPU)")
    p.add_argument("--fast", action="store_true", help="GPU speed paths: per-layer torch.compile, flex attention for ModernBERT's local layers, a compiled loss, fused AdamW (same losses to float tolerance)")


def _count(text: str) -> int:
    """Token counts as integers or in scientific notation: 200000, 2e9."""
    value = float(text)
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of tokens, got {text}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    from biobench.pretrain.config import PretrainError
    from biobench.pretrain.loop import train

    known = {f.name for f in dataclasses.fields(PretrainConfig)}  # not the CLI's own flags (--debug)
    fields = {k: v for k, v in vars(args).items() if k in known}
    cfg = PretrainConfig(**fields)
    try:
        return train(cfg)
    except PretrainError as exc:
        print(f"biobench pretrain: {exc}", file=sys.stderr)
        return 2
