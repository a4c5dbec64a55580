"""Fine-tuning protocols: named hyper-parameter presets, resolved per task.

Resolution order (later wins): the preset's defaults for the card's language and kind, then the
card's own `protocol.<preset>` overrides, then the command-line flags. The resolved `Protocol` is
stored whole in every record, so a number always says exactly how it was produced.

Presets
- `paper`: the CLM-detour paper's settings (DESIGN.md §5). English: LR 5e-5, weight decay 0.01,
  batch 16, 10 epochs (20 for NER), best epoch on dev; the paper states no warmup, so none.
  French classification / multi-label / similarity: LR 2e-5, batch 4, 15 epochs, 10 % warmup,
  weight decay 0.01, weighted BCE for multi-label. French NER token stand-ins (`token_ner`,
  DrBenchmark-style cards): LR 5e-5, batch 16, 4000 steps. French NER with the paper's span head
  (`span_ner`; tabib configs/base/ner_span_bert.yaml): 4000 steps, LR 5e-5 for the encoder and 1e-3 for
  the head, 10 % warmup then linear decay, weight decay 0.01, batch 16, max length 1024 (the card's), max
  span 40 sub-tokens, head dropout 0.4, gradient clipping 10; dev is scored every 500 steps (tabib's
  eval_steps) and the best of those checkpoints is scored on test.
- `blurb`: the BLURB benchmark's own setting (Gu et al. 2021, PubMedBERT): BLURB's splits and metrics,
  LR 5e-5, batch 32, 10 % warmup, 10 epochs (20 for NER). PubMedBERT chose LR in {1e-5, 3e-5, 5e-5} and
  batch in {16, 32} on dev per task; this preset fixes one point of that grid (override with flags).
- `drbenchmark`: DrBenchmark's recipes (Labrak et al. 2024): LR 2e-5, batch 16, weight decay 0.01, no
  warmup, 20 epochs (CLISTER's card sets 30, from its `regr.yaml`).
  Numbers from `paper`, `blurb` and `drbenchmark` are different protocols: records carry the name and the
  leaderboard never averages across names.
- `smoke`: a CPU check that learns something in under a minute per task (`biobench demo` runs it
  unchanged): 40 optimizer steps of batch 16 at LR 2e-4 (10 % warmup, then linear decay; at most 10
  epochs) on the first 256 training examples of a seeded shuffle, dev and test cut to 100 examples,
  inputs cut to 64 tokens. A fixed step count gives every task about the same time whatever its size
  (BIOSSES' 64 training pairs get 10 epochs, 256 NER sentences 2.5). The LR is high because a short run
  at 5e-5 leaves a NER head at F1 0, and 30 steps at 2e-4 still did (measured values: README,
  Protocols). Numbers from it are never comparable with `paper` numbers (records carry the name).
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
    # span_ner (the paper's French NER recipe); None elsewhere, and then left out of records (see to_dict).
    head_lr: float | None = None  # learning rate of the parameters outside the pretrained encoder (None: lr)
    eval_steps: int | None = None  # score dev every this many optimizer steps (and at the end), not every epoch
    max_span_length: int | None = None  # longest candidate span, in sub-tokens
    head_dropout: float | None = None  # dropout inside the span head
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
        for key in SPAN_OPTIONS:
            if values[key] is None:
                del values[key]
        return values


SPEED_OPTIONS = ("length_grouping", "cuda_graphs", "compile_layers")
SPAN_OPTIONS = ("head_lr", "eval_steps", "max_span_length", "head_dropout")  # recorded only when set


def speed_flags(fast: bool = False, compile: bool = False) -> dict[str, bool]:
    """The protocol fields behind the CLI's `--fast` and `--compile` (`biobench finetune` and `biobench run`)."""
    flags = dict(length_grouping=True, cuda_graphs=True) if fast else {}
    if compile:
        flags["compile_layers"] = True
    return flags


# THE smoke preset, shared by `--protocol smoke` and `biobench demo` (see the module docstring).
SMOKE: dict[str, Any] = dict(lr=2e-4, weight_decay=0.01, batch_size=16, epochs=10, max_steps=40, warmup_ratio=0.1,
                             max_length=64, max_train_examples=256, max_eval_examples=100)

_FIELDS = {f.name: f for f in dataclasses.fields(Protocol)}
PRESETS = ("paper", "blurb", "drbenchmark", "smoke")


def check_overrides(overrides: dict[str, Any]) -> None:
    """Raise ValueError naming the first unknown hyper-parameter."""
    for key in overrides:
        if key not in _FIELDS or key == "name":
            raise ValueError(f"a known hyper-parameter ({', '.join(k for k in _FIELDS if k != 'name')}); unknown '{key}'")


def preset_defaults(preset: str, language: str, kind: str) -> dict[str, Any]:
    if preset == "paper":
        if kind == "span_ner":  # tabib configs/base/ner_span_bert.yaml (the paper's French NER)
            return dict(lr=5e-5, head_lr=1e-3, weight_decay=0.01, batch_size=16, epochs=10_000, max_steps=4000,
                        warmup_ratio=0.1, max_grad_norm=10.0, eval_steps=500, max_span_length=40, head_dropout=0.4,
                        eval_batch_size=16)
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
        span = dict(head_lr=1e-3, max_span_length=40, head_dropout=0.4) if kind == "span_ner" else {}
        return dict(SMOKE, **span)
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
