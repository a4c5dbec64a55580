"""Objectives on tiny random-init encoders: causality on the same weights, masking, the LR schedule, the phase plan."""

from __future__ import annotations

import math

import pytest
import torch

from biobench.pretrain.config import PretrainConfig, PretrainError, parse_freeze
from biobench.pretrain.objectives import (
    IGNORE, causal_mask, check_causal, clm_labels, lm_loss, mask_generator, mask_tokens, set_causal)
from biobench.pretrain.schedule import learning_rate

V = 120


def tiny(kind: str, attn: str):
    from transformers import (AutoModelForMaskedLM, BertConfig, CamembertConfig, ModernBertConfig, RobertaConfig)

    common = dict(vocab_size=V, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64)
    config = {
        "bert": lambda: BertConfig(**common),
        "roberta": lambda: RobertaConfig(**common),
        "camembert": lambda: CamembertConfig(**common),
        # local window 8 < sequence 24, so the sliding layers' mask matters
        "modernbert": lambda: ModernBertConfig(**common, local_attention=8, global_attn_every_n_layers=3,
                                               pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2),
    }[kind]()
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(config, attn_implementation=attn).eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("kind", ["bert", "roberta", "camembert", "modernbert"])
def test_changing_token_t_leaves_earlier_logits_unchanged_only_in_clm_mode(kind, attn):
    model = tiny(kind, attn)
    ids = torch.randint(5, V, (2, 24), generator=torch.Generator().manual_seed(1))
    t = 13
    changed = ids.clone()
    changed[:, t] = (changed[:, t] + 1 - 5) % (V - 5) + 5
    with torch.no_grad():
        set_causal(model, True)
        a, b = (model(input_ids=x, attention_mask=causal_mask(model, x)).logits for x in (ids, changed))
        set_causal(model, False)
        c, d = (model(input_ids=x).logits for x in (ids, changed))
    assert torch.equal(a[:, :t], b[:, :t]), "CLM: a later token changed an earlier logit"
    assert not torch.allclose(a[:, t:], b[:, t:]), "CLM: the changed token itself must matter"
    assert not torch.allclose(c[:, :t], d[:, :t]), "MLM: attention must be bidirectional"
    check_causal(model, V)  # the runtime proof accepts it
    assert not any(getattr(m, "is_causal", False) is True for m in model.modules()), "check_causal must restore bidirectional"


def test_clm_loss_is_next_token_loss_through_the_mlm_head():
    model = tiny("bert", "sdpa")
    ids = torch.randint(5, V, (2, 10), generator=torch.Generator().manual_seed(2))
    set_causal(model, True)
    with torch.no_grad():
        loss = lm_loss(model, ids, clm_labels(ids), causal=True)
        logits = model(input_ids=ids, attention_mask=causal_mask(model, ids)).logits
    set_causal(model, False)
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    assert torch.allclose(loss, expected, atol=1e-6)


def test_architecture_that_cannot_be_causal_is_refused():
    from transformers import AutoModelForMaskedLM, FNetConfig

    model = AutoModelForMaskedLM.from_config(FNetConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, intermediate_size=64))
    with pytest.raises(PretrainError, match="--objective detour: fnet"):
        check_causal(model, V)


def test_mlm_masking_rates_and_determinism():
    ids = torch.randint(10, 1000, (64, 256), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 1, 2  # specials
    inputs, labels = mask_tokens(ids, 0.3, mask_generator(7, 3), mask_id=3, vocab_size=1000, special_ids=[0, 1, 2, 3])
    chosen = labels != IGNORE
    assert abs(chosen.float().mean().item() - 0.3 * 254 / 256) < 0.01
    assert not chosen[:, 0].any() and not chosen[:, -1].any(), "special tokens are never masked"
    assert torch.equal(labels[chosen], ids[chosen]), "labels are the original tokens"
    assert torch.equal(inputs[~chosen], ids[~chosen]), "unchosen tokens are untouched"
    n = chosen.sum().item()
    as_mask = (inputs[chosen] == 3).sum().item() / n
    kept = (inputs[chosen] == ids[chosen]).sum().item() / n
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.02  # and ~10% random
    again = mask_tokens(ids, 0.3, mask_generator(7, 3), mask_id=3, vocab_size=1000, special_ids=[0, 1, 2, 3])
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)
    other = mask_tokens(ids, 0.3, mask_generator(7, 4), mask_id=3, vocab_size=1000, special_ids=[0, 1, 2, 3])
    assert not torch.equal(other[1], labels), "each micro-batch gets its own masking"


def test_clm_labels_shift_by_one():
    ids = torch.tensor([[5, 6, 7, 8]])
    assert clm_labels(ids).tolist() == [[6, 7, 8, IGNORE]]


def test_lr_schedule_warmup_constant_then_one_minus_sqrt_to_ten_percent():
    peak = 2e-4
    assert learning_rate("phase1", 50, 1000, peak, 100) == pytest.approx(peak / 2)
    assert learning_rate("phase1", 100, 1000, peak, 100) == peak
    assert learning_rate("phase1", 1000, 1000, peak, 100) == peak
    assert learning_rate("decay", 0, 400, peak, 100) == pytest.approx(peak)
    assert learning_rate("decay", 100, 400, peak, 100) == pytest.approx(peak * (0.1 + 0.9 * (1 - math.sqrt(0.25))))
    assert learning_rate("decay", 400, 400, peak, 100) == pytest.approx(0.1 * peak)


def test_twin_arms_differ_only_in_phase1():
    base = dict(init="m", corpus=["c"], tokens=10_000, seq_len=100, micro_batch=2, batch_tokens=400)
    mlm = PretrainConfig(objective="mlm", **base).resolve(1, False)
    detour = PretrainConfig(objective="detour", **base).resolve(1, False)
    (m1, m2), (d1, d2) = mlm.phases(), detour.phases()
    assert m2 == d2 and m2.objective == "mlm" and m2.mask_rate == 0.15
    assert (m1.objective, m1.mask_rate, d1.objective, d1.mask_rate) == ("mlm", 0.3, "clm", 0.0)
    assert m1.steps == d1.steps == 25 and m2.steps == d2.steps == 2  # round(25 x 0.1)
    assert mlm.first_difference(detour) == "objective: checkpoint has 'mlm', this run has 'detour'"


@pytest.mark.parametrize("spec", ["phase2:0-3", "phase1:3-1", "phase1:a-b", "phase1"])
def test_bad_freeze_specs(spec):
    with pytest.raises(PretrainError, match=f"--freeze {spec}"):
        parse_freeze([spec])


def test_budget_checks():
    base = dict(init="m", corpus=["c"], objective="mlm", seq_len=100, micro_batch=2)
    with pytest.raises(PretrainError, match="--tokens 300: smaller than one optimizer step"):
        PretrainConfig(tokens=300, batch_tokens=400, **base).resolve(1, False)
    with pytest.raises(PretrainError, match="--batch-tokens 500"):
        PretrainConfig(tokens=3000, batch_tokens=500, **base).resolve(1, False)
    with pytest.raises(PretrainError, match="--decay-fraction"):
        PretrainConfig(tokens=1000, batch_tokens=400, **base).resolve(1, False)
    assert parse_freeze(["phase1:0-7", "decay:8-14"]) == {"phase1": (0, 7), "decay": (8, 14)}
