"""One loader for every task: card -> `LoadedTask` (a DatasetDict with train / validation / test).

Source rule, with nothing falling back silently:
1. a data directory is given (`--data-dir`, else `BIOBENCH_DATA_DIR`) and the card has
   `data.local`: read `<data dir>/<local.dir>` with the card's reader; if that folder is missing
   it is an error (the user asked for local data), never a quiet switch to the hub;
2. no data directory, or a card without `data.local`, and the card has `data.hub`: the hub;
3. otherwise a `DataError` that says where to obtain the data and where to put it.

Then the card's split rule (`biobench.data.splits`) makes train / validation / test, the label list
is resolved (the card's, in its order, else the sorted set seen in train) and every split must be
non-empty. `notes` records how the data was made (split rule, flattening and alignment counts,
reader counts) and is copied into each run record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import datasets

from biobench.cards import SPLITS, TaskCard
from biobench.data import (brat, brat_codes, clister, conll, ddi, deid, hoc, meddialog, phenotype, pubmedqa, splits,
                           tabular)
from biobench.data.errors import DataError
from biobench.data.hub import read_hub
from biobench.data.schema import FEATURES, row_labels
from biobench.data.source import ReadContext, SourceFiles

READERS: dict[str, Callable[..., Any]] = {
    "conll": conll.read, "brat": brat.read, "hoc": hoc.read, "brat_codes": brat_codes.read,
    "phenotype": phenotype.read, "deid": deid.read, "meddialog": meddialog.read, "clister": clister.read,
    "ddi": ddi.read, "pubmedqa": pubmedqa.read, **tabular.READERS}

__all__ = ["READERS", "DataError", "LoadedTask", "load_task", "local_available", "resolve_data_dir"]


@dataclass
class LoadedTask:
    splits: datasets.DatasetDict  # exactly train, validation, test; none empty
    labels: list[str] | None  # entity types (token_ner), class names; None for similarity
    data_sha256: str
    source: str  # "local:<abs dir>" or "hub:<id>@<revision>"
    notes: dict[str, Any] = field(default_factory=dict)


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """--data-dir, else $BIOBENCH_DATA_DIR, else None."""
    value = data_dir or os.environ.get("BIOBENCH_DATA_DIR")
    return Path(value) if value else None


def local_available(card: TaskCard, data_dir: Path | None) -> bool:
    return bool(data_dir and card.data.local and (data_dir / card.data.local.dir).is_dir())


def _wanted_splits(card: TaskCard) -> tuple[str, ...]:
    """The release splits a card must provide: all three, or train + test for a holdout rule,
    or any for a random rule (everything is pooled)."""
    rule = (card.data.split or {}).get("rule")
    return {"holdout": ("train", "test"), "random": ()}.get(rule, SPLITS)


def _not_found(card: TaskCard, data_dir: Path | None) -> DataError:
    local = card.data.local
    if data_dir is None:
        where = ("no data directory given (--data-dir or BIOBENCH_DATA_DIR)"
                 + ("" if card.data.hub else " and the card names no hub dataset"))
    else:
        where = f"{data_dir / local.dir} does not exist" if local else f"{data_dir}: the card has no local layout"
    layout = (f" Put the release in <data dir>/{local.dir} laid out as the card expects "
              f"({', '.join(f'{s}: {v}' for s, v in local.files.items())}), then pass --data-dir <data dir> "
              "or set BIOBENCH_DATA_DIR.") if local else ""
    return DataError(f"task '{card.name}': {where}. Obtain the data: {card.data.obtain}{layout}")


def _read_local(card: TaskCard, task_dir: Path) -> tuple[dict[str, list], dict[str, list[str]], str, dict]:
    local = card.data.local
    assert local is not None
    ctx = ReadContext(files=SourceFiles(task_dir), kind=card.kind, labels=card.labels,
                      options=dict(local.options), card_path=card.path)
    reader = READERS[local.format]
    release: dict[str, list] = {}
    files: dict[str, list[str]] = {}
    notes: dict[str, Any] = {}
    for split in SPLITS:
        if split not in local.files:
            continue
        if card.data.split and card.data.split["rule"] == "holdout" and split == "validation":
            raise DataError(f"{card.path}: field 'data.local.files.validation': a holdout rule carves validation "
                            "out of train; list no validation files")
        result = reader(ctx, split, local.files[split])
        release[split], files[split] = result.rows, result.files
        if result.labels is not None:  # union over the release's splits
            notes["reader_labels"] = sorted(set(notes.get("reader_labels", [])) | set(result.labels))
        for key, value in result.notes.items():
            notes.setdefault(key, {})[split] = value
    notes["files"] = files
    return release, files, ctx.files.sha256(), notes


def _resolve_labels(card: TaskCard, final: dict[str, list[dict[str, Any]]],
                    reader_labels: list[str] | None = None) -> list[str] | None:
    if card.kind == "similarity":
        return None
    if card.labels is not None:
        return list(card.labels)
    if reader_labels is not None:  # derived by the reader from the whole release (rows already checked)
        return list(reader_labels)
    def seen(rows: list[dict[str, Any]]) -> set[str]:
        if card.kind == "token_ner":
            return {tag[2:] for row in rows for tag in row["tags"] if tag != "O"}
        return {label for row in rows for label in row_labels(card.kind, row)}
    labels = seen(final["train"])
    for split in ("validation", "test"):
        extra = sorted(seen(final[split]) - labels)
        if extra:
            raise DataError(f"task '{card.name}': split '{split}' has label {extra[0]!r}, never seen in train; "
                            f"declare the label set with 'labels:' in {card.path}")
    return sorted(labels)


def _check_release(card: TaskCard, release: dict[str, list], files: dict[str, list[str]],
                   wanted: tuple[str, ...]) -> None:
    """Every split the card needs was read, and none is empty."""
    if not release:
        raise DataError(f"{card.path}: no split to read (no files listed, or no matching hub split)")
    for split in wanted:
        if split not in release:
            raise DataError(f"{card.path}: split '{split}' has no source (no files / hub split) and no "
                            "'data.split' rule makes it")
    for split, rows in release.items():
        if not rows:
            raise DataError(f"task '{card.name}': split '{split}' is empty (read from {', '.join(files[split])})")


def load_task(card: TaskCard, data_dir: str | Path | None = None) -> LoadedTask:
    """Read the card's data (see the module doc for which source), split it and check it."""
    root = Path(data_dir) if data_dir is not None else resolve_data_dir(None)
    if card.data.split is not None:
        splits.check_rule(card.data.split, card.path)
    wanted = _wanted_splits(card)
    if root is not None and card.data.local is not None:
        task_dir = (root / card.data.local.dir).resolve()
        if not task_dir.is_dir():
            raise _not_found(card, root)
        release, files, sha, notes = _read_local(card, task_dir)
        source = f"local:{task_dir}"
    elif card.data.hub is not None:
        release, sha, source, notes = read_hub(card, wanted or SPLITS)
        files = {s: [f"{source} split {notes['hub']['splits'][s]!r}"] for s in release}
    else:
        raise _not_found(card, root)

    _check_release(card, release, files, wanted)
    final, rule_text = splits.apply_rule(card.data.split, release, card.path)
    for split in SPLITS:
        if not final[split]:
            raise DataError(f"task '{card.name}': split '{split}' is empty after the split rule "
                            f"({rule_text}) in {card.path}")
    reader_labels = notes.pop("reader_labels", None)
    labels = _resolve_labels(card, final, reader_labels)
    dsd = datasets.DatasetDict({s: datasets.Dataset.from_list(final[s], features=FEATURES[card.kind])
                                for s in SPLITS})
    notes = {"split_rule": rule_text, "release": card.data.release, **notes}
    if labels is not None:
        notes["labels_from"] = ("card" if card.labels is not None else
                                "reader" if reader_labels is not None else "train")
    return LoadedTask(splits=dsd, labels=labels, data_sha256=sha, source=source, notes=notes)
