"""`--fast`: the GPU speed paths of the pretraining loop, each optional and checked against the plain path.

What it changes, and why each helps (measured in benchmarks/pretrain_speed.py):
- **Per-layer `torch.compile`.** Each encoder layer is compiled in place (`nn.Module.compile`), not the whole
  model: the layers share one code object, so a 22-layer model compiles a handful of graphs in under a minute,
  and the embedding, mask and loss code around them stays eager and readable. Weight names do not change.
- **Local attention through flex attention (ModernBERT).** The sliding-window layers attend to 129 tokens,
  but SDPA with a dense mask computes the whole sequence x sequence score matrix. Flex attention with a
  block mask skips the blocks outside the window. The masks are built once per sequence length and objective.
- **Bidirectional global attention through cuDNN (ModernBERT, CUDA).** The global layers need no mask on
  packed sequences; SDPA picks its flash kernel for them, while cuDNN's fused attention takes 0.6-0.7x its
  time on an H200 (benchmarks/results/2026-11-29-h200-attention-kernels.md). The cuDNN kernel is called
  directly (asking SDPA for it inside a compiled layer broke the graphs), after a probe against SDPA's math
  kernel (`cudnn_attention_works`); where the probe fails the global layers keep SDPA. Causal (CLM) global
  layers keep SDPA's flash kernel (causal through `is_causal`): with cuDNN the whole CLM step measured
  slower (base, 1024: 314k tokens/s, against 338k-344k with flash), though the kernel alone is faster.
- **A compiled loss.** Cross-entropy over a 50k vocabulary in eager mode writes the logits again in float32,
  then their log-softmax, then the same in the backward; compiled, it reads the bf16 logits once each way.
  It matters most for CLM, which predicts every position (MLM predicts 30%).
- **Sparse prediction (ModernBERT, set by the loop in every mode):** in MLM the head runs on the masked
  positions only; in CLM, where every position but the last is labelled, it is off, which spares a host sync.
- **Fused AdamW** on CUDA.

The fast path assumes what the pretraining loop guarantees: packed sequences with no padding. Outputs equal the
plain path's to float tolerance (tests/test_pretrain_fast.py, on CPU for both objectives).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from biobench.compiling import compile_layers, compiled_graphs, encoder_layers  # noqa: F401 (fast.compiled_graphs)
from biobench.pretrain.config import PretrainError

ATTENTION = "biobench_flex_local"
CUDNN_FLAG = "biobench_cudnn_attention"  # set on ModernBERT's attention modules: global layers through cuDNN


def enable(model: nn.Module, *, flex: bool, compile_backend: str | None = "inductor") -> dict:
    """Switch `model` (unwrapped, before DDP/FSDP wrapping) to the fast path; returns what was enabled.
    `flex`: local attention through flex attention (CUDA only: PyTorch has no flex backward on CPU)."""
    enabled = {"compiled_layers": 0, "flex_local_attention": False}
    if flex and model.config.model_type == "modernbert":
        if getattr(model.config, "attention_dropout", 0.0):
            raise PretrainError("--fast: flex attention has no dropout; ModernBERT needs attention_dropout 0 "
                                f"(the checkpoint has {model.config.attention_dropout})")
        _register()
        model.set_attn_implementation(ATTENTION)
        enabled["flex_local_attention"] = True
        cuda = torch.cuda.is_available() and torch.device("cuda", torch.cuda.current_device())
        enabled["global_attention"] = "cudnn" if cuda and cudnn_attention_works(cuda) else "sdpa"
        for module in model.modules():
            if hasattr(module, "is_causal") and hasattr(module, "Wqkv"):
                setattr(module, CUDNN_FLAG, enabled["global_attention"] == "cudnn")
    if compile_backend:
        enabled["compiled_layers"] = compile_layers(model, compile_backend, dynamic=False)  # packed: one length
        model.loss_function = functools.partial(masked_lm_loss, _compiled_cross_entropy(compile_backend))
    return enabled


def expected_graphs(model: nn.Module) -> int:
    """Graphs a fast run of one objective should compile: one per distinct layer structure (ModernBERT: global,
    local, and layer 0, which has no attention norm) plus the loss. More means a recompile or a graph break."""
    layers = {(getattr(layer, "attention_type", None), tuple(type(m).__name__ for m in layer.children()))
              for layer in encoder_layers(model)}
    return len(layers) + 1


def masked_lm_loss(cross_entropy, logits: torch.Tensor, labels: torch.Tensor, vocab_size: int,
                   ignore_index: int = -100, **kwargs) -> torch.Tensor:
    """Transformers' masked-LM loss signature (mean over labelled positions), through a compiled cross-entropy
    whose first dimension (the number of predicted positions) is dynamic, so one graph serves every batch."""
    logits, labels = logits.reshape(-1, vocab_size), labels.reshape(-1).to(logits.device)
    torch._dynamo.mark_dynamic(logits, 0)
    torch._dynamo.mark_dynamic(labels, 0)
    return cross_entropy(logits, labels, ignore_index)


@functools.cache
def _compiled_cross_entropy(backend: str):
    def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)

    return torch.compile(cross_entropy, backend=backend)


def disable(model: nn.Module) -> None:
    """Back to the standard attention before saving, so the checkpoint's config names SDPA."""
    if model.config._attn_implementation == ATTENTION:
        model.set_attn_implementation("sdpa")


