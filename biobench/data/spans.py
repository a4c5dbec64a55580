"""Character-offset entities -> IOB2 token rows: flattening, tokenization, sentence splitting.

A token head tags each token once, so nested, crossing and discontinuous entities (QUAERO has all
three) must be flattened first. The rule, applied per document:

1. A discontinuous entity is represented by its extent, from its first start to its last end
   (the gap is tagged as part of the entity). Fragments are not always in text order (QUAERO
   dev 886_3 T32), so the extent is the smallest start to the largest end.
2. Entities are sorted by (start, -length, file order) and one is kept only if it overlaps no kept
   entity. So the outermost (longest) of nested entities wins; of two crossing entities the one
   that starts first wins; of two with the same span the first in the file wins.
3. Each lost entity is counted as `duplicate` (same span as a kept one), `nested` (inside a kept
   one) or `crossing` (overlaps a kept one without being inside it).

Tokens are `\\w+|[^\\w\\s]` regex matches with their character offsets, cut again at every kept
entity boundary so tags align exactly; each boundary that fell inside a regex token is counted
(`forced_splits`), as is every kept entity that covers no token at all (`unaligned`).

Sentences (one row each, `group` = document) are split conservatively: after `.`, `!` or `?`
followed by whitespace and an upper-case letter or a digit, and at newlines; never inside a kept
entity. Splitting too little only makes rows longer (the kind slides a window over long rows);
splitting inside an entity would break it, so the rule errs on the side of not splitting.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Any

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?](?=\s+(\S))")


@dataclass(frozen=True)
class Entity:
    id: str
    type: str
    fragments: tuple[tuple[int, int], ...]
    line: int  # line in the annotation file, for messages

    @property
    def start(self) -> int:
        return min(s for s, _ in self.fragments)

    @property
    def end(self) -> int:
        return max(e for _, e in self.fragments)


def flatten(entities: list[Entity]) -> tuple[list[Entity], Counter]:
    """Keep the non-overlapping entities by the module's rule; count what was lost and why."""
    stats = Counter(entities=len(entities), discontinuous=sum(len(e.fragments) > 1 for e in entities))
    order = sorted(range(len(entities)), key=lambda i: (entities[i].start, entities[i].start - entities[i].end, i))
    kept: list[Entity] = []
    for i in order:
        ent = entities[i]
        # Kept entities are disjoint and sorted, so only the last one can reach past ent.start.
        last = kept[-1] if kept else None
        if last is None or ent.start >= last.end:
            kept.append(ent)
        elif (ent.start, ent.end) == (last.start, last.end):
            stats["duplicate"] += 1
        elif ent.end <= last.end:
            stats["nested"] += 1
        else:
            stats["crossing"] += 1
    stats["kept"] = len(kept)
    return kept, stats


def tokenize(text: str, boundaries: list[int], pattern: re.Pattern = TOKEN_RE) -> tuple[list[tuple[int, int]], int]:
    """Regex tokens as (start, end) offsets, split at every boundary inside one; returns the count."""
    tokens: list[tuple[int, int]] = []
    forced = 0
    for m in pattern.finditer(text):
        start, end = m.span()
        inner = boundaries[bisect_right(boundaries, start):bisect_left(boundaries, end)]
        forced += len(inner)
        for cut in inner:
            tokens.append((start, cut))
            start = cut
        tokens.append((start, end))
    return tokens, forced


def sentence_starts(text: str, kept: list[Entity]) -> list[int]:
    """Offsets where a new sentence starts, by the module's rule, never inside a kept entity."""
    starts = [e.start for e in kept]

    def inside_entity(pos: int) -> bool:
        i = bisect_right(starts, pos - 1) - 1  # last entity starting before pos
        return i >= 0 and kept[i].end > pos

    candidates = [m.start() for m in re.finditer("\n", text)]
    candidates += [m.start() + 1 for m in _SENTENCE_END.finditer(text)
                   if m.group(1).isupper() or m.group(1).isdigit()]
    return sorted(p for p in set(candidates) if not inside_entity(p))


def document_rows(doc_id: str, text: str, entities: list[Entity],
                  pattern: re.Pattern = TOKEN_RE) -> tuple[list[dict[str, Any]], Counter]:
    """One document -> token_ner rows (one per sentence), plus flattening and alignment counts.
    `pattern` replaces the token regex (DEID keeps each `[**...**]` PHI mask as one token)."""
    kept, stats = flatten(entities)
    tokens, stats["forced_splits"] = tokenize(text, sorted({b for e in kept for b in (e.start, e.end)}), pattern)
    tags = ["O"] * len(tokens)
    token_starts = [s for s, _ in tokens]
    for ent in kept:
        first = bisect_left(token_starts, ent.start)
        last = first
        while last < len(tokens) and tokens[last][1] <= ent.end:
            last += 1
        if last == first:
            stats["unaligned"] += 1
            continue
        tags[first] = f"B-{ent.type}"
        for k in range(first + 1, last):
            tags[k] = f"I-{ent.type}"
    breaks = sentence_starts(text, kept)
    sentences: dict[int, list[int]] = {}
    for k, (start, _) in enumerate(tokens):
        sentences.setdefault(bisect_right(breaks, start), []).append(k)
    rows = [{"id": f"{doc_id}:{n}", "group": doc_id, "tokens": [text[tokens[k][0]:tokens[k][1]] for k in idx],
             "tags": [tags[k] for k in idx]} for n, idx in enumerate(sentences.values())]
    return rows, stats


