"""The corpus: documents read lazily from local files or a hub dataset, tokenized and packed.

Sources (`--corpus`, any number, read in the order given; folders in sorted path order):
  *.txt            one document per non-empty line
  *.jsonl          one JSON object per line, text in `--text-field` (default `text`)
  *.json           one object (or a list of objects) per file, text in `--text-field` (e.g. E3C layer 3)
  *.parquet        the `--text-field` column, read in row batches
  a folder         every file above beneath it
  a hub dataset id `org/name` (its `train` split, streamed by `datasets`)

Documents pass through a seeded shuffle buffer, are tokenized with the checkpoint's tokenizer and its own
special-token template (`[CLS] doc [SEP]`, `<s> doc </s>`), a separator (EOS, else SEP) is appended if the template
ends without one, and the token stream is cut into `seq_len` sequences; a document longer than the rest of a
sequence continues in the next. Nothing holds more than the shuffle buffer in memory. At the end of the corpus the
stream starts over (next epoch, reshuffled). The stream depends on the corpus, the tokenizer, `seq_len` and the
seed only - never on the objective - so the MLM twin and the CLM detour read exactly the same sequences.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from biobench.pretrain.config import PretrainError
from biobench.pretrain.pretokenized import META as PACK_META

SUFFIXES = (".txt", ".jsonl", ".json", ".parquet")
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def corpus_files(sources: list[str]) -> list[Path | str]:
    """Expand folders, check every file exists and is not empty; hub ids stay strings."""
    out: list[Path | str] = []
    for src in sources:
        path = Path(src)
        if path.is_dir():
            if (path / PACK_META).is_file():
                raise PretrainError(f"--corpus {src}: a pre-tokenized corpus is read alone (pass it as the only --corpus)")
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not files:
                raise PretrainError(f"--corpus {src}: folder holds no {'/'.join(SUFFIXES)} files")
            out.extend(files)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise PretrainError(f"--corpus {src}: unsupported format (expected {', '.join(SUFFIXES)}, a folder, or a hub dataset id)")
            out.append(path)
        elif path.suffix not in SUFFIXES and _HUB_ID.match(src):
            out.append(src)
        else:
            raise PretrainError(f"--corpus {src}: no such file or folder")
    for f in out:
        if isinstance(f, Path) and f.stat().st_size == 0:
            raise PretrainError(f"--corpus {f}: file is empty (expected text documents)")
    return out


def read_documents(source: Path | str, text_field: str = "text") -> Iterator[str]:
    """The documents of one file (or hub dataset), lazily, skipping empty ones."""
    if isinstance(source, str):
        import datasets

        texts = (row[text_field] for row in datasets.load_dataset(source, split="train", streaming=True))
    elif source.suffix == ".txt":
        texts = (line.strip() for line in source.open(encoding="utf-8"))
    elif source.suffix == ".jsonl":
        texts = (json.loads(line).get(text_field) for line in source.open(encoding="utf-8") if line.strip())
    elif source.suffix == ".json":
        data = json.loads(source.read_text(encoding="utf-8"))
        texts = (d.get(text_field) for d in (data if isinstance(data, list) else [data]))
    else:  # .parquet
        import pyarrow.parquet as pq

        texts = (t for batch in pq.ParquetFile(source).iter_batches(columns=[text_field], batch_size=1024)
                 for t in batch.column(0).to_pylist())
    for text in texts:
        if isinstance(text, str) and text.strip():
            yield text


def check_readable(files: list[Path | str], text_field: str) -> None:
    """Stop before training when a local file yields no document."""
    for f in files:
        if isinstance(f, Path):
            try:
                next(read_documents(f, text_field))
            except StopIteration:
                raise PretrainError(f"--corpus {f}: no documents (expected non-empty text in field '{text_field}')") from None
            except (ValueError, KeyError) as exc:  # bad JSON, missing parquet column
                raise PretrainError(f"--corpus {f}: unreadable ({str(exc).splitlines()[0]})") from None


def _shuffled(docs: Iterator[str], buffer: int, rng: random.Random) -> Iterator[str]:
    if buffer <= 1:
        yield from docs
        return
    pool: list[str] = []
    for doc in docs:
        pool.append(doc)
        if len(pool) >= buffer:
            i = rng.randrange(len(pool))
            pool[i], pool[-1] = pool[-1], pool[i]
            yield pool.pop()
    rng.shuffle(pool)
    yield from pool


def token_stream(files: list[Path | str], tokenizer, *, seed: int, shuffle_buffer: int,
                 text_field: str = "text", tokenize_batch: int = 256) -> Iterator[int]:
    """Token ids of every document, separator-terminated, epoch after epoch (infinite)."""
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    epoch = 0
    while True:
        docs = (d for f in files for d in read_documents(f, text_field))
        docs = _shuffled(docs, shuffle_buffer, random.Random(f"{seed}:{epoch}"))
        batch: list[str] = []
        n_docs = 0
        for doc in docs:
            batch.append(doc)
            if len(batch) == tokenize_batch:
                yield from _encode(tokenizer, batch, sep)
                n_docs += len(batch)
                batch = []
        if batch:
            yield from _encode(tokenizer, batch, sep)
            n_docs += len(batch)
        if n_docs == 0:
            raise PretrainError(f"--corpus {', '.join(map(str, files))}: no documents")
        epoch += 1


def _encode(tokenizer, docs: list[str], sep: int) -> Iterator[int]:
    for ids in tokenizer(docs, add_special_tokens=True, verbose=False)["input_ids"]:
        yield from ids
        if ids[-1] != sep:
            yield sep


def text_sequences(files: list[Path | str], tokenizer, seq_len: int, *, seed: int, shuffle_buffer: int,
                   text_field: str = "text") -> Iterator[list[int]]:
    """The packed sequences of a text corpus: what `biobench pretrain` trains on and `biobench pretokenize`
    writes (one function, so that a pack holds exactly the stream a run from text reads)."""
    return packed_sequences(token_stream(files, tokenizer, seed=seed, shuffle_buffer=shuffle_buffer,
                                         text_field=text_field), seq_len)


def packed_sequences(tokens: Iterator[int], seq_len: int) -> Iterator[list[int]]:
    buf: list[int] = []
    for t in tokens:
        buf.append(t)
        if len(buf) == seq_len:
            yield buf
            buf = []


def micro_batches(sequences: Iterator[list[int]], micro_batch: int, *, start: int = 0, rank: int = 0,
                  world: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
    """(global index, [micro_batch, seq_len] ids) for this rank: global micro-batches start, start+1, ...
    are dealt round-robin to the ranks, so the global batch is the same for any number of processes."""
    index = 0
    while True:
        rows = [next(sequences) for _ in range(micro_batch)]
        if index >= start and index % world == rank:
            yield index, torch.from_numpy(np.asarray(rows, dtype=np.int64))  # lists (text) or uint32 rows (a pack)
        index += 1


class Prefetch:
    """Runs an iterator in a background thread, `depth` items ahead, in the same order (so determinism holds).
    Tokenization releases the GIL, so the next batches are read while the GPU works on this one.
    An error in the thread is raised in the consumer; `close()` (or leaving the `with` block) stops the thread."""

    _DONE = object()

    def __init__(self, iterator: Iterator, depth: int = 4):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(iterator,), daemon=True, name="biobench-prefetch")
        self._thread.start()

    def _fill(self, iterator: Iterator) -> None:
        import queue

        try:
            for item in iterator:
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._queue.put(self._DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._queue.put(exc)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._DONE:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
