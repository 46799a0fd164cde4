"""The training set: each verified English reference paired with the same problem asked in a target language.

The target-language question comes from the parallel set itself when it has that language (MSVAMP's
``m_query``, MGSM, the synthetic set: ``prompt_source = "parallel:<set>"``), else from a translator
(``"translated:<translator name>"``). Problems on the held-out side of the split are never used, so
training and evaluation stay apart by problem id.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.data import PROBLEM_SETS, load_problems, split_of
from pivotrl.data.errors import DataError
from pivotrl.pivot.store import FILE as STORE_FILE
from pivotrl.pivot.store import ReferenceStore
from pivotrl.records import Problem, Reference


@dataclass(frozen=True)
class TrainExample:
    id: str  # problem id (shared across languages)
    lang: str
    question: str  # in the target language
    question_en: str
    reference: str  # the English pivot reference
    reference_answer: str
    answer_type: str
    prompt_source: str  # "parallel:msvamp" or "translated:<translator>"
    pivot: str
    reference_status: str


def build_train_set(refs_dir: str | Path, task: str, langs: list[str], *, pivot: str | None = None,
                    settings: str | None = None, data_dir: str | None = None, subset: str | None = None,
                    translator: Any = None, held_out: float = 0.2) -> tuple[list[TrainExample], dict[str, Any]]:
    folder = Path(refs_dir)
    if not folder.is_dir():  # ReferenceStore would create it: a mistyped --refs must not look like an empty store
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise DataError(f"reference store {folder} {what}: --refs takes the --out folder of `pivotrl pivot`")
    if not (folder / STORE_FILE).is_file():
        raise DataError(f"reference store {folder} holds no {STORE_FILE}: --refs takes the --out folder of "
                        "`pivotrl pivot`")
    if not langs:
        raise DataError("no target languages: pass --langs, e.g. --langs de,zh")
    available = set(PROBLEM_SETS[task].langs) if task in PROBLEM_SETS else set()
    lacking = [code for code in langs if code not in available]
    if lacking and translator is None:
        has = f"it has {', '.join(PROBLEM_SETS[task].langs)}" if task in PROBLEM_SETS else "it is not a parallel set"
        raise DataError(f"{task} has no questions in {', '.join(lacking)} ({has}): pick languages the set has, or "
                        "translate the English questions (`pivotrl pivot build-train --translator seq2seq:MODEL` or "
                        "llm:MODEL)")
    store = ReferenceStore(refs_dir)
    pairs = store.pairs()
    if not pairs:
        raise DataError(f"reference store {folder} holds no references yet: run `pivotrl pivot --out {folder}` first")
    if pivot is None or settings is None:
        candidates = [(p, s) for p, s, _ in pairs
                      if (pivot is None or p == pivot) and (settings is None or s == settings)]
        if len(candidates) != 1:
            listing = "; ".join(f"{p} / {s} ({n})" for p, s, n in pairs) or "nothing"
            raise DataError(f"{refs_dir} holds {listing}: pass --pivot-name and --settings to pick one")
        pivot, settings = candidates[0]
    refs = [r for r in store.read(pivot, settings) if r.status != "none"]
    leaked = [r.problem_id for r in refs if split_of(r.problem_id, held_out) == "held-out"]
    refs = [r for r in refs if r.problem_id not in set(leaked)]
    parallel_langs = [code for code in langs if code in available]
    by_key: dict[tuple[str, str], Problem] = {}
    if parallel_langs:
        for p in load_problems(task, parallel_langs, data_dir=data_dir, subset=subset):
            by_key[(p.id, p.lang)] = p
    examples: list[TrainExample] = []
    missing = 0
    for code in langs:
        todo: list[Reference] = []
        for r in refs:
            p = by_key.get((r.problem_id, code))
            if p is not None:
                examples.append(_example(r, code, p.question, f"parallel:{task}"))
            else:
                todo.append(r)
        if todo and translator is not None:
            translated = translator.translate([r.question for r in todo], "en", code)
            examples += [_example(r, code, q, f"translated:{translator.name}") for r, q in zip(todo, translated)]
        else:
            missing += len(todo)
    if not examples:  # an empty training file is never what was asked for
        if not refs:
            why = (f"it holds no usable reference of {pivot} / {settings} ({len(leaked)} of those with a reference "
                   "are on the held-out side, every other problem has none)")
        else:
            why = (f"none of its {len(refs)} references (ids like {refs[0].problem_id!r}) is a problem of {task} in "
                   f"{', '.join(langs)}: --task must be the set the references were made from")
        raise DataError(f"no training examples from {folder}: {why}")
    summary = {"references": len(refs), "held_out_dropped": len(leaked), "languages": langs,
               "examples": len(examples), "missing_without_translator": missing,
               "by_source": dict(Counter(e.prompt_source for e in examples)),
               "pivot": pivot, "settings": settings}
    return examples, summary


def _example(ref: Reference, lang: str, question: str, source: str) -> TrainExample:
    return TrainExample(ref.problem_id, lang, question, ref.question, ref.text or "", ref.answer or "",
                        "choice" if (ref.answer or "").isalpha() else "number", source, ref.pivot, ref.status)


def write_examples(examples: list[TrainExample], out: str | Path) -> Path:
    return write_rows([asdict(e) for e in examples], out)


def write_rows(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """JSON Lines, Parquet, or a Hugging Face datasets folder (any other path), by the output's suffix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".jsonl":
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), out)
    else:
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(out))
    return out
