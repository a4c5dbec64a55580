"""Multi-label classification (HoC, FRACCO, Phenotype...): any subset of the labels per text.

Head: AutoModelForSequenceClassification with one logit per label; loss: binary cross-entropy
on the logits, optionally weighted per label (`protocol.weighted_bce`: pos_weight = n_neg / n_pos
counted on train, as the paper does for French multi-label tasks, because rare labels otherwise
learn to never fire). Prediction: a label fires when its logit > logit(`protocol.threshold`), i.e.
sigmoid > threshold; at 0.5 that is `logits > 0`, the paper's English rule. Scored with micro / macro F1;
with a card's `scoring.documents`, also `micro_f1_document`: rows gathered by their `group` (HoC: the
sentences of one abstract), a document's labels the union of its rows', as BLURB scores HoC.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from biobench.kinds.base import Encoded, SequenceKind, as_columns
from biobench.metrics import multilabel_scores

# A label seen once in 10,000 training texts would get a weight of 10,000 and dominate the loss;
# a label never seen in train has no defined weight. Both are held to sensible bounds.
MAX_POS_WEIGHT = 100.0


class Multilabel(SequenceKind):
    name = "multilabel"

    def __init__(self, tokenizer, protocol, max_length, labels, train, scoring: dict | None = None) -> None:
        super().__init__(tokenizer, protocol, max_length, labels, train)
        self.documents = bool((scoring or {}).get("documents"))
        self.pos_weight = None
        if protocol.weighted_bce:
            y = np.asarray(self.targets(train))
            n_pos = y.sum(axis=0)
            n_neg = len(y) - n_pos
            weight = np.where(n_pos > 0, n_neg / np.maximum(n_pos, 1), 1.0)
            self.pos_weight = torch.tensor(np.clip(weight, 1.0 / MAX_POS_WEIGHT, MAX_POS_WEIGHT), dtype=torch.float32)

    def labels_from(self, train) -> list[str]:
        return sorted({label for labels in as_columns(train)["labels"] for label in labels})

    def model_kwargs(self) -> dict:
        return dict(super().model_kwargs(), problem_type="multi_label_classification")

    def targets(self, rows) -> list[list[float]]:
        rows = as_columns(rows)
        index = {label: i for i, label in enumerate(self.labels)}
        out = []
        for labels in rows["labels"]:
            unknown = [x for x in labels if x not in index]
            if unknown:
                raise ValueError(f"multilabel: label(s) {unknown[:5]} not in the label set ({len(index)} labels)")
            hot = [0.0] * len(index)
            for x in labels:
                hot[index[x]] = 1.0
            out.append(hot)
        return out

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weight)

    def encode(self, rows) -> Encoded:
        enc = super().encode(rows)
        if self.documents:  # the document of each row, for micro_f1_document
            enc.meta = list(as_columns(rows)["group"])
        return enc

    def predicted(self, outputs: list[np.ndarray]) -> np.ndarray:
        """0/1 predictions: logit > logit(threshold), exact at 0.5 (`logits > 0`) where a float64 sigmoid
        rounds a tiny positive logit to 0.5."""
        t = self.protocol.threshold
        return np.stack(outputs).astype(np.float64) > np.log(t / (1.0 - t))

    def score(self, enc: Encoded, outputs: list[np.ndarray]) -> dict[str, float]:
        return multilabel_scores(np.asarray(enc.gold), self.predicted(outputs),
                                 documents=enc.meta if self.documents else None)

    def example_predictions(self, enc: Encoded, outputs: list[np.ndarray]) -> dict:
        """The set of label ids per example (sorted), gold and predicted at the protocol's threshold."""
        as_sets = lambda hot: [np.flatnonzero(row).tolist() for row in np.asarray(hot)]  # noqa: E731
        out = {"gold": as_sets(np.asarray(enc.gold) > 0), "pred": as_sets(self.predicted(outputs)),
               "labels": list(self.labels)}
        if self.documents:  # the document of each example (micro_f1_document gathers them)
            out["documents"] = list(enc.meta)
        return out


KIND = Multilabel
