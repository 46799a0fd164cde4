"""Deterministic train / held-out splits by problem id.

The side a problem falls on depends only on its id (and a seed), never on the language or on which other
problems were loaded, so the German and the Swahili version of a problem always land on the same side and
training data never leaks into evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

from pivotrl.records import Problem

Split = Literal["train", "held-out"]
SPLITS = ("all", "train", "held-out")
DEFAULT_HELD_OUT = 0.2


def split_of(problem_id: str, held_out: float = DEFAULT_HELD_OUT, seed: int = 0) -> Split:
    digest = hashlib.sha256(f"{seed}:{problem_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return "held-out" if position < held_out else "train"


def select_split(problems: Iterable[Problem], split: str | None, held_out: float = DEFAULT_HELD_OUT,
                 seed: int = 0) -> list[Problem]:
    if split in (None, "all"):
        return list(problems)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return [p for p in problems if split_of(p.id, held_out, seed) == split]
