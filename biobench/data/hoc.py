"""Hallmarks of Cancer (Baker et al. 2016), raw release: one multi-label row per sentence.

Layout of the folder a card names: `text/<PMID>.txt`, one tokenized sentence per line, and
`labels/<PMID>.txt`, one line holding one `<` per sentence. The label string of sentence i is the
text after the i-th `<` (up to the next one), as BigBIO's `hallmarks_of_cancer` script reads it
(`labels.split("<")[1:]`); the text before the first `<` is always empty in the release (anything
there is an error: the file would not be what we think). A label string holds several labels joined
by `AND`; each is a path in the hierarchy joined by `--` (`Sustaining proliferative signaling--Receptors`).

Row per sentence, as the paper's loader (`qanastek/HoC`, ids `<PMID>_<k>`) and BigBIO build it:
id = `<PMID>_<k>` (k from 0), group = the PMID, so split rules keep an abstract's sentences together
and abstract-level scores (BLURB's HoC) can gather them again; labels = the sorted top-level hallmarks
(the part before the first `--`). A sentence with no label ("none" in qanastek/HoC, index 7 of its 11
names, which the paper's code drops) and the 11 sentences labelled only `NULL` get an empty label list,
i.e. an all-zero target over the 10 hallmarks.
"""

from __future__ import annotations

from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import check_label
from biobench.data.source import ReadContext, SplitRead, check_options


def sentence_labels(line: str, where: str) -> list[tuple[list[str], bool]]:
    """Per sentence of one labels file: its sorted top-level hallmarks, and whether a `NULL` was dropped."""
    head, *segments = line.split("<")
    if head.strip():
        raise DataError(f"{where}: expected nothing before the first '<', got {head.strip()!r}")
    out = []
    for segment in segments:
        tops = {label.split("--")[0].strip() for label in segment.split("AND")}
        out.append((sorted(tops - {"", "NULL"}), "NULL" in tops))
    return out


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, set(), ctx, "data.local.options")
    folder = entry if isinstance(entry, str) else None
    if folder is None:
        raise DataError(f"{ctx.card_path}: field 'data.local.files.{split}': expected one folder holding "
                        f"text/ and labels/, got {entry!r}")
    text_dir = ctx.files.folder(f"{folder}/text")
    rows = []
    abstracts = unlabelled_abstracts = unlabelled = nulls = 0
    for path in sorted(text_dir.glob("*.txt")):
        pmid = path.stem
        lines = [ln.strip() for ln in ctx.files.read_text(f"{folder}/text/{path.name}").split("\n") if ln.strip()]
        label_name = f"{folder}/labels/{path.name}"
        where = str(ctx.files.root / label_name)
        per_sentence = sentence_labels(ctx.files.read_text(label_name), where)
        if len(per_sentence) != len(lines):
            raise DataError(f"{where}: expected one '<' per sentence of {path} ({len(lines)}), "
                            f"got {len(per_sentence)}")
        abstracts += 1
        unlabelled_abstracts += not any(labels for labels, _ in per_sentence)
        for k, (text, (labels, had_null)) in enumerate(zip(lines, per_sentence)):
            for label in labels:
                check_label(label, ctx.labels, where)
            unlabelled += not labels
            nulls += had_null
            rows.append({"id": f"{pmid}_{k}", "group": pmid, "text": text, "labels": labels})
    return SplitRead(rows=rows, files=[f"{folder}/text", f"{folder}/labels"], notes={
        "hoc": {"abstracts": abstracts, "sentences": len(rows), "abstracts_without_label": unlabelled_abstracts,
                "sentences_without_label": unlabelled, "null_labels_dropped": nulls},
    })
