"""BRAT standoff: `<doc>.txt` + `<doc>.ann` pairs in a folder, turned into token_ner or span_ner rows.

Parsed from `.ann`: `T` lines (text-bound entities, `T1<TAB>TYPE start end[;start end...]<TAB>text`,
offsets in Unicode code points into the `.txt`, end exclusive) and `#` AnnotatorNotes (checked to
point at an entity, counted). Other line types (relations, events, attributes, normalisations) are
not needed for NER: they are counted in the notes, not read. Every `T` line is verified against the
text: offsets inside the document and the annotated text equal to the slice (fragments joined by
one space). A mismatch means the `.txt` and `.ann` do not belong together, so it is an error with
file:line rather than a silently misplaced entity.

Flattening, tokenization and sentence splitting are in `biobench.data.spans` (one rule for every
standoff corpus). Entity counts are reported per release split, before any holdout carve.

A card of kind `span_ner` gets rows that keep every entity as a character span (nested, crossing and
same-span ones included; a discontinuous one as its extent, `spans.span_rows`), with two card options
that reproduce the paper's QUAERO inputs: `samples: line` (one row per line, EMEA) and `nested:
outermost` (MEDLINE). A fragment list whose fragments overlap is an error, as are offsets outside the
text and a type the card does not declare; every message names the file, line and annotation id.
"""

from __future__ import annotations

from collections import Counter
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator

from biobench.data.errors import DataError
from biobench.data.schema import check_label
from biobench.data.source import ReadContext, SourceFiles, SplitRead, check_options
from biobench.data.spans import TOKEN_RE, Entity, document_rows, span_rows


@dataclass(frozen=True)
class Note:
    """A `#` line: `#<n><TAB><note type> <ref><TAB><text>` (AnnotatorNotes, or a normalisation such as
    FRACCO's `ICD-O`, FRASIMED's `ICD-O-3.1` / `SNOMED`)."""

    type: str
    ref: str
    text: str
    line: int


@dataclass
class Document:
    id: str  # path relative to the task folder, without suffix: unique across sub-folders
    text: str
    entities: list[Entity]
    ignored: Counter  # line type letter -> count of lines not read (R, E, A, N, ...)
    notes: list[Note]

    @property
    def annotator_notes(self) -> int:
        return len(self.notes)


