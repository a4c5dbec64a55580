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
