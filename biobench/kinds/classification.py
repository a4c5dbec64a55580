"""Single-label classification (GAD, ChemProt, DiaMED): one class per text or text pair.

Head: AutoModelForSequenceClassification with one logit per class; loss: cross-entropy;
prediction: argmax. Scored with micro / macro / weighted F1 and accuracy over the label set.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from biobench.kinds.base import Encoded, SequenceKind, as_columns
from biobench.metrics import classification_scores


class Classification(SequenceKind):
    name = "classification"

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
        return classification_scores(enc.gold, pred, len(self.labels))


KIND = Classification