def parse_ann(ann: str, text: str, where_file: str) -> tuple[list[Entity], Counter, list[Note]]:
    entities: list[Entity] = []
    notes: list[Note] = []
    ignored: Counter = Counter()
    for lineno, line in enumerate(ann.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"{where_file}:{lineno}"
        if line.startswith("T"):
            entities.append(_parse_t_line(line, text, where, lineno))
        elif line.startswith("#"):
            parts = line.split("\t")
            head = parts[1].split() if len(parts) >= 2 else []
            if len(head) != 2:
                raise DataError(f"{where}: expected '#<n><TAB><note type> T<n><TAB><note>', got {line!r}")
            notes.append(Note(type=head[0], ref=head[1], text="\t".join(parts[2:]).strip(), line=lineno))
        else:
            ignored[line[0]] += 1
    ids = {e.id for e in entities}
    for note in notes:
        if note.ref.startswith("T") and note.ref not in ids:
            raise DataError(f"{where_file}:{note.line}: note refers to entity {note.ref!r}, which the file does not define")
    return entities, ignored, notes


def _parse_t_line(line: str, text: str, where: str, lineno: int) -> Entity:
    parts = line.split("\t")
    if len(parts) != 3:
        raise DataError(f"{where}: expected 'T<n><TAB><type> <start> <end>[;<start> <end>...]<TAB><text>' "
                        f"(3 tab-separated fields), got {len(parts)} fields")
    ent_id, middle, surface = parts
    etype, _, offsets = middle.partition(" ")
    where = f"{where}: {ent_id}"  # the file:line and the annotation id, in every message below
    fragments = []
    for frag in offsets.split(";"):
        bounds = frag.split()
        if len(bounds) != 2 or not all(b.isdigit() for b in bounds):
            raise DataError(f"{where}: expected '<start> <end>' character offsets, got {frag!r}")
        start, end = int(bounds[0]), int(bounds[1])
        if not start <= end <= len(text):
            raise DataError(f"{where}: offsets {start} {end} outside the text (0..{len(text)} characters) "
                            f"or reversed")
        fragments.append((start, end))
    ordered = sorted(fragments)
    for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
        if s2 < e1:
            raise DataError(f"{where}: fragments {s1} {e1} and {s2} {e2} overlap (expected disjoint fragments)")
    sliced = " ".join(text[s:e] for s, e in fragments)
    if sliced != surface:
        raise DataError(f"{where}: annotated text {surface!r} does not equal the text at {offsets} ({sliced!r})")
    return Entity(id=ent_id, type=etype, fragments=tuple(fragments), line=lineno)


def read_folder(files: SourceFiles, folder: str, missing_ann: list[str] | None = None) -> list[Document]:
    """Every `.txt`/`.ann` pair below `folder`. A `.txt` without its `.ann` is an error, unless the
    caller passes `missing_ann` (a card option naming such documents), which collects them instead."""
    base = files.folder(folder)
    stems = sorted({p.with_suffix("").relative_to(files.root).as_posix()
                    for p in base.iterdir() if p.suffix in (".txt", ".ann")})
    docs = []
    for stem in stems:
        text = files.read_text(stem + ".txt")
        ann_name = stem + ".ann"
        if missing_ann is not None and not (files.root / ann_name).is_file():
            missing_ann.append(stem)
            continue
        entities, ignored, notes = parse_ann(files.read_text(ann_name), text, str(files.root / ann_name))
        docs.append(Document(id=stem, text=text, entities=entities, ignored=ignored, notes=notes))
    return docs


def _note_group(note: Note, type_map: dict[str, str]) -> str:
    """MANTRA GSC: the entity type is the last field of `"CUI", "name", "semantic type" ,"GROUP"`."""
    import csv

    cells = next(csv.reader([note.text], skipinitialspace=True), [""])
    group = cells[-1].strip().strip('"').strip()
    return type_map.get(group, group)


def _types_from_notes(doc: Document, note_type: str, type_map: dict[str, str], where_file: str) -> list[Entity]:
    """Replace each entity's type with the group its `note_type` note gives (an entity without one: error)."""
    by_ref = {n.ref: n for n in doc.notes if n.type == note_type}
    out = []
    for ent in doc.entities:
        if ent.id not in by_ref:
            raise DataError(f"{where_file}:{ent.line}: entity {ent.id} has no '{note_type}' note to take its type from")
        out.append(replace(ent, type=_note_group(by_ref[ent.id], type_map)))
    return out


OPTIONS = {"type_from_note", "type_map", "samples", "nested"}
SPAN_OPTIONS = {"samples": ("document", "line"), "nested": ("keep", "outermost")}  # span_ner only


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    """Options: `type_from_note` (a note type, e.g. AnnotatorNotes: the entity type is the last
    comma-separated field of that note, as in MANTRA GSC whose BRAT types are CUIs) and `type_map`
    (note value -> entity type, for a release's malformed values; anything unmapped must be declared)."""
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    type_map = dict(ctx.options.get("type_map") or {})
    folders = entry if isinstance(entry, list) else [entry]

    def documents() -> Iterator[Document]:
        for folder in folders:
            for doc in read_folder(ctx.files, folder):
                if ctx.options.get("type_from_note"):
                    doc.entities = _types_from_notes(doc, ctx.options["type_from_note"], type_map,
                                                     str(ctx.files.root / (doc.id + ".ann")))
                yield doc

    locate = lambda doc, ent: f"{ctx.files.root / (doc.id + '.ann')}:{ent.line}: {ent.id}"  # noqa: E731
    if ctx.kind == "span_ner":
        rows, notes = span_rows_of(ctx, documents(), locate)
    else:
        for key in SPAN_OPTIONS:
            if key in ctx.options:
                raise DataError(f"{ctx.card_path}: field 'data.local.options.{key}': a span_ner option "
                                f"(this card's kind is {ctx.kind})")
        rows, notes = token_rows(ctx, documents(), locate)
    return SplitRead(rows=rows, files=list(folders), notes=notes, labels=release_types(ctx, notes))


def span_rows_of(ctx: ReadContext, docs: Iterable[Document], locate: Callable[[Document, Entity], str]
                 ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Documents -> span_ner rows (`biobench.data.spans.span_rows`: nested and crossing entities kept,
    discontinuous ones as their extent) and per-split counts: entities as read, how many are nested,
    share a span, cross another, are discontinuous, and what the card's `samples` / `nested` options drop."""
    options = {}
    for key, allowed in SPAN_OPTIONS.items():
        options[key] = ctx.options.get(key, allowed[0])
        if options[key] not in allowed:
            raise DataError(f"{ctx.card_path}: field 'data.local.options.{key}': expected one of "
                            f"{list(allowed)}, got {options[key]!r}")
    rows: list[dict[str, Any]] = []
    counts: Counter = Counter()
    by_type: Counter = Counter()
    ignored: Counter = Counter()
    n_docs = 0
    for doc in docs:
        for ent in doc.entities:
            check_label(ent.type, ctx.labels, locate(doc, ent))
            by_type[ent.type] += 1
        doc_rows, stats = span_rows(doc.id, doc.text, doc.entities, **options)
        rows.extend(doc_rows)
        counts.update(stats)
        ignored.update(doc.ignored)
        n_docs += 1
    keys = ("entities", "nested", "same_span", "crossing", "discontinuous", "discontinuous_after_merge",
            "dropped_nested", "across_lines", "kept")
    spans = {k: counts[k] for k in keys}
    spans["by_type"] = dict(sorted(by_type.items()))
    return rows, {"documents": n_docs, "samples": len(rows), "sample_unit": options["samples"],
                  "nested_rule": options["nested"], "spans": spans,
                  "ann_lines": {"ignored": dict(sorted(ignored.items()))}}


def release_types(ctx: ReadContext, notes: dict[str, Any]) -> list[str] | None:
    """With `labels: from_data`, the entity types are those of the whole release (every split read), so a
    type that a random split happens to put only in test is still a class; None when the card declares them."""
    return None if ctx.labels is not None else sorted((notes.get("spans") or notes["flattening"])["by_type"])


def token_rows(ctx: ReadContext, docs: Iterable[Document], locate: Callable[[Document, Entity], str],
               pattern: re.Pattern = TOKEN_RE) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Documents with character-offset entities -> token_ner rows and the notes every standoff reader
    reports (entity counts by type, flattening and alignment losses, lines not read). `locate` gives
    the file:line of an entity for messages."""
    rows: list[dict[str, Any]] = []
    flat: Counter = Counter()
    by_type: Counter = Counter()
    align: Counter = Counter()
    ignored: Counter = Counter()
    n_docs = n_notes = 0
    for doc in docs:
        for ent in doc.entities:
            check_label(ent.type, ctx.labels, locate(doc, ent))
            by_type[ent.type] += 1
        doc_rows, stats = document_rows(doc.id, doc.text, doc.entities, pattern)
        rows.extend(doc_rows)
        flat.update({k: v for k, v in stats.items() if k not in ("forced_splits", "unaligned")})
        align.update({k: stats[k] for k in ("forced_splits", "unaligned")})
        ignored.update(doc.ignored)
        n_docs += 1
        n_notes += doc.annotator_notes
    flattening = {k: flat[k] for k in ("entities", "kept", "nested", "crossing", "duplicate", "discontinuous")}
    flattening["by_type"] = dict(sorted(by_type.items()))
    return rows, {
        "documents": n_docs,
        "flattening": flattening,
        "alignment": {k: align[k] for k in ("forced_splits", "unaligned")},
        "ann_lines": {"annotator_notes": n_notes, "ignored": dict(sorted(ignored.items()))},
    }