def attention_masks(model: nn.Module, seq_len: int, causal: bool, device: torch.device) -> dict | None:
    """The `attention_mask` argument for a fast ModernBERT forward on unpadded sequences of `seq_len`:
    no mask for the global layers (SDPA, causal by flag), a flex block mask for the local ones.
    None for other architectures (they build their own masks)."""
    if model.config._attn_implementation != ATTENTION:
        return None
    return {"full_attention": None,
            "sliding_attention": _local_block_mask(seq_len, model.config.sliding_window, causal, str(device))}


@functools.lru_cache(maxsize=8)
def _local_block_mask(seq_len: int, half_window: int, causal: bool, device: str):
    """The mask of ModernBERT's local layers, as transformers builds it densely: |q - k| <= half_window
    (129 tokens for the default 64), and k <= q as well in causal mode."""
    from torch.nn.attention.flex_attention import create_block_mask

    def local(b, h, q, k):
        return (q - k).abs() <= half_window

    def causal_local(b, h, q, k):
        return (k <= q) & (q - k <= half_window)

    return create_block_mask(causal_local if causal else local, B=None, H=None, Q_LEN=seq_len, KV_LEN=seq_len,
                             device=device)


def flex_local_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs):
    """Transformers attention interface: [B, H, L, D] inputs -> ([B, L, H, D], None).
    A BlockMask goes to flex attention; no mask to SDPA (causal when the module is); a dense mask to SDPA."""
    from torch.nn.attention.flex_attention import BlockMask

    if isinstance(attention_mask, BlockMask):
        flex = _flex_attention(compiled=torch.cuda.is_available() and not torch.compiler.is_compiling())
        out = flex(query, key, value, block_mask=attention_mask, scale=scaling)
    elif attention_mask is None and getattr(module, CUDNN_FLAG, False) and not module.is_causal and not dropout:
        out = torch.ops.aten._scaled_dot_product_cudnn_attention(query, key, value, None, True, 0.0, False, False,
                                                                 scale=scaling)[0]
    else:
        causal = attention_mask is None and bool(getattr(module, "is_causal", False))
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=dropout,
                                             is_causal=causal, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def cudnn_attention_works(device: torch.device) -> bool:
    """Whether cuDNN's fused attention runs here and agrees with SDPA's math kernel, forward and backward,
    causal and not, on inputs laid out as ModernBERT hands them over (views of one fused QKV projection).
    Probed once before compiling, so a build, cuDNN or GPU without it falls back to SDPA instead of failing
    inside a compiled step."""
    if device.type != "cuda":
        return False
    try:
        g = torch.Generator(device).manual_seed(0)
        qkv = torch.randn(2, 256, 3, 4, 64, device=device, generator=g, dtype=torch.bfloat16, requires_grad=True)
        grad_out = torch.randn(2, 4, 256, 64, device=device, generator=g, dtype=torch.bfloat16)
        for causal in (False, True):
            results = []
            for cudnn in (True, False):
                q, k, v = (t.transpose(1, 2) for t in qkv.unbind(dim=2))
                if cudnn:
                    out = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, causal, False)[0]
                else:
                    out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=causal)
                (grad,) = torch.autograd.grad(out.float(), qkv, grad_out.float())
                results.append((out.float(), grad.float()))
            (out, grad), (ref, ref_grad) = results
            if not (torch.allclose(out, ref, atol=2e-2, rtol=2e-2) and torch.allclose(grad, ref_grad, atol=5e-2, rtol=5e-2)):
                return False
    except (RuntimeError, NotImplementedError, AttributeError):
        return False
    return True


@functools.cache
def _flex_attention(compiled: bool):
    """Flex attention; compiled when called outside a compiled layer on CUDA (eager flex is a slow
    reference implementation; inside a compiled layer dynamo traces the plain function)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False) if compiled else flex_attention


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, flex_local_attention)
