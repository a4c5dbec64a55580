"""Task kinds: how to encode examples, which head, how to decode and score.

One module per kind (`token_ner`, `classification`, `multilabel`, `similarity`, `multiple_choice`,
`span_ner`), each exporting
`KIND`, a subclass of `biobench.kinds.base.Kind`; the interface is described there. Modules are
imported on demand because they pull in transformers.
"""

from __future__ import annotations

import importlib

KIND_MODULES = ("token_ner", "classification", "multilabel", "similarity", "multiple_choice", "span_ner")


def get_kind(name: str):
    """The Kind class for a card's `kind` field."""
    if name not in KIND_MODULES:
        raise ValueError(f"unknown task kind '{name}': expected one of {', '.join(KIND_MODULES)}")
    return importlib.import_module(f"biobench.kinds.{name}").KIND
