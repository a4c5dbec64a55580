"""Per-layer `torch.compile`, shared by fine-tuning (`--compile`) and pretraining (`--fast`).

Its own module so that fine-tuning does not import the pretraining package for it (arrows stay one-way:
`finetune` and `pretrain.fast` both depend on this, nothing here on either). Each encoder layer is compiled in
place (`nn.Module.compile`): the layers share one code object, so a model compiles a handful of graphs, weight
names do not change, and the embeddings, head and loss around them stay eager and readable.
"""

from __future__ import annotations

from torch import nn


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks: the first ModuleList with one entry per `config.num_hidden_layers`."""
    n = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"cannot find the {n} encoder layers of {type(model).__name__}")


def compile_layers(model: nn.Module, backend: str, *, dynamic: bool) -> int:
    """`torch.compile` every encoder layer in place; returns how many. Pretraining compiles for one packed
    length (`dynamic=False`), fine-tuning for the lengths of its batches (`dynamic=True`)."""
    layers = encoder_layers(model)
    for layer in layers:
        layer.compile(backend=backend, dynamic=dynamic)
    return len(layers)


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process (the benchmarks' recompile guards read it)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
