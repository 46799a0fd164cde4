"""The audit's cases: honest answers with their English references and labels (MGSM exemplars, the synthetic
set, an evaluation run's generations against a pivot store or a set's gold solutions)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.answers import (
    extract_answer,
)
from pivotrl.data.errors import DataError, DataFormatError
from pivotrl.data.files import iter_json_lines
from pivotrl.languages import get_language
from pivotrl.records import Reference

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class AuditCase:
    """One labelled response with the English pivot reference it is scored against.

    ``response`` is written in ``lang``; ``reference`` is the English reference text and
    ``reference_answer`` its final answer ("11", "B"). ``correct`` is the label (gold correctness). ``source``
    names where the case came from ("mgsm-exemplars", "synthetic", or a generations file); ``sample``
    tells apart several responses to the same problem. ``question`` is the question the response answers, in
    ``lang`` ("" when unknown); it is passed to the reward with every text scored for the case, probes included.
    """

    id: str
    lang: str
    response: str
    reference: str
    reference_answer: str
    answer_type: str = "number"
    correct: bool = True
    source: str = ""
    sample: int = 0
    question: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        return f"{self.source}|{self.lang}|{self.id}|{self.sample}"


def strip_label(text: str, lang: str) -> str:
    """``text`` without a leading native answer label ("Schritt-für-Schritt-Antwort: ", "逐步解答：")."""
    return _strip_leading(text, {get_language(lang).answer_label, get_language("en").answer_label})


def strip_question_label(text: str, lang: str) -> str:
    """``text`` without a leading native question label ("Frage: ", "问题：")."""
    return _strip_leading(text, {get_language(lang).question_label, get_language("en").question_label})


def _strip_leading(text: str, labels: set[str]) -> str:
    stripped = text.lstrip()
    for label in sorted(labels, key=len, reverse=True):
        core = label.rstrip(" :：")
        pattern = r"\s*".join(re.escape(w) for w in core.split()) + r"\s*[:：]\s*"
        m = re.match(pattern, stripped, re.IGNORECASE)
        if m:
            return stripped[m.end():].strip()
    return stripped.strip()


def _final_answer_en(text: str, answer_type: str = "number") -> str:
    best = extract_answer(text, "en", answer_type).best
    if best is None:
        raise DataError(f"no final answer in English reference {text[:80]!r}")
    return best


def cases_from_exemplars(langs: Iterable[str] | None = None, data_dir: str | Path | None = None) -> list[AuditCase]:
    """The 8 human-translated MGSM few-shot exemplars per language as correct cases (real text).

    Honest response: the native exemplar answer without its label; question: the native exemplar question
    without its label; reference: the English exemplar answer of the same index; reference answer: the English
    answer's final number. ``langs`` default: every MGSM language except English.
    """
    from pivotrl.data.locate import resolve_data_dir
    from pivotrl.data.mgsm import LANGS, load_exemplars

    codes = [get_language(c).code for c in langs] if langs is not None else [c for c in LANGS if c != "en"]
    missing = [c for c in codes if c not in LANGS]
    if missing:
        raise DataError(f"MGSM exemplars exist for {', '.join(LANGS)}, not {', '.join(missing)}")
    folder = resolve_data_dir(data_dir)
    english = [strip_label(a, "en") for _, a in load_exemplars("en", folder)]
    cases = []
    for code in codes:
        native = load_exemplars(code, folder)
        if len(native) != len(english):
            raise DataError(f"MGSM exemplars: {len(native)} for {code} but {len(english)} for en")
        for i, ((question, answer), ref) in enumerate(zip(native, english)):
            cases.append(AuditCase(id=f"mgsm-exemplar-{i + 1}", lang=code, response=strip_label(answer, code),
                                   reference=ref, reference_answer=_final_answer_en(ref), answer_type="number",
                                   correct=True, source="mgsm-exemplars",
                                   question=strip_question_label(question, code)))
    return cases


def cases_from_synthetic(langs: Iterable[str] | None = None, n: int = 40, seed: int = 0) -> list[AuditCase]:
    """``n`` synthetic problems per language: native worked solution vs the English solution of the same id.

    ``langs`` default: every synthetic language except English.
    """
    from pivotrl.data.synthetic import SYNTHETIC_LANGS, generate_synthetic

    codes = [get_language(c).code for c in langs] if langs is not None else [c for c in SYNTHETIC_LANGS if c != "en"]
    missing = [c for c in codes if c not in SYNTHETIC_LANGS]
    if missing:
        raise DataError(f"the synthetic set has {', '.join(SYNTHETIC_LANGS)}, not {', '.join(missing)}")
    problems = generate_synthetic(n, langs=["en", *[c for c in codes if c != "en"]], seed=seed)
    english = {p.id: p for p in problems if p.lang == "en"}
    cases = []
    for p in problems:
        if p.lang not in codes or p.solution is None:
            continue
        ref = english[p.id]
        cases.append(AuditCase(id=p.id, lang=p.lang, response=p.solution, reference=ref.solution or ref.question,
                               reference_answer=p.answer, answer_type="number", correct=True, source="synthetic",
                               question=p.question))
    return cases


References = Mapping[str, tuple[str, str | None]]


def _check_json_lines(path: Path, what: str) -> None:
    """A DataFormatError naming the file and line for the first line that is not a JSON object."""
    for _ in iter_json_lines(path):  # raises naming the file and line
        pass


def references_from_store(refs_dir: str | Path, *, pivot: str | None = None,
                          settings: str | None = None) -> dict[str, tuple[str, str | None]]:
    """Problem id -> (English reference text, its answer) from a ``pivotrl pivot`` folder.

    Only references with a text (status other than "none") are returned. A folder holding references of
    several (pivot, settings) pairs needs ``pivot`` / ``settings`` to choose one. A malformed line is an
    error naming the file and the line.
    """
    from pivotrl.pivot.store import FILE, ReferenceStore, StoreError

    folder = Path(refs_dir)
    path = folder / FILE if folder.is_dir() else folder
    if path.name != FILE or not path.is_file():
        raise DataError(f"no {FILE} in {refs_dir}: pass the folder a `pivotrl pivot` run wrote")
    _check_json_lines(path, "a pivot reference")
    store = ReferenceStore(path.parent)
    try:
        refs = store.read(pivot, settings)
    except StoreError as exc:
        raise DataError(str(exc)) from None
    except (AttributeError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a reference store ({exc})") from None
    pairs = {(r.pivot, r.settings) for r in refs}
    if len(pairs) > 1:
        listed = ", ".join(f"pivot={p!r} settings={s!r}" for p, s in sorted(pairs))
        raise DataError(f"{path} holds references of several pivots/settings ({listed}); choose one")
    out: dict[str, tuple[str, str | None]] = {}
    for ref in refs:
        if isinstance(ref, Reference) and ref.status != "none" and ref.text:
            out[ref.problem_id] = (ref.text, ref.answer)
    return out


def references_from_gold(task: str, data_dir: str | Path | None = None, *, subset: str | None = None,
                         synthetic_size: int = 500, seed: int = 0) -> dict[str, tuple[str, str | None]]:
    """Problem id -> (English reference, answer) from a problem set's English gold.

    Worked solutions where the set has them: ``synthetic`` (its English solutions; ``synthetic_size`` and
    ``seed`` must cover the run's ids), ``gsm8k`` (the cleaned rationales) and ``mgsm`` (MGSM is GSM8K's
    first 250 test problems, so their GSM8K rationales, when the GSM8K test file is available). Otherwise
    (``msvamp``, ``mmlu_prox``, a file without solutions) the English question followed by
    "The answer is N.".
    """
    from pivotrl.data import PROBLEM_SETS, load_problems

    en = get_language("en")
    if task == "synthetic":
        problems = load_problems("synthetic", ["en"], synthetic_size=synthetic_size, seed=seed)
    elif task == "gsm8k":
        problems = []
        for part in ([subset] if subset else ["train", "test"]):
            try:
                problems += load_problems("gsm8k", ["en"], data_dir=data_dir, subset=part)
            except DataError:
                if subset:
                    raise
        if not problems:
            raise DataError("GSM8K: neither train nor test could be loaded")
    elif task in PROBLEM_SETS:
        problems = load_problems(task, ["en"], data_dir=data_dir, subset=subset)
    else:
        problems = load_problems(task, ["en"], data_dir=data_dir)
    if task == "mgsm":
        try:
            gsm = {p.id: p for p in load_problems("gsm8k", ["en"], data_dir=data_dir, subset="test")}
        except DataError:
            gsm = {}
        out = {}
        for p in problems:
            g = gsm.get(p.meta.get("gsm8k_id", ""))
            if g is not None and g.solution and g.answer == p.answer:
                out[p.id] = (g.solution, p.answer)
            else:
                out[p.id] = (f"{p.question}\n{en.answer_sentence(p.answer)}", p.answer)
        return out
    return {p.id: (p.solution or f"{p.question}\n{en.answer_sentence(p.answer)}", p.answer) for p in problems}


def cases_from_generations(path: str | Path, references: References, *, missing: str = "skip",
                           langs: Iterable[str] | None = None,
                           questions: Mapping[tuple[str, str], str] | None = None) -> list[AuditCase]:
    """The rows of an eval run's ``generations.jsonl`` (or of a run folder), labelled by their ``correct``.

    ``references``: problem id -> (English reference text, its answer or None: then the row's ``gold``).
    Rows whose id has no reference are skipped with a warning (``missing="error"``: an error). A malformed
    row is a :class:`DataFormatError` naming the file and the line. A case's question is the row's own
    ``question`` (a string) when it has one, else ``questions[(problem id, language code)]``, else "".
    """
    path = Path(path)
    if path.is_dir():
        path = path / "generations.jsonl"
    if not path.is_file():
        raise DataError(f"no generations file {path}")
    if missing not in ("skip", "error"):
        raise ValueError(f"missing must be 'skip' or 'error', got {missing!r}")
    keep = {get_language(c).code for c in langs} if langs is not None else None
    cases, skipped = [], []
    for lineno, row in iter_json_lines(path):
        for name in ("id", "lang"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise DataFormatError(path, lineno, name, "missing or not a non-empty string")
        if not isinstance(row.get("response"), str):
            raise DataFormatError(path, lineno, "response", "missing or not a string")
        if not isinstance(row.get("correct"), bool):
            raise DataFormatError(path, lineno, "correct", f"expected true or false, got {row.get('correct')!r}")
        try:
            code = get_language(row["lang"]).code
        except KeyError as exc:
            raise DataFormatError(path, lineno, "lang", str(exc)) from None
        answer_type = row.get("answer_type") or "number"
        if answer_type not in ("number", "choice"):
            raise DataFormatError(path, lineno, "answer_type", f"expected number or choice, got {answer_type!r}")
        sample = row.get("sample", 0)
        if not isinstance(sample, int) or isinstance(sample, bool):
            raise DataFormatError(path, lineno, "sample", f"expected an integer, got {sample!r}")
        if keep is not None and code not in keep:
            continue
        ref = references.get(row["id"])
        if ref is None:
            if missing == "error":
                raise DataFormatError(path, lineno, "id", f"no reference for problem {row['id']!r}")
            skipped.append(row["id"])
            continue
        text, answer = ref
        answer = answer or row.get("gold")
        if not answer:
            raise DataFormatError(path, lineno, "gold", f"no reference answer for problem {row['id']!r}")
        question = row.get("question")
        if question is not None and not isinstance(question, str):
            raise DataFormatError(path, lineno, "question", f"expected a string, got {type(question).__name__}")
        if not question and questions is not None:
            question = questions.get((row["id"], code))
        cases.append(AuditCase(id=row["id"], lang=code, response=row["response"], reference=text,
                               reference_answer=str(answer), answer_type=answer_type, correct=row["correct"],
                               source=str(path.parent.name or path.name), sample=sample,
                               question=question or ""))
    if skipped:
        logger.warning("%s: %d of %d rows skipped: no reference for %s%s", path, len(skipped),
                       len(skipped) + len(cases), ", ".join(sorted(set(skipped))[:5]),
                       " ..." if len(set(skipped)) > 5 else "")
    if not cases:
        raise DataError(f"{path}: no row has a reference (skipped {len(skipped)})")
    return cases


