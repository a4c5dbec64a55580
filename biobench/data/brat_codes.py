"""BRAT standoff with normalisation notes -> document-level multi-label rows (the set of codes of a document).

Used by FRACCO-30 / FRACCO-100 (FRACCO: `expression_CIM` entities, `#n<TAB>ICD-O Tn<TAB>C77.1 8000/1`)
and by CANTEMIST-FR / DISTEMIST-FR (FRASIMED: `#n<TAB>ICD-O-3.1 Tn<TAB>8500/3`, `#n<TAB>SNOMED Tn<TAB>58477004`).
The `.ann` files are parsed and checked by `biobench.data.brat` (offsets verified against the text).

Options (card `data.local.options`):
- `note_type` (required): the note type carrying the code (`ICD-O`, `ICD-O-3.1`, `SNOMED`).
- `entity_types`: only notes on entities of these types count (FRACCO: `[expression_CIM]`); default all.
- `drop_codes`: code values that are annotation flags, not codes (FRACCO: `todelete`, `tocheck`), counted.
- `top_k`: keep only the k most frequent codes of the whole release, frequency = number of documents
  whose code set holds the code, ties broken by the code string (ascending); the label set is then
  exactly those k codes.
- `missing_ann_ok`: list of documents whose `.ann` may be absent (FRACCO's `cc_onco853`); any other
  missing `.ann` is an error.

Row per document: text = the whole `.txt`; labels = its sorted codes. Documents left with no code are
dropped (counted in the notes). The label set (the reader's, unless the card declares one) is every
kept code, sorted, so a code seen only in test is still a class. Use one folder for the whole release
with a `random` split rule: top-k is a property of the corpus, not of a split.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from biobench.data.brat import read_folder
from biobench.data.errors import DataError
from biobench.data.schema import check_label
from biobench.data.source import ReadContext, SplitRead, check_options

OPTIONS = {"note_type", "entity_types", "drop_codes", "top_k", "missing_ann_ok"}


def document_codes(doc, note_type: str, entity_types: set[str] | None, drop: set[str]) -> tuple[set[str], int]:
    """The codes of one document, and how many flagged (dropped) code notes it had."""
    types = {e.id: e.type for e in doc.entities}
    codes: set[str] = set()
    dropped = 0
    for note in doc.notes:
        if note.type != note_type or (entity_types is not None and types.get(note.ref) not in entity_types):
            continue
        code = " ".join(note.text.split())
        if code in drop:
            dropped += 1
        elif code:
            codes.add(code)
    return codes, dropped


def top_codes(per_doc: dict[str, set[str]], k: int) -> list[str]:
    """The k codes held by the most documents; ties by code string. Sorted for the label list."""
    freq = Counter(code for codes in per_doc.values() for code in codes)
    return sorted(code for code, _ in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    opts = ctx.options
    check_options(opts, OPTIONS, ctx, "data.local.options")
    if not isinstance(opts.get("note_type"), str):
        raise DataError(f"{ctx.card_path}: field 'data.local.options.note_type': expected the note type carrying "
                        "the codes (e.g. 'ICD-O', 'SNOMED')")
    top_k = opts.get("top_k")
    if top_k is not None and not (isinstance(top_k, int) and top_k > 0):
        raise DataError(f"{ctx.card_path}: field 'data.local.options.top_k': expected a positive integer, got {top_k!r}")
    entity_types = set(opts["entity_types"]) if opts.get("entity_types") else None
    drop = set(opts.get("drop_codes") or [])
    allowed_missing = set(opts.get("missing_ann_ok") or [])
    folders = entry if isinstance(entry, list) else [entry]

    per_doc: dict[str, set[str]] = {}
    texts: dict[str, str] = {}
    missing: list[str] = []
    flagged = 0
    for folder in folders:
        for doc in read_folder(ctx.files, folder, missing_ann=missing):
            per_doc[doc.id], n = document_codes(doc, opts["note_type"], entity_types, drop)
            texts[doc.id] = doc.text
            flagged += n
    unexpected = sorted(m for m in missing if m.rsplit("/", 1)[-1] not in allowed_missing)
    if unexpected:
        raise DataError(f"{ctx.files.root / (unexpected[0] + '.ann')}: file not found (the .txt exists); list the "
                        f"document in data.local.options.missing_ann_ok of {ctx.card_path} only if the release lacks it")

    all_codes = sorted({c for codes in per_doc.values() for c in codes})
    labels = top_codes(per_doc, top_k) if top_k else all_codes
    keep = set(labels)
    rows = []
    for doc_id in sorted(per_doc):
        codes = sorted(per_doc[doc_id] & keep)
        if not codes:
            continue
        for code in codes:
            check_label(code, ctx.labels, f"{ctx.files.root / (doc_id + '.ann')}")
        rows.append({"id": doc_id, "group": doc_id.rsplit("/", 1)[-1], "text": texts[doc_id], "labels": codes})
    return SplitRead(rows=rows, files=list(folders), labels=labels, notes={"codes": {
        "documents": len(per_doc), "documents_kept": len(rows), "documents_without_code": len(per_doc) - len(rows),
        "missing_ann": sorted(missing), "distinct_codes": len(all_codes), "labels": len(labels),
        "flagged_notes_dropped": flagged}})
