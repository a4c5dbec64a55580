"""(interface placeholder - being written) One loader for every task."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

READERS: dict[str, Callable[..., Any]] = {}


class DataError(ValueError):
    """Bad or missing data; the message names the file (and line) and what was expected."""


@dataclass
class LoadedTask:
    splits: Any  # datasets.DatasetDict with train / validation / test
    data_sha256: str
    source: str  # "local:<dir>" or "hub:<id>@<revision>"
    notes: dict[str, Any] = field(default_factory=dict)


def resolve_data_dir(data_dir: str | None) -> Path | None:
    value = data_dir or os.environ.get("BIOBENCH_DATA_DIR")
    return Path(value) if value else None


def local_available(card, data_dir: Path | None) -> bool:
    return bool(data_dir and card.data.local and (data_dir / card.data.local.dir).is_dir())


def load_task(card, data_dir: str | Path | None = None) -> LoadedTask:
    raise NotImplementedError
