"""What a reader is handed: the task's files (read through one object that hashes them) and
the card's options; and what it hands back: rows plus notes.

Reading every file through `SourceFiles` is what makes `data_sha256` trustworthy: the hash
covers exactly the bytes the rows came from, so a record can never be matched with a corpus
that changed under it. Files are decoded from bytes without newline translation, so BRAT
character offsets stay exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biobench.data.errors import DataError


class SourceFiles:
    """The files below one task folder; every read is recorded for the data hash."""

    def __init__(self, root: Path):
        self.root = root
        self._digests: dict[str, str] = {}

    def path(self, rel: str) -> Path:
        """The absolute path of a file that must exist (DataError naming it otherwise)."""
        p = self.root / rel
        if not p.is_file():
            raise DataError(f"{p}: file not found (expected by the task card below {self.root})")
        return p

    def folder(self, rel: str) -> Path:
        p = self.root / rel
        if not p.is_dir():
            raise DataError(f"{p}: folder not found (expected by the task card below {self.root})")
        return p

    def read_bytes(self, rel: str | Path) -> bytes:
        p = self.path(str(rel))
        data = p.read_bytes()
        self._digests[p.relative_to(self.root).as_posix()] = hashlib.sha256(data).hexdigest()
        return data

    def read_text(self, rel: str | Path) -> str:
        data = self.read_bytes(rel)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.root / rel}: not valid UTF-8 (byte {exc.start})") from exc

    def sha256(self) -> str:
        """sha256 over the sorted (relative path, content sha256) of every file read."""
        h = hashlib.sha256()
        for rel in sorted(self._digests):
            h.update(f"{rel}\0{self._digests[rel]}\n".encode())
        return h.hexdigest()


@dataclass
class ReadContext:
    """Everything a reader may use besides the split's file entry."""

    files: SourceFiles
    kind: str
    labels: tuple[str, ...] | None  # the card's declared labels (entity types for token_ner)
    options: dict[str, Any]  # the card's data.local.options
    card_path: str


@dataclass
class SplitRead:
    rows: list[dict[str, Any]]
    files: list[str]  # relative paths, for messages about this split
    notes: dict[str, Any] = field(default_factory=dict)
    # The label set the reader derived from the whole release (e.g. FRACCO's k most frequent codes),
    # used when the card says `labels: from_data`; None: labels come from the card or from train.
    labels: list[str] | None = None


def file_entries(entry: Any, defaults: dict[str, Any], allowed: set[str], ctx: ReadContext,
                 split: str) -> list[tuple[str, dict[str, Any]]]:
    """A card's file entry (a name, a list, or {file: name, <option>: value}) as (name, options).

    Per-file options override the card-level `options`; unknown keys are an error, so a typo
    in a card never silently falls back to a default.
    """
    items = entry if isinstance(entry, list) else [entry]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append((item, dict(defaults)))
        elif isinstance(item, dict) and isinstance(item.get("file"), str):
            extra = {k: v for k, v in item.items() if k != "file"}
            check_options(extra, allowed, ctx, f"data.local.files.{split}")
            out.append((item["file"], {**defaults, **extra}))
        else:
            raise DataError(f"{ctx.card_path}: field 'data.local.files.{split}': expected a file name, "
                            f"a list of them, or a mapping with 'file', got {item!r}")
    return out


def check_options(options: dict[str, Any], allowed: set[str], ctx: ReadContext, where: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataError(f"{ctx.card_path}: field '{where}.{unknown[0]}': expected one of {sorted(allowed)} "
                        "(unknown option for this reader)")


def one_file(ctx: ReadContext, split: str, entry: Any, allowed: set[str], what: str) -> str:
    """Check the card's options and that a split's entry is one file name (readers of one-file releases)."""
    check_options(ctx.options, allowed, ctx, "data.local.options")
    if not isinstance(entry, str):
        raise DataError(f"{ctx.card_path}: field 'data.local.files.{split}': expected {what}, got {entry!r}")
    return entry
