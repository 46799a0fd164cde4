"""Small typed records passed between the pipeline stages.

data -> :class:`Problem` -> pivot references -> rewards -> training -> evaluation -> report.
Records are plain frozen dataclasses that turn into JSON-ready dicts and back, so every stage can write
them as JSON Lines and a later run can read them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

AnswerType = Literal["number", "choice"]


@dataclass(frozen=True)
class Problem:
    """One reasoning problem in one language.

    ``id`` is shared by the parallel versions of a problem (the German and the English MGSM item 17 have
    the same id), so splits and pivot references keyed by id line up across languages.
    """

    id: str
    lang: str
    question: str
    answer: str  # gold answer: a number written plainly ("18", "-3", "2.5", "114200") or a choice letter
    source: str  # problem set name: "mgsm", "msvamp", "gsm8k", "mmlu_prox", "synthetic", or a file name
    answer_type: AnswerType = "number"
    question_en: str | None = None  # the parallel English question when known
    solution: str | None = None  # worked step-by-step solution in this language when the set has one
    choices: tuple[str, ...] | None = None  # multiple-choice options, in order A, B, C, ...
    meta: dict[str, Any] = field(default_factory=dict)  # set-specific extras (category, level, equation)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["choices"] is not None:
            d["choices"] = list(d["choices"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if kwargs.get("choices") is not None:
            kwargs["choices"] = tuple(kwargs["choices"])
        return cls(**kwargs)


@dataclass(frozen=True)
class Generation:
    """One model response to one problem, with what evaluation read from it (a row of generations.jsonl)."""

    id: str
    lang: str
    sample: int  # 0..k-1 when several samples are drawn per problem
    prompt: str
    response: str
    gold: str
    answer_type: AnswerType
    strict: str | None  # answer after the native answer phrase
    flexible: str | None  # last number / letter
    correct_strict: bool
    correct_flexible: bool
    correct: bool  # the strict answer when found, else the flexible one, equals the gold answer
    detected_lang: str | None  # language identification of the response (digits and formulas ignored)
    in_language: bool | None  # written in the asked language; None when that cannot be told
    n_tokens: int  # response length in tokens of the model's tokenizer
    # The decoder stopped at the new-token budget, before the model ended its answer; None where that is not
    # known (answers recorded before this field, a server that reported no finish reason).
    cut: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Generation:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Reference:
    """The English pivot's verified reference for one problem (a row of references.jsonl).

    ``status``: "verified" (a sample reaches the English gold answer), "majority" (no gold answer known; the
    most frequent sample answer, agreed by ``agreement`` of the samples), "gold" (a gold worked solution used
    as the reference: the gold pivot, or the fallback where the model found none) or "none" (no reference;
    ``reason`` says why). ``text`` and ``answer`` are None exactly when status is "none".
    """

    problem_id: str
    question: str  # the English question the pivot answered
    status: str
    reason: str
    text: str | None  # the reference solution
    answer: str | None  # its final answer, canonical ("18")
    gold: str | None  # the English gold answer when the set has one
    agreement: float  # share of samples whose answer equals ``answer`` (0 when none)
    samples: tuple[str, ...]  # every sample the pivot wrote
    sample_answers: tuple[str | None, ...]
    kept: tuple[int, ...]  # indices of the samples that verify (all usable as references)
    pivot: str  # identity of the pivot (model or endpoint or gold source)
    settings: str  # hash of the prompt and sampling settings: the store key with problem_id and pivot

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("samples", "sample_answers", "kept"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reference:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        for key in ("samples", "sample_answers", "kept"):
            kwargs[key] = tuple(kwargs.get(key) or ())
        return cls(**kwargs)


class RewardInputError(ValueError):
    """A reward input that is not well formed; the message names where (``item 3``, ``file, line 7``) and the
    field."""


def json_type(value: Any) -> str:
    """How a JSON value is named in error messages ("a string", "null", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


@dataclass(frozen=True)
class RewardInput:
    """One response to score and the columns the reward reads: the English pivot ``reference``, its final
    answer (``reference_answer``; None: read from the reference text), the asked language, the answer type, and
    the ``question`` the response answers, in the asked language (optional: None when unknown; read only by
    components that need it, such as a reference judge).

    Every way in (TRL's columns, the reward server, verl, ``pivotrl reward score``, the audit) makes these and
    scores them with :func:`pivotrl.rewards.compose.score_inputs` (one ``ComposedReward.score`` call per batch).
    """

    response: str
    reference: str
    lang: str
    reference_answer: str | None = None
    answer_type: AnswerType | None = None
    question: str | None = None

    @property
    def answer(self) -> str:
        """The reference answer the reward compares with: the given one, else the reference text itself."""
        return self.reference_answer if self.reference_answer else self.reference

    @classmethod
    def from_mapping(cls, obj: Any, where: str = "item") -> RewardInput:
        """Validate one JSON object; raise :class:`RewardInputError` naming ``where`` and the field. A number
        given as ``reference_answer`` is read as its text; ``question`` is optional (a string or null); an unknown
        language is refused here."""
        if not isinstance(obj, Mapping):
            raise RewardInputError(f"{where}: expected an object with response, reference and lang, got "
                                   f"{json_type(obj)}")
        text: dict[str, str] = {}
        for key in ("response", "reference", "lang"):
            value = obj.get(key)
            if value is None:
                raise RewardInputError(f"{where}.{key}: missing (expected a string)")
            if not isinstance(value, str):
                raise RewardInputError(f"{where}.{key}: expected a string, got {json_type(value)}")
            text[key] = value
        answer = obj.get("reference_answer")
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            if answer != answer or answer in (float("inf"), float("-inf")):
                raise RewardInputError(f"{where}.reference_answer: expected a string or a finite number")
            answer = str(answer)
        elif answer is not None and not isinstance(answer, str):
            raise RewardInputError(f"{where}.reference_answer: expected a string or null, got {json_type(answer)}")
        answer_type = obj.get("answer_type")
        if answer_type is not None and answer_type not in ("number", "choice"):
            import json

            raise RewardInputError(f"{where}.answer_type: expected \"number\", \"choice\" or null, got "
                                   f"{json.dumps(answer_type)[:80]}")
        question = obj.get("question")
        if question is not None and not isinstance(question, str):
            raise RewardInputError(f"{where}.question: expected a string or null, got {json_type(question)}")
        from pivotrl.languages import get_language

        try:
            get_language(text["lang"])
        except KeyError as exc:  # UnknownLanguageError
            raise RewardInputError(f"{where}.lang: {exc}") from None
        return cls(text["response"], text["reference"], text["lang"], answer, answer_type, question)


@dataclass(frozen=True)
class ScoredCompletion:
    """One completion's reward: the total the trainer optimises and every component behind it (for logging).

    ``components`` holds each component's own score in its documented range, before weights and gate;
    ``gate`` is the factor applied to the gated (semantic) credit, in [0, 1].
    """

    total: float
    components: dict[str, float]
    gate: float

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.total, "gate": self.gate, "components": dict(self.components)}
