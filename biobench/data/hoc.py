"""Hallmarks of Cancer (Baker et al. 2016), raw release: a document-level multi-label task.

Layout of the folder a card names: `text/<PMID>.txt`, one tokenized sentence per line, and
`labels/<PMID>.txt`, one line holding one `<` per sentence. The label string of sentence i is the
text after the i-th `<` (up to the next one); the text before the first `<` is always empty in the
release (checked: anything there is an error, since it would mean the file is not what we think).
A label string holds several labels joined by `AND`; each is a path in the hierarchy joined by
`--` (`Sustaining proliferative signaling--Receptors`).

Row per abstract (as BLURB): text = the sentences joined by one space; labels = the set of top-level
hallmarks (the part before the first `--`) over all its sentences, sorted; the literal `NULL` label
and empty strings are dropped. Abstracts with no label are kept, with an empty list.
"""

from __future__ import annotations

from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import check_label
from biobench.data.source import ReadContext, SplitRead, check_options


def abstract_labels(line: str, where: str) -> tuple[list[str], int]:
    """The top-level hallmarks of one labels file, and how many `NULL` labels were dropped."""
    head, *segments = line.split("<")
    if head.strip():
        raise DataError(f"{where}: expected nothing before the first '<', got {head.strip()!r}")
    labels: set[str] = set()
    nulls = 0
    for segment in segments:
        for label in segment.split("AND"):
            top = label.split("--")[0].strip()
            if top == "NULL":
                nulls += 1
            elif top:
                labels.add(top)
    return sorted(labels), nulls


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, set(), ctx, "data.local.options")
    folder = entry if isinstance(entry, str) else None
    if folder is None:
        raise DataError(f"{ctx.card_path}: field 'data.local.files.{split}': expected one folder holding "
                        f"text/ and labels/, got {entry!r}")
    text_dir = ctx.files.folder(f"{folder}/text")
    rows = []
    nulls = unlabelled = sentences = 0
    for path in sorted(text_dir.glob("*.txt")):
        pmid = path.stem
        lines = [ln for ln in ctx.files.read_text(f"{folder}/text/{path.name}").split("\n") if ln.strip()]
        label_name = f"{folder}/labels/{path.name}"
        where = str(ctx.files.root / label_name)
        label_line = ctx.files.read_text(label_name)
        if label_line.count("<") != len(lines):
            raise DataError(f"{where}: expected one '<' per sentence of {path} ({len(lines)}), "
                            f"got {label_line.count('<')}")
        labels, n_null = abstract_labels(label_line, where)
        for label in labels:
            check_label(label, ctx.labels, where)
        nulls += n_null
        unlabelled += not labels
        sentences += len(lines)
        rows.append({"id": pmid, "group": pmid, "text": " ".join(ln.strip() for ln in lines), "labels": labels})
    return SplitRead(rows=rows, files=[f"{folder}/text", f"{folder}/labels"], notes={
        "hoc": {"abstracts": len(rows), "sentences": sentences, "abstracts_without_label": unlabelled,
                "null_labels_dropped": nulls},
    })
