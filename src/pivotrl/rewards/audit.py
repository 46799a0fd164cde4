"""``pivotrl reward audit``: does a composed reward separate right from wrong, and can it be hacked?

Given labelled responses (an eval run's generations, or real human text known to be correct) and their
English pivot references, the audit reports, per language and per reward component:

* **separation** - ROC-AUC of every component score (and of the total) for correct vs incorrect answers,
  and the mean score of each class;
* **hacking probes** - for every honest correct answer, cheap imitations built from the references
  themselves (:data:`PROBES`): the English reference copied, the honest answer with its final number
  changed, its reasoning cut in half, padded by repetition, the honest answer to another problem, the bare
  answer sentence, the native reasoning with an English answer sentence. For each probe: the share of
  cases where the honest answer's total is strictly above the probe's (ties and losses are counted
  separately), and the same per component.

The ``min over required probes`` of a language is its weakest win rate over :data:`REQUIRED_PROBES` (the
issue's five: English copy, wrong number, truncated, padded, unrelated); a reward fit for training should
reach >= 99% in every language.

ROC-AUC basis (reported as ``auc_basis``):

* ``labelled``: data that has both classes (an eval run's generations with their ``correct`` field). Only
  sources of a language that have correct *and* incorrect responses count.
* ``wrong_number``: sources with only correct answers (the MGSM exemplars, the synthetic solutions). Their
  negative class is the ``wrong_number`` variant of each correct answer (same text, final number changed),
  so the AUC measures *number sensitivity*: it is ~1 for a component that reads the answer
  (``answer_agreement``) and ~0.5 for one that cannot tell numbers apart (an embedding). It says nothing
  about naturally wrong reasoning; use labelled generations for that.

Case sources: :func:`cases_from_exemplars` (MGSM's human-translated exemplars: real text in 10 languages),
:func:`cases_from_synthetic` (the synthetic set's worked solutions), :func:`cases_from_generations` (an
eval run, with references from :func:`references_from_store` or :func:`references_from_gold`).

Every probe is a plain function ``probe(case, context) -> str | None`` registered in :data:`PROBES`
(``None``: not applicable to this case, e.g. an English copy of an English answer); adding a probe is
adding one function. :func:`run_audit` scores the honest responses and all probes of a language in one
``reward.score`` call; :func:`write_audit` writes ``audit.md``, ``audit.json``, ``audit_cases.jsonl`` and
``audit.png``; :func:`audit_main` is what the command line calls.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

# The answer phrase and number patterns are the ones extraction uses, so a probe changes exactly what the
# reward (and evaluation) reads as the final answer.
from pivotrl.answers import (
    _NUMBER_RE,
    _strict_number_re,
    _value_of,
    canonical_number,
    extract_answer,
    normalize_digits,
    parse_number,
)
from pivotrl.data.files import iter_json_lines
from pivotrl.data.errors import DataError, DataFormatError
from pivotrl.languages import get_language
from pivotrl.records import Reference, RewardInput

logger = logging.getLogger(__name__)

__all__ = [
    "PROBES",
    "REQUIRED_PROBES",
    "AuditCase",
    "AuditReport",
    "LangResult",
    "ProbeContext",
    "ProbeStat",
    "answer_parts",
    "audit_main",
    "cases_from_exemplars",
    "cases_from_generations",
    "cases_from_synthetic",
    "references_from_gold",
    "references_from_store",
    "run_audit",
    "strip_label",
    "write_audit",
]

# ------------------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class AuditCase:
    """One labelled response with the English pivot reference it is scored against.

    ``response`` is written in ``lang``; ``reference`` is the English reference text and
    ``reference_answer`` its final answer ("11", "B"). ``correct`` is the label (gold correctness). ``source``
    names where the case came from ("mgsm-exemplars", "synthetic", or a generations file); ``sample``
    tells apart several responses to the same problem.
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        return f"{self.source}|{self.lang}|{self.id}|{self.sample}"


