"""`--fast` against the plain path, on CPU: flex local attention gives ModernBERT's logits in both objectives,
per-layer compilation gives the same losses and gradients, and the background reader keeps the stream's order.

(PyTorch has no flex-attention backward on CPU, so the flex path is compared forward here and with gradients
by the GPU benchmark's pre-check, benchmarks/pretrain_speed.py.)
"""

from __future__ import annotations

import copy
import threading

import pytest
import torch

from biobench.pretrain import fast
from biobench.pretrain.corpus import Prefetch
from biobench.pretrain.objectives import causal_mask, clm_labels, lm_loss, mask_generator, mask_tokens, set_causal

V = 120


def tiny_modernbert(attention_dropout: float = 0.0, hidden_size: int = 32):
    from transformers import AutoModelForMaskedLM, ModernBertConfig

    # local window 8 (|q - k| <= 4) on 48-token sequences: the block mask must reproduce the dense one exactly;
    # initializer_range 0.5 gives peaked attention, so a wrong window changes the logits by far more than 1e-3
    config = ModernBertConfig(vocab_size=V, hidden_size=hidden_size, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=64, local_attention=8, global_attn_every_n_layers=3, initializer_range=0.5,
                              attention_dropout=attention_dropout, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                              cls_token_id=1, sep_token_id=2)
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa")


def tiny_bert():
    from transformers import AutoModelForMaskedLM, BertConfig

    config = BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(config, attn_implementation="sdpa")


def batch(causal: bool, seq_len: int = 48):
    ids = torch.randint(5, V, (2, seq_len), generator=torch.Generator().manual_seed(3))
    if causal:
        return ids, clm_labels(ids)
    return mask_tokens(ids, 0.3, mask_generator(0, 0), mask_id=4, vocab_size=V, special_ids=[0, 1, 2, 3, 4])


@pytest.mark.parametrize("causal", [False, True], ids=["mlm", "clm"])
def test_flex_local_attention_gives_the_dense_masks_logits(causal):
    plain = tiny_modernbert().eval()
    quick = copy.deepcopy(plain)
    assert fast.enable(quick, flex=True, compile_backend=None) == {
        "compiled_layers": 0, "flex_local_attention": True, "global_attention": "cudnn" if torch.cuda.is_available() else "sdpa"}
    inputs, _ = batch(causal)
    with torch.no_grad():
        set_causal(plain, causal)
        set_causal(quick, causal)
        masks = fast.attention_masks(quick, inputs.shape[1], causal, inputs.device)
        assert masks["full_attention"] is None and type(masks["sliding_attention"]).__name__ == "BlockMask"
        reference = plain(input_ids=inputs, attention_mask=causal_mask(plain, inputs) if causal else None).logits
        got = quick(input_ids=inputs, attention_mask=masks).logits
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-4)
    # the window matters: a model attending everywhere gives other logits
    with torch.no_grad():
        wide = quick(input_ids=inputs, attention_mask={"full_attention": None, "sliding_attention": None}).logits
    assert not torch.allclose(wide, reference, atol=1e-1)


def test_flex_path_is_undone_before_saving():
    model = tiny_modernbert()
    fast.enable(model, flex=True, compile_backend=None)
    assert model.config._attn_implementation == fast.ATTENTION
    fast.disable(model)
    assert model.config._attn_implementation == "sdpa"
    assert fast.attention_masks(model, 48, False, torch.device("cpu")) is None


def test_flex_refuses_attention_dropout():
    from biobench.pretrain.config import PretrainError

    with pytest.raises(PretrainError, match="attention_dropout"):
        fast.enable(tiny_modernbert(attention_dropout=0.1), flex=True, compile_backend=None)


@pytest.mark.parametrize("make", [tiny_bert, tiny_modernbert], ids=["bert", "modernbert"])
@pytest.mark.parametrize("causal", [False, True], ids=["mlm", "clm"])
def test_compiled_layers_give_the_same_loss_and_gradients(make, causal):
    import torch._dynamo

    torch._dynamo.reset()
    before = fast.compiled_graphs()
    plain = make().train()
    quick = copy.deepcopy(plain)
    # aot_eager: dynamo and autograd tracing as with inductor, without a C++ build in CI
    assert fast.enable(quick, flex=False, compile_backend="aot_eager")["compiled_layers"] == quick.config.num_hidden_layers
    inputs, labels = batch(causal)
    losses = []
    for model in (plain, quick):
        set_causal(model, causal)
        loss = lm_loss(model, inputs, labels, causal, fast.attention_masks(model, inputs.shape[1], causal, inputs.device))
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(plain.named_parameters(), quick.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")
    assert set(plain.state_dict()) == set(quick.state_dict()), "compiling in place keeps the weight names"
    assert 0 < fast.compiled_graphs() - before <= fast.expected_graphs(quick), "a recompile or a graph break"


def test_prefetch_keeps_order_and_stops():
    before = threading.active_count()
    with Prefetch(iter(range(1000)), depth=3) as items:
        assert [next(items) for _ in range(10)] == list(range(10))
    assert threading.active_count() == before, "leaving the block stops the reader"
    assert list(Prefetch(iter(range(5)))) == [0, 1, 2, 3, 4]


def test_prefetch_raises_the_readers_error_in_the_consumer():
    def broken():
        yield 1
        raise ValueError("--corpus x.jsonl: line 2 is not JSON")

    items = Prefetch(broken())
    assert next(items) == 1
    with pytest.raises(ValueError, match="line 2"):
        next(items)


def test_cudnn_probe_says_no_off_cuda():
    assert fast.cudnn_attention_works(torch.device("cpu")) is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN attention needs a CUDA device")
@pytest.mark.parametrize("causal", [False, True], ids=["mlm", "clm"])
def test_cudnn_global_attention_gives_sdpas_loss_and_gradients_on_cuda(causal):
    """The global layers through cuDNN (the local ones through flex in both models): same loss and gradients."""
    plain = tiny_modernbert(hidden_size=64).cuda()  # flex on CUDA needs heads of at least 16
    quick = copy.deepcopy(plain)
    fast.enable(plain, flex=True, compile_backend=None)
    fast.enable(quick, flex=True, compile_backend=None)
    assert fast.cudnn_attention_works(torch.device("cuda"))
    for module in plain.modules():
        if hasattr(module, fast.CUDNN_FLAG):
            setattr(module, fast.CUDNN_FLAG, False)
    inputs, labels = (t.cuda() for t in batch(causal, seq_len=256))
    results = []
    for model in (plain, quick):
        set_causal(model, causal)
        masks = fast.attention_masks(model, inputs.shape[1], causal, inputs.device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=inputs, attention_mask=masks, labels=labels).loss
        loss.backward()
        results.append((loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])))
    (loss_sdpa, grad_sdpa), (loss_cudnn, grad_cudnn) = results
    torch.testing.assert_close(loss_cudnn, loss_sdpa, rtol=1e-2, atol=1e-3)
    assert float((grad_cudnn - grad_sdpa).norm() / grad_sdpa.norm()) < 5e-2
