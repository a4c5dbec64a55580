"""Task cards: one YAML file per task, parsed into a validated, immutable `TaskCard`.

A card says everything biobench needs to run a task and nothing about *how* (that lives in the
task kind): where the data comes from, which kind it is, its labels, its primary metric, its
maximum input length and any protocol overrides. Adding a task means adding a card.

Cards are found in the packaged `tasks/` folder (shipped as `biobench.tasks`) and in every folder
named by `BIOBENCH_TASKS_PATH` (os.pathsep-separated), so a user can add private tasks without
touching the package. A card's name is its file stem and must be unique.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# The primary metrics each kind can report (all on a 0-100 scale). The first one is the default.
KIND_METRICS: dict[str, tuple[str, ...]] = {
    # seqeval entity micro-F1: default (conlleval-compatible) mode, or strict IOB2 mode.
    "token_ner": ("seqeval_f1", "seqeval_f1_strict"),
    "classification": ("micro_f1", "macro_f1", "weighted_f1", "accuracy"),
    "multilabel": ("micro_f1", "macro_f1"),
    "similarity": ("pearson", "spearman"),
    # Multiple-choice QA with one or more correct options (FrenchMedMCQA): DrBenchmark's Hamming score
    # (per question |predicted & gold| / |predicted | gold|, averaged) and exact-match ratio.
    "multiple_choice": ("hamming_score", "emr"),
}
KINDS = tuple(KIND_METRICS)

SPLITS = ("train", "validation", "test")

_CARD_FIELDS = {
    "name", "version", "language", "kind", "description", "metric", "max_length", "labels",
    "data", "protocol", "citation", "suites", "notes",
}
_DATA_FIELDS = {"local", "hub", "split", "obtain", "release"}
_LOCAL_FIELDS = {"dir", "format", "files", "options"}
_HUB_FIELDS = {"path", "name", "revision", "columns", "splits"}


class CardError(ValueError):
    """A card is malformed. The message names the file and the field."""


@dataclass(frozen=True)
class LocalSource:
    """A release laid out on disk, relative to the data directory (e.g. `en/NCBI-disease-IOB`)."""

    dir: str
    format: str
    files: dict[str, Any]  # split -> file name, list of names, or folder (meaning depends on format)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HubSource:
    """A Parquet-backed dataset on the Hugging Face hub (no loading scripts: datasets>=4)."""

    path: str
    name: str | None = None
    revision: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # biobench column -> hub column
    splits: dict[str, str] = field(default_factory=dict)  # biobench split -> hub split


@dataclass(frozen=True)
class DataSpec:
    local: LocalSource | None
    hub: HubSource | None
    split: dict[str, Any] | None  # split rule for releases without an official split
    obtain: str  # where a user gets the data when it is absent
    release: str  # which release the numbers were produced on (carried into records)


@dataclass(frozen=True)
class TaskCard:
    name: str
    version: int
    language: str
    kind: str
    metric: str
    max_length: int
    labels: tuple[str, ...] | None  # None: derived from the training data (sorted)
    data: DataSpec
    protocol: dict[str, dict[str, Any]]  # preset name -> hyper-parameter overrides
    description: str
    citation: str
    suites: tuple[str, ...]
    notes: str
    path: str

    @property
    def card_hash(self) -> str:
        """Hash of the card's file, so a silently edited card never matches an old record."""
        return hashlib.sha256(Path(self.path).read_bytes()).hexdigest()[:16]


def _err(path: Path | str, field_name: str, expected: str, got: Any = None) -> CardError:
    got_text = "" if got is None else f", got {got!r}"
    return CardError(f"{path}: field '{field_name}': expected {expected}{got_text}")


def _check_keys(path: Path, where: str, mapping: Any, allowed: set[str]) -> dict:
    if not isinstance(mapping, dict):
        raise _err(path, where, "a mapping", mapping)
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _err(path, prefix + unknown[0], f"one of {sorted(allowed)} (unknown field)")
    return mapping


def _require(path: Path, raw: dict, key: str, types: type | tuple, expected: str, where: str = "") -> Any:
    full = f"{where}.{key}" if where else key
    if key not in raw or raw[key] is None:
        raise _err(path, full, f"{expected} (missing)")
    value = raw[key]
    if not isinstance(value, types) or isinstance(value, bool) and types is not bool:
        raise _err(path, full, expected, value)
    return value


