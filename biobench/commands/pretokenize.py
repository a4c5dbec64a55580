"""`biobench pretokenize`: tokenize and pack a pretraining corpus once, for every rank and both arms.

    biobench pretokenize --init M --corpus PATH... --seq-len 8192 (--tokens N | --sequences N) --out DIR
                         [--seed 0] [--shuffle-buffer 10000] [--text-field text]

Writes the first N packed sequences of the stream `biobench pretrain` would read from the same corpus,
tokenizer, --seq-len, --seed and --shuffle-buffer (epochs included: the stream restarts reshuffled) to
DIR/sequences.npy, then DIR/pretokenized.json. Then `biobench pretrain --corpus DIR ...` reads the pack
instead of tokenizing: same batches, same order; it refuses a pack made for another --seq-len or tokenizer,
or one too short for the run (naming the number of sequences it needs).
"""

from __future__ import annotations

import argparse
import sys

from biobench.commands.pretrain import _count
from biobench.pretrain.config import PretrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split("\n\n", 1)[1]
    d = PretrainConfig("", [], "", 0)
    p.add_argument("--init", required=True, metavar="M", help="the checkpoint whose tokenizer packs the corpus")
    p.add_argument("--corpus", required=True, nargs="+", metavar="PATH", help="as for biobench pretrain")
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="packed sequence length (default %(default)s)")
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--tokens", type=_count, metavar="N", help="tokens to pack (rounded up to whole sequences)")
    size.add_argument("--sequences", type=int, metavar="N", help="sequences to pack")
    p.add_argument("--seed", type=int, default=d.seed, help="document shuffling, as for biobench pretrain (default %(default)s)")
    p.add_argument("--shuffle-buffer", type=int, default=d.shuffle_buffer, help="(default %(default)s)")
    p.add_argument("--text-field", default=d.text_field, help="(default %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from biobench.pretrain.config import PretrainError
    from biobench.pretrain.corpus import check_readable, corpus_files, text_sequences
    from biobench.pretrain.model import load_tokenizer
    from biobench.pretrain.pretokenized import tokenizer_fingerprint, write_pack

    try:
        if args.seq_len < 1 or (args.sequences is not None and args.sequences < 1) or args.tokens == 0:
            raise PretrainError("--seq-len, --tokens and --sequences: expected positive numbers")
        n = args.sequences or -(-args.tokens // args.seq_len)
        files = corpus_files(args.corpus)
        check_readable(files, args.text_field)
        tokenizer = load_tokenizer(args.init)
        stream = text_sequences(files, tokenizer, args.seq_len, seed=args.seed, shuffle_buffer=args.shuffle_buffer,
                                text_field=args.text_field)
        started = time.perf_counter()
        meta = {"init": args.init, "tokenizer_sha1": tokenizer_fingerprint(tokenizer), "corpus": args.corpus,
                "seed": args.seed, "shuffle_buffer": args.shuffle_buffer, "text_field": args.text_field}
        out = write_pack(Path(args.out), stream, n, args.seq_len, meta)
    except PretrainError as exc:
        print(f"biobench pretokenize: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"{out}: {n:,} sequences x {args.seq_len} = {n * args.seq_len:,} tokens in {seconds:.1f} s "
          f"({n * args.seq_len / seconds:,.0f} tokens/s)", file=sys.stderr)
    return 0
