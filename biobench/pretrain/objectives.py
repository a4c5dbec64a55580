"""The two objectives on the same encoder: MLM (bidirectional) and CLM (causal, next token).

Causal attention uses the model's own modules and prediction head (no second model, no weight copy):
every attention module gets `is_causal = True` (the flag SDPA / flash attention read when no mask is given) and
the forward receives the causal mask transformers builds for the model's attention implementation
(`create_causal_mask`: `None` for SDPA, an additive mask for eager, a block mask for flex). ModernBERT takes a
per-layer-type dict (DESIGN.md section 6): global layers fully causal, local layers causal within their window.
BERT, RoBERTa and CamemBERT pass an already-built 4D mask through unchanged. `check_causal` proves it on the
model at hand before training: changing token t must leave every logit before t unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from biobench.pretrain.config import PretrainError

IGNORE = -100


def mask_tokens(ids: torch.Tensor, rate: float, generator: torch.Generator, *, mask_id: int, vocab_size: int,
                special_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose `rate` of the non-special tokens; 80% -> [MASK], 10% -> random, 10% kept.
    Returns (inputs, labels) with labels IGNORE except at chosen positions."""
    shape = ids.shape
    chosen = torch.rand(shape, generator=generator) < rate
    chosen &= ~torch.isin(ids, torch.tensor(special_ids, dtype=ids.dtype))
    labels = torch.where(chosen, ids, IGNORE)
    action = torch.rand(shape, generator=generator)
    random_ids = torch.randint(vocab_size, shape, generator=generator, dtype=ids.dtype)
    inputs = torch.where(chosen & (action < 0.8), mask_id, ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return inputs, labels


def clm_labels(ids: torch.Tensor) -> torch.Tensor:
    """Next-token targets: position i predicts token i+1; the last position predicts nothing."""
    labels = torch.full_like(ids, IGNORE)
    labels[:, :-1] = ids[:, 1:]
    return labels


def mask_generator(seed: int, index: int) -> torch.Generator:
    """Masking randomness for global micro-batch `index`: independent of data order, ranks and resumes."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63))


def set_causal(model: nn.Module, causal: bool) -> int:
    """Flip `is_causal` on every attention module; returns how many were flipped."""
    n = 0
    for module in model.modules():
        if isinstance(getattr(module, "is_causal", None), bool):
            module.is_causal = causal
            n += 1
    return n


def causal_mask(model: nn.Module, ids: torch.Tensor):
    """The `attention_mask` argument that makes the model's forward causal."""
    from transformers.masking_utils import create_causal_mask, sliding_window_bidirectional_overlay

    config = model.config
    shape_only = torch.empty(*ids.shape, 1, device=ids.device)  # masks read batch, length, dtype, device
    # positional: the 4th parameter (no cache) is `past_key_values` before transformers 5.24 and `cache` after
    full = create_causal_mask(config, shape_only, None, None)
    if config.model_type == "modernbert":
        local = create_causal_mask(config, shape_only, None, None,
                                   and_mask_function=sliding_window_bidirectional_overlay(config.sliding_window))
        return {"full_attention": full, "sliding_attention": local}
    return full


def lm_loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, causal: bool, masks=None) -> torch.Tensor:
    """Mean cross-entropy over labelled positions, through the masked-LM head (also in causal mode).
    `masks`: prebuilt attention masks (the fast path's, `fast.attention_masks`), else built here."""
    unwrapped = getattr(model, "module", model)
    mask = masks if masks is not None else causal_mask(unwrapped, inputs) if causal else None
    return model(input_ids=inputs, attention_mask=mask, labels=labels).loss


@torch.no_grad()
def check_causal(model: nn.Module, vocab_size: int, seq_len: int = 16, t: int = 9) -> None:
    """Refuse an architecture on which the causal mode leaks future tokens (or causality is not observable)."""
    training = model.training
    model.eval()
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(vocab_size, (2, seq_len), generator=g).to(device)
    changed = ids.clone()
    changed[:, t] = (changed[:, t] + 1) % vocab_size
    name = model.config.model_type
    try:
        if set_causal(model, True) == 0:
            raise PretrainError(f"--objective detour: {name} attention has no causal switch (expected BERT, RoBERTa, CamemBERT or ModernBERT)")
        a, b = (model(input_ids=x, attention_mask=causal_mask(model, x)).logits for x in (ids, changed))
    except PretrainError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means the architecture cannot run causally
        raise PretrainError(f"--objective detour: {name} attention cannot be made causal ({type(exc).__name__}: {exc})") from None
    finally:
        set_causal(model, False)
        model.train(training)
    if not torch.allclose(a[:, :t], b[:, :t], rtol=1e-4, atol=1e-5) or torch.allclose(a[:, t:], b[:, t:]):
        raise PretrainError(f"--objective detour: {name} attention cannot be made causal (a later token changed an earlier logit)")
