"""Prompts in the question's own language, built from the language registry.

Two styles, both native chain-of-thought:

* ``instruction`` (chat models): the question, then the registry's instruction to reason step by step and
  finish with the native answer sentence;
* ``mgsm`` (completion style, as lm-evaluation-harness's ``mgsm_native_cot``): ``"{Question:} {question}\n
  {Step-by-Step Answer:}"`` in the question's language, optionally after few-shot exemplars.
"""

from __future__ import annotations

import re

from pivotrl.languages import get_language
from pivotrl.records import Problem

STYLES = ("instruction", "mgsm")


def question_text(problem: Problem) -> str:
    """The question, with lettered options for multiple choice."""
    if not problem.choices:
        return problem.question
    letters = "ABCDEFGHIJKLMNOP"
    options = "\n".join(f"{letters[i]}. {option}" for i, option in enumerate(problem.choices))
    return f"{problem.question}\n{options}"


def native_prompt(problem: Problem, style: str = "instruction",
                  exemplars: list[tuple[str, str]] | None = None) -> str:
    """The prompt for one problem; ``exemplars`` are few-shot (question, answer) texts put before it, one
    blank line apart, as lm-evaluation-harness does."""
    shots = "".join(f"{q}\n{a}\n\n" for q, a in exemplars or [])
    return shots + _one_prompt(problem, style)


def _one_prompt(problem: Problem, style: str) -> str:
    lang = get_language(problem.lang)
    if style == "instruction":
        instruction = lang.instruction
        if problem.answer_type == "choice":
            # "N" stands for the number in the registry's wording; for choices the answer is a letter
            instruction = re.sub(r"(?<![^\W\d_])N(?![^\W\d_])", "X", instruction)
        return f"{question_text(problem)}\n\n{instruction}"
    if style == "mgsm":
        return f"{lang.question_label} {question_text(problem)}\n{lang.answer_label}"
    raise ValueError(f"unknown prompt style {style!r}; expected one of {', '.join(STYLES)}")


def cut_at_stop(text: str, stop: tuple[str, ...] | list[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any stop string (a generated answer ends there,
    whether the local decoder or a server produced it)."""
    positions = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(positions)] if positions else text
