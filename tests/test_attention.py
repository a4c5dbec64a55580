"""The padding-safe SDPA mask: no query row reaches SDPA without a visible key, and no real token changes.

(The NaN it prevents is a CUDA kernel's: PyTorch's memory-efficient SDPA backward on all-False mask rows.
CPU runs the math kernel, which copes, so the test checks what reaches SDPA and that the switch is a no-op
for every real token's output and gradient; benchmarks/finetune_speed.py shows the GPU side.)
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from biobench.attention import NAME, use_padding_safe_sdpa


def tiny_modernbert():
    from transformers import ModernBertConfig, ModernBertForTokenClassification

    # local window 4 (|q - k| <= 2): a row padded by more than 2 tokens has padding queries that see no key
    config = ModernBertConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, local_attention=4, global_attn_every_n_layers=3,
                              max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              cls_token_id=1, sep_token_id=2, num_labels=3)
    torch.manual_seed(0)
    return ModernBertForTokenClassification(config)


def padded_batch():
    ids = torch.randint(5, 100, (2, 20), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 6:] = 0  # 14 padding tokens: far past the local window
    ids[1, 6:] = 0
    labels = torch.randint(0, 3, (2, 20), generator=torch.Generator().manual_seed(2)).masked_fill(mask == 0, -100)
    return ids, mask, labels


def rows_without_a_key(model, monkeypatch, *inputs) -> list[bool]:
    """Per SDPA call of one forward: whether some query row of the mask it received sees no key."""
    seen, sdpa = [], F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append(attn_mask is not None and bool((~attn_mask.any(-1)).any()))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        model(input_ids=inputs[0], attention_mask=inputs[1])
    monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
    return seen


def test_no_query_row_reaches_sdpa_without_a_key(monkeypatch):
    plain = tiny_modernbert().eval()
    safe = copy.deepcopy(plain)
    assert use_padding_safe_sdpa(safe) and safe.config._attn_implementation == NAME
    ids, mask, _ = padded_batch()
    # the problem exists: transformers hands the local layers rows with no visible key
    assert rows_without_a_key(plain, monkeypatch, ids, mask) == [False, True, True]
    assert rows_without_a_key(safe, monkeypatch, ids, mask) == [False, False, False]


def test_real_tokens_keep_their_outputs_and_gradients():
    plain = tiny_modernbert()
    safe = copy.deepcopy(plain)
    use_padding_safe_sdpa(safe)
    ids, mask, labels = padded_batch()
    out_plain = plain(input_ids=ids, attention_mask=mask, labels=labels)
    out_safe = safe(input_ids=ids, attention_mask=mask, labels=labels)
    real = mask.bool()
    torch.testing.assert_close(out_safe.logits[real], out_plain.logits[real], rtol=0, atol=1e-6)
    out_plain.loss.backward()
    out_safe.loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), safe.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_models_without_local_layers_or_sdpa_are_left_alone(attn):
    from transformers import BertConfig, BertForTokenClassification

    bert = BertForTokenClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=64))
    assert not use_padding_safe_sdpa(bert)
    local = tiny_modernbert()
    local.set_attn_implementation(attn)
    assert use_padding_safe_sdpa(local) == (attn == "sdpa")


def test_model_classes_from_outside_transformers_are_left_alone():
    from transformers import ModernBertForTokenClassification

    remote = type("RemoteModernBert", (ModernBertForTokenClassification,), {"__module__": "transformers_modules.x"})
    model = remote(tiny_modernbert().config)
    assert not use_padding_safe_sdpa(model) and model.config._attn_implementation == "sdpa"
