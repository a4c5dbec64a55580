"""The pretraining optimizer: Composer's decoupled AdamW rule, checked against numbers worked out by hand.

Composer's DecoupledAdamW step (composer/optim/decoupled_weight_decay.py), for a parameter with a gradient:
    w <- w * (1 - wd * lr_t / lr_peak)            first the decay,
    w <- w - lr_t * m_hat / (sqrt(v_hat) + eps)   then the Adam update.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from biobench.pretrain.config import PretrainConfig
from biobench.pretrain.optimizer import build_optimizer, decayed, describe


class Toy(nn.Module):
    """One of each kind of parameter: embedding and matrix (decayed), bias and norm (not decayed)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(3, 2)
        self.dense = nn.Linear(2, 2)
        self.norm = nn.LayerNorm(2)


def toy() -> Toy:
    model = Toy().double()  # float64: the hand computations below are exact to 1e-9
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(2.0)
    return model


def step(model: nn.Module, optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()


def values(model: nn.Module) -> dict[str, list[float]]:
    return {name: p.detach().flatten().tolist() for name, p in model.named_parameters()}


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (--fast's fused kernel on the GPU)")


@pytest.mark.parametrize("path", ["for-loop", "foreach", "fused", pytest.param("fused-cuda", marks=CUDA)])
def test_decoupled_weight_decay_shrinks_by_wd_times_lr_over_peak_before_the_adam_update(path):
    """Weights 2.0, gradients 1.0, peak LR 0.2, weight decay 0.1, betas (0.9, 0.98), eps 1e-6.
    Step 1 at lr_t = 0.05: m = 0.1, v = 0.02, bias-corrected both 1, so the Adam update is 0.05 / (1 + 1e-6).
      decayed:     2 * (1 - 0.1 * 0.05 / 0.2) - 0.05 / (1 + 1e-6) = 1.95 - 0.04999995 = 1.90000005
      not decayed: 2 - 0.04999995                                                      = 1.95000005
    (torch's coupled rule would give 2 * (1 - 0.05 * 0.1) - 0.04999995 = 1.94000005; decaying after the update,
    (2 - 0.05) * 0.975 = 1.90125.)
    Step 2 at the peak, lr_t = 0.2: m = 0.19, v = 0.0396, bias-corrected both 1 again, update 0.2 / (1 + 1e-6):
      decayed:     1.90000005 * (1 - 0.1) - 0.1999998 = 1.710000045 - 0.1999998 = 1.510000245
      not decayed: 1.95000005 - 0.1999998                                       = 1.75000025"""
    model = toy().to("cuda" if path == "fused-cuda" else "cpu")
    optimizer = build_optimizer(model, "decoupled_adamw", lr=0.2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1,
                                fused=True if path.startswith("fused") else None)
    for group in optimizer.param_groups:
        group["foreach"] = path == "foreach"
    step(model, optimizer, 0.05)
    after1 = values(model)
    step(model, optimizer, 0.2)
    after2 = values(model)
    decayed_names = {"embed.weight", "dense.weight"}
    for name in after1:
        want1, want2 = (1.90000005, 1.510000245) if name in decayed_names else (1.95000005, 1.75000025)
        assert after1[name] == pytest.approx([want1] * len(after1[name]), abs=1e-9), name
        assert after2[name] == pytest.approx([want2] * len(after2[name]), abs=1e-9), name


def test_coupled_adamw_stays_available_as_torch_defines_it():
    """`--optimizer adamw`: shrink by lr_t * wd. Step 1 as above: 2 * (1 - 0.05 * 0.1) - 0.04999995 = 1.94000005."""
    model = toy()
    optimizer = build_optimizer(model, "adamw", lr=0.2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    step(model, optimizer, 0.05)
    assert values(model)["dense.weight"] == pytest.approx([1.94000005] * 4, abs=1e-9)
    assert values(model)["dense.bias"] == pytest.approx([1.95000005] * 2, abs=1e-9)


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_biases_and_norms_are_not_decayed(kind):
    """Every bias and every norm weight is left undecayed; every other weight (matrices, embeddings) decays."""
    from transformers import AutoModelForMaskedLM, BertConfig, ModernBertConfig

    common = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    config = BertConfig(**common) if kind == "bert" else ModernBertConfig(**common, pad_token_id=0, bos_token_id=1,
                                                                          eos_token_id=2, cls_token_id=1, sep_token_id=2)
    model = AutoModelForMaskedLM.from_config(config)
    named = dict(model.named_parameters())
    by_name = {n for n in named if n.endswith(".bias") or "norm" in n.lower()}
    assert by_name and {n for n, p in named.items() if not decayed(n, p)} == by_name
    optimizer = build_optimizer(model, "decoupled_adamw", lr=2e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=1e-5)
    decay_group, plain_group = optimizer.param_groups
    assert decay_group["weight_decay"] == pytest.approx(1e-5 / 2e-4) and plain_group["weight_decay"] == 0.0
    assert {id(p) for p in plain_group["params"]} == {id(named[n]) for n in by_name}


def test_the_paper_rule_is_the_default_and_is_described():
    cfg = PretrainConfig("m", ["c"], "detour", 10)
    assert cfg.optimizer == "decoupled_adamw"
    record = describe(cfg.optimizer, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay, fused=None)
    assert record["name"] == "decoupled_adamw" and record["weight_decay"] == 1e-5 and record["lr_peak"] == 2e-4
    assert "weight_decay * lr_t / lr_peak" in record["decay_rule"] and "0.05" in record["implementation"]
    # pretrain_config.json's description reads back as the name
    assert PretrainConfig.from_dict({**cfg.to_dict(), "optimizer": record}).optimizer == "decoupled_adamw"


def test_a_checkpoint_from_before_the_rule_is_not_resumed_under_it():
    """Checkpoints written before `optimizer` existed were trained with torch's coupled AdamW."""
    cfg = PretrainConfig("m", ["c"], "detour", 10)
    old = {k: v for k, v in cfg.to_dict().items() if k != "optimizer"}
    assert PretrainConfig.from_dict(old).first_difference(cfg) == (
        "optimizer: checkpoint has 'adamw', this run has 'decoupled_adamw'")
