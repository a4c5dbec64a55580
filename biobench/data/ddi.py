"""DDI 2013 corpus (Segura-Bedmar et al.), its native XML: relation classification of drug pairs.

One `.xml` file per document: `<document id><sentence id text><entity id charOffset type text/>...
<pair id e1 e2 ddi type/></sentence></document>`. `charOffset` is `start-end` with an INCLUSIVE end into
the sentence text; discontinuous entities have `;`-separated ranges (the entity is marked over its
extent, first start to last end).

Row per pair (BLURB's DDI task: 5 classes over every candidate pair): text = the sentence with the two
drugs marked in place, `[E1]...[/E1]` and `[E2]...[/E2]` (the relation kind reuses single-label
classification; markers instead of BLURB's `@DRUG$` masking keep the drug names); label = the pair's
`type` (mechanism, effect, advise, int) when `ddi="true"`, else `false`; group = the document.
The release has one pair with `ddi="true"` and no `type`; the card must say what to do with such a pair
(`untyped_true: drop`, counted in the notes), otherwise it is an error naming file and pair.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import normalise_row
from biobench.data.source import ReadContext, SplitRead, check_options

OPTIONS = {"untyped_true"}
MARKERS = {"e1": ("[E1]", "[/E1]"), "e2": ("[E2]", "[/E2]")}


def _extent(offset: str, where: str) -> tuple[int, int]:
    bounds = []
    for frag in offset.split(";"):
        a, sep, b = frag.partition("-")
        if not (sep and a.strip().isdigit() and b.strip().isdigit()):
            raise DataError(f"{where}: charOffset {offset!r}: expected 'start-end[;start-end...]'")
        bounds.append((int(a), int(b) + 1))  # inclusive end -> exclusive
    return min(s for s, _ in bounds), max(e for _, e in bounds)


def mark(text: str, spans: dict[str, tuple[int, int]]) -> str:
    """Insert each entity's markers; at one position closing markers go before opening ones."""
    inserts = []
    for key, (start, end) in spans.items():
        opening, closing = MARKERS[key]
        inserts += [(start, 1, key, opening), (end, 0, key, closing)]
    out = text
    for pos, _, _, marker in sorted(inserts, reverse=True):
        out = out[:pos] + marker + out[pos:]
    return out


def _document_rows(path, rel: str, ctx: ReadContext, counts: Counter) -> list[dict[str, Any]]:
    try:
        root = ET.fromstring(ctx.files.read_bytes(rel))
    except ET.ParseError as exc:
        raise DataError(f"{path}:{exc.position[0]}: not well-formed XML: {exc}") from None
    doc_id = root.get("id") or rel
    rows = []
    for sentence in root.iter("sentence"):
        text = sentence.get("text", "")
        where = f"{path} sentence {sentence.get('id')}"
        entities = {}
        for ent in sentence.iter("entity"):
            start, end = _extent(ent.get("charOffset", ""), f"{where} entity {ent.get('id')}")
            if end > len(text):
                raise DataError(f"{where} entity {ent.get('id')}: offsets {start}-{end - 1} outside the sentence")
            entities[ent.get("id")] = (start, end)
        for pair in sentence.iter("pair"):
            pwhere = f"{where} pair {pair.get('id')}"
            if pair.get("e1") not in entities or pair.get("e2") not in entities:
                raise DataError(f"{pwhere}: e1/e2 name no entity of the sentence")
            if pair.get("ddi") == "true":
                label = pair.get("type")
                if label is None:
                    if ctx.options.get("untyped_true") != "drop":
                        raise DataError(f"{pwhere}: ddi='true' without a type; set data.local.options.untyped_true: "
                                        f"drop in {ctx.card_path} to drop such pairs (counted)")
                    counts["untyped_true_dropped"] += 1
                    continue
            elif pair.get("ddi") == "false":
                label = "false"
            else:
                raise DataError(f"{pwhere}: ddi={pair.get('ddi')!r}, expected 'true' or 'false'")
            counts[label] += 1
            marked = mark(text, {"e1": entities[pair.get("e1")], "e2": entities[pair.get("e2")]})
            rows.append(normalise_row("classification", {"id": pair.get("id"), "group": doc_id, "text": marked,
                                                         "label": label}, ctx.labels, pwhere, pair.get("id")))
    return rows


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    folders = entry if isinstance(entry, list) else [entry]
    rows: list[dict[str, Any]] = []
    counts: Counter = Counter()
    n_docs = 0
    for folder in folders:
        base = ctx.files.folder(folder)
        for path in sorted(base.glob("*.xml")):
            rows.extend(_document_rows(path, path.relative_to(ctx.files.root).as_posix(), ctx, counts))
            n_docs += 1
    return SplitRead(rows=rows, files=list(folders), notes={"ddi": {"documents": n_docs,
                                                                     "pairs": dict(sorted(counts.items()))}})
