"""Single-label classification (GAD, ChemProt, DiaMED): one class per text or text pair.

Head: AutoModelForSequenceClassification with one logit per class; loss: cross-entropy;
prediction: argmax. Scored with micro / macro / weighted F1 and accuracy over the label set; with a
card's `scoring.negative_class` (ChemProt's "false"), also micro P / R / F1 over the other classes
(`micro_f1_positive`, BLURB's relation-extraction score). The negative class is still trained and predicted.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from biobench.kinds.base import Encoded, SequenceKind, as_columns
from biobench.metrics import classification_scores


class Classification(SequenceKind):
    name = "classification"

    def __init__(self, tokenizer, protocol, max_length, labels, train, scoring: dict | None = None) -> None:
        super().__init__(tokenizer, protocol, max_length, labels, train)
        self.negative = (scoring or {}).get("negative_class")
        if self.negative is not None and self.negative not in self.labels:
            raise ValueError(f"classification: scoring.negative_class {self.negative!r} is not in the label set "
                             f"{self.labels}")

    def labels_from(self, train) -> list[str]:
        return sorted(set(as_columns(train)["label"]))

    def targets(self, rows) -> list[int]:
        rows = as_columns(rows)
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted(set(rows["label"]) - set(index))
        if unknown:
            raise ValueError(f"classification: label(s) {unknown[:5]} not in the label set {self.labels}")
        return [index[label] for label in rows["label"]]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels)

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        pred = [int(np.argmax(o)) for o in outputs]
        negative = None if self.negative is None else self.labels.index(self.negative)
        return classification_scores(enc.gold, pred, len(self.labels), negative=negative)

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict:
        """Class id per example, gold and predicted."""
        return {"gold": [int(g) for g in enc.gold], "pred": [int(np.argmax(o)) for o in outputs],
                "labels": list(self.labels)}


KIND = Classification
