"""Loading encoders, and naming exactly which weights a number came from.

`M` is a hub id or a local folder. Weights load from safetensors only (a pickle checkpoint can run
code on load), and remote code runs only when the user asks for it. `model_sha` is what a record
stores so that two runs are only mixed when they used the same weights: a hash of the safetensors
files of a local folder, or the commit hash a hub id resolves to in the local cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelError(ValueError):
    """The model cannot be used as given; the message says why and what to do."""


def is_local(model: str) -> bool:
    return os.path.isdir(model)


def check_model(model: str) -> None:
    """Fail before training on a model argument that can never load (a sweep should not start it)."""
    if is_local(model):
        if not list(Path(model).glob("*.safetensors")):
            raise ModelError(f"{model}: no *.safetensors weights in this folder (biobench loads safetensors only)")
    elif not _HUB_ID.match(model):
        raise ModelError(f"{model}: no such folder, and not a hub id like 'org/name'")


def load_tokenizer(model: str, *, trust_remote_code: bool = False, need_fast: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    if need_fast and not tokenizer.is_fast:
        raise ModelError(f"{model}: token_ner needs a fast tokenizer (word_ids() maps sub-tokens to words), "
                         f"but only a slow {type(tokenizer).__name__} is available; add a tokenizer.json to the model")
    return tokenizer


def load_model(model: str, head: Any, *, trust_remote_code: bool = False, **config: Any) -> tuple[Any, dict]:
    """`head` is a transformers Auto class; `config` sets num_labels, id2label, problem_type...

    Returns the model and which weights were freshly initialised (`missing`: normally the head
    only) or left unused (`unexpected`), for the record: a missing encoder weight means the
    checkpoint's names do not match the architecture and the "fine-tuned" encoder is random.

    Weights load in float32 whatever the checkpoint's dtype: transformers 5 keeps a bf16
    checkpoint in bf16, and AdamW updates on bf16 weights lose most small steps. Mixed precision
    comes from autocast in the loop, on CUDA only.
    """
    import torch
    import transformers

    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    # transformers prints a load report for every fresh head; the same facts go into the record
    # (`notes.weights`), so a sweep of hundreds of runs stays readable.
    verbosity, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        net, info = head.from_pretrained(model, use_safetensors=True, trust_remote_code=trust_remote_code,
                                         output_loading_info=True, **{dtype_key: torch.float32}, **config)
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()
    return net, {key: sorted(str(k) for k in info.get(f"{key}_keys", [])) for key in ("missing", "unexpected")}


def max_positions(model) -> int | None:
    """How many tokens the encoder can take (None: no limit stated)."""
    value = getattr(model.config, "max_position_embeddings", None)
    return int(value) if value else None


def model_sha(model: str) -> str:
    """sha256 of a local folder's safetensors files (sorted by name), or the hub id's cached commit."""
    if is_local(model):
        files = sorted(Path(model).glob("*.safetensors"))
        return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True)).name  # .../snapshots/<commit>
    except Exception:  # not in the cache, offline, malformed id: say so rather than guess
        return "unknown"


@lru_cache(maxsize=32)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    """Cached on (path, size, mtime): run_cell hashes once for resume, once for the record."""
    digest = hashlib.sha256()
    for path, _, _ in files:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """Library versions a record carries (numbers move between releases of these)."""
    import datasets
    import torch
    import transformers

    import biobench

    return {"biobench": biobench.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__}
