"""Local-file loader for the mgsm_local_native_cot_* tasks (lm-evaluation-harness `custom_dataset`).

lm-eval's own mgsm_native_cot_{lang} tasks read the hub data set `juletxara/mgsm`. These tasks are the
same tasks reading the same problems from the local MGSM files instead:

* test split  <- mgsm_{lang}.tsv: no header, `question<TAB>answer`, one problem per line, read with the csv
  module and no quoting (a question may hold a `"`). Each row becomes a document shaped like the hub's
  test rows: question (as written), answer None, answer_number (the gold number as an int: "2,125" is
  2125), equation_solution None. With answer None the task's doc_to_text gives
  "Frage: {question}\nSchritt-für-Schritt-Antwort:" and doc_to_target gives str(answer_number).
* train split <- exemplars.json: the 8 hand-translated exemplars, shaped like the hub's train rows (question
  and answer carry their "Frage: " / "Schritt-für-Schritt-Antwort: " prefixes). Zero-shot runs never show
  them, but lm-eval builds its few-shot sampler from the training split when the task has one.

The data folder is $PIVOTRL_DATA_DIR (as for pivotrl), else `../shared/data` beside the repository root;
the MGSM files are in its `mgsm/` subfolder (or in the folder itself). A `data_dir` passed through
`lm_eval --metadata '{"data_dir": "..."}'` wins over both.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

ENV_VAR = "PIVOTRL_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[3]  # tasks/ -> lm_eval_mgsm/ -> bench/ -> repo
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def mgsm_folder(data_dir: str | os.PathLike | None = None) -> Path:
    base = Path(data_dir or os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR).expanduser()
    for candidate in (base / "mgsm", base):
        if candidate.is_dir() and any(candidate.glob("mgsm_*.tsv")):
            return candidate
    raise FileNotFoundError(
        f"no MGSM files (mgsm_*.tsv) in {base} or {base / 'mgsm'}; set ${ENV_VAR} to the data folder"
    )


def parse_number(text: str) -> int:
    """The gold answers are integers, some with thousands commas ("2,125")."""
    return int(text.strip().replace(",", ""))


def read_test_rows(folder: Path, lang: str) -> list[dict]:
    path = folder / f"mgsm_{lang}.tsv"
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) != 2:
                raise ValueError(f"{path}:{lineno}: expected question<TAB>answer, found {len(row)} columns")
            rows.append({
                "question": row[0],
                "answer": None,
                "answer_number": parse_number(row[1]),
                "equation_solution": None,
            })
    return rows


def read_train_rows(folder: Path, lang: str) -> list[dict]:
    path = folder / "exemplars.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    shots = data["exemplars"].get(lang, {})
    items = [shots[k] for k in sorted(shots, key=int)] if isinstance(shots, dict) else list(shots)
    numbers = data.get("number_answers", [])
    equations = data.get("equation_solutions", [])
    return [
        {
            "question": shot["q"],
            "answer": shot["a"],
            "answer_number": int(numbers[i]) if i < len(numbers) else None,
            "equation_solution": equations[i] if i < len(equations) else None,
        }
        for i, shot in enumerate(items)
    ]


def load_mgsm_local(lang: str | None = None, data_dir: str | None = None, **_ignored):
    """lm-eval calls this with the task's metadata and dataset_kwargs as keyword arguments."""
    import datasets

    if not lang:
        raise ValueError("mgsm_local tasks need dataset_kwargs: {lang: <code>}")
    folder = mgsm_folder(data_dir)
    features = datasets.Features({
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "answer_number": datasets.Value("int32"),
        "equation_solution": datasets.Value("string"),
    })
    return datasets.DatasetDict({
        "train": datasets.Dataset.from_list(read_train_rows(folder, lang), features=features),
        "test": datasets.Dataset.from_list(read_test_rows(folder, lang), features=features),
    })
