"""The pretraining optimizer: AdamW with weight decay decoupled from the learning rate, as the paper's.

The paper trained with Composer's `DecoupledAdamW` (mosaicml/composer, composer/optim/decoupled_weight_decay.py).
Each step, for a parameter with a gradient, it first shrinks the weight, then applies the usual Adam update:

    w <- w * (1 - weight_decay * lr_t / lr_peak)        # lr_peak: the group's LR when the optimizer was built
    w <- w - lr_t * m_hat / (sqrt(v_hat) + eps)

so `weight_decay` is the fraction a weight loses per step at the peak LR (1e-5), following the LR schedule.
`torch.optim.AdamW` shrinks by `lr_t * weight_decay` (2e-9 per step at LR 2e-4 for weight decay 1e-5: 5,000x
weaker) and does so at the same point, before the Adam update. Hence torch's AdamW with
`weight_decay = wd / lr_peak` performs exactly the decoupled step, and keeps its foreach and fused (CUDA)
kernels, which `--fast` uses. Tested against a hand computation in tests/test_pretrain_optimizer.py.

No decay on biases and norms: the rule of ModernBERT's `filter_bias_norm_wd` (timm's
`param_groups_weight_decay`): a parameter with at most one dimension, or whose name ends in `.bias`.
`--optimizer adamw` keeps torch's coupled rule (what biobench used before, and what older checkpoints hold).
"""

from __future__ import annotations

import torch
from torch import nn

from biobench.pretrain.config import OPTIMIZERS
DECAY_RULES = {
    "decoupled_adamw": "w <- w * (1 - weight_decay * lr_t / lr_peak), before the Adam update (Composer DecoupledAdamW)",
    "adamw": "w <- w * (1 - lr_t * weight_decay), before the Adam update (torch.optim.AdamW)",
}
NO_DECAY = "biases and norms: parameters with ndim <= 1 or a name ending in .bias"


def decayed(name: str, parameter: nn.Parameter) -> bool:
    """Whether weight decay applies: matrices and embeddings yes, biases and norm weights no."""
    return parameter.ndim > 1 and not name.endswith(".bias")


def build_optimizer(model: nn.Module, name: str, *, lr: float, betas: tuple[float, float], eps: float,
                    weight_decay: float, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over `model`'s parameters in two groups (decayed, not decayed), with the decay rule `name`.
    `lr` is the peak learning rate; the loop sets each step's `lr_t` in every group."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    named = list(model.named_parameters())
    # torch multiplies the group's weight_decay by lr_t; dividing by the peak gives weight_decay * lr_t / lr_peak
    per_lr = weight_decay / lr if name == "decoupled_adamw" else weight_decay
    groups = [{"params": [p for n, p in named if decayed(n, p)], "weight_decay": per_lr},
              {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def describe(name: str, *, lr: float, betas: tuple[float, float], eps: float, weight_decay: float,
             fused: bool | None) -> dict:
    """The optimizer as `pretrain_config.json` records it: the rule in words and how torch runs it."""
    per_lr = weight_decay / lr if name == "decoupled_adamw" else weight_decay
    return {"name": name, "betas": list(betas), "eps": eps, "weight_decay": weight_decay, "lr_peak": lr,
            "decay_rule": DECAY_RULES[name], "no_decay": NO_DECAY,
            "implementation": f"torch.optim.AdamW(weight_decay={per_lr:.6g} on the decayed group"
                              f"{', fused' if fused else ''})"}
