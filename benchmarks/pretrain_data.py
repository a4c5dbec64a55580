"""The pretraining data path on CPU: tokens/s from text (tokenized on the fly) against a pre-tokenized pack.

Why it matters: every rank reads the whole stream and keeps its share, so with N GPUs one process must read
N x (tokens/s per GPU): 2.7M tokens/s for 8 GPUs at 340k. This times what one rank does per micro-batch
(read, tokenize or copy, pack, build the tensor, mask at 30%) for --seq-len 1024 and batches of 32.

    python benchmarks/pretrain_data.py --corpus CORPUS --tokenizer MINILM_DIR [--sequences 512]

Prints ONE table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def rate(stream, n_batches: int, tokenizer) -> float:
    from biobench.pretrain.objectives import mask_generator, mask_tokens

    start, tokens = time.perf_counter(), 0
    for _ in range(n_batches):
        index, ids = next(stream)
        mask_tokens(ids, 0.3, mask_generator(0, index), mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                    special_ids=tokenizer.all_special_ids)
        tokens += ids.numel()
    return tokens / (time.perf_counter() - start)


def main() -> None:
    from transformers import AutoTokenizer

    from biobench.cli import main as cli
    from biobench.pretrain.corpus import corpus_files, micro_batches, text_sequences
    from biobench.pretrain.pretokenized import open_pack

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--sequences", type=int, default=512)
    args = p.parse_args()
    seq_len, micro = 1024, 32
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    n_batches = args.sequences // micro
    text = micro_batches(text_sequences(corpus_files([args.corpus]), tokenizer, seq_len, seed=0, shuffle_buffer=10_000),
                         micro)
    rows = []
    rows.append(("text, tokenized on the fly", rate(text, n_batches, tokenizer)))
    with tempfile.TemporaryDirectory() as tmp:
        pack = Path(tmp) / "pack"
        start = time.perf_counter()
        cli(["pretokenize", "--init", args.tokenizer, "--corpus", args.corpus, "--seq-len", str(seq_len),
             "--sequences", str(args.sequences), "--out", str(pack)])
        rows.append(("writing the pack (once)", args.sequences * seq_len / (time.perf_counter() - start)))
        array, _ = open_pack(pack, tokenizer, seq_len, args.sequences)
        rows.append(("pre-tokenized pack", rate(micro_batches(iter(array), micro), n_batches, tokenizer)))
    print(f"CPU: {os.cpu_count()} cores; {args.sequences} sequences of {seq_len}, batches of {micro}, MLM masking at 30%\n")
    print("| data path | tokens/s (one process) |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:,.0f} |")


if __name__ == "__main__":
    main()
