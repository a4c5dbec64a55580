"""Token-level NER (NCBI-disease, BC5CDR, JNLPBA...): one IOB2 tag per pre-tokenized word.

Head: AutoModelForTokenClassification over the tag set `O, B-T1, I-T1, B-T2, I-T2, ...` (entity
types in card / loader order). Words reach the model as they do in running text: they are joined by
spaces and tokenized with offsets (`biobench.kinds.words`: every word, the first included, gets the
sub-tokens it has after a space; transformers' `is_split_into_words=True` would cut each word of a
byte-level BPE tokenizer like ModernBERT's as if it began the text). Only a word's FIRST sub-token
carries its tag, the others are ignored (-100): labelling every sub-token inflates entity counts
(transformers #14043).

Nothing is dropped for length. A sentence longer than `max_length` is covered by overlapping
windows of whole words, each advancing `protocol.window_stride` of a window; every window is a
training example, and at prediction time each word takes its tag from the window where it sits
farthest from an edge (most context on its poorer side). A single word with more sub-tokens than
fit is cut, and still predicted from its first sub-token. Scores are computed on the ORIGINAL
word-level gold sequences, so every gold entity counts.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

from biobench.kinds.base import Encoded, Kind, as_columns
from biobench.kinds.words import tokenize_words, word_split_rule
from biobench.metrics import ner_scores

IGNORE = -100  # torch's cross-entropy ignore_index: sub-tokens after the first, special tokens


def plan_windows(lengths: Sequence[int], budget: int, stride: float) -> list[tuple[int, int]]:
    """Word ranges [start, end) whose sub-token counts fit `budget`, covering every word.

    `lengths` are sub-tokens per word, already capped at `budget`. Each next window starts at the
    first word at least `stride * budget` sub-tokens after the previous start, but never after
    the previous end (no gap) and always after the previous start (progress).
    """
    cum = [0, *accumulate(lengths)]
    step = max(1, int(stride * budget))
    windows, start = [], 0
    while True:
        end = bisect.bisect_right(cum, cum[start] + budget) - 1  # last word boundary that fits
        end = max(end, start + 1)
        windows.append((start, end))
        if end >= len(lengths):
            return windows
        start = min(max(bisect.bisect_left(cum, cum[start] + step), start + 1), end)


def assign_owners(lengths: Sequence[int], windows: Sequence[tuple[int, int]]) -> list[int]:
    """For each word, the index of the window whose nearer edge is farthest away (in sub-tokens).

    A word's distance to the edges of window [a, b) is min(sub-tokens before it, sub-tokens after
    it) inside the window; ties go to the earlier window.
    """
    cum = [0, *accumulate(lengths)]
    owner, best = [-1] * len(lengths), [-1] * len(lengths)
    for k, (a, b) in enumerate(windows):
        for w in range(a, b):
            margin = min(cum[w] - cum[a], cum[b] - cum[w + 1])
            if margin > best[w]:
                owner[w], best[w] = k, margin
    return owner


class TokenNER(Kind):
    name = "token_ner"
    head = AutoModelForTokenClassification

    def __init__(self, tokenizer, protocol, max_length, labels, train) -> None:
        super().__init__(tokenizer, protocol, max_length, labels, train)
        self.word_split = word_split_rule(tokenizer)  # refuses, before training, a tokenizer the rule cannot serve
        self.tags = ["O"] + [f"{p}-{t}" for t in self.labels for p in ("B", "I")]
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)

    def labels_from(self, train) -> list[str]:
        """Entity types, sorted, from the training tags (`B-Disease` -> `Disease`)."""
        return sorted({t[2:] for tags in as_columns(train)["tags"] for t in tags if t != "O"})

    @property
    def output_names(self) -> list[str]:
        return self.tags

    def collator(self, pad_to_multiple_of: int | None = None):
        return DataCollatorForTokenClassification(self.tokenizer, label_pad_token_id=IGNORE,
                                                  pad_to_multiple_of=pad_to_multiple_of)

    def encode(self, rows) -> Encoded:
        rows = as_columns(rows)
        sentences = [list(words) for words in rows["tokens"]]
        gold = [list(tags) for tags in rows["tags"]]
        for i, (words, tags) in enumerate(zip(sentences, gold)):
            if len(words) != len(tags):
                raise ValueError(f"token_ner: example {i}: {len(words)} tokens but {len(tags)} tags")
            unknown = [t for t in tags if t not in self.tag_index]
            if unknown:
                raise ValueError(f"token_ner: example {i}: tag {unknown[0]!r} not in the tag set {self.tags}")

        # Pass 1: sub-tokens per word. A word that yields none (blank, or a stray control character)
        # would go unpredicted, so it is replaced by the unknown token.
        notes = {"examples": len(sentences), "windows": 0, "split_examples": 0, "words_cut": 0, "empty_words": 0,
                 "word_split": self.word_split.notes()}
        blank = [[w for w, word in enumerate(words) if not word.strip()] for words in sentences]
        for words in sentences:
            words[:] = [word.strip() or self.tokenizer.unk_token for word in words]
        _, plain_word_ids = tokenize_words(self.tokenizer, sentences, add_special_tokens=False, verbose=False)
        lengths_per_sentence = []
        for i, words in enumerate(sentences):
            counts = [0] * len(words)
            for w in plain_word_ids[i]:
                counts[w] += 1
            for w in blank[i]:
                counts[w] = 0  # counted as empty below, as it yields nothing of its own
            for w, c in enumerate(counts):
                if c == 0:
                    words[w] = self.tokenizer.unk_token
                    counts[w] = 1
                    notes["empty_words"] += 1
            notes["words_cut"] += sum(c > self.budget for c in counts)
            lengths_per_sentence.append([min(c, self.budget) for c in counts])

        # Pass 2: windows of whole words, each tokenized with its special tokens.
        chunks, spans = [], []  # spans: (example, first word of the window, words it owns)
        for i, (words, lengths) in enumerate(zip(sentences, lengths_per_sentence)):
            if not words:
                continue  # nothing to predict; its (empty) gold sequence is still scored
            windows = plan_windows(lengths, self.budget, self.protocol.window_stride)
            owners = assign_owners(lengths, windows)
            notes["split_examples"] += len(windows) > 1
            for k, (a, b) in enumerate(windows):
                chunks.append(words[a:b])
                spans.append((i, a, [w for w in range(a, b) if owners[w] == k]))
        notes["windows"] = len(chunks)
        enc, word_ids = tokenize_words(self.tokenizer, chunks, truncation=True, max_length=self.max_length)

        features, meta = [], []  # meta: per feature, (example, [(owned word, its first sub-token)])
        for j, (i, a, owned) in enumerate(spans):
            first = _first_subtokens(word_ids[j])
            labels = [IGNORE] * len(enc["input_ids"][j])
            for w, pos in first.items():
                labels[pos] = self.tag_index[gold[i][a + w]]
            missing = [w for w in owned if w - a not in first]
            if missing:
                raise RuntimeError(f"token_ner: example {i}: word {missing[0]} lost in tokenization")
            meta.append((i, [(w, first[w - a]) for w in owned]))
            features.append({k: enc[k][j] for k in enc.keys()} | {"labels": labels})
        return Encoded(features=features, gold=gold, meta=meta, notes=notes)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)

    def decode(self, enc: Encoded, outputs: list[np.ndarray]) -> list[list[str]]:
        """Word-level predicted tags: each word from its owning window's first sub-token."""
        pred: list[list[str | None]] = [[None] * len(tags) for tags in enc.gold]
        for (i, owned), logits in zip(enc.meta, outputs):
            best = logits.argmax(-1)
            for w, pos in owned:
                pred[i][w] = self.tags[int(best[pos])]
        assert all(t is not None for tags in pred for t in tags), "a word was never predicted"
        return pred  # type: ignore[return-value]

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        return ner_scores(enc.gold, self.decode(enc, outputs))

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict:
        """Tag ids per word, gold and predicted, per sentence (ids into `labels`, the tag list)."""
        ids = lambda seqs: [[self.tag_index[t] for t in tags] for tags in seqs]  # noqa: E731
        return {"gold": ids(enc.gold), "pred": ids(self.decode(enc, outputs)), "labels": self.tags}


def _first_subtokens(word_ids: list[int | None]) -> dict[int, int]:
    """Word index (within the window) -> position of its first sub-token."""
    first: dict[int, int] = {}
    for pos, w in enumerate(word_ids):
        if w is not None and w not in first:
            first[w] = pos
    return first


KIND = TokenNER
