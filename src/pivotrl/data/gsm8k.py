"""GSM8K: English grade-school math with worked solutions (train 7473, test 1319).

Files: ``train.jsonl`` / ``test.jsonl`` with ``question`` and ``answer``: a rationale with ``<<a*b=c>>``
calculator annotations, ending in ``#### N``. The rationale, without the annotations and with the final
line written as "The answer is N.", is kept as the problem's ``solution``: a gold English pivot reference.
"""

from __future__ import annotations

import re
from pathlib import Path

from pivotrl.answers import canonical_number, parse_exact_number
from pivotrl.data.errors import DataError, DataFormatError, check_data_file
from pivotrl.data.files import iter_json_lines, require_text
from pivotrl.data.locate import find_local
from pivotrl.languages import get_language
from pivotrl.records import Problem

HUB_ID = "openai/gsm8k"
LANGS = ("en",)
PARTS = ("train", "test")
_CALC = re.compile(r"<<[^>]*>>")


def clean_rationale(rationale: str, answer: str) -> str:
    """GSM8K rationale -> readable English solution ending in the registry's answer sentence."""
    body = _CALC.sub("", rationale.split("####")[0]).strip()
    return f"{body}\n{get_language('en').answer_sentence(answer)}"


def _problem(row: dict, path: str | Path, lineno: int, part: str) -> Problem:
    question, answer = require_text(row, "question", path, lineno), require_text(row, "answer", path, lineno)
    if "####" not in answer:
        raise DataFormatError(path, lineno, "answer", "expected a rationale ending in '#### N'")
    final = answer.rsplit("####", 1)[1].strip()
    value = parse_exact_number(final)
    if value is None:
        raise DataFormatError(path, lineno, "answer", f"expected a number after '####', found {final!r}")
    gold = canonical_number(value)
    return Problem(
        id=f"gsm8k-{part}-{lineno - 1:05d}", lang="en", question=question, answer=gold, source="gsm8k",
        question_en=question, solution=clean_rationale(answer, gold), meta={"rationale": answer},
    )


def read_gsm8k_jsonl(path: Path, part: str) -> list[Problem]:
    problems = [_problem(row, path, lineno, part) for lineno, row in iter_json_lines(path)]
    if not problems:
        raise DataFormatError(path, None, None, "file is empty")
    return problems


def load_gsm8k(langs: list[str], data_dir: Path | None, part: str = "train") -> list[Problem]:
    if part not in PARTS:
        raise DataError(f"GSM8K has parts {', '.join(PARTS)}, not {part!r}")
    if any(lang != "en" for lang in langs):
        raise DataError("GSM8K is English only (use --langs en)")
    folder = find_local(data_dir, "gsm8k", "*.jsonl")
    if folder is not None:
        path = folder / f"{part}.jsonl"
        if not path.exists():
            raise DataError(f"GSM8K: no {path.name} in {folder}")
        return read_gsm8k_jsonl(check_data_file(path, "GSM8K file"), part)
    if data_dir is not None:
        raise DataError(f"no GSM8K files (train.jsonl / test.jsonl) in {data_dir} or {data_dir / 'gsm8k'}")
    import datasets

    try:
        rows = datasets.load_dataset(HUB_ID, "main", split=part)
    except Exception as exc:
        raise DataError(f"could not load {HUB_ID} from the hub ({type(exc).__name__}: {exc}); "
                        "point --data-dir at a folder holding gsm8k/train.jsonl and test.jsonl") from exc
    return [_problem(row, f"hub:{HUB_ID}/{part}", i + 1, part) for i, row in enumerate(rows)]
