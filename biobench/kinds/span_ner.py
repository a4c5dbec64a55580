"""Span NER with nested entities (QUAERO EMEA / MEDLINE): the paper's French NER protocol.

Rows (biobench.data.schema): `text` and `entities`, each a character span [start, end) with a label;
entities may nest, cross or share a span. The head (`span_model.SpanNERModel`) scores every candidate
span of at most `protocol.max_span_length` sub-tokens for every entity type.

Encoding. Each row is tokenized once with character offsets (a fast tokenizer is required). A row
longer than the window is cut into overlapping token windows (`protocol.window_stride` of a window
apart, as token_ner does with words); every window is a training example. A gold entity becomes the
token span from the token holding its first character to the token holding its last; it is a target
in every window that contains it whole. Entities whose token span does not reproduce their characters
(a boundary inside a sub-token) or that are longer than the longest span are counted in the notes:
they stay in the gold set that is scored, so they cost recall, never silently vanish.

Training. Binary cross-entropy on every (candidate span, type) pair of the window (a span can be an
entity of several types), summed over types and averaged over candidate spans. Candidates start and end
on content tokens (not special tokens, not whitespace-only sub-tokens) and stay inside the window.
(tabib scores all positives but only the first 500 negative spans of each sample, in document order;
here every candidate counts, as in nlstruct.)

Decoding (tabib `BERTSpanNERAdapter.predict`). A span is predicted with its best type when that type's
sigmoid exceeds `protocol.threshold` (0.5). Each span is read from ONE window: the one containing it
where it sits farthest from an edge (ties: the earlier window), so an entity across a window edge is
neither lost nor predicted twice. Character offsets come from the tokenizer's offset mapping, with
surrounding whitespace removed. Then `no_overlapping_same_label`: by decreasing probability (then
length), a span is dropped if it overlaps a kept span of the same type; spans of different types may
nest or cross.

Scores: `biobench.metrics.span_scores` over (row, char start, char end, label), exact and partial.
Dev selection (every `protocol.eval_steps` steps) uses the exact span F1 of this full decoding; tabib's
Trainer selected on an approximate F1 over its sampled candidate spans.

Speed: every step is plain tensor work with no host synchronisation (the CRF and the BiLSTM handle
padding with masks on the device), so `--fast` applies whole: length-grouped batches and CUDA graphs
(measured on an H200, MiniLM, QUAERO EMEA lines: 1,000 steps in 99.8 s eager with length grouping,
25.8 s with the graphs; the sequential CRF recursions dominate the eager step).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from biobench.kinds.base import Encoded, Kind, as_columns
from biobench.kinds.span_model import BIAFFINE_SIZE, LSTM_HIDDEN, LSTM_LAYERS, SpanNERModel
from biobench.kinds.token_ner import plan_windows
from biobench.metrics import span_scores

Span = tuple[int, int, str]  # char start, char end, label


def filter_overlapping_same_label(candidates: list[tuple[int, int, str, float]]) -> list[Span]:
    """tabib's `no_overlapping_same_label`: candidates (start, end, label, probability) by decreasing
    probability, then length (then position, for a fixed order); one is kept unless it overlaps a kept
    span of the same label. Returns the kept spans sorted by position."""
    order = sorted(candidates, key=lambda c: (-c[3], -(c[1] - c[0]), c[0], c[1], c[2]))
    kept: dict[str, list[tuple[int, int]]] = {}
    for start, end, label, _ in order:
        same = kept.setdefault(label, [])
        if not any(start < e and s < end for s, e in same):
            same.append((start, end))
    return sorted((s, e, label) for label, spans in kept.items() for s, e in spans)


def stripped_offsets(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token character spans without surrounding whitespace (SentencePiece offsets include the space before
    a word); a whitespace-only token gets an empty span (start == end)."""
    out = []
    for start, end in offsets:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        out.append((start, end))
    return out


def window_owner(start: int, end: int, windows: list[tuple[int, int]]) -> int:
    """The window [a, b) holding tokens start..end (inclusive) with the largest margin
    min(start - a, b - 1 - end); ties go to the earlier window; -1 if none holds it."""
    best, owner = -1, -1
    for k, (a, b) in enumerate(windows):
        if a <= start and end < b and min(start - a, b - 1 - end) > best:
            best, owner = min(start - a, b - 1 - end), k
    return owner


