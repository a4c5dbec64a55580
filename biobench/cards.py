"""Task cards: one YAML file per task, parsed into a validated, immutable `TaskCard`.

A card says everything biobench needs to run a task and nothing about *how* (that lives in the
task kind): where the data comes from, which kind it is, its labels, its primary metric, its
maximum input length and any protocol overrides. Adding a task means adding a card.

Cards are found in the packaged `tasks/` folder (shipped as `biobench.tasks`) and in every folder
named by `BIOBENCH_TASKS_PATH` (os.pathsep-separated), so a user can add private tasks without
touching the package. A card's name is its file stem and must be unique. A broken user card (bad
field, duplicate name, missing folder) is reported in one line on stderr and left out of the registry,
so it blocks only the commands that name it; a broken packaged card is a bug and raises.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from biobench.formats import FORMATS

# The primary metrics each kind can report (all on a 0-100 scale). A card must name its own: none is defaulted.
KIND_METRICS: dict[str, tuple[str, ...]] = {
    # seqeval entity micro-F1: default (conlleval-compatible) mode, or strict IOB2 mode.
    "token_ner": ("seqeval_f1", "seqeval_f1_strict"),
    # micro_f1_positive: micro-F1 over every class but the card's `scoring.negative_class` (BLURB's RE tasks).
    "classification": ("micro_f1", "macro_f1", "weighted_f1", "accuracy", "micro_f1_positive"),
    # micro_f1_document: micro-F1 over (document, label) pairs, rows gathered by `group` (BLURB's HoC).
    "multilabel": ("micro_f1", "macro_f1", "micro_f1_document"),
    "similarity": ("pearson", "spearman"),
    # Multiple-choice QA with one or more correct options (FrenchMedMCQA): DrBenchmark's Hamming score
    # (per question |predicted & gold| / |predicted | gold|, averaged) and exact-match ratio.
    "multiple_choice": ("hamming_score", "emr"),
    # Span NER (nested entities): micro-F1 over (document, char start, char end, label), exact match or any
    # same-label overlap (biobench.metrics.span_scores).
    "span_ner": ("exact_span_f1", "partial_span_f1"),
}
KINDS = tuple(KIND_METRICS)

SPLITS = ("train", "validation", "test")

_CARD_FIELDS = {
    "name", "version", "language", "kind", "description", "metric", "max_length", "labels",
    "data", "protocol", "citation", "suites", "notes", "scoring", "unit",
}
# `scoring`: how a kind scores beyond its defaults. negative_class (classification): the "no relation"
# class left out of micro_f1_positive; documents (multilabel): rows are parts of their `group` document,
# adds micro_f1_document; metric: {preset: metric}, the primary metric under that protocol preset.
_SCORING_FIELDS = {"classification": {"negative_class", "metric"}, "multilabel": {"documents", "metric"}}
_METRIC_NEEDS = {"micro_f1_positive": "negative_class", "micro_f1_document": "documents"}
_DATA_FIELDS = {"local", "hub", "split", "obtain", "release", "fetch"}
_FETCH_FIELDS = {"base", "packaged", "files", "manifest", "archive", "sha256"}
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
class FetchSpec:
    """A public release pinned file by file, for `biobench data fetch`. `files` always lists what ends up
    at `<data dir>/<data.local.dir>/<path>`, each with its sha256; the source says where the bytes come from:
    - `base` alone: each file is downloaded from `base/<path>` (a commit-pinned URL, so the bytes cannot change);
    - `base` + `archive`: one zip at `base/<archive>`, itself pinned by `archive_sha256`, whose members at the
      same paths are extracted (members not listed, e.g. other languages or macOS junk, are skipped);
    - `packaged`: a folder of the installed biobench package holding the files (a table biobench derived
      from a release no standard library can read, e.g. BIOSSES's .rar of .docx tables)."""

    base: str  # e.g. https://raw.githubusercontent.com/<org>/<repo>/<commit>/<folder>; "" when packaged
    files: dict[str, str]  # path relative to base (or the archive) and to data.local.dir -> sha256 (64 hex digits)
    archive: str | None = None  # a .zip below base holding `files` at the same paths
    archive_sha256: str | None = None
    packaged: str | None = None  # a folder relative to the biobench package, e.g. demo_data/en/biosses


@dataclass(frozen=True)
class DataSpec:
    local: LocalSource | None
    hub: HubSource | None
    split: dict[str, Any] | None  # split rule for releases without an official split
    obtain: str  # where a user gets the data when it is absent
    release: str  # which release the numbers were produced on (carried into records)
    fetch: FetchSpec | None = None  # pinned public files; None: the user obtains the data (see obtain)


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
    scoring: dict[str, Any] = field(default_factory=dict)  # see _SCORING_FIELDS
    unit: str = ""  # what one scored example is, when the card states it (HoC: sentence vs abstract)

    def metric_for(self, protocol: str) -> str:
        """The primary metric under a protocol preset: `scoring.metric[preset]`, else `metric`."""
        return self.scoring.get("metric", {}).get(protocol, self.metric)

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
    metric = _require(path, raw, "metric", str, f"one of {list(KIND_METRICS[kind])} for kind '{kind}'")
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

    scoring = _parse_scoring(path, raw.get("scoring"), kind, metric, labels_t)
    unit = raw.get("unit") or ""
    if not isinstance(unit, str):
        raise _err(path, "unit", "a short text naming what one example is (e.g. 'sentence')", unit)

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
        scoring=scoring,
        unit=unit.strip(),
    )


