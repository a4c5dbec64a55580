"""Round a pretrained checkpoint's weights to bfloat16 in place (model.safetensors), once.

Why: the untouched MiniLM travels to the GPU machine as bf16 (benchmarks/README.md), and a pretrained
checkpoint carried to a later GPU lease must fit the 64 MiB carry limit (fp32 MiniLM-MLM: 91 MB, bf16: 46 MB).
Rounding every checkpoint right after pretraining, in every route, means the weights fine-tuned and compared are
the same whether the fine-tuning runs in the same lease or a later one (same weights_sha256 in the records).
biobench loads them back in float32. Writes DIR/.bf16 (sha256 of the fp32 and bf16 files) when done.

    python to_bf16.py DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(folder: Path) -> None:
    src = folder / "model.safetensors"
    if not src.is_file():
        sys.exit(f"to_bf16.py: {src}: no such file (expected a finished `biobench pretrain --out`)")
    before = sha256(src)
    state = load_file(src)
    rounded = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}
    tmp = folder / ".model.safetensors.tmp"
    save_file(rounded, tmp, metadata={"format": "pt"})
    os.replace(tmp, src)
    (folder / ".bf16").write_text(json.dumps({"original_sha256": before, "bf16_sha256": sha256(src)}, indent=1) + "\n")
    print(f"{folder}: weights rounded to bf16 ({src.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
