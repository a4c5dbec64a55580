"""Sentence-pair similarity (BIOSSES, CLISTER): a real-valued score per text pair.

Head: AutoModelForSequenceClassification with one output (regression); loss: mean squared error
on the gold score as released (no rescaling, so predictions read on the corpus's own scale).
Scored with Pearson and Spearman; the card's primary one selects the epoch AND is reported
(tabib selected on Pearson but reported Spearman).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from biobench.kinds.base import Encoded, SequenceKind, as_columns
from biobench.metrics import similarity_scores


class Similarity(SequenceKind):
    name = "similarity"
    has_labels = False

    def model_kwargs(self) -> dict:
        return {"num_labels": 1, "problem_type": "regression"}

    def targets(self, rows) -> list[float]:
        rows = as_columns(rows)
        return [float(s) for s in rows["score"]]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float())

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        return similarity_scores(enc.gold, [float(o[0]) for o in outputs])

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict:
        """Gold and predicted score per text pair."""
        return {"gold": [float(g) for g in enc.gold], "pred": [float(o[0]) for o in outputs]}


KIND = Similarity
