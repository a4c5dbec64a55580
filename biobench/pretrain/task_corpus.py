"""A task-adaptive pretraining corpus (Gururangan et al. 2020) that holds no held-out text.

`biobench corpus` writes the unlabeled text of the chosen tasks' training splits, plus raw text, one
document per line, so that `biobench pretrain --corpus DIR` reads it directly. What makes it safe to
fine-tune on the same tasks afterwards is the guard: no document may overlap the text of the splits that
are *not* written (for `--split train`: every task's validation and test text).

Text units, per task kind (each non-empty field of a row is one unit, hence one document):
  token_ner       the words, joined by spaces (one sentence / passage per row)
  classification  `text`, and `text_pair` when present (a relation sentence keeps its entity masks)
  multilabel      `text`
  similarity      both sentences
  multiple_choice the question and each choice

Overlap rule (held-out unit h, candidate document d), in canonical form: lower-cased word tokens (`\\w+`),
so `IL-2` and `IL - 2` (a tokenized NER sentence) match. d is dropped when
  - d equals h (any length), or
  - d and h share a run of NGRAM (13) tokens: catches a held-out sentence inside a raw abstract, a training
    sentence inside a held-out abstract, and the same sentence with other entity masks (GAD, ChemProt), or
  - h has MIN_CONTAINED..NGRAM-1 (8-12) tokens and d contains it whole.
Held-out units under MIN_CONTAINED tokens ("Results .", "Methods") count only when equal: contained, they
would drop most abstracts for a section heading. Whatever the source, an overlapping document is dropped
whole (a raw abstract with one test sentence goes entirely) and counted per source.

Documents are deduplicated exactly after whitespace normalisation; the first occurrence is kept, in the
order: tasks as given, then raw sources as given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NGRAM = 13
MIN_CONTAINED = 8
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Whitespace normalisation: what dedup compares and what is written (one line per document)."""
    return " ".join(text.split())


def canonical(text: str) -> tuple[str, ...]:
    """Lower-cased word tokens: the form the overlap rule compares, blind to tokenization and punctuation."""
    return tuple(_WORD.findall(text.lower()))


def row_texts(kind: str, row: dict[str, Any]) -> Iterator[str]:
    """The unlabeled text units of one schema row (see the module doc)."""
    if kind == "token_ner":
        fields: Iterable[Any] = [" ".join(row["tokens"])]
    elif kind in ("classification", "similarity"):
        fields = [row.get("text"), row.get("text_pair")]
    elif kind == "multiple_choice":
        fields = [row.get("text"), *row.get("choices", [])]
    else:  # multilabel
        fields = [row.get("text")]
    for text in fields:
        if isinstance(text, str) and text.strip():
            yield text


class HeldOut:
    """An index of held-out text units answering `overlaps(document)` by the module's rule."""

    def __init__(self, ngram: int = NGRAM, min_contained: int = MIN_CONTAINED):
        if not 1 <= min_contained <= ngram:
            raise ValueError(f"expected 1 <= min_contained ({min_contained}) <= ngram ({ngram})")
        self.ngram, self.min_contained = ngram, min_contained
        self._whole: set[tuple[str, ...]] = set()  # every unit, for equality
        self._grams: set[tuple[str, ...]] = set()  # every NGRAM-run of the long units
        self._short: set[tuple[str, ...]] = set()  # units of min_contained..ngram-1 tokens, for containment
        self._short_lengths: set[int] = set()
        self.units = 0

    def add(self, text: str) -> None:
        tokens = canonical(text)
        if not tokens:
            return
        self.units += 1
        self._whole.add(tokens)
        n = self.ngram
        if len(tokens) >= n:
            self._grams.update(tokens[i:i + n] for i in range(len(tokens) - n + 1))
        elif len(tokens) >= self.min_contained:
            self._short.add(tokens)
            self._short_lengths.add(len(tokens))

    def overlaps(self, text: str) -> bool:
        tokens = canonical(text)
        if tokens in self._whole:
            return True
        for i in range(len(tokens)):
            if tokens[i:i + self.ngram] in self._grams:  # a slice shorter than ngram is never in the set
                return True
            for k in self._short_lengths:
                if i + k <= len(tokens) and tokens[i:i + k] in self._short:
                    return True
        return False


@dataclass
class SourceCount:
    """What one source gave and what became of it."""

    source: str  # "task:<name>" or the raw path / hub id
    kind: str  # "task" or "raw"
    origin: str  # where it was read: the task's data source, or the raw file
    documents_read: int = 0
    duplicates: int = 0  # equal (after whitespace normalisation) to a document already written or dropped
    dropped_overlap: int = 0  # overlapping held-out text (module rule)
    documents: int = 0  # written
    whitespace_tokens: int = 0  # of the written documents
    tokenizer_tokens: int | None = None  # with the template pretrain adds ([CLS] doc [SEP])
    data_sha256: str | None = None  # a task's data hash, as in its run records
    dropped_examples: list[str] = field(default_factory=list)  # the first few dropped documents, for a reader

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CorpusWriter:
    """Dedup + guard + write, one source after another, counting as it goes."""

    def __init__(self, path: Path, held_out: HeldOut, tokenizer=None, keep_examples: int = 3):
        self.path, self.held_out, self.tokenizer, self.keep_examples = path, held_out, tokenizer, keep_examples
        self._seen: set[str] = set()
        self._fh = path.open("w", encoding="utf-8")
        self.counts: list[SourceCount] = []

    def add_source(self, count: SourceCount, documents: Iterable[str]) -> SourceCount:
        if self.tokenizer is not None:
            count.tokenizer_tokens = 0
        batch: list[str] = []
        for raw in documents:
            doc = normalise(raw)
            if not doc:
                continue
            count.documents_read += 1
            if doc in self._seen:
                count.duplicates += 1
                continue
            self._seen.add(doc)
            if self.held_out.overlaps(doc):
                count.dropped_overlap += 1
                if len(count.dropped_examples) < self.keep_examples:
                    count.dropped_examples.append(doc[:200])
                continue
            self._fh.write(doc + "\n")
            count.documents += 1
            count.whitespace_tokens += len(doc.split())
            if self.tokenizer is not None:
                batch.append(doc)
                if len(batch) == 256:
                    count.tokenizer_tokens += self._token_count(batch)
                    batch = []
        if batch:
            count.tokenizer_tokens += self._token_count(batch)
        self.counts.append(count)
        return count

    def _token_count(self, docs: list[str]) -> int:
        """Tokens as `biobench pretrain` packs them: the tokenizer's template plus a separator if it lacks one."""
        tok = self.tokenizer
        sep = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        ids = tok(docs, add_special_tokens=True, verbose=False)["input_ids"]
        return sum(len(x) + (1 if x and x[-1] != sep else 0) for x in ids)

    def close(self) -> None:
        self._fh.close()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