# ---------------------------------------------------------------------------------------------------
# span_ner rows: entities kept as character spans (nested and crossing ones included).
#
# Discontinuous entities follow the paper's code (tabib, src/tabib/data/brat.py `_parse_annotations`,
# itself after nlstruct): fragments are sorted, fragments separated only by whitespace are merged, and
# the entity becomes its extent, from the first fragment's start to the last fragment's end, gap
# included. Nothing is dropped; the span model never sees fragments.


def merge_fragments(text: str, fragments: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Sort fragments; merge neighbours separated by whitespace only (BRAT splits an entity at a line break)."""
    ordered = sorted(fragments)
    merged = [list(ordered[0])]
    for start, end in ordered[1:]:
        if not text[merged[-1][1]:start].strip():
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)


def overlap_counts(spans: list[tuple[int, int]]) -> Counter:
    """How many spans are nested in another (inside it, not the same span), share their exact span with
    another, or cross another (overlap without containment). One span can count in several."""
    out: Counter = Counter()
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for n, i in enumerate(order):
        s, e = spans[i]
        nested = same = crossing = False
        for j in range(len(spans)):
            if j == i:
                continue
            t, f = spans[j]
            if f <= s or e <= t:
                continue
            if (t, f) == (s, e):
                same = True
            elif t <= s and e <= f:
                nested = True
            elif not (s <= t and f <= e):
                crossing = True
        out.update(nested=nested, same_span=same, crossing=crossing)
    return out


def outermost(spans: list[tuple[int, int, str]]) -> list[int]:
    """Indices kept by the paper's `filter_nested` (tabib BRATDatasetAdapter._filter_nested_entities):
    longest first (then by start, then file order), an entity inside an already kept one, or with the same
    span, is dropped. Crossing entities are both kept."""
    order = sorted(range(len(spans)), key=lambda i: (-(spans[i][1] - spans[i][0]), spans[i][0], i))
    kept: list[int] = []
    for i in order:
        s, e = spans[i][:2]
        if not any(spans[k][0] <= s and e <= spans[k][1] for k in kept):
            kept.append(i)
    return sorted(kept)


def span_rows(doc_id: str, text: str, entities: list[Entity], *, samples: str = "document",
              nested: str = "keep") -> tuple[list[dict[str, Any]], Counter]:
    """One document -> span_ner rows `{id, group, text, entities: [{id, start, end, label}]}`.

    `samples`: "document" (one row, the whole text; the kind cuts long rows into token windows) or
    "line" (one row per non-blank line, as the paper's code does for QUAERO EMEA: an entity across a
    line break is dropped and counted as `across_lines`). `nested`: "keep", or "outermost" (the paper's
    `filter_nested` for QUAERO MEDLINE; dropped ones counted as `dropped_nested`).
    """
    spans = []
    stats: Counter = Counter(entities=len(entities))
    for ent in entities:
        fragments = merge_fragments(text, ent.fragments)
        stats["discontinuous"] += len(ent.fragments) > 1
        stats["discontinuous_after_merge"] += len(fragments) > 1
        spans.append((fragments[0][0], fragments[-1][1], ent.type))
    stats.update(overlap_counts([(s, e) for s, e, _ in spans]))
    keep = list(range(len(spans)))
    if nested == "outermost":
        keep = outermost(spans)
        stats["dropped_nested"] = len(spans) - len(keep)
    elif nested != "keep":
        raise ValueError(f"nested: expected 'keep' or 'outermost', got {nested!r}")
    if samples == "document":
        pieces = [(doc_id, 0, len(text))]
    elif samples == "line":  # row id: <document>:<line number, from 0>
        pieces, start = [], 0
        for n, line in enumerate(text.split("\n")):
            if line.strip():
                pieces.append((f"{doc_id}:{n}", start, start + len(line)))
            start += len(line) + 1
    else:
        raise ValueError(f"samples: expected 'document' or 'line', got {samples!r}")
    rows, placed = [], 0
    for row_id, a, b in pieces:
        inside = [i for i in keep if a <= spans[i][0] and spans[i][1] <= b]
        placed += len(inside)
        rows.append({"id": row_id, "group": doc_id,
                     "text": text[a:b],
                     "entities": [{"id": entities[i].id, "start": spans[i][0] - a, "end": spans[i][1] - a,
                                   "label": spans[i][2]} for i in sorted(inside, key=lambda i: spans[i][:2])]})
    stats["across_lines"] = len(keep) - placed
    stats["kept"] = placed
    return rows, stats
