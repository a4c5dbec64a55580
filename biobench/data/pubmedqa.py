"""PubMedQA, labelled part (PQA-L), its native JSON: `ori_pqal.json` maps a PMID to {QUESTION, CONTEXTS
(abstract sections without the conclusion), final_decision (yes / no / maybe), ...}; `test_ground_truth.json`
maps the 500 official test PMIDs to their answer.

Row per PMID: text = QUESTION, text_pair = the CONTEXTS joined by one space, label = final_decision.
The card lists `ori_pqal.json` for train and test; option `test_ids` names the ground-truth file: test
is exactly its PMIDs (their answer must agree with final_decision), train the other 500 (BLURB's train
+ dev pool, from which the card's holdout rule carves dev).
"""

from __future__ import annotations

import json
from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import normalise_row
from biobench.data.source import ReadContext, SplitRead, check_options

OPTIONS = {"test_ids"}


def _load(ctx: ReadContext, name: str) -> dict[str, Any]:
    try:
        data = json.loads(ctx.files.read_text(name))
    except json.JSONDecodeError as exc:
        raise DataError(f"{ctx.files.root / name}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{ctx.files.root / name}: expected a JSON object keyed by PMID")
    return data


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    if "test_ids" not in ctx.options:
        raise DataError(f"{ctx.card_path}: field 'data.local.options.test_ids': expected the file of test PMIDs "
                        "(test_ground_truth.json)")
    data = _load(ctx, entry)
    truth = _load(ctx, ctx.options["test_ids"])
    rows = []
    for pmid in sorted(data, key=lambda p: (len(p), p)):
        if (pmid in truth) != (split == "test"):
            continue
        record, where = data[pmid], f"{ctx.files.root / entry} key {pmid!r}"
        if not isinstance(record, dict) or not isinstance(record.get("CONTEXTS"), list):
            raise DataError(f"{where}: expected an object with QUESTION, CONTEXTS (list) and final_decision")
        if split == "test" and truth[pmid] != record.get("final_decision"):
            raise DataError(f"{where}: final_decision {record.get('final_decision')!r} disagrees with "
                            f"{ctx.options['test_ids']} ({truth[pmid]!r})")
        rows.append(normalise_row("classification", {
            "id": pmid, "text": record.get("QUESTION"), "text_pair": " ".join(map(str, record["CONTEXTS"])),
            "label": record.get("final_decision")}, ctx.labels, where, pmid))
    unknown = sorted(set(truth) - set(data))
    if split == "test" and unknown:
        raise DataError(f"{ctx.files.root / ctx.options['test_ids']}: test PMID {unknown[0]} is not in {entry}")
    return SplitRead(rows=rows, files=[entry, ctx.options["test_ids"]])