def parse_card(path: str | Path) -> TaskCard:
    """Read and validate one card file. Every problem raises `CardError` naming file and field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CardError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise CardError(f"{path}: cannot read card: {exc}") from exc
    raw = _check_keys(path, "", raw, _CARD_FIELDS)

    name = _require(path, raw, "name", str, "a task name")
    if name != path.stem:
        raise _err(path, "name", f"the file stem '{path.stem}'", name)
    version = _require(path, raw, "version", int, "an integer card version")
    language = _require(path, raw, "language", str, "a language code such as 'en' or 'fr'")
    if not (2 <= len(language) <= 3 and language.isalpha() and language.islower()):
        raise _err(path, "language", "a lower-case ISO 639 code such as 'en' or 'fr'", language)
    kind = _require(path, raw, "kind", str, f"one of {list(KINDS)}")
    if kind not in KIND_METRICS:
        raise _err(path, "kind", f"one of {list(KINDS)}", kind)
    metric = raw.get("metric", KIND_METRICS[kind][0])
    if metric not in KIND_METRICS[kind]:
        raise _err(path, "metric", f"one of {list(KIND_METRICS[kind])} for kind '{kind}'", metric)
    max_length = _require(path, raw, "max_length", int, "a positive integer (tokens)")
    if max_length < 8:
        raise _err(path, "max_length", "a positive integer >= 8 (tokens)", max_length)

    labels = raw.get("labels")
    if labels is not None:
        if labels == "from_data":
            labels = None
        elif not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
            raise _err(path, "labels", "a non-empty list of strings or 'from_data'", labels)
        elif len(set(labels)) != len(labels):
            raise _err(path, "labels", "distinct labels", labels)
    labels_t = tuple(labels) if labels else None

    data = _parse_data(path, _require(path, raw, "data", dict, "a mapping with 'local' and/or 'hub'"))

    protocol = raw.get("protocol") or {}
    if not isinstance(protocol, dict) or not all(isinstance(v, dict) for v in protocol.values()):
        raise _err(path, "protocol", "a mapping of preset name -> {hyper-parameter: value}", protocol)
    from biobench.protocols import check_overrides  # local import: protocols imports nothing from here

    for preset, overrides in protocol.items():
        try:
            check_overrides(overrides)
        except ValueError as exc:
            raise _err(path, f"protocol.{preset}", str(exc)) from exc

    suites = raw.get("suites") or []
    if not (isinstance(suites, list) and all(isinstance(s, str) for s in suites)):
        raise _err(path, "suites", "a list of suite names", suites)

    return TaskCard(
        name=name,
        version=version,
        language=language,
        kind=kind,
        metric=metric,
        max_length=max_length,
        labels=labels_t,
        data=data,
        protocol={k: dict(v) for k, v in protocol.items()},
        description=str(raw.get("description") or "").strip(),
        citation=str(_require(path, raw, "citation", str, "a citation (BibTeX or reference text)")).strip(),
        suites=tuple(suites),
        notes=str(raw.get("notes") or "").strip(),
        path=str(path),
    )


def _parse_data(path: Path, raw: dict) -> DataSpec:
    raw = _check_keys(path, "data", raw, _DATA_FIELDS)
    local = hub = None
    if raw.get("local") is not None:
        loc = _check_keys(path, "data.local", raw["local"], _LOCAL_FIELDS)
        files = _require(path, loc, "files", dict, "a mapping split -> file(s)", "data.local")
        bad = sorted(set(files) - set(SPLITS))
        if bad:
            raise _err(path, f"data.local.files.{bad[0]}", f"a split name in {list(SPLITS)}")
        local = LocalSource(
            dir=_require(path, loc, "dir", str, "a folder relative to the data directory", "data.local"),
            format=_require(path, loc, "format", str, "a reader name", "data.local"),
            files=dict(files),
            options=dict(loc.get("options") or {}),
        )
        from biobench.data import READERS  # the reader registry

        if local.format not in READERS:
            raise _err(path, "data.local.format", f"one of {sorted(READERS)}", local.format)
    if raw.get("hub") is not None:
        h = _check_keys(path, "data.hub", raw["hub"], _HUB_FIELDS)
        hub = HubSource(
            path=_require(path, h, "path", str, "a hub dataset id", "data.hub"),
            name=h.get("name"),
            revision=h.get("revision"),
            columns=dict(h.get("columns") or {}),
            splits=dict(h.get("splits") or {}),
        )
    if local is None and hub is None:
        raise _err(path, "data", "at least one of 'local' or 'hub'")
    split = raw.get("split")
    if split is not None and not isinstance(split, dict):
        raise _err(path, "data.split", "a split rule mapping", split)
    obtain = _require(path, raw, "obtain", str, "where a user can obtain the data", "data")
    return DataSpec(local=local, hub=hub, split=split, obtain=obtain.strip(), release=str(raw.get("release") or "").strip())


# ----------------------------------------------------------------------------------------------
# Registry


def card_dirs() -> list[Path]:
    """The packaged task folder first, then the user's folders from BIOBENCH_TASKS_PATH."""
    dirs = [Path(str(resources.files("biobench.tasks")))]
    for extra in os.environ.get("BIOBENCH_TASKS_PATH", "").split(os.pathsep):
        if extra:
            dirs.append(Path(extra))
    return dirs


def load_registry(dirs: list[Path] | None = None) -> dict[str, TaskCard]:
    """Parse every `*.yaml` card below the given folders. Duplicate names are an error."""
    registry: dict[str, TaskCard] = {}
    for root in dirs or card_dirs():
        if not root.is_dir():
            raise CardError(f"{root}: task card folder does not exist (check BIOBENCH_TASKS_PATH)")
        for file in sorted(root.rglob("*.yaml")):
            card = parse_card(file)
            if card.name in registry:
                raise CardError(f"{file}: field 'name': '{card.name}' already defined in {registry[card.name].path}")
            registry[card.name] = card
    return registry


def get_card(name: str, registry: dict[str, TaskCard] | None = None) -> TaskCard:
    registry = registry if registry is not None else load_registry()
    if name in registry:
        return registry[name]
    if name.endswith(".yaml") and Path(name).is_file():
        return parse_card(name)
    raise CardError(f"unknown task '{name}': known tasks are {', '.join(sorted(registry))}")


def suites(registry: dict[str, TaskCard] | None = None) -> dict[str, list[str]]:
    """Suite name -> task names, as declared by the cards' `suites` field."""
    registry = registry if registry is not None else load_registry()
    out: dict[str, list[str]] = {}
    for card in registry.values():
        for s in card.suites:
            out.setdefault(s, []).append(card.name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def suite_tasks(suite: str, registry: dict[str, TaskCard] | None = None) -> list[str]:
    all_suites = suites(registry)
    if suite not in all_suites:
        raise CardError(f"unknown suite '{suite}': known suites are {', '.join(all_suites) or '(none)'}")
    return all_suites[suite]