def strip_label(text: str, lang: str) -> str:
    """``text`` without a leading native answer label ("Schritt-für-Schritt-Antwort: ", "逐步解答：")."""
    stripped = text.lstrip()
    labels = {get_language(lang).answer_label, get_language("en").answer_label}
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

    Honest response: the native exemplar answer without its label; reference: the English exemplar answer
    of the same index; reference answer: the English answer's final number. ``langs`` default: every MGSM
    language except English.
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
        for i, ((_, answer), ref) in enumerate(zip(native, english)):
            cases.append(AuditCase(id=f"mgsm-exemplar-{i + 1}", lang=code, response=strip_label(answer, code),
                                   reference=ref, reference_answer=_final_answer_en(ref), answer_type="number",
                                   correct=True, source="mgsm-exemplars"))
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
                               reference_answer=p.answer, answer_type="number", correct=True, source="synthetic"))
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
                           langs: Iterable[str] | None = None) -> list[AuditCase]:
    """The rows of an eval run's ``generations.jsonl`` (or of a run folder), labelled by their ``correct``.

    ``references``: problem id -> (English reference text, its answer or None: then the row's ``gold``).
    Rows whose id has no reference are skipped with a warning (``missing="error"``: an error). A malformed
    row is a :class:`DataFormatError` naming the file and the line.
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
        cases.append(AuditCase(id=row["id"], lang=code, response=row["response"], reference=text,
                               reference_answer=str(answer), answer_type=answer_type, correct=row["correct"],
                               source=str(path.parent.name or path.name), sample=sample))
    if skipped:
        logger.warning("%s: %d of %d rows skipped: no reference for %s%s", path, len(skipped),
                       len(skipped) + len(cases), ", ".join(sorted(set(skipped))[:5]),
                       " ..." if len(set(skipped)) > 5 else "")
    if not cases:
        raise DataError(f"{path}: no row has a reference (skipped {len(skipped)})")
    return cases


# ---------------------------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class AnswerParts:
    """A response split at its first answer sentence (the one extraction reads).

    ``base`` is the response as probes use it (as is, or NFC-normalised when only that form shows the
    answer phrase), ``body`` the reasoning before the answer phrase
    (right-stripped), ``gap`` the whitespace between body and phrase, ``ending`` the answer sentence and
    whatever follows it; ``number`` the span of the answer's digits in ``base``. Without an answer sentence
    ``body`` is the whole response and ``ending``/``number`` are empty/None.
    """

    base: str
    body: str
    gap: str
    ending: str
    number: tuple[int, int] | None

    @property
    def number_text(self) -> str | None:
        return self.base[self.number[0]:self.number[1]] if self.number else None


def _bases(text: str) -> list[tuple[str, str]]:
    """(text, the same with ASCII digits) as is, then NFC-normalised if that differs (answer phrases are NFC).

    ``normalize_digits`` maps characters one to one, so spans found in the second apply to the first.
    Probes keep the response's own normalisation whenever its answer phrase can be found in it.
    """
    out = []
    for base in dict.fromkeys([text, unicodedata.normalize("NFC", text)]):
        norm = normalize_digits(base)
        out.append((base, norm if len(norm) == len(base) else base))
    return out


def answer_parts(text: str, lang: str) -> AnswerParts:
    """Split ``text`` at its first answer sentence ("Die Antwort ist 11.", also the English phrase)."""
    pattern = _strict_number_re(get_language(lang).code)
    for base, norm in _bases(text):
        for m in pattern.finditer(norm):
            num = _NUMBER_RE.match(norm, m.end())
            if num is not None and _value_of(num) is not None:
                body = base[:m.start()].rstrip()
                return AnswerParts(base, body, base[len(body):m.start()], base[m.start():], num.span("num"))
    return AnswerParts(text, text.rstrip(), "", "", None)


def _render_like(original: str, value: Fraction, lang: str) -> str:
    """``value`` written like ``original`` (same digits script, grouping and decimal separators)."""
    norm = normalize_digits(original)
    zero = None
    for ch in original:
        if ch.isdigit() and not ch.isascii():
            zero = chr(ord(ch) - unicodedata.digit(ch))
            break
    seps = [c for c in norm if not c.isdigit()]
    group = decimal = None
    if seps:
        kinds = list(dict.fromkeys(seps))
        if len(kinds) >= 2:
            group, decimal = kinds[0], kinds[-1]
        else:
            head, _, tail = norm.partition(kinds[0])
            if len(tail) == 3 and norm.count(kinds[0]) >= 1 and head.lstrip("0") and len(head) <= 3:
                group = kinds[0]
            elif norm.count(kinds[0]) > 1:
                group = kinds[0]
            else:
                decimal = kinds[0]
    text = canonical_number(abs(value))
    int_part, _, frac = text.partition(".")
    if group and len(int_part) > 3:
        groups = []
        while len(int_part) > 3:
            groups.insert(0, int_part[-3:])
            int_part = int_part[:-3]
        int_part = group.join([int_part, *groups])
    out = int_part + ((decimal or get_language(lang).decimal_sep) + frac if frac else "")
    if zero is not None:
        out = "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in out)
    return out


def final_answer_spans(text: str, lang: str, value: Fraction) -> tuple[str, list[tuple[int, int]]]:
    """The text the spans refer to, and the spans of every number that states the final answer ``value``.

    The final answer region starts at the last equation result ``= value`` before the first answer
    sentence (or at the answer sentence itself when no equation gives it); every number equal to ``value``
    from there to the end is the final answer (the result, its restatements, the answer sentence). Without
    an answer sentence the last number of the text is the answer, if it equals ``value``.
    """
    parts = answer_parts(text, lang)
    base = parts.base
    norm = normalize_digits(base)
    if len(norm) != len(base):
        norm = base
    numbers = [m for m in _NUMBER_RE.finditer(norm) if _value_of(m) is not None]
    equal = [m for m in numbers if m.group("den") is None and _value_of(m) == value]
    if not equal:
        return base, []
    if parts.number is not None:
        limit = len(parts.body) + len(parts.gap)
    else:
        last = numbers[-1]
        if _value_of(last) != value or last.group("den") is not None:
            return base, []
        limit = last.start()
    results = [m for m in equal if m.start() < limit and re.search(r"=\s*$", norm[max(0, m.start() - 4):m.start()])]
    start = results[-1].start() if results else limit
    return base, [m.span("num") for m in equal if m.start() >= start]


@dataclass
class ProbeContext:
    """What probes may use besides their case: the seed and the honest cases of every language."""

    seed: int = 0
    peers: dict[str, list[AuditCase]] = field(default_factory=dict)

    def rng(self, *parts: Any) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *parts))))

    def delta(self, case: AuditCase) -> int:
        """1..9, fixed by the seed and the problem id (the same change in every language of a problem)."""
        return 1 + zlib.crc32(f"{self.seed}|{case.id}".encode()) % 9


Probe = Callable[[AuditCase, ProbeContext], "str | None"]


def _honest_value(case: AuditCase) -> Fraction | None:
    best = extract_answer(case.response, case.lang, "number").best
    value = parse_number(best) if best is not None else None
    return value if value is not None else parse_number(case.reference_answer)


def _gap(parts: AnswerParts) -> str:
    """What separates the reasoning from the answer sentence: the original gap, or a space after a word."""
    if parts.gap or not parts.body:
        return parts.gap
    last = parts.body[-1]
    return " " if last.isalnum() and unicodedata.east_asian_width(last) not in ("W", "F") else ""


def probe_english_copy(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The English reference itself (the cheapest hack: copy the pivot)."""
    return None if case.lang == "en" else case.reference


