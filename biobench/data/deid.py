"""PhysioNet "Deidentified Medical Text" gold standard (deidentifiedmedicaltext 1.0), PHI recognition as
token NER. Credentialed: biobench ships no data; the user places the release's files in one folder:

- `id.text`: the nursing notes, one record per note:
      START_OF_RECORD=<patient>||||<note>||||
      <note text, many lines>
      ||||END_OF_RECORD
  The note text is everything after the header line's newline up to `||||END_OF_RECORD`.
- `id-phi.phrase`: one PHI instance per line, `<patient> <note> <start> <end> <category> <phrase>`, with
  character offsets into that note's text (end exclusive) and the category (Name, Date, Location, ...).

Every phrase line is checked against the text (the slice at its offsets must equal the phrase; a
mismatch is an error with file:line). PHI that the release masks in the text (`[**...**]`, MIMIC's
de-identification placeholder) stays one token, so a mask is never cut into `[ * * ...`; a mask listed
in the phrase file is a PHI entity like any other. Notes are long (thousands of characters): each note
is one document (`group`), split into sentences/lines by `biobench.data.spans`, so the kind's sliding
window sees every token.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from biobench.data.brat import Document, release_types, token_rows
from biobench.data.errors import DataError
from biobench.data.source import ReadContext, SplitRead, one_file
from biobench.data.spans import Entity

MASKED_TOKEN_RE = re.compile(r"\[\*\*.*?\*\*\]|\w+|[^\w\s]")
_START = re.compile(r"START_OF_RECORD=(\d+)\|\|\|\|(\d+)\|\|\|\|\s*$")
_END = "||||END_OF_RECORD"
OPTIONS = {"phrases"}


def parse_records(text: str, where_file: str) -> dict[tuple[str, str], str]:
    """(patient, note) -> note text, from the `id.text` record format."""
    records: dict[tuple[str, str], str] = {}
    pos = 0
    while True:
        start = text.find("START_OF_RECORD=", pos)
        if start < 0:
            break
        line_end = text.find("\n", start)
        header = text[start:line_end if line_end >= 0 else len(text)].rstrip("\r")
        m = _START.match(header)
        lineno = text.count("\n", 0, start) + 1
        if not m or line_end < 0:
            raise DataError(f"{where_file}:{lineno}: expected 'START_OF_RECORD=<patient>||||<note>||||', got {header!r}")
        end = text.find(_END, line_end)
        if end < 0:
            raise DataError(f"{where_file}:{lineno}: record {m.group(1)}/{m.group(2)} has no '{_END}'")
        key = (m.group(1), m.group(2))
        if key in records:
            raise DataError(f"{where_file}:{lineno}: record patient {key[0]} note {key[1]} appears twice")
        records[key] = text[line_end + 1:end]
        pos = end + len(_END)
    if not records:
        raise DataError(f"{where_file}: no 'START_OF_RECORD=' record found; expected PhysioNet's id.text format")
    return records


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    entry = one_file(ctx, split, entry, OPTIONS, "the id.text file name")
    phrases = ctx.options.get("phrases", "id-phi.phrase")
    records = parse_records(ctx.files.read_text(entry), str(ctx.files.root / entry))
    entities: dict[tuple[str, str], list[Entity]] = {key: [] for key in records}
    where_file = str(ctx.files.root / phrases)
    masked = 0
    for lineno, line in enumerate(ctx.files.read_text(phrases).split("\n"), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\r").split(maxsplit=5)
        where = f"{where_file}:{lineno}"
        if len(parts) < 6 or not all(p.isdigit() for p in parts[:4]):
            raise DataError(f"{where}: expected '<patient> <note> <start> <end> <category> <phrase>', got {line!r}")
        key, start, end, category, phrase = (parts[0], parts[1]), int(parts[2]), int(parts[3]), parts[4], parts[5]
        if key not in records:
            raise DataError(f"{where}: patient {key[0]} note {key[1]} is not a record of {entry}")
        note = records[key]
        if not start < end <= len(note) or note[start:end] != phrase:
            raise DataError(f"{where}: phrase {phrase!r} does not equal the note text at {start}-{end} "
                            f"({note[start:end]!r})")
        masked += phrase.startswith("[**")
        entities[key].append(Entity(id=f"{key[0]}/{key[1]}:{lineno}", type=category, fragments=((start, end),),
                                    line=lineno))
    docs = [Document(id=f"{p}/{n}", text=records[(p, n)], entities=entities[(p, n)], ignored=Counter(), notes=[])
            for p, n in sorted(records, key=lambda k: (int(k[0]), int(k[1])))]
    rows, notes = token_rows(ctx, docs, lambda doc, ent: f"{where_file}:{ent.line}", MASKED_TOKEN_RE)
    notes["deid"] = {"records": len(records), "phi": sum(len(v) for v in entities.values()), "masked_phi": masked,
                     "masks_in_text": sum(len(re.findall(r"\[\*\*.*?\*\*\]", t)) for t in records.values())}
    return SplitRead(rows=rows, files=[entry, phrases], notes=notes, labels=release_types(ctx, notes))
