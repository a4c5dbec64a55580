"""The interface every task kind implements, so that ONE fine-tuning loop serves them all.

A kind is built once per run from the tokenizer, the resolved protocol, the effective maximum
length, the label set (None: derived from the training rows) and the training rows:

    kind = KindClass(tokenizer, protocol, max_length, labels, train_rows)
    model = kind.head.from_pretrained(path, **kind.model_kwargs())   # via biobench.models
    enc = kind.encode(rows)            # Encoded: model features + what scoring needs
    batch = kind.collator()(features)  # dynamic padding (token labels padded with -100)
    loss = kind.loss(logits, labels)   # training objective on one batch
    scores = kind.score(enc, outputs)  # outputs: one logits array per feature, padding removed
    per_example = kind.example_predictions(enc, outputs)  # {"gold": [...], "pred": [...], ...}

The loop never looks inside a kind; a kind never sees the optimizer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification


@dataclass
class Encoded:
    """One split, encoded. `features` go to the model (one per input sequence, with `labels`);
    `gold` and `meta` stay behind for scoring; `notes` are counts the record must carry."""

    features: list[dict[str, Any]]
    gold: Any
    meta: list[Any] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # counts, and rules used (token_ner: word_split)


def as_columns(rows) -> dict[str, list]:
    """A split as plain lists, one per column, converted in one go. Iterating a `datasets` column
    formats one row at a time: 0.14 s for ChemProt's 16,521 labels, against 0.001 s for this."""
    return rows if isinstance(rows, dict) else rows[:]


class Kind:
    """Base class: subclasses set `head` and implement the methods below."""

    name: str = ""
    head: Any = None  # a transformers Auto class (AutoModelForTokenClassification, ...)
    has_labels: bool = True  # False for regression (similarity)

    def __init__(self, tokenizer, protocol, max_length: int, labels: Sequence[str] | None, train) -> None:
        self.tokenizer = tokenizer
        self.protocol = protocol
        self.max_length = max_length
        self.labels = list(labels) if labels else self.labels_from(train)
        if self.has_labels and not self.labels:
            raise ValueError(f"{self.name}: no labels in the card, the loader or the training data")

    def labels_from(self, train) -> list[str]:
        """Label set when neither the loader nor the card gives one: sorted, from the training rows."""
        return []

    @property
    def output_names(self) -> list[str]:
        """What each logit of the head stands for (token_ner: its tags, not the entity types)."""
        return self.labels

    def model_kwargs(self) -> dict[str, Any]:
        """Head configuration passed to `from_pretrained` (saved with a fine-tuned model)."""
        ids = dict(enumerate(self.output_names))
        return {"num_labels": len(ids), "id2label": ids, "label2id": {v: k for k, v in ids.items()}}

    def collator(self, pad_to_multiple_of: int | None = None) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Dynamic padding: each batch is padded to its own longest sequence, rounded up to a
        multiple of `pad_to_multiple_of` when given (a few bucket shapes, for CUDA graphs)."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=pad_to_multiple_of)

    def encode(self, rows) -> Encoded:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        raise NotImplementedError

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, Any] | None:
        """The test split's gold and predicted value per EXAMPLE (not per feature), as plain JSON values,
        so that significance can resample test examples (`biobench.significance`). None: not exported.

        Returns {"gold": [...], "pred": [...]} (one entry per example, in split order) and optionally
        "labels" (the names behind integer ids) and "documents" (the document of each row, when the metric
        gathers rows by document: it is then the unit resampled). The forms `biobench.significance` scores:
        token_ner: tag ids per word (ids into "labels"); classification: class id; multilabel: sorted
        list of label ids; similarity: float score; span_ner: list of [start, end, label] per document.
        Re-scoring these with the card's metric must give the record's test score: the leaderboard checks.
        """
        return None


class SequenceKind(Kind):
    """Kinds with one input sequence (text, optionally text_pair) and one target per example.

    Texts longer than `max_length` are truncated (longest side first for pairs); how many were
    cut is counted, because a score on truncated documents must say so in its record.
    """

    head = AutoModelForSequenceClassification

    def targets(self, rows) -> list[Any]:
        """The `labels` value of each example's feature."""
        raise NotImplementedError

    def encode(self, rows) -> Encoded:
        rows = as_columns(rows)
        texts = rows["text"]
        pairs = rows["text_pair"] if "text_pair" in rows else [None] * len(texts)
        cut, truncated = _tokenize(self.tokenizer, texts, pairs, self.max_length)
        targets = self.targets(rows)
        features = [dict(f, labels=t) for f, t in zip(cut, targets)]
        return Encoded(features=features, gold=targets, notes={"examples": len(texts), "truncated": truncated})


def _tokenize(tokenizer, texts: list[str], pairs: list[str | None], max_length: int) -> tuple[list[dict[str, Any]], int]:
    """Tokenize (text, pair) rows, some of which may have no pair, cut to `max_length`; one feature dict
    per row, and how many rows were cut. A fast tokenizer keeps what it cut in each encoding's
    `overflowing`, so one pass counts it; a slow one is asked again without truncation."""
    features: list[dict[str, Any] | None] = [None] * len(texts)
    truncated = 0
    for paired in (True, False):  # rows with a pair and rows without go to the tokenizer as two batches
        rows = [i for i, p in enumerate(pairs) if (p is not None) == paired]
        if not rows:
            continue
        batch_texts, batch_pairs = [texts[i] for i in rows], [pairs[i] for i in rows] if paired else None
        enc = tokenizer(batch_texts, batch_pairs, truncation=True, max_length=max_length)
        if enc.encodings is not None:
            truncated += sum(bool(e.overflowing) for e in enc.encodings)
        else:
            full = tokenizer(batch_texts, batch_pairs, truncation=False, verbose=False)["input_ids"]
            truncated += sum(len(ids) > max_length for ids in full)
        for j, i in enumerate(rows):
            features[i] = {k: enc[k][j] for k in enc.keys()}
    return features, truncated  # type: ignore[return-value]
