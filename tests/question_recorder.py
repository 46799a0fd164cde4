"""A reward component for tests that records the ``question`` column it is given (scores 0, no model)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pivotrl.rewards import registry
from pivotrl.rewards.components import completion_text

NAME = "test_records_question"


@dataclass
class Recorder:
    name: str = NAME
    seen: list[list[Any]] = field(default_factory=list)  # one list of questions per call
    pairs: list[tuple[str, Any]] = field(default_factory=list)  # (completion text, its question), every call

    def config(self, **weights: float) -> dict[str, Any]:
        """A reward config mapping: this component (weight 1 unless given) plus ``weights``, no gate."""
        return {"name": "records-question", "weights": {self.name: 1.0, **weights}, "gate": None}

    @property
    def questions(self) -> list[Any]:
        """Every question received, in order, across calls."""
        return [q for call in self.seen for q in call]


@contextmanager
def recording_questions() -> Iterator[Recorder]:
    """Register the recording component for the duration of the block; it is gone from the registry afterwards."""
    recorder = Recorder()

    def records_question(completions: Any, *, question: Any = "<no question column>", **_: Any) -> list[float]:
        questions = list(question) if isinstance(question, (list, tuple)) else [question] * len(completions)
        recorder.seen.append(questions)
        recorder.pairs += [(completion_text(c), q) for c, q in zip(completions, questions, strict=True)]
        return [0.0] * len(completions)

    registry.register_component(NAME, fn=records_question, range=(0.0, 1.0), role="credit",
                                summary="test: records the question column", replace=True)
    try:
        yield recorder
    finally:
        registry.REGISTRY.pop(NAME, None)
