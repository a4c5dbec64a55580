"""Fine-tuning protocols: named hyper-parameter presets, resolved per task.

Resolution order (later wins): the preset's defaults for the card's language and kind, then the
card's own `protocol.<preset>` overrides, then the command-line flags. The resolved `Protocol` is
stored whole in every record, so a number always says exactly how it was produced.

Presets
- `paper`: the CLM-detour paper's settings (DESIGN.md §5). English: LR 5e-5, weight decay 0.01,
  batch 16, 10 epochs (20 for NER), best epoch on dev; the paper states no warmup, so none.
  French classification / multi-label / similarity: LR 2e-5, batch 4, 15 epochs, 10 % warmup,
  weight decay 0.01, weighted BCE for multi-label. French NER: LR 5e-5, batch 16, 4000 steps
  (the paper's span head is not a token head: records say `head: token`).
- `blurb`: the BLURB benchmark's own setting (Gu et al. 2021, PubMedBERT): BLURB's splits and metrics,
  LR 5e-5, batch 32, 10 % warmup, 10 epochs (20 for NER). PubMedBERT chose LR in {1e-5, 3e-5, 5e-5} and
  batch in {16, 32} on dev per task; this preset fixes one point of that grid (override with flags).
- `drbenchmark`: DrBenchmark's recipes (Labrak et al. 2024): LR 2e-5, batch 16, weight decay 0.01, no
  warmup, 20 epochs (CLISTER's card sets 30, from its `regr.yaml`).
  Numbers from `paper`, `blurb` and `drbenchmark` are different protocols: records carry the name and the
  leaderboard never averages across names.
- `smoke`: a CPU check. At most 256 training and 256 evaluation examples, one epoch, inputs cut to
  128 tokens. Numbers from it are never comparable with `paper` numbers (records carry the name).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Protocol:
    name: str
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    warmup_ratio: float
    max_grad_norm: float = 1.0
    max_steps: int | None = None  # stop after this many optimizer steps (epochs is then an upper bound)
    max_length: int | None = None  # None: the card's max_length
    max_train_examples: int | None = None  # None: all
    max_eval_examples: int | None = None  # None: all (dev and test)
    eval_batch_size: int = 64
    weighted_bce: bool = False  # multi-label: positive-class weights n_neg / n_pos from train
    threshold: float = 0.5  # multi-label decision threshold on sigmoid outputs
    window_stride: float = 0.5  # NER sliding windows: fraction of a window the next one advances
    # Speed options (`--fast` sets the first two, `--compile` the third; see biobench.finetune). They
    # change which examples share a batch, the random stream of dropout or the kernels' rounding, so they
    # are part of the protocol, off by default.
    length_grouping: bool = False  # batches from length-sorted mega-batches of 50 (less padding)
    cuda_graphs: bool = False  # pad lengths to multiples of 16; on CUDA replay one graph per shape
    compile_layers: bool = False  # on CUDA, torch.compile each encoder layer (dynamic lengths)

    def to_dict(self) -> dict[str, Any]:
        """Every field, except speed options left off: records written before they existed keep
        matching (resume) and the stored protocol only names a speed option that was used."""
        values = dataclasses.asdict(self)
        for key in SPEED_OPTIONS:
            if not values[key]:
                del values[key]
        return values


SPEED_OPTIONS = ("length_grouping", "cuda_graphs", "compile_layers")


def speed_flags(fast: bool = False, compile: bool = False) -> dict[str, bool]:
    """The protocol fields behind the CLI's `--fast` and `--compile` (`biobench finetune` and `biobench run`)."""
    flags = dict(length_grouping=True, cuda_graphs=True) if fast else {}
    if compile:
        flags["compile_layers"] = True
    return flags


_FIELDS = {f.name: f for f in dataclasses.fields(Protocol)}
PRESETS = ("paper", "blurb", "drbenchmark", "smoke")


def check_overrides(overrides: dict[str, Any]) -> None:
    """Raise ValueError naming the first unknown hyper-parameter."""
    for key in overrides:
        if key not in _FIELDS or key == "name":
            raise ValueError(f"a known hyper-parameter ({', '.join(k for k in _FIELDS if k != 'name')}); unknown '{key}'")


def preset_defaults(preset: str, language: str, kind: str) -> dict[str, Any]:
    if preset == "paper":
        if language == "fr":
            if kind == "token_ner":
                return dict(lr=5e-5, weight_decay=0.01, batch_size=16, epochs=100, max_steps=4000, warmup_ratio=0.0)
            return dict(lr=2e-5, weight_decay=0.01, batch_size=4, epochs=15, warmup_ratio=0.1,
                        weighted_bce=(kind == "multilabel"))
        epochs = 20 if kind == "token_ner" else 10
        return dict(lr=5e-5, weight_decay=0.01, batch_size=16, epochs=epochs, warmup_ratio=0.0)
    if preset == "blurb":
        return dict(lr=5e-5, weight_decay=0.01, batch_size=32, epochs=20 if kind == "token_ner" else 10,
                    warmup_ratio=0.1)
    if preset == "drbenchmark":
        return dict(lr=2e-5, weight_decay=0.01, batch_size=16, epochs=20, warmup_ratio=0.0)
    if preset == "smoke":
        return dict(lr=5e-5, weight_decay=0.01, batch_size=16, epochs=1, warmup_ratio=0.1,
                    max_length=128, max_train_examples=256, max_eval_examples=256)
    raise ValueError(f"unknown protocol preset '{preset}': expected one of {', '.join(PRESETS)} or a YAML file")


def resolve_protocol(preset: str, language: str, kind: str, card_overrides: dict[str, dict[str, Any]] | None = None,
                     flags: dict[str, Any] | None = None) -> Protocol:
    """Build the protocol for one task. `preset` is a preset name or a YAML file of hyper-parameters."""
    if preset.endswith((".yaml", ".yml")):
        with open(preset, encoding="utf-8") as fh:
            values = yaml.safe_load(fh) or {}
        name = values.pop("name", preset)
        try:
            check_overrides(values)
        except ValueError as exc:
            raise ValueError(f"{preset}: {exc}") from exc
        base = dict(preset_defaults("paper", language, kind), **values)
    else:
        name = preset
        base = preset_defaults(preset, language, kind)
        base.update((card_overrides or {}).get(preset, {}))
    for key, value in (flags or {}).items():
        if value is not None:
            check_overrides({key: value})
            base[key] = value
    try:
        return Protocol(name=name, **base)
    except TypeError as exc:
        raise ValueError(f"protocol '{name}': {exc}") from exc
