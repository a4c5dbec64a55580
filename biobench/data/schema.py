"""The normalised row schema of each task kind, and the checks every reader applies to it.

One schema per kind (see `biobench.data`) is what lets every kind module and metric ignore where
the data came from. The checks live here, not in the readers, so that a tag or label the card does
not declare is rejected the same way whatever the format; readers only supply the `where`
(file:line) that makes the message actionable.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import datasets

from biobench.data.errors import DataError

_STR = datasets.Value("string")
FEATURES: dict[str, datasets.Features] = {
    "token_ner": datasets.Features({"id": _STR, "group": _STR, "tokens": datasets.List(_STR),
                                    "tags": datasets.List(_STR)}),
    "classification": datasets.Features({"id": _STR, "group": _STR, "text": _STR, "text_pair": _STR,
                                         "label": _STR}),
    "multilabel": datasets.Features({"id": _STR, "group": _STR, "text": _STR, "labels": datasets.List(_STR)}),
    "similarity": datasets.Features({"id": _STR, "group": _STR, "text": _STR, "text_pair": _STR,
                                     "score": datasets.Value("float64")}),
    # choices[i] is the option the card's labels[i] names (FrenchMedMCQA: a..e); answers: the correct ones.
    "multiple_choice": datasets.Features({"id": _STR, "group": _STR, "text": _STR, "choices": datasets.List(_STR),
                                          "answers": datasets.List(_STR)}),
    # Entities as character spans [start, end) into `text`, nested / crossing ones included; `id`: the annotation's.
    "span_ner": datasets.Features({"id": _STR, "group": _STR, "text": _STR, "entities": datasets.List(
        {"id": _STR, "start": datasets.Value("int64"), "end": datasets.Value("int64"), "label": _STR})}),
}


def check_tag(tag: str, types: tuple[str, ...] | None, where: str) -> None:
    """An IOB2 tag is `O` or `B-`/`I-` plus an entity type the card declares (any type if None)."""
    if tag == "O":
        return
    prefix, _, etype = tag.partition("-")
    if prefix not in ("B", "I") or not etype:
        raise DataError(f"{where}: malformed tag {tag!r}: expected 'O' or 'B-<type>' / 'I-<type>' (IOB2)")
    if types is not None and etype not in types:
        raise DataError(f"{where}: tag {tag!r} has entity type {etype!r}, which the card does not declare "
                        f"(labels: {list(types)})")


def check_label(label: str, labels: tuple[str, ...] | None, where: str) -> None:
    if labels is not None and label not in labels:
        raise DataError(f"{where}: label {label!r} is not declared by the card (labels: {list(labels)})")


def _text(raw: dict[str, Any], key: str, where: str, optional: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: column '{key}': expected text, got {value!r}")
    return value


def normalise_row(kind: str, raw: dict[str, Any], labels: tuple[str, ...] | None, where: str,
                  default_id: str) -> dict[str, Any]:
    """Turn a mapped record (biobench column names) into a schema row, checking types and labels."""
    rid = str(raw["id"]) if raw.get("id") is not None else default_id
    row: dict[str, Any] = {"id": rid, "group": str(raw["group"]) if raw.get("group") is not None else rid}
    if kind == "token_ner":
        tokens, tags = raw.get("tokens"), raw.get("tags")
        if not (isinstance(tokens, list) and isinstance(tags, list) and len(tokens) == len(tags)):
            raise DataError(f"{where}: expected 'tokens' and 'tags' lists of equal length")
        for i, tag in enumerate(tags):
            check_tag(str(tag), labels, f"{where} token {i}")
        row.update(tokens=[str(t) for t in tokens], tags=[str(t) for t in tags])
    elif kind == "classification":
        label = raw.get("label")
        if label is None or str(label) == "":
            raise DataError(f"{where}: column 'label': expected a label, got {label!r}")
        check_label(str(label), labels, where)
        row.update(text=_text(raw, "text", where), text_pair=_text(raw, "text_pair", where, optional=True),
                   label=str(label))
    elif kind == "multilabel":
        values = raw.get("labels")
        if not isinstance(values, list):
            raise DataError(f"{where}: column 'labels': expected a list of labels, got {values!r}")
        for label in values:
            check_label(str(label), labels, where)
        row.update(text=_text(raw, "text", where), labels=[str(v) for v in values])
    elif kind == "similarity":
        try:
            score = float(raw.get("score"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(f"{where}: column 'score': expected a number, got {raw.get('score')!r}") from None
        row.update(text=_text(raw, "text", where), text_pair=_text(raw, "text_pair", where), score=score)
    elif kind == "multiple_choice":
        choices, answers = raw.get("choices"), raw.get("answers")
        if not (isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices)):
            raise DataError(f"{where}: column 'choices': expected a non-empty list of texts, got {choices!r}")
        if labels is not None and len(choices) != len(labels):
            raise DataError(f"{where}: {len(choices)} choices, but the card names {len(labels)} ({list(labels)})")
        if not (isinstance(answers, list) and answers):
            raise DataError(f"{where}: column 'answers': expected a non-empty list of choice names, got {answers!r}")
        for answer in answers:
            check_label(str(answer), labels, where)
        row.update(text=_text(raw, "text", where), choices=list(choices), answers=[str(a) for a in answers])
    else:
        raise DataError(f"{where}: unknown task kind {kind!r}")
    return row


def row_labels(kind: str, row: dict[str, Any]) -> Iterable[str]:
    """The labels a row carries, as counted by `data check`: entity types for token_ner (one per
    entity, i.e. per B- tag), the class, the label list; nothing for similarity."""
    if kind == "token_ner":
        return (tag[2:] for tag in row["tags"] if tag.startswith("B-"))
    if kind == "classification":
        return (row["label"],)
    if kind == "multilabel":
        return row["labels"]
    if kind == "multiple_choice":
        return row["answers"]
    if kind == "span_ner":
        return (ent["label"] for ent in row["entities"])
    return ()


def label_counts(kind: str, rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(label for row in rows for label in row_labels(kind, row))
    return dict(sorted(counts.items()))
