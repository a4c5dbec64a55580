"""Tables: TSV, CSV, JSON Lines, JSON, Parquet, one record per row, mapped onto the kind's schema.

Options (card `data.local.options`; a file entry may be `{file: NAME, <option>: value}` to override
them for that file, e.g. GAD, whose train.tsv has no header and test.tsv has one):

- `columns` (required): biobench column -> file column, by name or by 0-based index
  (`id` and `group` are optional; without them a row's id is `<file>:<line>` and its group is its id).
- `header` (TSV/CSV, default true): whether the first row names the columns. A file without a
  header can only be mapped by index.
- `quoting` (TSV/CSV): `minimal` (default, the csv module's: a field that starts with `"` is
  quoted) or `none` (quotes are ordinary characters, for files that never quote).
- `label_separator` (multilabel): splits a label cell such as `a|b` into a list.
- `label_map`: label as written in the file -> label the card declares (ChemProt: bio_electra's `False`
  and BLUE's `false` are one class); a label missing from the map is kept as written.

A `json` file holds one array of records (DiaMED, FrenchMedMCQA) or one object of records keyed by id
(the key is then the column `__key__`). In JSON records a column may be a dotted path (`answers.a`)
and a biobench column may map to a list of columns (FrenchMedMCQA's five `answers.a` .. `answers.e`
become `choices`). The header of each TSV/CSV file is recorded in the notes, so a record says which
layout (e.g. which ChemProt release) it was read from.

Every row of a TSV/CSV file must have as many cells as the header (or the first row): a ragged row
is an error with file:line, not a shifted column.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from functools import partial
from typing import Any, Callable, Iterator

import pyarrow.parquet as pq

from biobench.data.errors import DataError
from biobench.data.schema import normalise_row
from biobench.data.source import ReadContext, SplitRead, check_options, file_entries

OPTIONS = {"columns", "header", "quoting", "label_separator", "label_map"}
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # MORFITT abstracts exceed the csv module's 128 kB default
_QUOTING = {"minimal": csv.QUOTE_MINIMAL, "none": csv.QUOTE_NONE}

# A record's cells keyed by column index and, where the file names its columns, by name.
# Record iterators yield (where, default row id, record).
Record = dict[Any, Any]


def _delimited(ctx: ReadContext, name: str, opts: dict[str, Any], delimiter: str) -> Iterator[tuple[str, str, Record]]:
    path = ctx.files.root / name
    quoting = opts.get("quoting", "minimal")
    if quoting not in _QUOTING:
        raise DataError(f"{ctx.card_path}: option 'quoting' for {name}: expected one of {sorted(_QUOTING)}, "
                        f"got {quoting!r}")
    reader = csv.reader(io.StringIO(ctx.files.read_text(name), newline=""), delimiter=delimiter,
                        quoting=_QUOTING[quoting])
    header: list[str] | None = None
    width = None
    for cells in reader:
        if not cells:
            continue
        if width is None:
            width = len(cells)
            if opts.get("header", True):
                header = cells
                continue
        if len(cells) != width:
            raise DataError(f"{path}:{reader.line_num}: expected {width} columns separated by {delimiter!r} "
                            f"(as on the {'header' if header else 'first row'}), got {len(cells)}")
        record: Record = dict(enumerate(cells))
        if header:
            record.update(zip(header, cells))
        yield f"{path}:{reader.line_num}", f"{name}:{reader.line_num}", record


def _json(ctx: ReadContext, name: str, opts: dict[str, Any]) -> Iterator[tuple[str, str, Record]]:
    path = ctx.files.root / name
    try:
        data = json.loads(ctx.files.read_text(name))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        items = [(f"{path} key {k!r}", {"__key__": k, **v} if isinstance(v, dict) else v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(f"{path} item {i}", v) for i, v in enumerate(data)]
    else:
        raise DataError(f"{path}: expected a JSON array of records or an object of records keyed by id")
    for i, (where, record) in enumerate(items):
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object (one record), got {type(record).__name__}")
        yield where, f"{name}#{i}", record


def _cell(record: Record, column: Any) -> Any:
    """A record's value for a column name, index or dotted path (KeyError when absent)."""
    if column in record:
        return record[column]
    if isinstance(column, str) and "." in column:
        value: Any = record
        for part in column.split("."):
            if not isinstance(value, dict) or part not in value:
                raise KeyError(column)
            value = value[part]
        return value
    raise KeyError(column)


def _jsonl(ctx: ReadContext, name: str, opts: dict[str, Any]) -> Iterator[tuple[str, str, Record]]:
    path = ctx.files.root / name
    for lineno, line in enumerate(ctx.files.read_text(name).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object per line")
        yield f"{path}:{lineno}", f"{name}:{lineno}", record


def _parquet(ctx: ReadContext, name: str, opts: dict[str, Any]) -> Iterator[tuple[str, str, Record]]:
    path = ctx.files.root / name
    table = pq.read_table(io.BytesIO(ctx.files.read_bytes(name)))
    for i, row in enumerate(table.to_pylist()):
        record: Record = dict(enumerate(row.values()))
        record.update(row)
        yield f"{path} row {i}", f"{name}#{i}", record


_RECORDS: dict[str, Callable[..., Iterator[tuple[str, str, Record]]]] = {
    "tsv": partial(_delimited, delimiter="\t"),
    "csv": partial(_delimited, delimiter=","),
    "jsonl": _jsonl,
    "json": _json,
    "parquet": _parquet,
}


def read(fmt: str, ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    rows = []
    names = []
    headers: dict[str, list[str] | None] = {}
    for name, opts in file_entries(entry, ctx.options, OPTIONS, ctx, split):
        names.append(name)
        header: list[str] | None = None
        columns = opts.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise DataError(f"{ctx.card_path}: option 'columns' for {name}: expected a mapping "
                            "biobench column -> file column (name or index)")
        label_map = opts.get("label_map") or {}
        for where, default_id, record in _RECORDS[fmt](ctx, name, opts):
            if header is None and fmt in ("tsv", "csv"):
                header = [k for k in record if isinstance(k, str)]
            raw = {}
            for ours, theirs in columns.items():
                try:
                    raw[ours] = ([_cell(record, t) for t in theirs] if isinstance(theirs, list)
                                 else _cell(record, theirs))
                except KeyError as exc:
                    raise DataError(f"{where}: no column {exc.args[0]!r} (for '{ours}'); the row has "
                                    f"{sorted(map(str, record))}") from None
            if ctx.kind == "multilabel" and isinstance(raw.get("labels"), str):
                raw["labels"] = _split_labels(raw["labels"], opts, where)
            if label_map:
                for key in ("label", "labels", "answers"):
                    if isinstance(raw.get(key), list):
                        raw[key] = [label_map.get(str(v), v) for v in raw[key]]
                    elif raw.get(key) is not None:
                        raw[key] = label_map.get(str(raw[key]), raw[key])
            rows.append(normalise_row(ctx.kind, raw, ctx.labels, where, default_id))
        headers[name] = header
    notes = {"columns_read": {n: h for n, h in headers.items() if h}} if any(headers.values()) else {}
    return SplitRead(rows=rows, files=names, notes=notes)


def _split_labels(cell: str, opts: dict[str, Any], where: str) -> list[str]:
    sep = opts.get("label_separator")
    if not sep:
        raise DataError(f"{where}: labels cell is text; set option 'label_separator' to split it")
    return [part.strip() for part in cell.split(sep) if part.strip()]


READERS = {fmt: partial(read, fmt) for fmt in _RECORDS}
