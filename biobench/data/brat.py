"""BRAT standoff: `<doc>.txt` + `<doc>.ann` pairs in a folder, turned into token_ner rows.

Parsed from `.ann`: `T` lines (text-bound entities, `T1<TAB>TYPE start end[;start end...]<TAB>text`,
offsets in Unicode code points into the `.txt`, end exclusive) and `#` AnnotatorNotes (checked to
point at an entity, counted). Other line types (relations, events, attributes, normalisations) are
not needed for NER: they are counted in the notes, not read. Every `T` line is verified against the
text: offsets inside the document and the annotated text equal to the slice (fragments joined by
one space). A mismatch means the `.txt` and `.ann` do not belong together, so it is an error with
file:line rather than a silently misplaced entity.

Flattening, tokenization and sentence splitting are in `biobench.data.spans` (one rule for every
standoff corpus). Entity counts are reported per release split, before any holdout carve.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import check_label
from biobench.data.source import ReadContext, SourceFiles, SplitRead, check_options
from biobench.data.spans import Entity, document_rows


@dataclass
class Document:
    id: str  # path relative to the task folder, without suffix: unique across sub-folders
    text: str
    entities: list[Entity]
    ignored: Counter  # line type letter -> count of lines not read (R, E, A, N, ...)
    annotator_notes: int


def parse_ann(ann: str, text: str, where_file: str) -> tuple[list[Entity], Counter, int]:
    entities: list[Entity] = []
    note_refs: list[tuple[int, str]] = []
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
            note_refs.append((lineno, head[1]))
        else:
            ignored[line[0]] += 1
    ids = {e.id for e in entities}
    for lineno, ref in note_refs:
        if ref.startswith("T") and ref not in ids:
            raise DataError(f"{where_file}:{lineno}: note refers to entity {ref!r}, which the file does not define")
    return entities, ignored, len(note_refs)


def _parse_t_line(line: str, text: str, where: str, lineno: int) -> Entity:
    parts = line.split("\t")
    if len(parts) != 3:
        raise DataError(f"{where}: expected 'T<n><TAB><type> <start> <end>[;<start> <end>...]<TAB><text>' "
                        f"(3 tab-separated fields), got {len(parts)} fields")
    ent_id, middle, surface = parts
    etype, _, offsets = middle.partition(" ")
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
    sliced = " ".join(text[s:e] for s, e in fragments)
    if sliced != surface:
        raise DataError(f"{where}: annotated text {surface!r} does not equal the text at {offsets} ({sliced!r})")
    return Entity(id=ent_id, type=etype, fragments=tuple(fragments), line=lineno)


def read_folder(files: SourceFiles, folder: str) -> list[Document]:
    base = files.folder(folder)
    stems = sorted({p.with_suffix("").relative_to(files.root).as_posix()
                    for p in base.iterdir() if p.suffix in (".txt", ".ann")})
    docs = []
    for stem in stems:
        text = files.read_text(stem + ".txt")
        ann_name = stem + ".ann"
        entities, ignored, notes = parse_ann(files.read_text(ann_name), text, str(files.root / ann_name))
        docs.append(Document(id=stem, text=text, entities=entities, ignored=ignored, annotator_notes=notes))
    return docs


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, set(), ctx, "data.local.options")
    folders = entry if isinstance(entry, list) else [entry]
    rows: list[dict[str, Any]] = []
    flat: Counter = Counter()
    by_type: Counter = Counter()
    align: Counter = Counter()
    ignored: Counter = Counter()
    n_docs = n_notes = 0
    for folder in folders:
        for doc in read_folder(ctx.files, folder):
            for ent in doc.entities:
                check_label(ent.type, ctx.labels, f"{ctx.files.root / (doc.id + '.ann')}:{ent.line}")
                by_type[ent.type] += 1
            doc_rows, stats = document_rows(doc.id, doc.text, doc.entities)
            rows.extend(doc_rows)
            flat.update({k: v for k, v in stats.items() if k not in ("forced_splits", "unaligned")})
            align.update({k: stats[k] for k in ("forced_splits", "unaligned")})
            ignored.update(doc.ignored)
            n_docs += 1
            n_notes += doc.annotator_notes
    flattening = {k: flat[k] for k in ("entities", "kept", "nested", "crossing", "duplicate", "discontinuous")}
    flattening["by_type"] = dict(sorted(by_type.items()))
    return SplitRead(rows=rows, files=list(folders), notes={
        "documents": n_docs,
        "flattening": flattening,
        "alignment": {k: align[k] for k in ("forced_splits", "unaligned")},
        "ann_lines": {"annotator_notes": n_notes, "ignored": dict(sorted(ignored.items()))},
    })
