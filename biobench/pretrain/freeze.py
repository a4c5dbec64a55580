"""Freezing encoder layers A..B during a phase (the paper's 0-7 / 8-14 ablations).

Frozen weights keep `requires_grad` (so DDP/FSDP wrap the same parameters in every phase); the loop drops
their gradients before clipping and the optimizer step, and AdamW leaves a parameter without a gradient
untouched (no update, no weight decay, no moment change).
"""

from __future__ import annotations

from torch import nn

from biobench import compiling
from biobench.pretrain.config import PretrainError


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks (`compiling.encoder_layers`), with the error a `--freeze` user can act on."""
    try:
        return compiling.encoder_layers(model)
    except ValueError as err:
        raise PretrainError(f"--freeze: {err}") from None


def check_range(model: nn.Module, phase: str, layers: tuple[int, int]) -> None:
    n = model.config.num_hidden_layers
    if layers[1] >= n:
        raise PretrainError(
            f"--freeze {phase}:{layers[0]}-{layers[1]}: outside the model's {n} layers (expected a range within 0-{n - 1})")


def frozen_parameters(model: nn.Module, layers: tuple[int, int] | None) -> list[nn.Parameter]:
    if layers is None:
        return []
    blocks = encoder_layers(model)
    return [p for i in range(layers[0], layers[1] + 1) for p in blocks[i].parameters()]
