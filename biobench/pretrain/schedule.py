"""The learning rate as a function of tokens: warmup-stable in phase 1, 1-sqrt cooldown in the decay.

The schedule restarts with each phase (it reads the tokens seen *in that phase*); the optimizer state does not.
"""

from __future__ import annotations

import math


def learning_rate(phase: str, tokens: int, phase_tokens: int, peak: float, warmup_tokens: int,
                  final_ratio: float = 0.1) -> float:
    """LR for the optimizer step that brings the phase to `tokens` tokens (of `phase_tokens`)."""
    if phase == "decay":  # 1 - sqrt cooldown from the peak to final_ratio * peak
        progress = min(tokens / phase_tokens, 1.0)
        return peak * (final_ratio + (1.0 - final_ratio) * (1.0 - math.sqrt(progress)))
    if tokens < warmup_tokens:  # linear warmup, then constant
        return peak * tokens / warmup_tokens
    return peak
