"""Check that the pretraining arms are identical in everything but what is compared.

    python check_arms.py WORK_DIR ARM [ARM ...]

For the arms' log.jsonl files (WORK_DIR/ckpt/ARM/log.jsonl): the same logged steps, and at each the same
phase, token count, learning rate and batch fingerprint (batch_sha1: sha1 of the token ids of the step's
micro-batches, the step's own batch), i.e. the same tokens in the same order under the same schedule. For
WORK_DIR/head-init-ARM.json (head_init.py): the initial masked-LM head, which --seed draws: the same for arms of
the same seed (the detour and its twin), another for another seed. For pretrain_config.json: every field equal
except objective and seed (and out). Prints what it compared; exits 1 on the first difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ALLOWED = {"objective", "seed", "out", "resume", "phases", "versions", "initialized_head_weights"}


def main(work: Path, arms: list[str]) -> int:
    logs = {a: [json.loads(line) for line in (work / "ckpt" / a / "log.jsonl").read_text().splitlines()] for a in arms}
    first = arms[0]
    for arm in arms[1:]:
        ref, got = logs[first], logs[arm]
        if len(ref) != len(got):
            print(f"{arm}: {len(got)} logged steps, {first}: {len(ref)}")
            return 1
        for a, b in zip(ref, got):
            for key in ("step", "phase", "tokens", "lr", "batch_sha1"):
                if a[key] != b[key]:
                    print(f"{arm} step {b['step']}: {key} {b[key]!r}, {first} has {a[key]!r}")
                    return 1
        cfg = {a: json.loads((work / "ckpt" / a / "pretrain_config.json").read_text()) for a in (first, arm)}
        for key in sorted(set(cfg[first]) | set(cfg[arm])):
            if key not in ALLOWED and cfg[first].get(key) != cfg[arm].get(key):
                print(f"{arm}: pretrain_config {key} {cfg[arm].get(key)!r}, {first} has {cfg[first].get(key)!r}")
                return 1
    heads = {a: json.loads((work / f"head-init-{a}.json").read_text()) for a in arms}
    seeds = {a: json.loads((work / "ckpt" / a / "pretrain_config.json").read_text())["seed"] for a in arms}
    for a in arms:  # the head drawn by --init-missing-head is a function of --seed: equal within a seed, not across
        for b in arms:
            same = heads[a]["sha256"] == heads[b]["sha256"]
            if a < b and same != (seeds[a] == seeds[b]):
                print(f"initial masked-LM heads: {a} (seed {seeds[a]}) {heads[a]['sha256'][:12]}, "
                      f"{b} (seed {seeds[b]}) {heads[b]['sha256'][:12]}: expected {'equal' if seeds[a] == seeds[b] else 'different'}")
                return 1
    steps = len(logs[first])
    print(f"{', '.join(arms)}: same {steps} logged steps (phase, tokens, lr, batch_sha1), same configuration but "
          f"objective/seed; initial head ({len(heads[first]['names'])} weights) the same within a seed: "
          + ", ".join(f"{a} seed {seeds[a]} {heads[a]['sha256'][:12]}" for a in arms))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