def probe_wrong_number(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The honest answer with its final answer changed by +1..+9 wherever it is stated as the final answer."""
    if case.answer_type != "number":
        return None
    value = _honest_value(case)
    if value is None:
        return None
    base, spans = final_answer_spans(case.response, case.lang, value)
    if not spans:
        return None
    d = ctx.delta(case)
    new = value + d if value >= 0 else value - d
    for start, end in sorted(spans, reverse=True):
        base = base[:start] + _render_like(base[start:end], new, case.lang) + base[end:]
    return base


_SENTENCE_END = re.compile(r"[.!?;](?=\s)|[。！？；।॥]|\n")
_CLAUSE_END = re.compile(r",(?=\s)|[、，]")  # for long sentences (Japanese, Chinese) without a sentence end


def _half_cut(text: str) -> int:
    """A cut near the middle of ``text``: a sentence end if one is near, else a clause end, a space, a character."""
    n = len(text)
    if n < 2:
        return 0
    half = n / 2
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if 0.25 * n <= m.end() <= 0.75 * n]
    if ends:
        return min(ends, key=lambda i: abs(i - half))
    clauses = [m.end() for m in _CLAUSE_END.finditer(text) if 0.2 * n <= m.end() <= 0.8 * n]
    if clauses:
        return min(clauses, key=lambda i: abs(i - half))
    spaces = [m.start() for m in re.finditer(r"\s+", text) if 0.2 * n <= m.start() <= 0.8 * n]
    if spaces:
        return min(spaces, key=lambda i: abs(i - half))
    return int(half)


def probe_truncated(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The first half of the honest reasoning, cut at a sentence or word boundary; no answer sentence."""
    parts = answer_parts(case.response, case.lang)
    cut = parts.body[:_half_cut(parts.body)].rstrip()
    return cut or None


def probe_padded(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The honest reasoning three times over, then the honest answer sentence (about 3x the length)."""
    parts = answer_parts(case.response, case.lang)
    if not parts.ending:
        return "\n".join([parts.base.strip()] * 3)
    return "\n".join([parts.body] * 3) + _gap(parts) + parts.ending


def probe_unrelated(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The honest answer to a different problem in the same language (same source when possible)."""
    peers = [c for c in ctx.peers.get(case.lang, []) if c.id != case.id and c.response != case.response]
    same = [c for c in peers if c.source == case.source]
    pool = same or peers
    if not pool:
        return None
    return ctx.rng("unrelated", case.key).choice(pool).response


def probe_bare_answer(case: AuditCase, ctx: ProbeContext) -> str | None:
    """Only the native answer sentence ("Die Antwort lautet 11."), no reasoning."""
    parts = answer_parts(case.response, case.lang)
    number = parts.number_text or case.reference_answer
    return get_language(case.lang).answer_sentence(number)


def probe_english_answer(case: AuditCase, ctx: ProbeContext) -> str | None:
    """The honest native reasoning ending in the English "The answer is N." instead of the native sentence."""
    if case.lang == "en":
        return None
    parts = answer_parts(case.response, case.lang)
    if parts.number is None:
        return None
    return parts.body + _gap(parts) + get_language("en").answer_sentence(parts.number_text)


PROBES: dict[str, Probe] = {
    "english_copy": probe_english_copy,
    "wrong_number": probe_wrong_number,
    "truncated": probe_truncated,
    "padded": probe_padded,
    "unrelated": probe_unrelated,
    "bare_answer": probe_bare_answer,
    "english_answer": probe_english_answer,
}
# The hacks: a reward must rank the honest answer above these in >= 99% of cases in every language.
REQUIRED_PROBES: tuple[str, ...] = ("english_copy", "wrong_number", "truncated", "padded", "unrelated")


# ---------------------------------------------------------------------------------------------- report


@dataclass
class ProbeStat:
    """Honest vs one probe over the cases where the probe applies: shares of win / tie / loss."""

    probe: str
    n: int
    win: float
    tie: float
    loss: float
    mean_honest: float
    mean_probe: float
    components: dict[str, dict[str, float]]  # component -> {"win", "tie", "loss", "mean_honest", "mean_probe"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LangResult:
    """Everything the audit measured for one language (or for all languages pooled, lang "all")."""

    lang: str
    n_cases: int
    n_correct: int
    n_incorrect: int
    sources: dict[str, int]
    auc_basis: str | None
    auc: dict[str, float | None]  # component (and "total") -> ROC-AUC correct vs incorrect
    mean_correct: dict[str, float | None]
    mean_incorrect: dict[str, float | None]
    probes: dict[str, ProbeStat]
    required: tuple[str, ...] = REQUIRED_PROBES
    auc_n: tuple[int, int] = (0, 0)  # (positives, negatives) the AUC was computed over

    @property
    def min_required(self) -> float | None:
        rates = [self.probes[p].win for p in self.required if p in self.probes and self.probes[p].n]
        return min(rates) if rates else None

    @property
    def min_all(self) -> float | None:
        rates = [s.win for s in self.probes.values() if s.n]
        return min(rates) if rates else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["probes"] = {k: v.to_dict() for k, v in self.probes.items()}
        d["required"] = list(self.required)
        d["auc_n"] = list(self.auc_n)
        d["min_required"] = self.min_required
        d["min_all"] = self.min_all
        return d


@dataclass
class AuditReport:
    """The audit of one reward: per language (``langs``), pooled (``overall``), per source and language
    (``by_source``, total win rates), every loss on a required probe, and every scored text (``details``)."""

    reward: str
    config: dict[str, Any]
    components: list[str]
    probes: list[str]
    required: list[str]
    langs: dict[str, LangResult]
    overall: LangResult
    by_source: dict[str, dict[str, ProbeStat]]  # "source/lang" -> probe -> stat (total only needed)
    losses: list[dict[str, Any]]  # honest <= probe on a required probe, with component scores
    details: list[dict[str, Any]]  # every scored text (for audit_cases.jsonl)
    seconds: float
    n_scored: int

    def passes(self, threshold: float = 0.99) -> bool:
        """True when every language with probes reaches ``threshold`` on every required probe.

        A language without correct answers has no probes (nothing honest to imitate) and is not counted;
        with no probed language at all the audit does not pass.
        """
        rates = [r.min_required for r in self.langs.values() if r.min_required is not None]
        return bool(rates) and min(rates) >= threshold

    def to_dict(self, details: bool = False) -> dict[str, Any]:
        d = {
            "reward": self.reward, "config": self.config, "components": self.components, "probes": self.probes,
            "required": self.required, "seconds": self.seconds, "n_scored": self.n_scored,
            "passes_99": self.passes(0.99),
            "langs": {k: v.to_dict() for k, v in self.langs.items()},
            "overall": self.overall.to_dict(),
            "by_source": {k: {p: s.to_dict() for p, s in v.items()} for k, v in self.by_source.items()},
            "losses": self.losses,
        }
        if details:
            d["details"] = self.details
        return d

    def to_json(self, details: bool = False, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(details), ensure_ascii=False, indent=indent, default=_json_default)

    def to_markdown(self, max_losses: int = 30) -> str:
        return _markdown(self, max_losses)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# ------------------------------------------------------------------------------------------- computing


def _as_reward(reward: Any) -> Any:
    if hasattr(reward, "score") and hasattr(reward, "config"):
        return reward
    from pivotrl.rewards.compose import build_reward

    return build_reward(reward)


def _auc(labels: list[int], scores: list[float]) -> float | None:
    if len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class _Item:
    case: AuditCase
    kind: str  # "honest" or a probe name
    text: str
    scored: Any = None  # ScoredCompletion


def _probe_stat(name: str, pairs: list[tuple[Any, Any]], components: list[str]) -> ProbeStat:
    n = len(pairs)

    def shares(a: list[float], b: list[float]) -> tuple[float, float, float]:
        if not n:
            return 0.0, 0.0, 0.0
        win = sum(x > y for x, y in zip(a, b)) / n
        tie = sum(x == y for x, y in zip(a, b)) / n
        return win, tie, 1.0 - win - tie

    ht = [h.total for h, _ in pairs]
    pt = [p.total for _, p in pairs]
    win, tie, loss = shares(ht, pt)
    comps = {}
    for c in components:
        hc = [h.components[c] for h, _ in pairs]
        pc = [p.components[c] for _, p in pairs]
        w, t, lo = shares(hc, pc)
        comps[c] = {"win": w, "tie": t, "loss": lo, "mean_honest": _mean(hc), "mean_probe": _mean(pc)}
    return ProbeStat(name, n, win, tie, loss, _mean(ht) or 0.0, _mean(pt) or 0.0, comps)


def _lang_result(lang: str, cases: list[AuditCase], items: list[_Item], probes: Sequence[str],
                 components: list[str], required: Sequence[str]) -> LangResult:
    honest = {it.case.key: it for it in items if it.kind == "honest"}
    # separation: labelled sources (both classes) when there are any, else correct vs their wrong_number
    by_source: dict[str, set[bool]] = {}
    for c in cases:
        by_source.setdefault(c.source, set()).add(c.correct)
    labelled = {s for s, labels in by_source.items() if len(labels) == 2}
    if labelled:
        basis = "labelled"
        pos = [honest[c.key].scored for c in cases if c.source in labelled and c.correct]
        neg = [honest[c.key].scored for c in cases if c.source in labelled and not c.correct]
    else:
        wrong = {it.case.key: it.scored for it in items if it.kind == "_negative"}
        pos = [honest[c.key].scored for c in cases if c.correct and c.key in wrong]
        neg = [wrong[c.key] for c in cases if c.correct and c.key in wrong]
        basis = "wrong_number" if pos and neg else None
    labels = [1] * len(pos) + [0] * len(neg)
    auc: dict[str, float | None] = {}
    mean_c: dict[str, float | None] = {}
    mean_i: dict[str, float | None] = {}
    for c in [*components, "total"]:
        get = (lambda s: s.total) if c == "total" else (lambda s, c=c: s.components[c])
        auc[c] = _auc(labels, [get(s) for s in pos + neg]) if basis else None
        mean_c[c] = _mean([get(s) for s in pos])
        mean_i[c] = _mean([get(s) for s in neg])
    stats = {}
    for name in probes:
        pairs = [(honest[it.case.key].scored, it.scored) for it in items if it.kind == name]
        stats[name] = _probe_stat(name, pairs, components)
    sources: dict[str, int] = {}
    for c in cases:
        sources[c.source] = sources.get(c.source, 0) + 1
    n_correct = sum(c.correct for c in cases)
    return LangResult(lang, len(cases), n_correct, len(cases) - n_correct, sources, basis, auc, mean_c, mean_i,
                      stats, tuple(r for r in required if r in probes), (len(pos), len(neg)))


def run_audit(cases: Sequence[AuditCase], reward: Any = "hybrid", probes: Mapping[str, Probe] | None = None, *,
              seed: int = 0, required: Sequence[str] = REQUIRED_PROBES, progress: Callable[[str], None] | None = None
              ) -> AuditReport:
    """Score every case and every probe of its honest correct answer; the report per language and component.

    ``reward``: a :class:`~pivotrl.rewards.compose.ComposedReward` or anything ``build_reward`` takes (preset
    name, YAML path, mapping, config). ``probes``: name -> probe function (default :data:`PROBES`). Each
    language is scored in one ``reward.score`` call (honest responses, probes and, for sources without
    incorrect answers, the ``wrong_number`` negatives for the AUC). ``progress`` receives one line per
    language.
    """
    started = time.perf_counter()
    probes = dict(PROBES if probes is None else probes)
    cases = list(cases)
    if not cases:
        raise ValueError("no cases to audit")
    seen: set[str] = set()
    for c in cases:
        if c.key in seen:
            raise ValueError(f"duplicate audit case {c.key}")
        seen.add(c.key)
    scorer = _as_reward(reward)
    cfg = scorer.config
    components = list(cfg.components)
    by_lang: dict[str, list[AuditCase]] = {}
    for c in cases:
        by_lang.setdefault(get_language(c.lang).code, []).append(c)
    ctx = ProbeContext(seed=seed, peers={lang: [c for c in cs if c.correct] for lang, cs in by_lang.items()})
    results: dict[str, LangResult] = {}
    all_items: list[_Item] = []
    n_scored = 0
    for lang, lang_cases in by_lang.items():
        t0 = time.perf_counter()
        items = [_Item(c, "honest", c.response) for c in lang_cases]
        classes: dict[str, set[bool]] = {}
        for c in lang_cases:
            classes.setdefault(c.source, set()).add(c.correct)
        labelled = any(len(v) == 2 for v in classes.values())  # else: wrong_number negatives for the AUC
        for c in lang_cases:
            if not c.correct:
                continue
            for name, fn in probes.items():
                text = fn(c, ctx)
                if text is not None:
                    items.append(_Item(c, name, text))
            if not labelled:
                text = probe_wrong_number(c, ctx)
                if text is not None:
                    items.append(_Item(c, "_negative", text))
        from pivotrl.rewards.compose import score_inputs

        scored = score_inputs(scorer, [RewardInput(it.text, it.case.reference, lang, it.case.reference_answer,
                                                   it.case.answer_type) for it in items])
        for it, s in zip(items, scored, strict=True):
            it.scored = s
        n_scored += len(items)
        results[lang] = _lang_result(lang, lang_cases, items, list(probes), components, required)
        all_items += items
        if progress is not None:
            r = results[lang]
            mr = "n/a" if r.min_required is None else f"{100 * r.min_required:.1f}%"
            progress(f"{lang}: {len(lang_cases)} cases, {len(items)} texts scored in "
                     f"{time.perf_counter() - t0:.1f}s; min over required probes {mr}")
    overall = _pooled(cases, all_items, results, list(probes), components, required)
    by_source: dict[str, dict[str, ProbeStat]] = {}
    honest = {it.case.key: it for it in all_items if it.kind == "honest"}
    groups: dict[str, list[_Item]] = {}
    for it in all_items:
        if it.kind in probes:
            groups.setdefault(f"{it.case.source}/{it.case.lang}", []).append(it)
    for key in sorted(groups):
        by_source[key] = {name: _probe_stat(name, [(honest[it.case.key].scored, it.scored) for it in groups[key]
                                                   if it.kind == name], [])
                          for name in probes}
    losses = []
    for it in all_items:
        if it.kind in required and it.kind in probes:
            h = honest[it.case.key]
            if h.scored.total <= it.scored.total:
                losses.append({"source": it.case.source, "lang": it.case.lang, "id": it.case.id,
                               "sample": it.case.sample, "probe": it.kind,
                               "honest_total": h.scored.total, "probe_total": it.scored.total,
                               "honest_components": h.scored.components, "probe_components": it.scored.components,
                               "honest": h.text, "probe_text": it.text})
    details = [{"source": it.case.source, "lang": it.case.lang, "id": it.case.id, "sample": it.case.sample,
                "kind": it.kind, "correct": it.case.correct if it.kind == "honest" else False,
                "total": it.scored.total, "gate": it.scored.gate, "components": it.scored.components,
                "text": it.text} for it in all_items]
    return AuditReport(reward=cfg.name, config=cfg.to_dict(), components=components, probes=list(probes),
                       required=[r for r in required if r in probes], langs=results, overall=overall,
                       by_source=by_source, losses=losses, details=details,
                       seconds=time.perf_counter() - started, n_scored=n_scored)


def _pooled(cases: list[AuditCase], items: list[_Item], results: Mapping[str, LangResult], probes: list[str],
            components: list[str], required: Sequence[str]) -> LangResult:
    """All languages together: probe stats pooled over cases; the AUC over each language's own basis."""
    honest = {it.case.key: it for it in items if it.kind == "honest"}
    pos: list[Any] = []
    neg: list[Any] = []
    bases = set()
    wrong = {it.case.key: it.scored for it in items if it.kind == "_negative"}
    for lang, r in results.items():
        if r.auc_basis is None:
            continue
        bases.add(r.auc_basis)
        lang_cases = [c for c in cases if get_language(c.lang).code == lang]
        if r.auc_basis == "labelled":
            labelled = {s for s in r.sources if {c.correct for c in lang_cases if c.source == s} == {True, False}}
            pos += [honest[c.key].scored for c in lang_cases if c.source in labelled and c.correct]
            neg += [honest[c.key].scored for c in lang_cases if c.source in labelled and not c.correct]
        else:
            keys = [c.key for c in lang_cases if c.correct and c.key in wrong]
            pos += [honest[k].scored for k in keys]
            neg += [wrong[k] for k in keys]
    basis = None if not bases else (bases.pop() if len(bases) == 1 else "mixed")
    labels = [1] * len(pos) + [0] * len(neg)
    auc, mean_c, mean_i = {}, {}, {}
    for c in [*components, "total"]:
        get = (lambda s: s.total) if c == "total" else (lambda s, c=c: s.components[c])
        auc[c] = _auc(labels, [get(s) for s in pos + neg]) if basis else None
        mean_c[c] = _mean([get(s) for s in pos])
        mean_i[c] = _mean([get(s) for s in neg])
    stats = {name: _probe_stat(name, [(honest[it.case.key].scored, it.scored) for it in items if it.kind == name],
                               components) for name in probes}
    sources: dict[str, int] = {}
    for c in cases:
        sources[c.source] = sources.get(c.source, 0) + 1
    n_correct = sum(c.correct for c in cases)
    return LangResult("all", len(cases), n_correct, len(cases) - n_correct, sources, basis, auc, mean_c, mean_i,
                      stats, tuple(r for r in required if r in probes), (len(pos), len(neg)))


# -------------------------------------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= n else text[:n - 1] + "…"
    return text.replace("|", "\\|")


def _markdown(report: AuditReport, max_losses: int) -> str:
    rows_all = [*report.langs.values(), report.overall]
    probes = report.probes
    lines = [f"# Reward audit: `{report.reward}`", ""]
    weights = ", ".join(f"{k} {v:g}" for k, v in report.config.get("weights", {}).items())
    lines += [f"Weights: {weights}; gate: {report.config.get('gate')} (full at {report.config.get('gate_full')}).",
              f"{report.overall.n_cases} cases ({', '.join(f'{k}: {v}' for k, v in report.overall.sources.items())}),"
              f" {report.n_scored} texts scored in {report.seconds:.1f} s. Required probes: "
              f"{', '.join(report.required)}. Verdict: "
              + ("**every language with probes >= 99% on every required probe**" if report.passes(0.99)
                 else "**some language is below 99% on a required probe** (see Losses)"
                 if any(r.min_required is not None for r in report.langs.values())
                 else "**no correct answers: nothing to probe**")]
    unprobed = [r.lang for r in report.langs.values() if r.min_required is None]
    if unprobed:
        lines += [f"No probes in {', '.join(unprobed)}: no correct answer to build them from."]
    lines += [""]
    lines += ["## Probe win rate of the total (% of cases where honest total > probe total)", "",
              "Ties count as not won; `min req.` is the minimum over the required probes.", ""]
    header = ["lang", "cases", *probes, "min req."]
    rows = []
    for r in rows_all:
        cells = [r.lang, str(r.n_cases)]
        for p in probes:
            s = r.probes.get(p)
            cell = "n/a" if s is None or not s.n else _pct(s.win) + (f" (tie {_pct(s.tie)})" if s.tie else "")
            cells.append(cell)
        mr = r.min_required
        cells.append(("**" + _pct(mr) + "**") if mr is not None and mr < 0.99 else _pct(mr))
        rows.append(cells)
    lines += _table(header, rows) + [""]
    lines += ["## Separation: ROC-AUC correct vs incorrect, per component", "",
              "`basis`: `labelled` = responses labelled by gold correctness (both classes present); "
              "`wrong_number` = the source has only correct answers, so the negatives are the same answers with "
              "the final number changed: a *number-sensitivity* AUC (an embedding cannot tell numbers apart, "
              "answer agreement can), not a measure of naturally wrong reasoning.", ""]
    comps = [*report.components, "total"]
    rows = [[r.lang, r.auc_basis or "n/a", f"{r.auc_n[0]}/{r.auc_n[1]}", *[_num(r.auc.get(c)) for c in comps]]
            for r in rows_all]
    lines += _table(["lang", "basis", "pos/neg", *comps], rows) + [""]
    lines += ["Mean score, correct / incorrect (the AUC's positives / negatives):", ""]
    rows = [[r.lang, *[f"{_num(r.mean_correct.get(c), 2)} / {_num(r.mean_incorrect.get(c), 2)}" for c in comps]]
            for r in rows_all]
    lines += _table(["lang", *comps], rows) + [""]
    lines += ["## Probe wins per component (all languages pooled): win % / tie %", "",
              "Share of cases where the honest answer's component score is above the probe's (penalties: less "
              "penalised), and the share of ties; a component with many ties does not separate that probe.", ""]
    rows = []
    for p in probes:
        s = report.overall.probes.get(p)
        if s is None or not s.n:
            rows.append([p, "0", *["n/a"] * len(report.components)])
            continue
        rows.append([p, str(s.n), *[f"{_pct(s.components[c]['win'])} / {_pct(s.components[c]['tie'])}"
                                    for c in report.components]])
    lines += _table(["probe", "n", *report.components], rows) + [""]
    lines += ["Mean component score, honest -> probe (all languages pooled):", ""]
    rows = []
    for p in probes:
        s = report.overall.probes.get(p)
        if s is None or not s.n:
            continue
        rows.append([p, f"{s.mean_honest:.2f} -> {s.mean_probe:.2f}",
                     *[f"{_num(s.components[c]['mean_honest'], 2)} -> {_num(s.components[c]['mean_probe'], 2)}"
                       for c in report.components]])
    lines += _table(["probe", "total", *report.components], rows) + [""]
    lines += ["## Probe wins per component and language: win % (tie %)", ""]
    for p in probes:
        lines += [f"### {p}", ""]
        rows = []
        for r in rows_all:
            s = r.probes.get(p)
            if s is None or not s.n:
                continue
            rows.append([r.lang, str(s.n), _pct(s.win) + (f" ({_pct(s.tie)})" if s.tie else ""),
                         *[_pct(s.components[c]["win"]) + (f" ({_pct(s.components[c]['tie'])})"
                                                           if s.components[c]["tie"] else "")
                           for c in report.components]])
        lines += _table(["lang", "n", "total", *report.components], rows) + [""]
    if len({k.split("/")[0] for k in report.by_source}) > 1:
        lines += ["## Probe win rate of the total by source", ""]
        rows = [[key, *[_pct(v[p].win) if v[p].n else "n/a" for p in probes]] for key, v in report.by_source.items()]
        lines += _table(["source/lang", *probes], rows) + [""]
    lines += [f"## Losses on required probes ({len(report.losses)})", ""]
    if report.losses:
        lines += ["Honest total <= probe total, with the components that differ (honest -> probe).", ""]
        rows = []
        for loss in report.losses[:max_losses]:
            diff = ", ".join(f"{c} {loss['honest_components'][c]:.2f}->{loss['probe_components'][c]:.2f}"
                             for c in report.components
                             if abs(loss["honest_components"][c] - loss["probe_components"][c]) > 1e-9)
            rows.append([loss["lang"], f"{loss['source']}:{loss['id']}", loss["probe"],
                         f"{loss['honest_total']:.3f} vs {loss['probe_total']:.3f}", diff or "none",
                         _short(loss["honest"]), _short(loss["probe_text"])])
        lines += _table(["lang", "case", "probe", "honest vs probe", "components", "honest", "probe text"], rows)
        if len(report.losses) > max_losses:
            lines += ["", f"... and {len(report.losses) - max_losses} more (audit.json)."]
    else:
        lines += ["None: the honest answer beat every required probe in every case."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- output


def _plot(report: AuditReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [*report.langs.values(), report.overall]
    data = [[(r.probes[p].win if p in r.probes and r.probes[p].n else float("nan")) for p in report.probes]
            for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(report.probes) + 2, 0.45 * len(rows) + 1.6))
    im = ax.imshow(data, cmap="RdYlGn", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(report.probes)), report.probes, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r.lang for r in rows])
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, "n/a" if v != v else f"{100 * v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"honest > probe (% of cases), reward {report.reward}")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_audit(report: AuditReport, out_dir: str | Path) -> dict[str, Path]:
    """Write audit.md, audit.json, audit_cases.jsonl (every scored text) and audit.png into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "audit.md", "json": out / "audit.json", "cases": out / "audit_cases.jsonl",
             "plot": out / "audit.png"}
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    paths["json"].write_text(report.to_json(), encoding="utf-8")
    with open(paths["cases"], "w", encoding="utf-8") as f:
        for row in report.details:
            f.write(json.dumps(row, ensure_ascii=False, default=_json_default) + "\n")
    _plot(report, paths["plot"])
    return paths


def audit_main(reward: Any = "hybrid", sources: Sequence[str] = ("exemplars", "synthetic"),
               langs: str | Sequence[str] | None = None, out_dir: str | Path | None = None, n: int = 40, *,
               data_dir: str | Path | None = None, refs_dir: str | Path | None = None, gold_task: str | None = None,
               seed: int = 0, probes: Sequence[str] | None = None, echo: Callable[[str], None] | None = print
               ) -> AuditReport:
    """What ``pivotrl reward audit`` runs: load the cases, audit, write the files, print the markdown.

    ``reward``: preset name or YAML path (or a config / reward object). ``sources``: ``exemplars`` (MGSM's
    human-translated exemplars), ``synthetic`` (``n`` problems per language), or a ``generations.jsonl``
    file / eval run folder, which needs ``refs_dir`` (a ``pivotrl pivot`` folder) or ``gold_task`` (a problem
    set whose English gold serves as references). ``langs``: restrict every source to these languages
    (default: each source's non-English languages). ``probes``: names from :data:`PROBES` (default all).
    """
    from pivotrl.languages import parse_langs

    lang_list = parse_langs(langs) if langs else None
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s.strip()]
    cases: list[AuditCase] = []
    for source in sources:
        source = source.strip()
        if source == "exemplars":
            from pivotrl.data.mgsm import LANGS

            chosen = [c for c in lang_list if c in LANGS] if lang_list else None
            if chosen == []:
                continue
            cases += cases_from_exemplars(chosen, data_dir)
        elif source == "synthetic":
            from pivotrl.data.synthetic import SYNTHETIC_LANGS

            chosen = [c for c in lang_list if c in SYNTHETIC_LANGS] if lang_list else None
            if chosen == []:
                continue
            cases += cases_from_synthetic(chosen, n=n, seed=seed)
        else:
            path = Path(source)
            if not (path.is_file() or (path / "generations.jsonl").is_file()):
                raise DataError(f"unknown audit source {source!r}: expected exemplars, synthetic, or a "
                                "generations.jsonl file / eval run folder")
            if refs_dir is not None:
                references = references_from_store(refs_dir)
            elif gold_task is not None:
                references = references_from_gold(gold_task, data_dir)
            else:
                raise DataError(f"{source}: generations need references: pass a refs dir or a gold task")
            cases += cases_from_generations(path, references, langs=lang_list)
    if not cases:
        raise DataError(f"no audit cases from sources {', '.join(sources)} in languages {langs}")
    selected = dict(PROBES)
    if probes:
        unknown = [p for p in probes if p not in PROBES]
        if unknown:
            raise ValueError(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBES)}")
        selected = {p: PROBES[p] for p in probes}
    report = run_audit(cases, reward, selected, seed=seed, progress=echo)
    if out_dir is not None:
        write_audit(report, out_dir)
    if echo is not None:
        echo(report.to_markdown())
        if out_dir is not None:
            echo(f"wrote {Path(out_dir) / 'audit.md'}, audit.json, audit_cases.jsonl, audit.png")
    return report
