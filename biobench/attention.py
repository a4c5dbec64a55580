"""Padding-safe SDPA for fine-tuning encoders with local (sliding-window) attention, such as ModernBERT.

Why. In a padded batch, a padding query more than half a window past its row's last real token sees
no key at all in a local layer: its mask row is all False. The forward pass is fine, but on CUDA the
memory-efficient SDPA kernel's backward turns such rows into NaN gradients for every weight
(PyTorch issues 110213 and 178251; measured here: random-init ModernBERT-base on HoC, a 16 x 192
batch whose shortest row has 92 padding tokens gives 123 NaN weight gradients at the first step).
Transformers 5 no longer works around it, so biobench does: every query row with no visible key
may see every key instead. Only padding queries have such rows, their outputs are never read (the
loss and the predictions skip padding, and padding keys stay masked for every real query), so no
real token's output or gradient changes. Pretraining packs sequences without padding and needs none
of this.

`use_padding_safe_sdpa(model)` switches a loaded model to it when the model uses SDPA and has local
layers; everything else stays as transformers built it.
"""

from __future__ import annotations

import functools

import torch

NAME = "biobench_padding_safe_sdpa"


def padding_safe_sdpa_mask(*args, **kwargs) -> torch.Tensor | None:
    """Transformers' SDPA mask, with every all-False query row (a padding query) made all-True."""
    from transformers.masking_utils import sdpa_mask

    mask = sdpa_mask(*args, **kwargs)
    if mask is None:
        return None
    return mask | ~mask.any(dim=-1, keepdim=True)


def has_local_attention(model) -> bool:
    """Local (sliding-window) layers are the only ones where a padding query can see no key."""
    return "sliding_attention" in (getattr(model.config, "layer_types", None) or [])


def use_padding_safe_sdpa(model) -> bool:
    """Switch `model` to the padding-safe mask if it runs SDPA with local layers; returns whether it did.
    Only transformers' own model classes: remote code may test for the name "sdpa" itself."""
    if model.config._attn_implementation != "sdpa" or not has_local_attention(model) \
            or not type(model).__module__.startswith("transformers."):
        return False
    _register()
    model.set_attn_implementation(NAME)
    return True


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, sdpa_attention_forward)
    AttentionMaskInterface.register(NAME, padding_safe_sdpa_mask)
