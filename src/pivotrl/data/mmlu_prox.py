"""MMLU-ProX: MMLU-Pro translated into 29 languages, 10-option multiple choice (and its Lite version).

Schema (hub ``li-lab/MMLU-ProX`` / ``li-lab/MMLU-ProX-Lite``, one config per language, splits
``validation`` and ``test``): ``question_id``, ``question``, ``option_0`` ... ``option_9`` (missing options are
null), ``answer`` (letter A-J), ``answer_index``, ``cot_content``, ``category``, ``src``. The same
``question_id`` is the same question in every language, so ids are ``mmlu_prox-{question_id}``.

Local copies: parquet or arrow files under ``DATA_DIR/mmlu_prox/{lang}/`` (or ``mmlu_prox_lite``), e.g. the
files of a hub snapshot; a file name may carry the split (``test-00000-of-00001.parquet``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pivotrl.answers import CHOICE_LETTERS
from pivotrl.data.errors import DataError, DataFormatError
from pivotrl.languages import MMLU_PROX_LANGS
from pivotrl.records import Problem

HUB_IDS = {"mmlu_prox": "li-lab/MMLU-ProX", "mmlu_prox_lite": "li-lab/MMLU-ProX-Lite"}
LANGS = MMLU_PROX_LANGS
N_OPTIONS = 10
REQUIRED = ("question_id", "question", "answer", *(f"option_{i}" for i in range(N_OPTIONS)))


def rows_to_problems(rows: list[dict[str, Any]], lang: str, where: str, source: str = "mmlu_prox",
                     english: dict[str, str] | None = None) -> list[Problem]:
    """Validate MMLU-ProX rows and turn them into Problems. ``where`` names the file for error messages."""
    problems = []
    for i, row in enumerate(rows, start=1):
        for field in REQUIRED:
            if field not in row:
                raise DataFormatError(where, i, field, "column is missing (MMLU-ProX schema expected)")
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise DataFormatError(where, i, "question", "missing or not a non-empty string")
        options = [row[f"option_{k}"] for k in range(N_OPTIONS)]
        while options and (options[-1] is None or str(options[-1]).strip() in ("", "N/A")):
            options.pop()  # MMLU-Pro pads questions with fewer than 10 options
        if len(options) < 2:
            raise DataFormatError(where, i, "option_0", "fewer than two options")
        answer = str(row["answer"]).strip().upper()
        if len(answer) != 1 or answer not in CHOICE_LETTERS[: len(options)]:
            raise DataFormatError(where, i, "answer",
                                  f"expected a letter A-{CHOICE_LETTERS[len(options) - 1]}, found {row['answer']!r}")
        index = row.get("answer_index")
        if index is not None and int(index) != CHOICE_LETTERS.index(answer):
            raise DataFormatError(where, i, "answer_index", f"{index} does not match answer {answer!r}")
        qid = str(row["question_id"])
        problems.append(Problem(
            id=f"{source}-{qid}", lang=lang, question=row["question"].strip(), answer=answer, source=source,
            answer_type="choice", choices=tuple("" if o is None else str(o) for o in options),
            question_en=(english or {}).get(qid) or (row["question"].strip() if lang == "en" else None),
            solution=row.get("cot_content") or None,
            meta={k: row[k] for k in ("category", "src") if row.get(k) is not None},
        ))
    return problems


def _read_table(path: Path) -> list[dict[str, Any]]:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
        import datasets

        return datasets.Dataset.from_file(str(path)).to_list()
    except Exception as exc:
        raise DataFormatError(path, None, None, f"cannot be read as {path.suffix[1:]} ({exc})") from exc


def local_files(data_dir: Path | None, source: str, lang: str, split: str) -> list[Path]:
    if data_dir is None:
        return []
    for folder in (data_dir / source / lang, data_dir / lang):
        if folder.is_dir():
            files = sorted(p for p in folder.iterdir() if p.suffix in (".parquet", ".arrow"))
            with_split = [p for p in files if p.name.startswith(split)]
            return with_split or [p for p in files if not p.name.startswith(("validation", "train", "dev"))]
    return []


def load_mmlu_prox(langs: list[str], data_dir: Path | None, source: str = "mmlu_prox",
                   split: str = "test") -> list[Problem]:
    unknown = [lang for lang in langs if lang not in LANGS]
    if unknown:
        raise DataError(f"MMLU-ProX has no language {', '.join(unknown)}; it has {', '.join(LANGS)}")
    tables: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for lang in dict.fromkeys([*langs, "en"]):
        files = local_files(data_dir, source, lang, split)
        if files:
            rows = [row for path in files for row in _read_table(path)]
            tables[lang] = (str(files[0]) if len(files) == 1 else str(files[0].parent), rows)
        elif data_dir is not None:
            if lang in langs:
                raise DataError(f"no {source} parquet/arrow files for {lang!r} under {data_dir / source / lang}")
        else:
            import datasets

            try:
                rows = datasets.load_dataset(HUB_IDS[source], lang, split=split).to_list()
            except Exception as exc:
                if lang not in langs:
                    continue  # the English side only fills question_en
                raise DataError(f"could not load {HUB_IDS[source]} ({lang}) from the hub "
                                f"({type(exc).__name__}: {exc}); pass --data-dir with local parquet files") from exc
            tables[lang] = (f"hub:{HUB_IDS[source]}/{lang}/{split}", rows)
    english = None
    if "en" in tables:
        english = {str(r.get("question_id")): str(r.get("question", "")).strip() for r in tables["en"][1]}
    out: list[Problem] = []
    for lang in langs:
        where, rows = tables[lang]
        out.extend(rows_to_problems(rows, lang, where, source, english))
    return out
