"""The generic hub source: a Parquet-backed dataset read with `datasets.load_dataset`.

`datasets` >= 4 runs no loading scripts, so only repositories of data files work (for a scripted
repository, the `refs/convert/parquet` revision often holds the hub's own Parquet export). The
card maps biobench columns to hub columns (`hub.columns`, default: same name) and biobench splits
to hub splits (`hub.splits`, default: same name); ClassLabel integers become their names, so a
hub row and a local row of the same task are indistinguishable downstream.
"""

from __future__ import annotations

import hashlib
from typing import Any

import datasets

from biobench.cards import SPLITS, TaskCard
from biobench.data.errors import DataError
from biobench.data.schema import FEATURES, normalise_row


def _to_names(feature: Any, value: Any) -> Any:
    """ClassLabel ints (alone or in a list) -> label names; anything else unchanged."""
    if isinstance(feature, datasets.ClassLabel):
        return feature.int2str(value)
    inner = getattr(feature, "feature", None)
    if isinstance(inner, datasets.ClassLabel) and isinstance(value, list):
        return [inner.int2str(v) for v in value]
    return value


def read_hub(card: TaskCard, wanted: tuple[str, ...] = SPLITS) -> tuple[dict[str, list[dict[str, Any]]], str, str,
                                                                       dict[str, Any]]:
    """(rows per biobench split in `wanted`, data_sha256, source, notes) for the card's hub dataset."""
    hub = card.data.hub
    assert hub is not None
    try:
        dsd = datasets.load_dataset(hub.path, hub.name, revision=hub.revision)
    except Exception as exc:  # the hub raises many types (offline, missing, gated, scripted repo)
        raise DataError(f"hub dataset {hub.path!r} (config {hub.name!r}, revision {hub.revision!r}) could not be "
                        f"loaded: {exc}\nTo use a local copy instead: {card.data.obtain}") from exc
    rows: dict[str, list[dict[str, Any]]] = {}
    fingerprints = []
    for split in wanted:
        hub_split = hub.splits.get(split, split)
        if hub_split not in dsd:
            continue
        ds = dsd[hub_split]
        fingerprints.append(f"{hub_split}:{ds._fingerprint}")
        mapping = {ours: hub.columns.get(ours, ours) for ours in FEATURES[card.kind]}
        mapping = {ours: theirs for ours, theirs in mapping.items() if theirs in ds.column_names}
        out = []
        for i, record in enumerate(ds):
            raw = {ours: _to_names(ds.features[theirs], record[theirs]) for ours, theirs in mapping.items()}
            out.append(normalise_row(card.kind, raw, card.labels, f"hub:{hub.path} split {hub_split!r} row {i}",
                                     default_id=f"{hub_split}-{i}"))
        rows[split] = out
    revision = hub.revision or "main"
    digest = hashlib.sha256(f"{hub.path}\0{hub.name}\0{revision}\0{'|'.join(sorted(fingerprints))}".encode())
    notes = {"hub": {"path": hub.path, "name": hub.name, "revision": revision,
                     "splits": {s: hub.splits.get(s, s) for s in rows}}}
    return rows, digest.hexdigest(), f"hub:{hub.path}@{revision}", notes