def _parse_scoring(path: Path, raw: Any, kind: str, metric: str, labels: tuple[str, ...] | None) -> dict[str, Any]:
    """Validate `scoring` (see _SCORING_FIELDS): every metric the card may report must be computable."""
    if raw is None:
        raw = {}
    if raw and kind not in _SCORING_FIELDS:
        raise _err(path, "scoring", f"no scoring options for kind '{kind}'", raw)
    scoring = dict(_check_keys(path, "scoring", raw, _SCORING_FIELDS.get(kind, set())))
    if "negative_class" in scoring:
        negative = scoring["negative_class"]
        if not isinstance(negative, str) or (labels is not None and negative not in labels):
            raise _err(path, "scoring.negative_class", f"one of the card's labels {list(labels or [])}", negative)
    if "documents" in scoring and not isinstance(scoring["documents"], bool):
        raise _err(path, "scoring.documents", "true or false", scoring["documents"])
    by_preset = scoring.get("metric", {})
    if not (isinstance(by_preset, dict) and all(isinstance(k, str) for k in by_preset)):
        raise _err(path, "scoring.metric", "a mapping of protocol preset -> metric name", by_preset)
    for preset, name in by_preset.items():
        if name not in KIND_METRICS[kind]:
            raise _err(path, f"scoring.metric.{preset}", f"one of {list(KIND_METRICS[kind])} for kind '{kind}'", name)
    for where, name in [("metric", metric)] + [(f"scoring.metric.{k}", v) for k, v in by_preset.items()]:
        need = _METRIC_NEEDS.get(name)
        if need and not scoring.get(need):
            raise _err(path, where, f"'scoring.{need}' set for metric '{name}'", name)
    return scoring


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
        if local.format not in FORMATS:  # one reader each in biobench.data (no import back from here)
            raise _err(path, "data.local.format", f"one of {sorted(FORMATS)}", local.format)
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
    fetch = _parse_fetch(path, raw["fetch"], local) if raw.get("fetch") is not None else None
    return DataSpec(local=local, hub=hub, split=split, obtain=obtain.strip(), release=str(raw.get("release") or "").strip(),
                    fetch=fetch)


def _parse_fetch(path: Path, raw: Any, local: LocalSource | None) -> FetchSpec:
    """`data.fetch` fills the `data.local` folder (see FetchSpec). The source is `base: https://...` (raw files
    at a pinned commit; with `archive: NAME.zip` and its `sha256`, one zip there) or `packaged: FOLDER`; the
    contents are `files: {relative/path: sha256}` or `manifest: NAME.sha256` beside the card."""
    raw = _check_keys(path, "data.fetch", raw, _FETCH_FIELDS)
    if local is None:
        raise _err(path, "data.fetch", "a 'data.local' folder beside it (the folder fetch fills)")
    if ("base" in raw) == ("packaged" in raw):
        raise _err(path, "data.fetch", "exactly one of 'base' (an https:// URL of a pinned release) or 'packaged' "
                   "(a folder of the biobench package)")
    base, packaged = "", None
    if "base" in raw:
        base = _require(path, raw, "base", str, "an https:// URL of a pinned release (e.g. raw files at a commit)",
                        "data.fetch")
        if not base.startswith("https://"):
            raise _err(path, "data.fetch.base", "an https:// URL of a pinned release", base)
    else:
        packaged = raw["packaged"]
        if not (isinstance(packaged, str) and _inside(packaged) and (_package_root() / packaged).is_dir()):
            raise _err(path, "data.fetch.packaged", "a folder of the installed biobench package (e.g. "
                       "demo_data/en/biosses)", packaged)
    archive = archive_sha256 = None
    if "sha256" in raw and "archive" not in raw:
        raise _err(path, "data.fetch.sha256", "an 'archive' beside it (sha256 pins the archive; files carry their own)")
    if "archive" in raw:
        archive, archive_sha256 = raw["archive"], raw.get("sha256")
        if packaged is not None:
            raise _err(path, "data.fetch.archive", "no archive with 'packaged' (the package holds the files themselves)")
        if not (isinstance(archive, str) and _inside(archive) and archive.endswith(".zip")):
            raise _err(path, "data.fetch.archive", "the path of a .zip below base (the archive format fetch extracts)",
                       archive)
        if not _is_sha256(archive_sha256):
            raise _err(path, "data.fetch.sha256", "the archive's sha256 (64 lower-case hex digits)", archive_sha256)
    if ("files" in raw) == ("manifest" in raw):
        raise _err(path, "data.fetch", "exactly one of 'files' (relative path -> sha256) or 'manifest' (a sha256sum "
                   "file beside the card, for releases of many files)")
    if "manifest" in raw:
        files = _read_manifest(path, raw["manifest"])
    else:
        files = _require(path, raw, "files", dict, "a mapping relative path -> sha256", "data.fetch")
    if not files:
        raise _err(path, "data.fetch.files", "at least one file")
    for rel, digest in files.items():
        if not (isinstance(rel, str) and _inside(rel)):
            raise _err(path, f"data.fetch.files.{rel}", "a relative path inside the task folder (no '..', '/' or '\\' "
                       "at the start)")
        if not _is_sha256(digest):
            raise _err(path, f"data.fetch.files.{rel}", "a sha256 (64 lower-case hex digits)", digest)
    return FetchSpec(base=base.rstrip("/"), files=dict(files), archive=archive, archive_sha256=archive_sha256,
                     packaged=packaged)


