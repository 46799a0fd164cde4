"""Your own problems from a JSON Lines, JSON, CSV/TSV or Parquet file, with a column mapping.

Columns default to the :class:`~pivotrl.records.Problem` field names (``id``, ``lang``, ``question``,
``answer``, ``question_en``, ``solution``, ``choices``); map other names with ``columns={"question":
"prompt", "answer": "gold"}``. ``question`` and ``answer`` are required; ``lang`` comes from a column or the
``lang`` argument; a missing ``id`` becomes ``{file stem}-{row number}``; an id appears once per language (two
rows with one id would be one problem: an error names both lines). Answers must be numbers, or choice letters
when ``answer_type="choice"``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pivotrl.answers import CHOICE_LETTERS, canonical_number, parse_exact_number
from pivotrl.data.errors import DataError, DataFormatError, check_data_file
from pivotrl.languages import UnknownLanguageError, get_language
from pivotrl.records import Problem
from pivotrl.text_files import json_value, read_text, text_lines

FIELDS = ("id", "lang", "question", "answer", "question_en", "solution", "choices")
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


def parse_column_map(spec: str | None) -> dict[str, str]:
    """"question=prompt,answer=gold" -> {"question": "prompt", "answer": "gold"}."""
    mapping: dict[str, str] = {}
    for item in (spec or "").split(","):
        if not item.strip():
            continue
        key, sep, column = item.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not column or key not in FIELDS:
            raise DataError(f"bad column mapping {item!r}: expected FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        mapping[key] = column
    return mapping


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON Lines file; a clear error on a bad line."""
    for lineno, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json_value(line)  # a too-deeply nested line is a JSONDecodeError too
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, lineno, None, f"not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataFormatError(path, lineno, None, "expected a JSON object")
        yield lineno, row


def require_text(row: dict[str, Any], field: str, path: str | Path, lineno: int) -> str:
    """The stripped string in ``row[field]``, or a DataFormatError naming the place."""
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, lineno, field, "missing or not a non-empty string")
    return value.strip()


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or row number, row) pairs; numbers point at the place in the file a person would look."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        text = read_text(path) if suffix == ".json" else ""
        if text.lstrip().startswith("["):
            try:
                rows = json_value(text)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, exc.lineno, None, f"not valid JSON ({exc.msg})") from None
            yield from enumerate(rows, start=1)
            return
        yield from iter_json_lines(path)
    elif suffix in (".csv", ".tsv"):
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        for row in reader:
            yield reader.line_num, row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(SUFFIXES)}")


def _cell(row: dict[str, Any], column: str, field: str, required: bool, path: Path, lineno: int) -> str | None:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DataFormatError(path, lineno, column, f"missing (needed for {field!r})")
        return None
    return str(value).strip()


def load_file(path: str | Path, *, lang: str | None = None, columns: dict[str, str] | None = None,
              answer_type: str = "number", source: str | None = None) -> list[Problem]:
    path = check_data_file(path)
    col = {f: f for f in FIELDS} | (columns or {})
    default_lang = get_language(lang).code if lang else None
    source = source or path.stem
    problems = []
    first_line: dict[tuple[str, str], int] = {}  # (id, language) -> the line that used it first
    for lineno, row in _rows(path):
        if not isinstance(row, dict):
            raise DataFormatError(path, lineno, None, "expected an object / a row with named columns")

        def text(field: str, required: bool = False, row=row, lineno=lineno) -> str | None:
            return _cell(row, col[field], field, required, path, lineno)

        question, answer = text("question", True), text("answer", True)
        try:
            row_lang = get_language(text("lang")).code if text("lang") else default_lang
        except UnknownLanguageError as exc:
            raise DataFormatError(path, lineno, col["lang"], str(exc)) from None
        if row_lang is None:
            raise DataFormatError(path, lineno, col["lang"], "no language: add the column or pass --lang")
        choices = row.get(col["choices"])
        if answer_type == "choice":
            if isinstance(choices, str):
                choices = json_value(choices) if choices.strip().startswith("[") else choices.split("|")
            if not isinstance(choices, list | tuple) or len(choices) < 2:
                raise DataFormatError(path, lineno, col["choices"], "expected a list of at least 2 options")
            answer = answer.upper()
            if answer not in CHOICE_LETTERS[: len(choices)]:
                raise DataFormatError(path, lineno, col["answer"],
                                      f"expected a letter A-{CHOICE_LETTERS[len(choices) - 1]}, found {answer!r}")
        else:
            value = parse_exact_number(answer)
            if value is None:
                raise DataFormatError(path, lineno, col["answer"], f"expected a number, found {answer!r}")
            answer, choices = canonical_number(value), None
        problem_id = text("id") or f"{source}-{lineno}"
        earlier = first_line.setdefault((problem_id, row_lang), lineno)
        if earlier != lineno:  # the later one would silently never be asked (answers are kept by id and language)
            raise DataFormatError(path, lineno, col["id"], f"id {problem_id!r} ({row_lang}) is already used on line "
                                  f"{earlier}: lines {earlier} and {lineno} have the same id; every problem needs "
                                  "its own id in each language")
        problems.append(Problem(
            id=problem_id, lang=row_lang, question=question, answer=answer,
            source=source, answer_type="choice" if answer_type == "choice" else "number",
            question_en=text("question_en") or (question if row_lang == "en" else None),
            solution=text("solution"), choices=tuple(map(str, choices)) if choices else None,
        ))
    if not problems:
        raise DataFormatError(path, None, None, "no rows")
    return problems
