"""Per-layer document representations of an encoder: mean-pooled token states, one matrix per layer.

Layer 0 is the embedding output, layer i the output of transformer block i (the model's `hidden_states`).
A document's vector at a layer is the mean of its token states weighted by the attention mask, so padding
never counts and a batch gives the same vectors as each document alone. Pooled in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class AnalysisError(ValueError):
    """The models or the text cannot be compared as given; the message says why."""


@dataclass
class Encoder:
    name: str
    model: object  # set to None once its states are taken, to free memory
    tokenizer: object
    depth: int | None  # config.num_hidden_layers
    width: int | None  # config.hidden_size


def load_encoder(name: str, *, trust_remote_code: bool = False, device: str = "cpu") -> Encoder:
    """The bare encoder (no head) of a checkpoint, in float32, eval mode. A checkpoint whose encoder weights
    do not match the architecture (missing names other than the unused pooler) is refused: its states
    would come from random weights."""
    from transformers import AutoModel

    from biobench.models import check_model, load_model, load_tokenizer

    check_model(name)
    model, info = load_model(name, AutoModel, trust_remote_code=trust_remote_code)
    missing = [k for k in info["missing"] if not k.startswith("pooler.")]
    if missing:
        raise AnalysisError(f"{name}: {len(missing)} encoder weights missing from the checkpoint (e.g. {missing[0]}); "
                            "its states would be random")
    tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
    config = model.config
    return Encoder(name, model.to(device).eval(), tokenizer, getattr(config, "num_hidden_layers", None),
                   getattr(config, "hidden_size", None))


def check_comparable(names: list[str], *, trust_remote_code: bool = False) -> None:
    """Layer-wise comparison needs the same depth and width: checked on the configs, before any weights load.
    (A config without these fields is checked later, on the states.)"""
    from transformers import AutoConfig

    shapes = []
    for name in names:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
        shapes.append((name, getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)))
    first = shapes[0]
    for other in shapes[1:]:
        for what, i in (("depth (num_hidden_layers)", 1), ("width (hidden_size)", 2)):
            if first[i] is not None and other[i] is not None and first[i] != other[i]:
                raise AnalysisError(f"{first[0]} and {other[0]}: different {what}, {first[i]} vs {other[i]}; "
                                    "layer-wise CKA pairs layers of the same architecture")


def pooled_states(encoder: Encoder, docs: list[str], *, max_length: int, batch_size: int = 32) -> list[np.ndarray]:
    """[n_layers + 1] matrices of shape (len(docs), width), rows in the order of `docs`."""
    import torch

    model, tokenizer = encoder.model, encoder.tokenizer
    device = next(model.parameters()).device
    order = sorted(range(len(docs)), key=lambda i: len(docs[i]))  # similar lengths together: less padding
    layers: list[np.ndarray] | None = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            batch = tokenizer([docs[i] for i in index], truncation=True, max_length=max_length, padding=True,
                              return_tensors="pt").to(device)
            out = model(**batch, output_hidden_states=True, return_dict=True)
            hidden = getattr(out, "hidden_states", None)
            if not hidden:
                raise AnalysisError(f"{encoder.name}: the model returns no hidden states "
                                    "(output_hidden_states=True gave none); CKA needs every layer's token states")
            mask = batch["attention_mask"].to(torch.float64).unsqueeze(-1)
            pooled = [((h.to(torch.float64) * mask).sum(1) / mask.sum(1)).cpu().numpy() for h in hidden]
            if layers is None:
                layers = [np.empty((len(docs), p.shape[1]), dtype=np.float64) for p in pooled]
            if len(pooled) != len(layers):
                raise AnalysisError(f"{encoder.name}: {len(pooled)} hidden states in one batch, "
                                    f"{len(layers)} in another")
            for matrix, p in zip(layers, pooled):
                matrix[index] = p
    assert layers is not None
    return layers
