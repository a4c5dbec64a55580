"""Attention kernels for ModernBERT's global and local layers on this GPU: forward + backward time of one layer's
attention at the shapes `pretrain_speed.py` trains (32,768 tokens: 32 x 1024 and 4 x 8192; 12 heads of 64, bf16),
bidirectional and causal, for each SDPA backend and for flex attention (dense and the 129-token window).
It says which kernel the fast path should use for each layer type.

    python benchmarks/attention_kernels.py
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def timed(fn, q, k, v, repeats: int = 20) -> float:
    for _ in range(3):
        fn(q, k, v).sum().backward()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn(q, k, v).sum().backward()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / repeats


def main() -> None:
    flex = torch.compile(flex_attention, dynamic=False)
    print(f"{torch.cuda.get_device_name()} · torch {torch.__version__}\n")
    print("| batch x seq | mask | kernel | fwd+bwd ms |\n|---|---|---|---|")
    for batch, seq in ((32, 1024), (4, 8192)):
        q, k, v = (torch.randn(batch, 12, seq, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
        for causal in (False, True):
            for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                                  ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
                def sdpa(q, k, v, backend=backend):
                    with sdpa_kernel([backend]):
                        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                try:
                    ms = f"{timed(sdpa, q, k, v):.2f}"
                except RuntimeError as exc:
                    ms = f"n/a ({str(exc).splitlines()[0][:60]})"
                print(f"| {batch} x {seq} | {'causal' if causal else 'full'} | sdpa {name} | {ms} |", flush=True)
            for window in (None, 64):
                def mod(b, h, qi, ki, window=window):
                    keep = (qi - ki).abs() <= window if window else qi >= 0
                    return keep & (ki <= qi) if causal else keep
                block = create_block_mask(mod, None, None, seq, seq, device="cuda")
                ms = timed(lambda q, k, v: flex(q, k, v, block_mask=block), q, k, v)
                label = f"flex, window {2 * window + 1}" if window else "flex"
                print(f"| {batch} x {seq} | {'causal' if causal else 'full'} | {label} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
