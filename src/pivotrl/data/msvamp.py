"""MSVAMP: 1000 SVAMP arithmetic word problems (1-2 steps), parallel in 10 languages.

Files: ``test_{Language}.json``, JSON Lines with ``m_query`` (the question in that language), ``query``
(the English question; absent from the English file, whose ``m_query`` is English), ``equation`` and
``response`` (gold number as a string, "8.0"). Line i is the same problem in every file: ``msvamp-{i:04d}``.
Every translated row carries its English question (``query``): it must be the English file's question of the same
line (compared with runs of white space made one space, Unicode NFC), else lines were swapped or lost and the
question would be paired with another problem's answer and English reference; the error names both questions.
"""

from __future__ import annotations

import unicodedata
from fractions import Fraction
from pathlib import Path

from pivotrl.answers import canonical_number, find_numbers, parse_exact_number
from pivotrl.data.errors import DataError, DataFormatError, check_aligned, check_data_file
from pivotrl.data.files import iter_json_lines, require_text
from pivotrl.data.locate import find_local, hub_file
from pivotrl.languages import MSVAMP_LANGS, get_language
from pivotrl.records import Problem

HUB_ID = "Mathoctopus/MSVAMP"
LANGS = MSVAMP_LANGS


def file_name(lang: str) -> str:
    return f"test_{get_language(lang).name}.json"


def read_msvamp_jsonl(path: Path, lang: str, english: dict[int, str] | None = None,
                      english_path: Path | None = None) -> list[Problem]:
    """The problems of one language file; with ``english`` (line number -> the English file's question), each
    row's ``query`` is checked against the English question of its line."""
    problems = []
    by_question = None  # English question -> its line, built on the first mismatch
    for lineno, row in iter_json_lines(path):
        question, response = require_text(row, "m_query", path, lineno), require_text(row, "response", path, lineno)
        value = parse_exact_number(response)
        if value is None:
            raise DataFormatError(path, lineno, "response", f"expected a number, found {row['response']!r}")
        question_en = question if lang == "en" else row.get("query")
        if english is not None and lang != "en" and isinstance(question_en, str) and lineno in english:
            expected = english[lineno]
            if _same_text(question_en) != _same_text(expected):
                if by_question is None:
                    by_question = {_same_text(q): n for n, q in english.items()}
                elsewhere = by_question.get(_same_text(question_en))
                hint = (f"it is the English question of line {elsewhere}: lines swapped or shifted?"
                        if elsewhere is not None else "a row of another problem, or a changed file?")
                raise DataFormatError(path, lineno, "query", f"the English question {_clip(question_en)!r} is not "
                                      f"line {lineno} of {(english_path or Path('test_English.json')).name}, "
                                      f"{_clip(expected)!r} ({hint}); line i of every MSVAMP file must be the same "
                                      "problem")
        equation = row.get("equation")
        solution = equation_solution(question, equation, value) if lang == "en" else None
        problems.append(Problem(
            id=f"msvamp-{lineno - 1:04d}", lang=lang, question=question,
            answer=canonical_number(value), source="msvamp",
            question_en=question_en.strip() if isinstance(question_en, str) else None,
            solution=solution, meta={"equation": equation},
        ))
    if not problems:
        raise DataFormatError(path, None, None, "file is empty")
    return problems


def _same_text(text: str) -> str:
    """What two copies of one question share: Unicode NFC, white space made single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_OPS = {"+": Fraction.__add__, "-": Fraction.__sub__, "*": Fraction.__mul__, "/": Fraction.__truediv__}


def equation_solution(question: str, equation: object, answer: Fraction) -> str | None:
    """An English worked solution from the SVAMP prefix equation ("- number0 number1"), or None.

    ``numberK`` is the K-th number of the question. Each operation becomes one step ("18 - 10 = 8."), then
    "The answer is N.". None when the equation does not parse or does not reach the gold answer: the gold
    pivot then has no rationale for this problem rather than a wrong one.
    """
    if not isinstance(equation, str) or not equation.strip():
        return None
    numbers = find_numbers(question)
    tokens = equation.split()
    steps: list[str] = []

    def show(x: Fraction) -> str:
        return canonical_number(x)

    def parse(i: int) -> tuple[Fraction, int]:
        token = tokens[i]
        if token in _OPS:
            left, i = parse(i + 1)
            right, i = parse(i)
            result = _OPS[token](left, right)
            steps.append(f"{show(left)} {'×' if token == '*' else token} {show(right)} = {show(result)}.")
            return result, i
        if token.startswith("number"):
            return numbers[int(token[6:])], i + 1
        return Fraction(token), i + 1

    try:
        value, end = parse(0)
    except (IndexError, ValueError, ZeroDivisionError):
        return None
    if end != len(tokens) or value != answer or not steps:
        return None
    return " ".join(steps) + f" The answer is {show(value)}."


def _file(data_dir: Path | None, lang: str) -> Path:
    folder = find_local(data_dir, "msvamp", "test_*.json")
    if folder is not None:
        path = folder / file_name(lang)
        if not path.exists():
            raise DataError(f"MSVAMP has no file for language {lang!r} in {folder} (expected {path.name})")
        return check_data_file(path, "MSVAMP file")
    if data_dir is not None:
        raise DataError(f"no MSVAMP files (test_*.json) in {data_dir} or {data_dir / 'msvamp'}")
    return hub_file(HUB_ID, file_name(lang))


def load_msvamp(langs: list[str], data_dir: Path | None) -> list[Problem]:
    unknown = [lang for lang in langs if lang not in LANGS]
    if unknown:
        raise DataError(f"MSVAMP has no language {', '.join(unknown)}; it has {', '.join(LANGS)}")
    out: list[Problem] = []
    rows: dict[Path, int] = {}
    english: dict[int, str] | None = None
    english_path = None
    for lang in dict.fromkeys(["en", *langs]):  # English first: every file must line up with it
        path = _file(data_dir, lang)
        problems = read_msvamp_jsonl(path, lang, english, english_path)
        if lang == "en":  # ids are msvamp-{line - 1}
            english = {int(p.id.rsplit("-", 1)[1]) + 1: p.question for p in problems}
            english_path = path
        rows[path] = len(problems)
        if lang in langs:
            out.extend(problems)
    check_aligned("MSVAMP", rows)
    return out
