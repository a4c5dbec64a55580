"""CLISTER (French clinical sentence similarity), its native release:

- `train.csv`, `test.csv`: TAB-separated despite the name, header `id_1, id_2, sim`; `sim` a float 0-5.
- `id_to_sentence_train.json`, `id_to_sentence_test.json`: sentence key -> sentence. The key of an id is
  its first two `_`-separated fields (`<doc>_<n>_<...>` -> `<doc>_<n>`).

The release has no validation split. DrBenchmark's, reproduced exactly: number the train pairs 0..n-1 in
file order, seed Python's random with 4 and shuffle that list of ids three times, then the first
`int(n * 0.8333)` ids are train and the rest validation (600 pairs -> 499 / 101; test 400). The card
lists `train.csv` for both train and validation and this reader returns the part asked for.
"""

from __future__ import annotations

import csv
import io
import json
import random
from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import normalise_row
from biobench.data.source import ReadContext, SplitRead, one_file

OPTIONS: set[str] = set()
SEED, TRAIN_FRACTION = 4, 0.8333


def drbenchmark_carve(n: int) -> tuple[set[int], set[int]]:
    """(train indices, validation indices) of DrBenchmark's CLISTER rule."""
    ids = list(range(n))
    rng = random.Random(SEED)
    for _ in range(3):
        rng.shuffle(ids)
    cut = int(n * TRAIN_FRACTION)
    return set(ids[:cut]), set(ids[cut:])


def _pairs(ctx: ReadContext, name: str) -> list[dict[str, Any]]:
    sentences_file = f"id_to_sentence_{name.removesuffix('.csv')}.json"
    try:
        sentences = json.loads(ctx.files.read_text(sentences_file))
    except json.JSONDecodeError as exc:
        raise DataError(f"{ctx.files.root / sentences_file}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    reader = csv.DictReader(io.StringIO(ctx.files.read_text(name), newline=""), delimiter="\t")
    if reader.fieldnames is None or not {"id_1", "id_2", "sim"} <= set(reader.fieldnames):
        raise DataError(f"{ctx.files.root / name}:1: expected a TAB-separated header 'id_1 id_2 sim', "
                        f"got {reader.fieldnames}")
    rows = []
    for record in reader:
        where = f"{ctx.files.root / name}:{reader.line_num}"
        texts = []
        for col in ("id_1", "id_2"):
            key = "_".join(record[col].split("_")[:2])
            if key not in sentences:
                raise DataError(f"{where}: column {col!r}: sentence key {key!r} (from {record[col]!r}) is not in "
                                f"{ctx.files.root / sentences_file}")
            texts.append(sentences[key])
        rows.append(normalise_row("similarity", {"id": f"{record['id_1']}|{record['id_2']}", "text": texts[0],
                                                 "text_pair": texts[1], "score": record["sim"]}, None, where,
                                  f"{name}:{reader.line_num}"))
    return rows


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    entry = one_file(ctx, split, entry, OPTIONS, "train.csv or test.csv")
    rows = _pairs(ctx, entry)
    notes: dict[str, Any] = {}
    if split != "test":
        train, validation = drbenchmark_carve(len(rows))
        keep = train if split == "train" else validation
        notes["clister"] = (f"DrBenchmark carve of {entry}: random.seed(4), three shuffles, first "
                            f"int({len(rows)} * {TRAIN_FRACTION}) = {len(train)} pairs train, the rest validation")
        rows = [r for i, r in enumerate(rows) if i in keep]
    return SplitRead(rows=rows, files=[entry], notes=notes)