class SpanNER(Kind):
    name = "span_ner"
    head = SpanNERModel
    head_name = "span (BiLSTM + BIOUL CRF + biaffine)"
    sizes = {"lstm_hidden": LSTM_HIDDEN, "lstm_layers": LSTM_LAYERS, "biaffine_size": BIAFFINE_SIZE}  # tabib's

    def __init__(self, tokenizer, protocol, max_length, labels, train) -> None:
        super().__init__(tokenizer, protocol, max_length, labels, train)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("span_ner: needs a fast tokenizer (character offsets of every sub-token)")
        self.type_index = {t: i for i, t in enumerate(self.labels)}
        self.max_span = protocol.max_span_length or 40
        self.budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)

    def labels_from(self, train) -> list[str]:
        return sorted({e["label"] for ents in as_columns(train)["entities"] for e in ents})

    def model_kwargs(self) -> dict[str, Any]:
        return {"n_types": len(self.labels), "max_span": self.max_span,
                "dropout": 0.4 if self.protocol.head_dropout is None else self.protocol.head_dropout, **self.sizes}

    # ---- encoding -------------------------------------------------------------------------------------

    def encode(self, rows) -> Encoded:
        rows = as_columns(rows)
        texts, entity_lists = rows["text"], rows["entities"]
        gold = []
        for i, ents in enumerate(entity_lists):
            for e in ents:
                if e["label"] not in self.type_index:
                    raise ValueError(f"span_ner: row {rows['id'][i]}: entity {e.get('id')} has label "
                                     f"{e['label']!r}, not in {self.labels}")
            gold.append({(e["start"], e["end"], e["label"]) for e in ents})
        notes = {"examples": len(texts), "windows": 0, "split_examples": 0, "entities": sum(map(len, gold)),
                 "misaligned": 0, "too_long": 0}
        plain = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        features, meta = [], []
        row_tokens = []  # per row: (stripped token offsets, windows); decode reads them
        for i, text in enumerate(texts):
            offsets = stripped_offsets(text, plain["offset_mapping"][i])
            ids = plain["input_ids"][i]
            windows = plan_windows([1] * len(ids), self.budget, self.protocol.window_stride) if ids else []
            notes["split_examples"] += len(windows) > 1
            targets = self._token_spans(text, offsets, gold[i], notes)
            for k, (a, b) in enumerate(windows):
                enc = self._with_special_tokens(ids[a:b])
                prefix = len(self.template[0])
                boundary = [0] * len(enc["input_ids"])
                for t in range(a, b):
                    boundary[prefix + t - a] = int(offsets[t][1] > offsets[t][0])
                labels = [(s - a + prefix, e - s, self.type_index[lab]) for s, e, lab in targets
                          if a <= s and e < b and e - s < self.max_span]
                features.append({key: list(enc[key]) for key in enc.keys()} | {"labels": labels, "boundary": boundary})
                meta.append((i, k, a, prefix))
            row_tokens.append((offsets, windows))
        notes["windows"] = len(features)
        enc = Encoded(features=features, gold=gold, meta=meta, notes=notes)
        enc.rows = row_tokens  # type: ignore[attr-defined]
        return enc

    @property
    def template(self) -> tuple[list[int], list[int]]:
        """The special tokens the tokenizer puts before and after one sequence (BERT: [CLS] / [SEP])."""
        if not hasattr(self, "_template"):
            one = self.tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
            pos = one["special_tokens_mask"].index(0)
            n_content = one["special_tokens_mask"].count(0)
            self._template = (one["input_ids"][:pos], one["input_ids"][pos + n_content:])
        return self._template

    def _with_special_tokens(self, ids: list[int]) -> dict[str, list[int]]:
        """A window's model inputs: its sub-token ids between the tokenizer's special tokens."""
        before, after = self.template
        input_ids = before + list(ids) + after
        out = {"input_ids": input_ids, "attention_mask": [1] * len(input_ids)}
        if "token_type_ids" in self.tokenizer.model_input_names:
            out["token_type_ids"] = [0] * len(input_ids)
        return out

    def _token_spans(self, text: str, offsets: list[tuple[int, int]], gold: set[Span],
                     notes: dict) -> list[tuple[int, int, str]]:
        """Gold character spans -> token spans (first, last token); misfits counted in `notes`."""
        content = [t for t, (s, e) in enumerate(offsets) if e > s]
        ends = [offsets[t][1] for t in content]
        starts = [offsets[t][0] for t in content]
        out = []
        for start, end, label in sorted(gold):
            a = bisect.bisect_right(ends, start)  # first content token ending after `start`
            b = bisect.bisect_left(starts, end) - 1  # last content token starting before `end`
            if a >= len(content) or b < a:
                notes["misaligned"] += 1
                continue
            first, last = content[a], content[b]
            if (offsets[first][0], offsets[last][1]) != (start, end):
                notes["misaligned"] += 1
            if last - first >= self.max_span:
                notes["too_long"] += 1
            out.append((first, last, label))
        return out

    def collator(self, pad_to_multiple_of: int | None = None
                 ) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Pad the encoder inputs; build `labels` (batch, length, max_span * types) as int8: 1 for a gold
        (span, type), 0 for another candidate, -1 where no candidate is (padding, special tokens, spans
        running past the window, whitespace-only boundary tokens)."""
        n_types, max_span = len(self.labels), self.max_span

        def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
            inputs = [{k: v for k, v in f.items() if k not in ("labels", "boundary")} for f in features]
            batch = self.tokenizer.pad(inputs, return_tensors="pt", pad_to_multiple_of=pad_to_multiple_of)
            length = batch["input_ids"].shape[1]
            ok = torch.zeros(len(features), length + max_span, dtype=torch.bool)
            for j, f in enumerate(features):
                ok[j, : len(f["boundary"])] = torch.tensor(f["boundary"], dtype=torch.bool)
            ends = ok.unfold(1, max_span, 1)[:, :length]  # [j, i, w] = ok[j, i + w]
            valid = ok[:, :length, None] & ends  # (batch, length, max_span)
            labels = torch.zeros(len(features), length, max_span, n_types, dtype=torch.int8)
            for j, f in enumerate(features):
                for i, w, k in f["labels"]:
                    labels[j, i, w, k] = 1
            labels[~valid] = -1
            batch["labels"] = labels.flatten(2)
            return batch
        return collate

    # ---- training --------------------------------------------------------------------------------------

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels >= 0
        bce = F.binary_cross_entropy_with_logits(logits.float(), labels.clamp(min=0).float(), reduction="none")
        return (bce * valid).sum() / (valid.sum() / len(self.labels)).clamp(min=1)

    # ---- decoding and scoring ----------------------------------------------------------------------

    def decode(self, enc: Encoded, outputs: list[np.ndarray]) -> list[set[Span]]:
        """Predicted (char start, char end, label) per row; see the module docstring."""
        n_types, max_span = len(self.labels), self.max_span
        cut = math.log(self.protocol.threshold / (1 - self.protocol.threshold))  # sigmoid(x) > t  <=>  x > cut
        candidates: list[list[tuple[int, int, str, float]]] = [[] for _ in enc.gold]
        for feature, (i, k, a, prefix), logits in zip(enc.features, enc.meta, outputs):
            offsets, windows = enc.rows[i]  # type: ignore[attr-defined]
            scores = logits.reshape(len(logits), max_span, n_types)
            best, label = scores.max(-1), scores.argmax(-1)
            ok = np.zeros(len(logits) + max_span, dtype=bool)
            ok[: len(feature["boundary"])] = feature["boundary"]
            valid = ok[: len(logits), None] & np.lib.stride_tricks.sliding_window_view(ok, max_span)[: len(logits)]
            for pos, w in zip(*np.nonzero(valid & (best > cut))):
                start = a + int(pos) - prefix
                end = start + int(w)
                if window_owner(start, end, windows) != k:
                    continue
                prob = 1.0 / (1.0 + math.exp(-float(best[pos, w])))
                candidates[i].append((offsets[start][0], offsets[end][1], self.labels[int(label[pos, w])], prob))
        return [set(filter_overlapping_same_label(c)) for c in candidates]

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        return span_scores(enc.gold, self.decode(enc, outputs))

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, Any]:
        """Per row: gold and predicted [start, end, label] lists (sorted), re-scorable with `span_scores`."""
        pred = self.decode(enc, outputs)
        return {"gold": [sorted([s, e, lab] for s, e, lab in g) for g in enc.gold],
                "pred": [sorted([s, e, lab] for s, e, lab in p) for p in pred]}


KIND = SpanNER
