"""RunRecord: one JSON file per model × task × seed, written once and atomically.

Layout: `<out>/<model-slug>/<task>/seed-<S>.json`. A record is written to a temporary file in
the same folder, flushed to disk, then renamed over the final name, so a crash or a kill leaves
either the old state or the complete new record, never a truncated file. Files get the mode the
process umask allows (0644 under the usual 022), like any file the user writes: a lab's shared
results folder stays readable to colleagues.

Per-example test predictions (for example-level significance, `biobench.significance`) go to a side
file next to the record, `seed-<S>.pred.json.gz`: gzip-compressed JSON with the gold and predicted
value of every test example, in the form the task kind exports (`Kind.example_predictions`). It is
written first (atomically), then the record, which names it and stores its sha256: a record never
points at a side file that is missing or from another run (the reader checks the hash).

Resume rule (copied from inspect_ai's eval sets): a cell is done when its record has
`status: ok` and the same identity (model, model_sha, task, card_version, card_hash,
data_sha256, protocol). A failed record or one with another identity is run again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RECORD_FORMAT = 1


@dataclass
class RunRecord:
    model: str
    model_sha: str
    task: str
    language: str
    kind: str
    seed: int
    protocol: dict[str, Any]  # the resolved Protocol, every hyper-parameter
    metric: str  # name of the primary metric
    dev: dict[str, float] = field(default_factory=dict)  # all dev metrics of the best epoch
    test: dict[str, float] = field(default_factory=dict)
    primary: float | None = None  # test value of the primary metric, 0-100
    n_train: int = 0
    n_dev: int = 0
    n_test: int = 0
    epochs_run: int = 0
    best_epoch: int = 0
    duration_s: float = 0.0
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)  # code and library versions (biobench.provenance)
    weights_sha256: str = ""  # safetensors content hash: one value for a hub id and a local copy of its weights
    data_sha256: str = ""
    data_release: str = ""
    definition: dict[str, Any] = field(default_factory=dict)  # task definition: kind, metric, release, split, unit
    predictions: dict[str, Any] = field(default_factory=dict)  # side file of per-example test predictions
    card_version: int = 0
    card_hash: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # truncation counts, split rule, flattening losses...
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch train loss and dev scores
    status: str = "ok"  # ok | failed
    error: str | None = None
    source: str = "run"  # run | published
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    format: int = RECORD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunRecord":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """What must match for an existing record to stand in for a new run (see module doc)."""
        return {
            "model": self.model,
            "model_sha": self.model_sha,
            "task": self.task,
            "seed": self.seed,
            "card_version": self.card_version,
            "card_hash": self.card_hash,
            "data_sha256": self.data_sha256,
            "protocol": self.protocol,
        }


def model_slug(model: str) -> str:
    """A folder-safe name for a hub id or a local path: `org/name` -> `org__name`; a local folder ->
    `<its name>-<8 hex of its absolute path>`, so that two checkpoints in folders of the same name (every
    `.../final`, `.../model`) never share a record path, where one would overwrite the other's results."""
    text = model.rstrip("/")
    suffix = ""
    if os.path.isdir(text):
        path = os.path.abspath(text)
        text, suffix = os.path.basename(path), "-" + hashlib.sha1(path.encode()).hexdigest()[:8]
    return (re.sub(r"[^A-Za-z0-9._-]+", "__", text).strip("_") or "model") + suffix


def record_path(out: str | Path, model: str, task: str, seed: int) -> Path:
    return Path(out) / model_slug(model) / task / f"seed-{seed}.json"


def _umask() -> int:
    """The process umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename; the file gets 0666 minus the umask (mkstemp's 0600
    would make a shared results folder unreadable to everyone but its writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


PREDICTIONS_SUFFIX = ".pred.json.gz"
PREDICTIONS_FORMAT = 1


def predictions_path(record_file: str | Path) -> Path:
    """`.../seed-3.json` -> `.../seed-3.pred.json.gz`."""
    record_file = Path(record_file)
    return record_file.with_name(record_file.name.removesuffix(".json") + PREDICTIONS_SUFFIX)


def write_record(record: RunRecord, path: str | Path, predictions: dict[str, Any] | None = None) -> Path:
    """Write atomically: temp file in the same folder, fsync, rename.

    `predictions` ({"gold": [...], "pred": [...], "labels": [...]}, one entry per test example) is
    written first to the side file; the record then names it and carries its sha256."""
    path = Path(path)
    if predictions is not None:
        side = predictions_path(path)
        payload = dict(predictions, format=PREDICTIONS_FORMAT, model=record.model, task=record.task,
                       seed=record.seed, kind=record.kind, metric=record.metric)
        text = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        data = gzip.compress(text, compresslevel=9, mtime=0)
        _write_atomic(side, data)
        record.predictions = {"file": side.name, "sha256": hashlib.sha256(data).hexdigest(),
                              "examples": len(predictions["gold"]), "bytes": len(data)}
    _write_atomic(path, (json.dumps(record.to_dict(), indent=2, sort_keys=False) + "\n").encode("utf-8"))
    return path


def read_predictions(record: RunRecord, record_file: str | Path) -> dict[str, Any]:
    """The side file a record names, checked against the sha256 the record stores.

    Raises RecordError (naming the file) when the record names none, or the file is missing, altered
    or unreadable."""
    info = record.predictions or {}
    if not info.get("file"):
        raise RecordError(f"{record_file}: no per-example predictions (record made before they were kept, "
                          "or by a kind that does not export them)")
    side = Path(record_file).with_name(info["file"])
    try:
        data = side.read_bytes()
    except OSError as exc:
        raise RecordError(f"{side}: predictions file named by {Path(record_file).name} is unreadable: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise RecordError(f"{side}: sha256 differs from the one its record stores (another run's file?)")
    try:
        raw = json.loads(gzip.decompress(data))
    except (OSError, ValueError) as exc:
        raise RecordError(f"{side}: not gzip-compressed JSON: {exc}") from exc
    if not isinstance(raw, dict) or len(raw.get("gold", ())) != len(raw.get("pred", ())):
        raise RecordError(f"{side}: expected 'gold' and 'pred' lists of one length")
    return raw


class RecordError(ValueError):
    """A record file is unreadable or malformed; the message names the file."""


def read_record(path: str | Path) -> RunRecord:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not a readable JSON record: {exc}") from exc
    if not isinstance(raw, dict):
        raise RecordError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in ("model", "task", "seed", "metric", "status") if k not in raw]
    if missing:
        raise RecordError(f"{path}: field '{missing[0]}' missing (not a biobench record?)")
    return RunRecord.from_dict(raw)


def find_records(root: str | Path) -> list[Path]:
    """Every record file below `root` (temporary files of interrupted writes are ignored)."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))


def existing_ok(path: str | Path, identity: dict[str, Any]) -> RunRecord | None:
    """The record at `path` if it is `ok` and matches `identity`; else None (the cell must run)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        rec = read_record(path)
    except RecordError:
        return None
    if rec.status != "ok":
        return None
    return rec if rec.identity() == identity else None
