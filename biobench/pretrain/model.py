"""Loading the `--init` checkpoint as a masked-LM with its tokenizer, refusing what cannot be trained.

Policy for a checkpoint without masked-LM head weights (e.g. a sentence-transformers `BertModel` such as
all-MiniLM-L6-v2): stop, naming the missing weights, unless `--init-missing-head` is given; then the head starts
from the architecture's random init (the decoder stays tied to the input embeddings), one warning line says so,
and the names are recorded in `pretrain_config.json` under `initialized_head_weights`.
"""

from __future__ import annotations

from biobench.pretrain.config import PretrainError

POOLER = "pooler."


def load_tokenizer(init: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(init)
    except (OSError, ValueError, TypeError) as exc:
        raise PretrainError(f"--init {init}: no usable tokenizer ({str(exc).splitlines()[0][:160]})") from None
    if len(tokenizer) <= len(tokenizer.all_special_ids):  # transformers 5 builds an empty one from a bare config
        raise PretrainError(f"--init {init}: no tokenizer files (expected tokenizer.json or a vocabulary beside the weights)")
    if tokenizer.mask_token_id is None:
        raise PretrainError(f"--init {init}: tokenizer has no mask token (expected a masked-LM tokenizer)")
    if tokenizer.eos_token_id is None and tokenizer.sep_token_id is None:
        raise PretrainError(f"--init {init}: tokenizer has neither an EOS nor a SEP token to put between documents")
    return tokenizer


def load_masked_lm(init: str, *, init_missing_head: bool):
    """(model, names of head weights initialised here)."""
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging

    try:
        config = AutoConfig.from_pretrained(init)
    except (OSError, ValueError) as exc:
        raise PretrainError(f"--init {init}: not a Hugging Face checkpoint ({str(exc).splitlines()[0][:160]})") from None
    if type(config) not in AutoModelForMaskedLM._model_mapping:
        raise PretrainError(f"--init {init}: architecture '{config.model_type}' has no masked-LM head class in transformers")
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # we report missing weights ourselves, in one line
    try:
        model, info = AutoModelForMaskedLM.from_pretrained(init, output_loading_info=True)
    except OSError as exc:
        raise PretrainError(f"--init {init}: no model weights ({str(exc).splitlines()[0][:160]})") from None
    finally:
        logging.set_verbosity(verbosity)
    missing = sorted(info["missing_keys"])
    prefix = model.base_model_prefix + "."
    encoder_missing = [k for k in missing if k.startswith(prefix)]
    if encoder_missing:
        raise PretrainError(f"--init {init}: checkpoint lacks encoder weights ({names(encoder_missing)})")
    if missing and not init_missing_head:
        raise PretrainError(f"--init {init}: checkpoint has no masked-LM head weights ({names(missing)}); "
                            "pass --init-missing-head to start the head from random init")
    return model, missing


def names(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def init_pooler(init: str, model) -> dict:
    """The `--init` checkpoint's pooler weights, named as the masked-LM model names its encoder.

    The masked-LM classes of BERT and RoBERTa have no pooler, so without this the output checkpoint would give
    sequence classification a randomly initialised pooler while the untouched init gives it a trained one:
    the comparison would favour the baseline for a reason that has nothing to do with pretraining. MLM and CLM
    never update the pooler, so carrying it over unchanged is exact."""
    from safetensors import safe_open
    from transformers.utils import cached_file

    prefix = model.base_model_prefix + "."
    own = set(model.state_dict())
    index = cached_file(init, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False)
    if index:
        import json
        from pathlib import Path

        shards = sorted(set(json.loads(Path(index).read_text())["weight_map"].values()))
        files = [cached_file(init, shard) for shard in shards]
    else:
        single = cached_file(init, "model.safetensors", _raise_exceptions_for_missing_entries=False)
        files = [single] if single else []
    carried = {}
    for file in files:
        with safe_open(file, framework="pt") as weights:
            for key in weights.keys():
                name = key[len(prefix):] if key.startswith(prefix) else key
                if name.startswith(POOLER) and prefix + name not in own:
                    carried[prefix + name] = weights.get_tensor(key)
    return carried
