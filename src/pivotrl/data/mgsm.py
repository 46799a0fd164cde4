"""MGSM: the first 250 GSM8K test problems, human-translated into 10 languages (plus English).

Files: ``mgsm_{lang}.tsv``, no header, ``question<TAB>answer``. Item i of every language is the same
problem (and is GSM8K test item i), so ids are ``mgsm-{i:03d}``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pivotrl.answers import canonical_number, parse_exact_number
from pivotrl.data.errors import DataError, DataFormatError, check_aligned, check_data_file
from pivotrl.data.locate import find_local, hub_file
from pivotrl.languages import MGSM_LANGS
from pivotrl.records import Problem
from pivotrl.text_files import read_text

HUB_ID = "juletxara/mgsm"
LANGS = MGSM_LANGS


def read_mgsm_tsv(path: Path, lang: str, english: list[str] | None = None) -> list[Problem]:
    problems = []
    # read whole (MGSM files are small); text_files handles a byte-order mark or names a non-UTF-8 line
    rows = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    for lineno, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DataFormatError(path, lineno, None,
                                  f"expected 2 tab-separated columns (question, answer), found {len(row)}")
        question, answer = row[0].strip(), row[1].strip()
        if not question:
            raise DataFormatError(path, lineno, "question", "is empty")
        value = parse_exact_number(answer)
        if value is None:
            raise DataFormatError(path, lineno, "answer", f"expected a number, found {answer!r}")
        i = lineno - 1
        problems.append(Problem(
            id=f"mgsm-{i:03d}", lang=lang, question=question, answer=canonical_number(value), source="mgsm",
            question_en=english[i] if english and i < len(english) else (question if lang == "en" else None),
            meta={"gsm8k_id": f"gsm8k-test-{i:05d}"},
        ))
    if not problems:
        raise DataFormatError(path, None, None, "file is empty")
    return problems


def _file(data_dir: Path | None, lang: str) -> Path:
    folder = find_local(data_dir, "mgsm", "mgsm_*.tsv")
    if folder is not None:
        path = folder / f"mgsm_{lang}.tsv"
        if not path.exists():
            raise DataError(f"MGSM has no file for language {lang!r} in {folder} (expected {path.name})")
        return check_data_file(path, "MGSM file")
    if data_dir is not None:
        raise DataError(f"no MGSM files (mgsm_*.tsv) in {data_dir} or {data_dir / 'mgsm'}")
    return hub_file(HUB_ID, f"mgsm_{lang}.tsv")


def load_mgsm(langs: list[str], data_dir: Path | None) -> list[Problem]:
    unknown = [lang for lang in langs if lang not in LANGS]
    if unknown:
        raise DataError(f"MGSM has no language {', '.join(unknown)}; it has {', '.join(LANGS)}")
    english_path = _file(data_dir, "en")
    english = [p.question for p in read_mgsm_tsv(english_path, "en")]
    out: list[Problem] = []
    rows = {english_path: len(english)}
    for lang in langs:
        path = _file(data_dir, lang)
        problems = read_mgsm_tsv(path, lang, english)
        rows[path] = len(problems)
        out.extend(problems)
    check_aligned("MGSM", rows)
    return out


def load_exemplars(lang: str, data_dir: Path | None) -> list[tuple[str, str]]:
    """The 8 hand-translated MGSM few-shot exemplars of a language, as (question, answer) texts that carry
    their native labels ("Frage: ...", "Schritt-für-Schritt-Antwort: ...")."""
    import json

    if lang not in LANGS:
        raise DataError(f"MGSM exemplars exist for {', '.join(LANGS)}, not {lang!r}")
    folder = find_local(data_dir, "mgsm", "exemplars.json")
    if folder is not None:
        path = folder / "exemplars.json"
        try:
            items = json.loads(path.read_text(encoding="utf-8"))["exemplars"][lang]
            return [(items[k]["q"], items[k]["a"]) for k in sorted(items, key=int)]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(path, None, f"exemplars.{lang}", f"expected {{index: {{q, a}}}} ({exc})") from exc
    if data_dir is not None:
        raise DataError(f"no MGSM exemplars.json in {data_dir} or {data_dir / 'mgsm'}")
    import datasets

    try:  # the hub's "train" split holds the same exemplars with their labels
        rows = datasets.load_dataset(HUB_ID, lang, split="train")
    except Exception as exc:
        raise DataError(f"could not load MGSM exemplars from the hub ({exc}); pass --data-dir") from exc
    return [(row["question"], row["answer"]) for row in rows]
