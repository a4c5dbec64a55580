"""`biobench pretrain ARGS...`, exactly as the CLI runs it, recording which masked-LM head the run started from.

MiniLM has no masked-LM head, so `--init-missing-head` draws one at random when the model loads. The three arms
of the replication must start from the same head; nothing in `biobench pretrain` seeds torch before the load, so
the head comes from torch's default generator in a fresh process, the same in every run whatever --seed. This
wrapper turns that into a checked fact: it hashes the weights `load_masked_lm` initialised (names and values, as
loaded, before any step) and writes {"sha256", "names"} to $HEAD_INIT_LOG; check_arms.py compares the arms.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import biobench.pretrain.loop as loop
from biobench.cli import main

_load = loop.load_masked_lm


def _recording(init: str, *, init_missing_head: bool):
    model, missing = _load(init, init_missing_head=init_missing_head)
    state = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(missing):
        digest.update(name.encode())
        digest.update(state[name].detach().float().cpu().numpy().tobytes())
    with open(os.environ["HEAD_INIT_LOG"], "w") as f:
        json.dump({"sha256": digest.hexdigest(), "names": sorted(missing)}, f, indent=1)
    return model, missing


if __name__ == "__main__":
    if "HEAD_INIT_LOG" not in os.environ:
        sys.exit("head_init.py: set HEAD_INIT_LOG to the JSON file to write")
    loop.load_masked_lm = _recording
    sys.exit(main(["pretrain", *sys.argv[1:]]))
