"""Multiple-choice QA with one or more correct options (FrenchMedMCQA: 5 options, 1-5 correct).

Rows (biobench.data.schema): `text` (the question), `choices` (option texts, in the order of the card's
labels, e.g. a..e) and `answers` (the names of the correct options). Each option is encoded as the pair
(question, option); the head is AutoModelForMultipleChoice, one logit per option. Because several
options can be right, the loss is binary cross-entropy on each option's logit (not a softmax over
options), and an option is predicted correct when its sigmoid >= `protocol.threshold`; a question
with no option over the threshold predicts its single best option (an exam question always has one).
Scores, DrBenchmark's for FrenchMedMCQA: `hamming_score` = mean over questions of
|predicted & gold| / |predicted | gold| (scikit-learn's sample-averaged Jaccard), and `emr` = the share
of questions whose predicted set is exactly the gold set (scikit-learn's subset accuracy); 0-100.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, jaccard_score
from transformers import AutoModelForMultipleChoice

from biobench.kinds.base import Encoded, Kind, as_columns


def mcqa_scores(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """gold, pred: (questions, options) 0/1 arrays."""
    return {"hamming_score": 100.0 * float(jaccard_score(gold, pred, average="samples", zero_division=1.0)),
            "emr": 100.0 * float(accuracy_score(gold, pred))}


class MultipleChoice(Kind):
    name = "multiple_choice"
    head = AutoModelForMultipleChoice

    def model_kwargs(self) -> dict[str, Any]:
        return {}  # one logit per option: the head has no label set

    def targets(self, rows) -> list[list[float]]:
        rows = as_columns(rows)
        index = {label: i for i, label in enumerate(self.labels)}
        out = []
        for answers, choices in zip(rows["answers"], rows["choices"]):
            if len(choices) != len(index) or any(a not in index for a in answers):
                raise ValueError(f"multiple_choice: a row has {len(choices)} choices / answers {answers}, "
                                 f"expected {len(index)} choices named {self.labels}")
            out.append([1.0 if name in answers else 0.0 for name in self.labels])
        return out

    def encode(self, rows) -> Encoded:
        rows = as_columns(rows)
        targets = self.targets(rows)
        features, truncated = [], 0
        for question, choices, target in zip(rows["text"], rows["choices"], targets):
            full = self.tokenizer([question] * len(choices), choices, truncation=False, verbose=False)
            enc = self.tokenizer([question] * len(choices), choices, truncation="only_first",
                                 max_length=self.max_length)
            truncated += any(len(ids) > self.max_length for ids in full["input_ids"])
            features.append({k: list(enc[k]) for k in enc.keys()} | {"labels": target})
        return Encoded(features=features, gold=targets, notes={"examples": len(features), "truncated": truncated})

    def collator(self, pad_to_multiple_of: int | None = None) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Flatten (question, option) sequences, pad them together (length rounded up to a multiple
        of `pad_to_multiple_of` when given), reshape to (batch, options, length)."""
        def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
            n = len(features[0]["input_ids"])
            keys = [k for k in features[0] if k != "labels"]
            flat = [{k: f[k][i] for k in keys} for f in features for i in range(n)]
            batch = self.tokenizer.pad(flat, return_tensors="pt", pad_to_multiple_of=pad_to_multiple_of)
            out = {k: v.view(len(features), n, -1) for k, v in batch.items()}
            out["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.float32)
            return out
        return collate

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())

    def predict_sets(self, outputs: list[np.ndarray]) -> np.ndarray:
        logits = np.stack(outputs).astype(np.float64)
        pred = (1.0 / (1.0 + np.exp(-logits))) >= self.protocol.threshold
        empty = ~pred.any(axis=1)
        pred[empty, logits[empty].argmax(axis=1)] = True
        return pred.astype(int)

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        return mcqa_scores(np.asarray(enc.gold, dtype=int), self.predict_sets(outputs))


KIND = MultipleChoice
