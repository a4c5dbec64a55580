"""PhysioNet "Phenotype Annotations for Patient Notes in the MIMIC-III Database" (v1.20.03), a note-level
multi-label task. Credentialed: biobench ships no data; the user places two files in one folder:

- `ACTdb102003.csv` (the annotations): comma-separated with a header; `ROW_ID` (the note's ROW_ID in
  MIMIC-III NOTEEVENTS), `SUBJECT_ID`, `HADM_ID`, `BATCH.ID`, `OPERATOR`, `UNSURE` (0/1) and one 0/1
  column per label: the 13 phenotypes and `NONE` (the card lists them). Each note is annotated twice
  (two operators), so a note has several rows.
- `NOTEEVENTS.csv` (MIMIC-III v1.4, unzipped; or a subset of it with the same header): `ROW_ID` and
  `TEXT` (multi-line, quoted) give each note's text.

Row per note: text = NOTEEVENTS `TEXT`; labels = every label column set to 1 by any of the note's
annotation rows with `UNSURE` = 0 (rows marked unsure are skipped and counted; a note with only unsure
rows is dropped and counted). A cell other than 0/1, a label column the card does not declare, or an
annotated note missing from NOTEEVENTS is an error naming file and line.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from biobench.data.errors import DataError
from biobench.data.source import ReadContext, SplitRead, check_options, file_entries

_ID_COLUMNS = ("ROW_ID", "SUBJECT_ID", "HADM_ID", "BATCH.ID", "OPERATOR", "UNSURE")
OPTIONS = {"notes"}


def _table(ctx: ReadContext, name: str, required: tuple[str, ...]) -> tuple[list[str], csv.DictReader]:
    reader = csv.DictReader(io.StringIO(ctx.files.read_text(name), newline=""))
    header = reader.fieldnames or []
    for col in required:
        if col not in header:
            raise DataError(f"{ctx.files.root / name}:1: no column {col!r} in the header {header}; expected the "
                            f"PhysioNet release's columns")
    return header, reader


def _flag(value: str, where: str, column: str) -> bool:
    value = value.strip()
    if value not in ("0", "1", "0.0", "1.0"):
        raise DataError(f"{where}: column {column!r}: expected 0 or 1, got {value!r}")
    return value.startswith("1")


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    notes_file = ctx.options.get("notes", "NOTEEVENTS.csv")
    labels: dict[str, set[str]] = {}
    seen: set[str] = set()
    unsure = 0
    names = []
    for name, _ in file_entries(entry, {}, set(), ctx, split):
        names.append(name)
        header, reader = _table(ctx, name, _ID_COLUMNS)
        label_columns = [c for c in header if c not in _ID_COLUMNS]
        for col in label_columns:
            if ctx.labels is not None and col not in ctx.labels:
                raise DataError(f"{ctx.files.root / name}:1: label column {col!r} is not declared by the card "
                                f"(labels: {list(ctx.labels)})")
        for record in reader:
            where = f"{ctx.files.root / name}:{reader.line_num}"
            note = record["ROW_ID"].strip()
            seen.add(note)
            if _flag(record["UNSURE"], where, "UNSURE"):
                unsure += 1
                continue
            labels.setdefault(note, set()).update(c for c in label_columns if _flag(record[c], where, c))
    _, reader = _table(ctx, notes_file, ("ROW_ID", "TEXT"))
    texts = {r["ROW_ID"].strip(): r["TEXT"] for r in reader if r["ROW_ID"].strip() in labels}
    absent = sorted(set(labels) - set(texts), key=lambda x: (len(x), x))
    if absent:
        raise DataError(f"{ctx.files.root / notes_file}: note ROW_ID {absent[0]} (annotated in {names[0]}) is not in "
                        f"the notes file ({len(absent)} missing); use MIMIC-III v1.4 NOTEEVENTS.csv")
    rows = [{"id": note, "group": note, "text": texts[note], "labels": sorted(labels[note])}
            for note in sorted(labels, key=lambda x: (len(x), x))]
    return SplitRead(rows=rows, files=names + [notes_file], notes={"phenotype": {
        "notes": len(rows), "unsure_rows_skipped": unsure, "notes_only_unsure_dropped": len(seen - set(labels))}})
