"""The paper's span head for nested NER: encoder -> BiLSTM -> (BIOUL CRF boundary score + biaffine score).

This is the architecture of tabib's `bert_span_ner` (configs/base/ner_span_bert.yaml; after nlstruct):

- a contextualizer: a linear map to 400 dimensions (GELU), then 3 BiLSTM layers (200 per direction), each
  added back through a sigmoid gate and LayerNorm, dropout 0.4;
- a BIOUL tagger: a linear map to 1 + 4 tags per entity type, whose CRF marginals give, per type, the
  log-probability that a span begins at its first token, ends at its last and has no `O` inside
  (`boundary`: the smallest of the three, as in nlstruct's BiTag);
- a biaffine scorer: per type, 64-dim begin and end projections, score <begin_i, end_j> / 8 + bias.

The span logit is boundary + biaffine. Spans are indexed by (first token i, width w < max_span), so
`logits` is (batch, length, max_span * types) with entry [b, i, w * types + k]: one row per token, which is
what the fine-tuning loop's prediction code expects (rows are cut at each sequence's length).

The BiLSTM runs without packing, so nothing is read on the host: the backward direction reads each
sequence reversed within its own length (a gather), so padding never reaches a real token and a
different amount of padding gives the same outputs.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from biobench.kinds.crf import BIOULCRF, B, L, U

LSTM_HIDDEN = 400
LSTM_LAYERS = 3
BIAFFINE_SIZE = 64


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (batch, length, dim) with each row's first `lengths[b]` steps reversed, padding left in place."""
    steps = torch.arange(x.shape[1], device=x.device)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return x.gather(1, index[..., None].expand_as(x))


class BiLSTMContextualizer(nn.Module):
    def __init__(self, input_size: int, hidden: int = LSTM_HIDDEN, layers: int = LSTM_LAYERS, dropout: float = 0.4):
        super().__init__()
        self.input_proj = nn.Linear(input_size, hidden) if input_size != hidden else None
        self.forward_lstms = nn.ModuleList(nn.LSTM(hidden, hidden // 2, batch_first=True) for _ in range(layers))
        self.backward_lstms = nn.ModuleList(nn.LSTM(hidden, hidden // 2, batch_first=True) for _ in range(layers))
        self.gates = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.input_proj is not None:
            x = nn.functional.gelu(self.input_proj(x))
        lengths = mask.long().sum(1)
        for fwd, bwd, gate, norm in zip(self.forward_lstms, self.backward_lstms, self.gates, self.norms):
            ahead, _ = fwd(x)
            back, _ = bwd(reverse_within_length(x, lengths))
            out = self.dropout(torch.cat([ahead, reverse_within_length(back, lengths)], -1))
            g = torch.sigmoid(gate(out))
            x = norm(x * (1 - g) + out * g)
        return x


class SpanHead(nn.Module):
    def __init__(self, input_size: int, n_types: int, max_span: int, dropout: float, *, lstm_hidden: int = LSTM_HIDDEN,
                 lstm_layers: int = LSTM_LAYERS, biaffine_size: int = BIAFFINE_SIZE):
        super().__init__()
        self.n_types, self.max_span, self.biaffine_size = n_types, max_span, biaffine_size
        self.contextualizer = BiLSTMContextualizer(input_size, lstm_hidden, lstm_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.tagger = nn.Linear(lstm_hidden, 1 + 4 * n_types)
        self.crf = BIOULCRF(n_types)
        self.begin = nn.Linear(lstm_hidden, biaffine_size * n_types)
        self.end = nn.Linear(lstm_hidden, biaffine_size * n_types)
        self.bias = nn.Parameter(torch.zeros(()))

    def boundary_scores(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(batch, length, max_span, types): min(log P(begin at i), log P(end at i+w), log P(no O in span))."""
        n, length = x.shape[:2]
        marg = self.crf.marginals(self.tagger(self.dropout(x)), mask)[..., 1:].view(n, length, self.n_types, 4)
        # slices, not index lists: a list becomes a host tensor copied to the device (no CUDA graph capture)
        begins = torch.logsumexp(marg[..., B:U + 1:U - B], -1)  # B or U
        ends = torch.logsumexp(marg[..., L:U + 1], -1)  # L or U
        inside = torch.logsumexp(marg, -1)  # I, B, L or U
        cum = torch.cat([inside.new_zeros(n, 1, self.n_types), inside.cumsum(1)], 1)  # (n, length + 1, types)
        last = (torch.arange(length, device=x.device)[:, None] + torch.arange(self.max_span, device=x.device)
                ).clamp(max=length - 1)  # (length, max_span): the span's last token (clamped; masked later)
        no_hole = cum[:, last + 1] - cum[:, :length, None]
        return torch.minimum(torch.minimum(no_hole.clamp(max=-1e-8), begins[:, :, None]), ends[:, last])

    def biaffine_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, length, max_span, types): <begin_k(i), end_k(i+w)> / sqrt(64) + bias, zero past the end."""
        n, length = x.shape[:2]
        x = self.dropout(x)
        begins = self.begin(x).view(n, length, self.n_types, self.biaffine_size)
        ends = self.end(x).view(n, length, self.n_types, self.biaffine_size)
        widths = []
        for w in range(self.max_span):  # one width at a time: no (length x length) matrix is ever built
            score = (begins[:, : max(length - w, 0)] * ends[:, w:]).sum(-1)
            widths.append(nn.functional.pad(score, (0, 0, 0, length - score.shape[1])))
        return torch.stack(widths, 2) / math.sqrt(self.biaffine_size) + self.bias

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.contextualizer(hidden, mask)
        scores = self.boundary_scores(x, mask) + self.biaffine_scores(x).float()
        return scores.flatten(2)


class SpanNERModel(nn.Module):
    """A transformers encoder (AutoModel) plus `SpanHead`; loaded like a transformers head class."""

    def __init__(self, encoder: nn.Module, n_types: int, max_span: int, dropout: float, **sizes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = SpanHead(encoder.config.hidden_size, n_types, max_span, dropout, **sizes)

    @property
    def config(self):
        return self.encoder.config

    @property
    def base_model(self) -> nn.Module:
        """The pretrained part (its parameters get the encoder learning rate)."""
        return self.encoder

    @classmethod
    def from_pretrained(cls, path: str, *, n_types: int, max_span: int, dropout: float, lstm_hidden: int = LSTM_HIDDEN,
                        lstm_layers: int = LSTM_LAYERS, biaffine_size: int = BIAFFINE_SIZE,
                        output_loading_info: bool = False, **kwargs: Any):
        """`biobench.models.load_model` calls this as it calls a transformers Auto class. The head is new:
        its parameters are reported as `missing` (freshly initialised, from the run's seed)."""
        from transformers import AutoModel

        from biobench.attention import use_padding_safe_sdpa

        encoder, info = AutoModel.from_pretrained(path, output_loading_info=True, **kwargs)
        use_padding_safe_sdpa(encoder)
        net = cls(encoder, n_types, max_span, dropout, lstm_hidden=lstm_hidden, lstm_layers=lstm_layers,
                  biaffine_size=biaffine_size)
        info = {"missing_keys": [f"encoder.{k}" for k in info.get("missing_keys", [])]
                + [f"head.{k}" for k, _ in net.head.named_parameters()],
                "unexpected_keys": list(info.get("unexpected_keys", []))}
        return (net, info) if output_loading_info else net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: torch.Tensor):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return SimpleNamespace(logits=self.head(hidden, attention_mask))
