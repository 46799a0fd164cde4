"""The answers of an evaluation run folder: ``generations.jsonl`` read back after a kill, new answers checked and
appended. Shared by local generation (:mod:`pivotrl.evaluation.run`) and generation through a server
(:mod:`pivotrl.evaluation.endpoint`), which write their answers the same way; and the stage's error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pivotrl.answers import answers_match, extract_answer
from pivotrl.fidelity import detect_language
from pivotrl.languages import LANGUAGES
from pivotrl.records import Generation, Problem
from pivotrl.run_folder import cut_torn_line, existing_file, read_records, writing

GENERATIONS = "generations.jsonl"


class EvalError(Exception):
    """An evaluation cannot run as asked (bad settings, a run folder made with other settings)."""


def read_done(path: Path) -> dict[tuple[str, str], list[Generation]]:
    """Generations already in the run folder, by (problem id, language). A line cut by a kill is dropped
    (and cut from the file, so appending continues on a clean line). Anything but a regular file there (a pipe, a
    link to /dev/zero) is an OutputPathError naming it, before it is opened."""
    done: dict[tuple[str, str], list[Generation]] = {}
    if not existing_file(path, "generations file"):
        return done
    text = cut_torn_line(path).decode("utf-8")
    for g in read_records(path, text, Generation.from_dict, "generation", EvalError):
        done.setdefault((g.id, g.lang), []).append(g)
    return done


def append_answers(f: Any, problem: Problem, prompt: str, responses: list[str],
                   done: dict[tuple[str, str], list[Generation]], tokenizer: Any = None,
                   token_counts: list[int] | None = None, cut: list[bool | None] | None = None) -> int:
    """Check and append the answers of one problem that the run folder does not hold yet (samples written
    before an interruption are skipped), fsync'ed: a finished answer survives even a power cut. Token counts
    are given (a server's) or counted with ``tokenizer``; ``cut[i]``: answer ``i`` was stopped by the
    new-token budget. Returns the new tokens written."""
    have = len(done.get((problem.id, problem.lang), []))
    added = 0
    lines = []
    for sample, response in enumerate(responses):
        if sample < have:
            continue
        count = token_counts[sample] if token_counts is not None else None
        g = _evaluate(problem, prompt, response, sample, tokenizer, n_tokens=count,
                      cut=cut[sample] if cut is not None else None)
        added += g.n_tokens
        done.setdefault((problem.id, problem.lang), []).append(g)
        lines.append(json.dumps(g.to_dict(), ensure_ascii=False) + "\n")
    with writing(f.name):  # a full disk: an error naming the generations file
        f.write("".join(lines))
        f.flush()
        os.fsync(f.fileno())
    return added


def _evaluate(problem: Problem, prompt: str, response: str, sample: int, tokenizer,
              n_tokens: int | None = None, cut: bool | None = None) -> Generation:
    """Check one response; ``n_tokens`` given (an endpoint's count) or counted with ``tokenizer``."""
    ex = extract_answer(response, problem.lang, problem.answer_type, len(problem.choices or ()) or 10)
    detection = detect_language(response)
    known = LANGUAGES[problem.lang].lid is not None and detection.lang is not None
    return Generation(
        id=problem.id, lang=problem.lang, sample=sample, prompt=prompt, response=response, gold=problem.answer,
        answer_type=problem.answer_type, strict=ex.strict, flexible=ex.flexible,
        correct_strict=answers_match(ex.strict, problem.answer, problem.answer_type),
        correct_flexible=answers_match(ex.flexible, problem.answer, problem.answer_type),
        correct=answers_match(ex.best, problem.answer, problem.answer_type),
        detected_lang=detection.lang, in_language=(detection.lang == problem.lang) if known else None,
        n_tokens=len(tokenizer(response, add_special_tokens=False).input_ids) if n_tokens is None else n_tokens,
        cut=cut,
    )
