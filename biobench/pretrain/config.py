"""The exact configuration of a pretraining run, and the phase plan it implies.

`PretrainConfig` is what `--out DIR/pretrain_config.json` holds. A resumed run compares every field
except the run controls (`RUN_CONTROLS`) with the checkpoint's and refuses to continue on the first
difference, naming it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

OBJECTIVES = ("mlm", "detour")
OPTIMIZERS = ("decoupled_adamw", "adamw")  # weight decay rules, biobench/pretrain/optimizer.py
PHASES = ("phase1", "decay")
# Fields that may change between a run and its resumption: where to write, how often, when to stop.
# `fast` too: the speed paths give the same losses to float tolerance, so a run may resume with or without them.
RUN_CONTROLS = ("out", "resume", "max_steps", "checkpoint_every", "keep_checkpoint", "log_every", "fast")


class PretrainError(ValueError):
    """Bad input, found before training: a one-line message naming the argument or file."""


@dataclass(frozen=True)
class Phase:
    name: str          # "phase1" | "decay"
    objective: str     # "clm" | "mlm"
    mask_rate: float   # 0 for clm
    steps: int         # optimizer steps
    tokens: int        # steps * batch tokens
    freeze: tuple[int, int] | None  # encoder layers A..B (inclusive) frozen during the phase


@dataclass
class PretrainConfig:
    init: str
    corpus: list[str]
    objective: str                     # "mlm" (the twin) | "detour"
    tokens: int                        # phase-1 budget
    out: str = ""
    seq_len: int = 8192
    micro_batch: int = 8               # sequences per forward pass, per process
    batch_tokens: int | None = None    # optimizer batch; None: one micro-batch per process
    lr: float = 2e-4
    final_lr_ratio: float = 0.1        # the decay phase ends at lr * final_lr_ratio
    warmup_tokens: int | None = None   # None: min(100M, 10% of --tokens)
    decay_fraction: float = 0.1
    mask_rate: float = 0.30            # phase-1 MLM masking (twin arm)
    decay_mask_rate: float = 0.15
    weight_decay: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    optimizer: str = "decoupled_adamw"  # the decay rule (optimizer.py): the paper's Composer DecoupledAdamW, or "adamw"
    grad_clip: float = 1.0
    freeze: list[str] = field(default_factory=list)  # "PHASE:A-B"
    seed: int = 0
    precision: str = "auto"            # "auto" | "bf16" | "fp32"
    text_field: str = "text"
    shuffle_buffer: int = 10_000       # documents; 0 keeps file order
    init_missing_head: bool = False
    # resolved by `resolve` before training (recorded so a resume can compare them)
    world_size: int | None = None
    accum_steps: int | None = None
    # run controls
    resume: bool = False
    max_steps: int | None = None
    checkpoint_every: int = 0
    keep_checkpoint: bool = False      # keep checkpoint.pt after the run (always kept with --checkpoint-every)
    log_every: int = 1
    fast: bool = False                 # speed paths (biobench/pretrain/fast.py)

    # ---- the plan ---------------------------------------------------------------------------
    def resolve(self, world_size: int, bf16_ok: bool) -> PretrainConfig:
        """Fill the derived fields (accumulation, warmup, precision) and check the budget."""
        if self.objective not in OBJECTIVES:
            raise PretrainError(f"--objective {self.objective}: expected one of {', '.join(OBJECTIVES)}")
        for name in ("tokens", "seq_len", "micro_batch"):
            if getattr(self, name) < 1:
                raise PretrainError(f"--{name.replace('_', '-')} {getattr(self, name)}: expected a positive integer")
        if not 0 <= self.decay_fraction:
            raise PretrainError(f"--decay-fraction {self.decay_fraction}: expected a fraction >= 0")
        if self.optimizer not in OPTIMIZERS:
            raise PretrainError(f"--optimizer {self.optimizer}: expected one of {', '.join(OPTIMIZERS)}")
        if not self.lr > 0:
            raise PretrainError(f"--lr {self.lr}: expected a positive peak learning rate")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise PretrainError(f"--precision {self.precision}: expected auto, bf16 or fp32")
        parse_freeze(self.freeze)  # format check now; layer range checked against the model later
        micro_tokens = self.micro_batch * self.seq_len * world_size
        batch_tokens = self.batch_tokens or micro_tokens
        if batch_tokens % micro_tokens:
            raise PretrainError(
                f"--batch-tokens {batch_tokens}: expected a multiple of --micro-batch x --seq-len x processes "
                f"= {self.micro_batch} x {self.seq_len} x {world_size} = {micro_tokens}")
        resolved = dataclasses.replace(
            self, world_size=world_size, batch_tokens=batch_tokens, accum_steps=batch_tokens // micro_tokens,
            warmup_tokens=self.warmup_tokens if self.warmup_tokens is not None else min(100_000_000, self.tokens // 10),
            precision=self.precision if self.precision != "auto" else ("bf16" if bf16_ok else "fp32"))
        if self.tokens < batch_tokens:
            raise PretrainError(f"--tokens {self.tokens}: smaller than one optimizer step (--batch-tokens {batch_tokens})")
        if self.decay_fraction > 0 and resolved.phases()[1].steps == 0:
            raise PretrainError(
                f"--decay-fraction {self.decay_fraction}: {int(self.tokens * self.decay_fraction)} decay tokens are "
                f"fewer than one optimizer step (--batch-tokens {batch_tokens})")
        return resolved

    def phases(self) -> list[Phase]:
        """Phase 1 (CLM for the detour, MLM at `mask_rate` for the twin), then the MLM decay."""
        assert self.batch_tokens, "resolve() first"
        frozen = parse_freeze(self.freeze)
        steps1 = self.tokens // self.batch_tokens
        steps2 = round(steps1 * self.decay_fraction)  # decay tokens = fraction of the phase-1 tokens
        clm = self.objective == "detour"
        return [
            Phase("phase1", "clm" if clm else "mlm", 0.0 if clm else self.mask_rate, steps1,
                  steps1 * self.batch_tokens, frozen.get("phase1")),
            Phase("decay", "mlm", self.decay_mask_rate, steps2, steps2 * self.batch_tokens, frozen.get("decay")),
        ]

    # ---- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PretrainConfig:
        d = {k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}}
        d["betas"] = tuple(d.get("betas", (0.9, 0.98)))
        # pretrain_config.json records the optimizer as a description; checkpoints written before the field
        # existed were trained with torch's coupled AdamW, so resuming one under another rule is refused
        optimizer = d.get("optimizer", "adamw")
        d["optimizer"] = optimizer["name"] if isinstance(optimizer, dict) else optimizer
        return cls(**d)

    def save(self, path: Path, extra: dict | None = None) -> None:
        path.write_text(json.dumps({**self.to_dict(), **(extra or {})}, indent=2) + "\n")

    def first_difference(self, other: PretrainConfig) -> str | None:
        """The first field (run controls aside) whose value differs, as 'field: old -> new'."""
        a, b = self.to_dict(), other.to_dict()
        for name in a:
            if name not in RUN_CONTROLS and _norm(a[name]) != _norm(b[name]):
                return f"{name}: checkpoint has {a[name]!r}, this run has {b[name]!r}"
        return None


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def parse_freeze(specs: list[str]) -> dict[str, tuple[int, int]]:
    """['phase1:0-7', 'decay:8-11'] -> {'phase1': (0, 7), 'decay': (8, 11)}."""
    out: dict[str, tuple[int, int]] = {}
    for spec in specs:
        phase, _, rng = spec.partition(":")
        a, _, b = rng.partition("-")
        if phase not in PHASES or not a.isdigit() or not (b or a).isdigit() or int(a) > int(b or a):
            raise PretrainError(f"--freeze {spec}: expected PHASE:A-B with PHASE in {', '.join(PHASES)} and A <= B")
        if phase in out:
            raise PretrainError(f"--freeze {spec}: phase {phase} is already frozen by another --freeze")
        out[phase] = (int(a), int(b or a))
    return out