def _inside(rel: str) -> bool:
    """A relative path that stays inside its folder: no leading '/', no '\\', no empty, '.' or '..' part."""
    return not rel.startswith("/") and "\\" not in rel and all(p not in ("", ".", "..") for p in rel.split("/"))


def _is_sha256(digest: Any) -> bool:
    return isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def _package_root() -> Path:
    """The installed biobench package (where `data.fetch.packaged` folders live)."""
    return Path(str(resources.files("biobench")))


def _read_manifest(card: Path, name: Any) -> dict[str, str]:
    """`data.fetch.manifest: NAME`: the file NAME beside the card, in `sha256sum` format (one `<sha256>  <path>`
    a line), pins a release of thousands of files (HoC, JNLPBA, QUAERO) without a card thousands of lines long.
    Several cards of one release share it. Paths and digests are then checked like `files`."""
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".sha256"):
        raise _err(card, "data.fetch.manifest", "the name of a .sha256 file beside the card", name)
    manifest = Path(card).parent / name
    if not manifest.is_file():
        raise _err(card, "data.fetch.manifest", f"an existing file ({manifest})", name)
    files: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or not rel:
            raise CardError(f"{manifest}:{number}: expected '<sha256>  <relative path>' (sha256sum format), got {line!r}")
        files[rel] = digest
    return files


# ----------------------------------------------------------------------------------------------
# Registry


def card_dirs() -> list[Path]:
    """The packaged task folder first, then the user's folders from BIOBENCH_TASKS_PATH."""
    dirs = [packaged_dir()]
    for extra in os.environ.get("BIOBENCH_TASKS_PATH", "").split(os.pathsep):
        if extra:
            dirs.append(Path(extra))
    return dirs


def packaged_dir() -> Path:
    return Path(str(resources.files("biobench.tasks")))


class Registry(dict):
    """Task name -> TaskCard, plus `broken`: the user cards left out (file stem -> their CardError), so a
    command that names one still gets its error rather than 'unknown task'."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: dict[str, CardError] = {}


_REPORTED: set[str] = set()  # each broken user card is reported once per process


def _report(exc: CardError) -> None:
    line = " ".join(str(exc).split())
    if line not in _REPORTED:
        _REPORTED.add(line)
        print(f"biobench: skipped a broken task card: {line}", file=sys.stderr)


def load_registry(dirs: list[Path] | None = None) -> Registry:
    """Parse every `*.yaml` card below the given folders. Duplicate names are an error. A problem in a
    user folder (anything but the packaged one) is reported and that card skipped (see module doc)."""
    registry = Registry()
    packaged = packaged_dir()
    for root in dirs or card_dirs():
        strict = root == packaged
        try:
            if not root.is_dir():
                raise CardError(f"{root}: task card folder does not exist (check BIOBENCH_TASKS_PATH)")
        except CardError as exc:
            if strict:
                raise
            _report(exc)
            continue
        for file in sorted(root.rglob("*.yaml")):
            try:
                card = parse_card(file)
                if card.name in registry:
                    raise CardError(f"{file}: field 'name': '{card.name}' already defined in {registry[card.name].path}")
            except CardError as exc:
                if strict:
                    raise
                _report(exc)
                registry.broken.setdefault(file.stem, exc)
                continue
            registry[card.name] = card
    return registry


def get_card(name: str, registry: dict[str, TaskCard] | None = None) -> TaskCard:
    registry = registry if registry is not None else load_registry()
    if name in registry:
        return registry[name]
    if name.endswith(".yaml") and Path(name).is_file():
        return parse_card(name)
    if name in getattr(registry, "broken", {}):
        raise registry.broken[name]
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
