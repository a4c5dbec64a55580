"""Split rules for releases without an official train / validation / test split.

Declared in a card's `data.split`, applied at the group (document) level so sentences of one
document never straddle two splits, and reproduced exactly from the rule alone:

- `{rule: random, seed: S, fractions: [train, validation, test]}`: every listed file is pooled;
  the sorted unique group ids are shuffled with `random.Random(S)` and cut at the cumulative
  fractions, each cut rounded half up (`floor(n * cumulative + 0.5)`). `counts: [train, validation, test]`
  instead of `fractions` cuts at those group counts (they must add up to the number of groups), to match
  a published split's sizes when its id lists are not available.
- `{rule: holdout, seed: S, count: N}` or `{..., fraction: F}`: `validation` is carved out of
  `train`: the sorted unique train group ids are shuffled with `random.Random(S)` and the first N
  (or `floor(F * n + 0.5)`) become validation. Test is the release's own.
"""

from __future__ import annotations

import math
import random
from typing import Any

from biobench.data.errors import DataError

_KEYS = {"random": {"rule", "seed", "fractions", "counts"}, "holdout": {"rule", "seed", "count", "fraction"}}


def _shuffled_groups(rows: list[dict[str, Any]], seed: int) -> list[str]:
    groups = sorted({row["group"] for row in rows})
    random.Random(seed).shuffle(groups)
    return groups


def random_split(rows: list[dict[str, Any]], seed: int, fractions: list[float] | None = None,
                 counts: list[int] | None = None, card_path: str = "") -> dict[str, list[dict[str, Any]]]:
    groups = _shuffled_groups(rows, seed)
    n = len(groups)
    if counts is not None:
        if sum(counts) != n:
            raise DataError(f"{card_path or 'split rule'}: field 'data.split': 'counts' {counts} adds up to "
                            f"{sum(counts)}, but the data has {n} groups")
        cuts = [counts[0], counts[0] + counts[1]]
    else:
        cuts = [math.floor(n * sum(fractions[:k + 1]) + 0.5) for k in range(2)]
    assign = {g: "train" for g in groups[:cuts[0]]}
    assign.update({g: "validation" for g in groups[cuts[0]:cuts[1]]})
    assign.update({g: "test" for g in groups[cuts[1]:]})
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    for row in rows:
        out[assign[row["group"]]].append(row)
    return out


def holdout(train: list[dict[str, Any]], seed: int, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(new train, validation): the first `count` shuffled train groups become validation."""
    held = set(_shuffled_groups(train, seed)[:count])
    return [r for r in train if r["group"] not in held], [r for r in train if r["group"] in held]


def check_rule(rule: dict[str, Any], card_path: str) -> None:
    """Reject a malformed rule before any data is read, naming the card and the field."""
    def bad(expected: str) -> DataError:
        return DataError(f"{card_path}: field 'data.split': expected {expected}, got {rule!r}")

    name = rule.get("rule")
    if name not in _KEYS:
        raise bad(f"'rule' one of {sorted(_KEYS)}")
    unknown = sorted(set(rule) - _KEYS[name])
    if unknown:
        raise bad(f"only {sorted(_KEYS[name])} for rule '{name}' (unknown '{unknown[0]}')")
    if not isinstance(rule.get("seed"), int):
        raise bad("an integer 'seed'")
    if name == "random" and ("fractions" in rule) == ("counts" in rule):
        raise bad("exactly one of 'fractions' or 'counts'")
    if name == "random" and "counts" in rule:
        counts = rule["counts"]
        if not (isinstance(counts, list) and len(counts) == 3
                and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in counts)):
            raise bad("'counts': three positive integers (train, validation, test groups)")
    elif name == "random":
        fr = rule.get("fractions")
        if not (isinstance(fr, list) and len(fr) == 3 and all(isinstance(x, (int, float)) and x > 0 for x in fr)
                and abs(sum(fr) - 1) < 1e-9):
            raise bad("'fractions': three positive numbers (train, validation, test) summing to 1")
    elif ("count" in rule) == ("fraction" in rule):
        raise bad("exactly one of 'count' (groups) or 'fraction' (of train groups)")
    elif "count" in rule and not (isinstance(rule["count"], int) and rule["count"] > 0):
        raise bad("'count': a positive integer")
    elif "fraction" in rule and not (isinstance(rule["fraction"], float) and 0 < rule["fraction"] < 1):
        raise bad("'fraction': a number between 0 and 1")


def apply_rule(rule: dict[str, Any] | None, release: dict[str, list[dict[str, Any]]],
               card_path: str = "") -> tuple[dict[str, list], str]:
    """Release splits -> train / validation / test, with a one-line description for the notes."""
    if rule is None:
        return release, "official: the release's own train / validation / test"
    if rule["rule"] == "random":
        pooled = [row for split in ("train", "validation", "test") for row in release.get(split, [])]
        fr, counts = rule.get("fractions"), rule.get("counts")
        cut = f"cut at fractions {fr}" if counts is None else f"cut at group counts {counts}"
        return random_split(pooled, rule["seed"], fr, counts, card_path), (
            f"random: sorted unique groups shuffled with random.Random({rule['seed']}), {cut}")
    n_groups = len({row["group"] for row in release["train"]})
    count = rule.get("count") or math.floor(rule["fraction"] * n_groups + 0.5)
    train, validation = holdout(release["train"], rule["seed"], count)
    return {"train": train, "validation": validation, "test": release["test"]}, (
        f"holdout: validation = first {count} of the {n_groups} sorted train groups shuffled with "
        f"random.Random({rule['seed']}); test is the release's")
