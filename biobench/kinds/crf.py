"""A linear-chain CRF over BIOUL tags that returns per-token tag MARGINALS (forward-backward).

Why marginals and not Viterbi: in the paper's span head (tabib `models/bert_span_ner.py`, after nlstruct's
BiTag) the CRF is not decoded. Its log-marginals say, for every token and entity type, how likely the
token begins (B or U), ends (L or U) or lies inside (I, B, L or U) an entity, and these become a
boundary score added to the biaffine score of every candidate span. The CRF is trained only through
that span loss. pytorch-crf offers likelihood and Viterbi but not marginals, hence these few lines.

Tags: `O`, then for entity type k the four tags I, B, L, U at 1 + 4k + (0, 1, 2, 3). Allowed transitions
are tabib's `BIOULDecoder(allow_overlap=True, allow_juxtaposition=True, with_start_end_transitions=True)`:
the usual BIOUL chain, plus the transitions that let same-type entities overlap (L->I, I->B, ...), since
the corpus nests them. Transition scores are learned; forbidden ones are fixed at -1e4.

Everything runs in float32 whatever the autocast (a 1024-step sum of bf16 log-potentials drifts), and
without host synchronisation (padding is handled with masks on the device), so a step can be captured in
a CUDA graph.
"""

from __future__ import annotations

import torch
from torch import nn

IMPOSSIBLE = -1e4
I, B, L, U = 0, 1, 2, 3


def bioul_constraints(n_types: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(allowed transitions [from, to], allowed first tags, allowed last tags) as boolean tensors."""
    n = 1 + 4 * n_types
    allowed = torch.zeros(n, n, dtype=torch.bool)
    tag = lambda k, t: 1 + 4 * k + t  # noqa: E731
    allowed[0, 0] = True
    for k in range(n_types):
        for j in range(n_types):  # an entity's last tag may be followed by any entity's first tag
            for last in (L, U):
                for first in (B, U):
                    allowed[tag(k, last), tag(j, first)] = True
        for a, b in ((B, I), (I, I), (I, L), (B, L),  # inside one entity
                     (L, I), (L, L), (I, B), (B, B), (B, U), (U, L), (U, I), (I, U)):  # same-type overlap
            allowed[tag(k, a), tag(k, b)] = True
        allowed[0, tag(k, B)] = allowed[0, tag(k, U)] = True
        allowed[tag(k, L), 0] = allowed[tag(k, U), 0] = True
    start = torch.ones(n, dtype=torch.bool)
    end = torch.ones(n, dtype=torch.bool)
    for k in range(n_types):
        start[tag(k, I)] = start[tag(k, L)] = False
        end[tag(k, I)] = end[tag(k, B)] = False
    return allowed, start, end


class BIOULCRF(nn.Module):
    def __init__(self, n_types: int) -> None:
        super().__init__()
        allowed, start, end = bioul_constraints(n_types)
        self.n_tags = allowed.shape[0]
        self.register_buffer("allowed", allowed, persistent=False)
        self.register_buffer("allowed_start", start, persistent=False)
        self.register_buffer("allowed_end", end, persistent=False)
        self.transitions = nn.Parameter(torch.zeros(self.n_tags, self.n_tags))
        self.start_transitions = nn.Parameter(torch.zeros(self.n_tags))
        self.end_transitions = nn.Parameter(torch.zeros(self.n_tags))

    def potentials(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transition, start and end scores with the forbidden ones fixed at IMPOSSIBLE (float32)."""
        return (self.transitions.float().masked_fill(~self.allowed, IMPOSSIBLE),
                self.start_transitions.float().masked_fill(~self.allowed_start, IMPOSSIBLE),
                self.end_transitions.float().masked_fill(~self.allowed_end, IMPOSSIBLE))

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z per sequence; emissions (batch, length, tags), mask (batch, length), real tokens first."""
        alpha, _ = self._forward(emissions.float(), mask.bool())
        _, _, end = self.potentials()
        return torch.logsumexp(alpha[:, -1] + end, -1)

    def _forward(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trans, start, _ = self.potentials()
        alphas = [start + emissions[:, 0]]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alphas[-1].unsqueeze(2) + trans, 1) + emissions[:, t]
            alphas.append(torch.where(mask[:, t, None], step, alphas[-1]))  # padding: carry the last real state
        return torch.stack(alphas, 1), trans

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log P(tag at token t | sequence), (batch, length, tags); rows of padding tokens are meaningless."""
        with torch.autocast(emissions.device.type, enabled=False):
            emissions, mask = emissions.float(), mask.bool()
            alpha, trans = self._forward(emissions, mask)
            _, _, end = self.potentials()
            betas = [end.expand_as(emissions[:, 0])]
            for t in range(emissions.shape[1] - 2, -1, -1):  # beta_t = score of everything after token t
                step = torch.logsumexp(trans + (emissions[:, t + 1] + betas[-1]).unsqueeze(1), 2)
                betas.append(torch.where(mask[:, t + 1, None], step, betas[-1]))  # t = last real token: end
            beta = torch.stack(betas[::-1], 1)
            log_z = torch.logsumexp(alpha[:, -1] + end, -1)
            return alpha + beta - log_z[:, None, None]
