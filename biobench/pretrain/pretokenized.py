"""Pre-tokenized corpora: the packed token stream written once to a memory-mapped `.npy`, read by every rank.

Why: on the fly, every process tokenizes the whole stream and keeps its share of the micro-batches, so with
8 GPUs at 340k tokens/s each a single rank would have to tokenize 2.7M tokens/s. A pack holds exactly the
sequences the on-the-fly stream gives for the same corpus, tokenizer, `--seq-len`, `--seed` and shuffle
buffer (it is written by that stream), so a run from the pack reads the same batches as a run from text, in
the same order, for both arms; reading it costs a memory copy.

    biobench pretokenize --init M --corpus corpus/ --seq-len 8192 --tokens 2.2e9 --out corpus-8192/
    biobench pretrain --init M --corpus corpus-8192/ ...        # both arms, any number of ranks

A pack is a folder with `sequences.npy` (uint32, one packed sequence a row) and `pretokenized.json` (how it
was made, written last: a folder without it is an interrupted write, not a pack).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from biobench.pretrain.config import PretrainError

META = "pretokenized.json"
ARRAY = "sequences.npy"


def is_pack(sources: list[str]) -> bool:
    return len(sources) == 1 and (Path(sources[0]) / META).is_file()


def tokenizer_fingerprint(tokenizer) -> str:
    """What must match between the pack's tokenizer and the run's: the vocabulary and the special tokens."""
    vocab = sorted(tokenizer.get_vocab().items())
    text = json.dumps([vocab, tokenizer.all_special_ids], ensure_ascii=False)
    return hashlib.sha1(text.encode()).hexdigest()


def write_pack(out: Path, sequences: Iterator[list[int]], n: int, seq_len: int, meta: dict) -> Path:
    """The first `n` sequences of `sequences`, streamed into `out/sequences.npy`; the metadata last."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / META).exists():
        raise PretrainError(f"--out {out}: already holds a pre-tokenized corpus (choose another folder)")
    tmp = out / (ARRAY + ".tmp")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint32, shape=(n, seq_len))
    for i in range(n):
        array[i] = next(sequences)
    array.flush()
    del array
    os.replace(tmp, out / ARRAY)
    (out / META).write_text(json.dumps({**meta, "sequences": n, "seq_len": seq_len, "tokens": n * seq_len,
                                        "dtype": "uint32"}, indent=2) + "\n")
    return out


def open_pack(folder: str | Path, tokenizer, seq_len: int, needed: int) -> tuple[np.ndarray, dict]:
    """The pack's rows (memory-mapped) and metadata, after checking it fits this run."""
    folder = Path(folder)
    meta = json.loads((folder / META).read_text())
    if meta["seq_len"] != seq_len:
        raise PretrainError(f"--corpus {folder}: packed at --seq-len {meta['seq_len']}, this run has --seq-len {seq_len}")
    if meta["tokenizer_sha1"] != tokenizer_fingerprint(tokenizer):
        raise PretrainError(f"--corpus {folder}: packed with the tokenizer of {meta['init']}, which differs from "
                            "--init's (vocabulary or special tokens)")
    rows = np.load(folder / ARRAY, mmap_mode="r")
    if rows.shape != (meta["sequences"], seq_len):
        raise PretrainError(f"--corpus {folder}: {ARRAY} has shape {rows.shape}, {META} says "
                            f"({meta['sequences']}, {seq_len})")
    if needed > len(rows):
        raise PretrainError(f"--corpus {folder}: holds {len(rows):,} sequences, this run needs {needed:,} "
                            f"(pretokenize with --sequences {needed} or more)")
    return rows, meta

