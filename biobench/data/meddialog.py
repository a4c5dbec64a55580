"""MedDialog-FR (women's health subset, 22 UMLS labels), the release the paper's authors published:

- `multilabel_annotation/dataset_multilabel_meddialog_22labels.csv`: TAB-separated with a header
  `id, split, labels`; `id` is a question id (`hm3_<n>_q`), `split` is `train` / `dev` / `test` (the
  official split) and `labels` a Python list literal of label strings (`['C0009450', 'C0030193']`).
- `post-editing/meddialog-fr-women_post-editing.csv`: TAB-separated, `id, machine_translation,
  post-edited`, one row per question (`_q`) and per answer (`_a`).

Row per annotated question: text = the post-edited question, then a newline and the post-edited
answer (`<n>_a`) when the release has it; labels = the list. A question without post-edited text,
a labels cell that is not a list of strings, or a split value other than train/dev/test is an error
with file:line; questions annotated with an empty list are dropped and counted.
"""

from __future__ import annotations

import ast
import csv
import io
from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import normalise_row
from biobench.data.source import ReadContext, SplitRead, one_file

OPTIONS = {"texts"}
_SPLIT_VALUE = {"train": "train", "validation": "dev", "test": "test"}


def _tsv(ctx: ReadContext, name: str, required: tuple[str, ...]) -> csv.DictReader:
    reader = csv.DictReader(io.StringIO(ctx.files.read_text(name), newline=""), delimiter="\t")
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{ctx.files.root / name}:1: no column {missing[0]!r} in the header {reader.fieldnames} "
                        "(expected a TAB-separated file)")
    return reader


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    entry = one_file(ctx, split, entry, OPTIONS, "the annotation file name")
    texts_file = ctx.options.get("texts", "post-editing/meddialog-fr-women_post-editing.csv")
    texts = {r["id"].strip(): (r.get("post-edited") or "").strip()
             for r in _tsv(ctx, texts_file, ("id", "post-edited"))}
    reader = _tsv(ctx, entry, ("id", "split", "labels"))
    rows, empty = [], 0
    for record in reader:
        where = f"{ctx.files.root / entry}:{reader.line_num}"
        value = record["split"].strip()
        if value not in _SPLIT_VALUE.values():
            raise DataError(f"{where}: column 'split': expected train, dev or test, got {value!r}")
        if value != _SPLIT_VALUE[split]:
            continue
        try:
            labels = ast.literal_eval(record["labels"].strip())
        except (ValueError, SyntaxError):
            labels = None
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise DataError(f"{where}: column 'labels': expected a Python list of label strings, "
                            f"got {record['labels']!r}")
        if not labels:
            empty += 1
            continue
        qid = record["id"].strip()
        question = texts.get(qid)
        if not question:
            raise DataError(f"{where}: question {qid!r} has no post-edited text in {ctx.files.root / texts_file}")
        answer = texts.get(qid[:-2] + "_a" if qid.endswith("_q") else "", "")
        text = question + ("\n" + answer if answer else "")
        rows.append(normalise_row("multilabel", {"id": qid, "text": text, "labels": sorted(set(labels))},
                                  ctx.labels, where, qid))
    return SplitRead(rows=rows, files=[entry, texts_file], notes={"meddialog": {
        "questions": len(rows), "empty_label_lists_dropped": empty}})
