"""Reward components for PB-RLSVR, written to TRL's reward-function contract.

Every component is a plain function ``f(completions, **columns) -> list[float]``: one float per completion,
where ``completions`` are strings or TRL conversational completions (a list of message dicts; the last
assistant message's ``content`` is scored) and every other keyword is a dataset column, a list aligned with
the completions (a single scalar is broadcast to every completion). Unknown keywords (``prompts``,
``completion_ids``, ``trainer_state``, other columns) are accepted and ignored.

Contract: whatever the completion text is (empty, 100k characters, control characters, emoji, mixed
scripts), a component never raises and never returns NaN or inf; every value lies inside its registered range
(``pivotrl.rewards.registry.score_ranges[name]``).
Configuration mistakes (a column whose length differs from the completions', an unknown language code, a
non-positive tolerance) do raise ``ValueError``/``KeyError``: those are bugs in the training set-up, better
found at the first step than hidden in a reward.

Components (declared, with their ranges, roles and settings, in :mod:`pivotrl.rewards.registry`):

* ``answer_agreement`` {0, 1}: same final answer as the reference (exact numbers or choice letters).
* ``language_fidelity`` [0, 1]: share of the completion written in the asked language.
* ``answer_format`` [0, 1]: ends with the native answer sentence and a number.
* ``length_guard`` [-1, 0]: penalty for completions much longer than the reference.
* ``brevity_guard`` [-1, 0]: penalty for completions much shorter than the reference (a bare answer).
* ``repetition_guard`` [-1, 0]: penalty for repeated n-grams (padding, loops).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from pivotrl.answers import answers_match, extract_answer, normalize_digits, parse_exact_number
from pivotrl.fidelity import language_share
from pivotrl.languages import LANGUAGES, get_language
from pivotrl.rewards.registry import score_ranges

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------ helpers


def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is, or the last assistant message of a conversational one.

    Accepts TRL's conversational form (``[{"role": "assistant", "content": "..."}]``), a single message dict,
    and content given as a list of parts (``[{"type": "text", "text": "..."}]``). Anything else becomes "".
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        chosen = assistant or messages
        return _content_text(chosen[-1].get("content")) if chosen else ""
    return ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):  # multimodal parts: keep the text ones
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return str(content)


def _column(values: Any, n: int, name: str) -> list[Any]:
    """A dataset column aligned with ``n`` completions; a scalar (or None) is broadcast."""
    if isinstance(values, (list, tuple)):
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
        return list(values)
    return [values] * n


def _lang_code(value: Any) -> str:
    return get_language(str(value)).code


def _clip(value: float, low: float, high: float, fallback: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        return fallback
    return min(high, max(low, value))


def _safe(name: str, fn: Callable[[], float], fallback: float) -> float:
    """Run one scoring; an unexpected error is logged and scored ``fallback`` (no credit, no penalty)."""
    low, high = score_ranges[name]
    try:
        return _clip(fn(), low, high, fallback)
    except Exception:  # noqa: BLE001 - the contract is to never raise on a completion's text
        logger.warning("reward component %s failed on a completion; scoring it %s", name, fallback, exc_info=True)
        return fallback


# Scripts written without spaces between words: their characters are counted one by one.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_SEA = "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
# Combining marks and joiners belong to the word they sit in (Indic vowel signs, viramas, ZWNJ/ZWJ, accents);
# \w does not match them, which would cut one Telugu word into several.
_MARKS = "\u0300-\u036f\u0900-\u0963\u0966-\u0dff\u200c\u200d"
_TOKEN_RE = re.compile(
    rf"(?P<cjk>[{_CJK}])|(?P<kana>[{_KANA}])|(?P<sea>[{_SEA}])"
    rf"|(?P<word>(?:[^\W{_CJK}{_KANA}{_SEA}]|[{_MARKS}])+)|(?P<punct>[^\w\s])"
)
# How many English words one character of a spaceless script is worth (rough translation ratios:
# 100 English words ~ 170 Chinese characters ~ 220 Japanese characters ~ 500 Thai characters).
_UNIT_WEIGHT = {"cjk": 0.6, "kana": 0.45, "sea": 0.2, "word": 1.0, "punct": 0.0}


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, token) pairs: words, single characters of spaceless scripts, single punctuation marks."""
    return [(m.lastgroup or "punct", m.group()) for m in _TOKEN_RE.finditer(text)]


def text_units(text: str) -> float:
    """Script-robust length in English-word equivalents: words count 1, spaceless-script characters a share."""
    return sum(_UNIT_WEIGHT[kind] for kind, _ in _tokens(text))


# ------------------------------------------------------------------------------------- answer agreement


def _reference_final(reference_answer: Any, answer_type: str) -> str | None:
    """The reference's final answer: a clean gold ("13", "B") as is, else read from the English reference."""
    if reference_answer is None:
        return None
    ref = completion_text(reference_answer) if not isinstance(reference_answer, (int, float)) else str(
        reference_answer)
    ref = ref.strip()
    if not ref:
        return None
    if answer_type == "choice":
        if len(ref) == 1 and ref.isalpha():
            return ref.upper()
        return extract_answer(ref, "en", "choice").best
    if parse_exact_number(ref) is not None:
        return ref
    return extract_answer(ref, "en", "number").best


def answer_agreement(completions: Sequence[Any], *, reference_answer: Any, lang: Any,
                     answer_type: Any = None, **_: Any) -> list[float]:
    """1.0 when the completion's final answer equals the reference's, else 0.0. Range {0, 1}.

    The completion's answer is read language-aware (``extract_answer`` in ``lang``: the number after the first
    answer sentence when there is one, else the last number). ``reference_answer`` is either the gold final
    answer ("13", "B") or the English pivot's reference solution, from which the final answer is read.
    ``answer_type`` is "number" (default, compared as exact rationals) or "choice" (letters). A completion
    with no answer, or a reference with none, scores 0.
    """
    n = len(completions)
    refs = _column(reference_answer, n, "reference_answer")
    langs = [_lang_code(x) for x in _column(lang, n, "lang")]
    types = [("choice" if str(t).lower() == "choice" else "number") if t is not None else "number"
             for t in _column(answer_type, n, "answer_type")]

    def score(c: Any, ref: Any, code: str, kind: str) -> float:
        gold = _reference_final(ref, kind)
        if gold is None:
            return 0.0
        predicted = extract_answer(completion_text(c), code, kind).best
        return 1.0 if answers_match(predicted, gold, kind) else 0.0

    return [_safe("answer_agreement", lambda c=c, r=r, g=g, t=t: score(c, r, g, t), 0.0)
            for c, r, g, t in zip(completions, refs, langs, types)]


# ------------------------------------------------------------------------------------- language fidelity


def _fidelity(text: str, code: str) -> float:
    if not text.strip():
        return 0.0
    if LANGUAGES[code].lid is not None:
        share = language_share(text, code)
        # No letters at all (a bare "13", symbols): nothing was written in the language, so no credit;
        # otherwise skipping the reasoning would be a cheap way to a fidelity reward.
        return 0.0 if share is None else share
    # A language the identifier does not know (Wolof): its share cannot be measured, so the score is a
    # neutral 0.5 (a constant reward has no advantage in GRPO), lowered towards 0 by the share of English,
    # which can be told: answering in English must not pay in any language.
    english = language_share(text, "en")
    if english is None:
        return 0.0
    return 0.5 * (1.0 - english)


def language_fidelity(completions: Sequence[Any], *, lang: Any, **_: Any) -> list[float]:
    """Share of the completion's letters written in ``lang`` (sentence by sentence). Range [0, 1].

    Digits, formulas, markdown and punctuation are ignored (``fidelity.language_share``). An empty completion,
    or one with no letters at all, scores 0. For a language the identifier does not know (Wolof) the score is
    0.5 times the share that is NOT English: 0.5 for any non-English text, 0 for an English answer.
    """
    n = len(completions)
    langs = [_lang_code(x) for x in _column(lang, n, "lang")]
    return [_safe("language_fidelity", lambda c=c, g=g: _fidelity(completion_text(c), g), 0.0)
            for c, g in zip(completions, langs)]


# ----------------------------------------------------------------------------------------- answer format

_NUMBER_TEXT = re.compile(r"[-+\u2212]?\s?[$€£¥₹₩₽฿৳₺₦₫₱﷼]?\s?\d(?:[\d.,'\u00a0\u202f\u2009 ]*\d)?(?:\s?/\s?\d+)?\s?%?")
_TAIL_WINDOW = 400  # the final answer sentence must sit in the last characters of the completion


def _native_prefixes(code: str) -> tuple[str, ...]:
    language = LANGUAGES[code]
    english = set(LANGUAGES["en"].answer_prefixes) if code != "en" else set()
    return tuple(p for p in language.answer_prefixes if p and p not in english)


def _norm(text: str) -> str:
    return normalize_digits(unicodedata.normalize("NFC", text))


@lru_cache(maxsize=None)
def _native_phrase_re(code: str) -> re.Pattern[str]:
    alternatives = []
    for prefix in sorted(_native_prefixes(code), key=len, reverse=True):
        words = [re.escape(w) for w in _norm(prefix).split()]
        alternatives.append(r"\s*".join(words) if prefix[-1:] in "：:" else r"\s+".join(words))
    return re.compile("|".join(alternatives) or r"(?!x)x", re.IGNORECASE)


@lru_cache(maxsize=None)
def _template_suffixes(code: str) -> tuple[str, ...]:
    """What follows the number in the native templates, without punctuation ("です", "है", "입니다")."""
    out = []
    for template in LANGUAGES[code].answer_templates:
        tail = template.split("{}", 1)[1] if "{}" in template else ""
        tail = "".join(ch for ch in _norm(tail) if ch.isalnum() or ch.isspace() or unicodedata.category(ch)[0] == "M")
        if tail.strip():
            out.append(tail.strip().lower())
    return tuple(out)


def _only_closing(text: str) -> bool:
    """Nothing but spaces, punctuation, symbols (markdown ** , quotes, full stops) and invisible characters."""
    return all(not (ch.isalnum() or unicodedata.category(ch)[0] == "M") for ch in text)


def _after_phrase(text: str, match: re.Match[str]) -> str:
    """What follows a native answer phrase, without the separators before the answer (": ", "— ", "**")."""
    rest = text[match.end():]
    lead = re.match(r"(?:[\s:：—–*]|-(?!\d))*", rest)
    return rest[lead.end() if lead else 0:]


def _tail_words(tail: str) -> str:
    words = "".join(ch if (ch.isalnum() or unicodedata.category(ch)[0] == "M" or ch.isspace()) else " "
                    for ch in tail).strip().lower()
    return " ".join(words.split())


def _ends_with_answer(text: str, match: re.Match[str], code: str) -> bool:
    rest = _after_phrase(text, match)
    number = _NUMBER_TEXT.match(rest)
    if number is None:
        return False
    tail = rest[number.end():]
    words = _tail_words(tail)
    if _only_closing(tail) or words in _template_suffixes(code):
        return True
    # A short unit after the number ("13 Äpfel.", "13 个。"): at most three words, no digits, one line.
    return len(words) <= 30 and len(words.split()) <= 3 and not any(ch.isdigit() for ch in words) \
        and "\n" not in tail.strip()


def _ends_with_placeholder(text: str, match: re.Match[str], code: str) -> bool:
    """The instruction's own placeholder copied as the answer ("Die Antwort lautet N.", "答えはNです。"): the
    template, not an answer. The instructions write N for a number and X for a choice letter."""
    rest = _after_phrase(text, match)
    if rest[:1] not in ("N", "X"):
        return False
    tail = rest[1:]
    return _only_closing(tail) or _tail_words(tail) in _template_suffixes(code)


def _format(text: str, code: str) -> float:
    text = _norm(text).rstrip()
    if not text:
        return 0.0
    phrase = _native_phrase_re(code)
    start = max(0, len(text) - _TAIL_WINDOW)
    last = None
    for m in phrase.finditer(text, start):
        last = m
    if last is not None and _ends_with_answer(text, last, code):
        return 1.0
    if last is not None and _ends_with_placeholder(text, last, code):
        return 0.0  # a policy that learns to copy the template must not be paid for the answer sentence
    if last is not None or phrase.search(text) is not None:
        return 0.5
    return 0.0


def answer_format(completions: Sequence[Any], *, lang: Any, **_: Any) -> list[float]:
    """1.0 when the completion ends with the native answer sentence and a number, else 0.5/0. Range [0, 1].

    "Ends with": the last native answer phrase in the final characters is followed by a number and then only
    punctuation/markdown, the template's own ending ("答えは13です。"), or a short unit ("13 Äpfel."). 0.5 when
    a native phrase appears but not as the ending; 0 otherwise, and 0 for the instruction's placeholder copied
    as the answer ("La réponse est N.": a 0.5B policy trained on the half credit collapsed to it). Only the
    language's own phrases count: the English "The answer is" is not paid for a non-English language.
    """
    n = len(completions)
    langs = [_lang_code(x) for x in _column(lang, n, "lang")]
    return [_safe("answer_format", lambda c=c, g=g: _format(completion_text(c), g), 0.0)
            for c, g in zip(completions, langs)]


# ------------------------------------------------------------------------------------------ length guard

MIN_REFERENCE_UNITS = 20.0  # a very short (or missing) reference still allows an answer of this many units


def _checked_numbers(value: Any, n: int, name: str, valid: Any, expected: str) -> list[float]:
    """A guard's setting as one finite number per completion, each ``valid``; else ValueError naming it."""
    numbers = [float(v) for v in _column(value, n, name)]
    for number in numbers:
        if not math.isfinite(number) or not valid(number):
            raise ValueError(f"{name} must be {expected}, got {number}")
    return numbers


def _length_penalty(text: str, reference: Any, tolerance: float) -> float:
    ref_units = max(text_units(completion_text(reference)), MIN_REFERENCE_UNITS)
    limit = tolerance * ref_units
    units = text_units(text)
    if units <= limit:
        return 0.0
    return -min(1.0, (units - limit) / limit)


def length_guard(completions: Sequence[Any], *, reference: Any, tolerance: Any = 2.0, **_: Any) -> list[float]:
    """Penalty for completions longer than ``tolerance`` times the reference. Range [-1, 0].

    Length is script-robust (``text_units``): whitespace-separated words count 1, characters of spaceless
    scripts a share of a word (Han 0.6, kana 0.45, Thai/Lao/Khmer/Myanmar 0.2), punctuation 0; so an
    English reference and a Chinese or Thai completion are compared fairly. The reference counts at least
    ``MIN_REFERENCE_UNITS``. Penalty 0 up to the limit, falling linearly to -1 at twice the limit.
    """
    n = len(completions)
    refs = _column(reference, n, "reference")
    tols = _checked_numbers(tolerance, n, "tolerance", lambda t: t > 0, "a positive number")
    return [_safe("length_guard", lambda c=c, r=r, t=t: _length_penalty(completion_text(c), r, t), 0.0)
            for c, r, t in zip(completions, refs, tols)]


def _brevity_penalty(text: str, reference: Any, min_share: float) -> float:
    floor = min_share * max(text_units(completion_text(reference)), MIN_REFERENCE_UNITS)
    units = text_units(text)
    return 0.0 if units >= floor else -(floor - units) / floor


def brevity_guard(completions: Sequence[Any], *, reference: Any, min_share: Any = 0.25, **_: Any) -> list[float]:
    """Penalty for completions shorter than ``min_share`` of the reference (a bare answer to a worked
    reference). Range [-1, 0].

    The other guards punish only long or looping text, so without this one a bare answer sentence with a
    guessed number meets no guard while earning the format credit, and the answer credit whenever the guess
    is right: a 0.5B policy trained on the hybrid without it answered 237 of 280 held-out problems that way
    (docs/RESULTS.md). Its right worked answers ran to at least 37% of the pivot's reference, its bare answers
    to 1-3%. Same length units as ``length_guard``; penalty 0 from the floor up, falling linearly to -1 at an
    empty answer.
    """
    n = len(completions)
    refs = _column(reference, n, "reference")
    shares = _checked_numbers(min_share, n, "min_share", lambda m: 0 <= m < 1, "in [0, 1)")
    return [_safe("brevity_guard", lambda c=c, r=r, m=m: _brevity_penalty(completion_text(c), r, m), 0.0)
            for c, r, m in zip(completions, refs, shares)]


# -------------------------------------------------------------------------------------- repetition guard

REPETITION_FREE = 0.25  # share of repeated n-grams tolerated without penalty
REPETITION_FULL = 0.75  # share at which the penalty reaches -1
_MIN_NGRAMS = 8


def repeated_share(text: str) -> float:
    """Share of the text's n-grams that already occurred earlier in it (0: none, near 1: a loop).

    Tokens are words, punctuation marks and single characters of spaceless scripts; n is chosen so an
    n-gram is about four words: 4 tokens for spaced scripts, 6 for Chinese/Japanese characters, 12 for
    Thai-like scripts (whichever kind of token dominates).
    """
    tokens = _tokens(text)
    if not tokens:
        return 0.0
    counts = {"word": 0, "cjk": 0, "sea": 0}
    for kind, _ in tokens:
        counts["cjk" if kind == "kana" else kind if kind in counts else "word"] += 1
    dominant = max(counts, key=lambda k: counts[k])
    n = {"word": 4, "cjk": 6, "sea": 12}[dominant]
    values = [tok.lower() for _, tok in tokens]
    total = len(values) - n + 1
    if total < _MIN_NGRAMS:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    for i in range(total):
        gram = tuple(values[i:i + n])
        if gram in seen:
            repeated += 1
        else:
            seen.add(gram)
    return repeated / total


def repetition_guard(completions: Sequence[Any], **_: Any) -> list[float]:
    """Penalty for repetition: 0 up to 25% repeated n-grams, linearly down to -1 at 75%. Range [-1, 0].

    A normal step-by-step answer repeats few n-grams (0); an answer padded by copying itself, or a
    degenerate "A:\\n\\nA:\\n\\nA:" loop, repeats almost all of them (about -1). See ``repeated_share``.
    """
    def score(text: str) -> float:
        share = repeated_share(text)
        return -min(1.0, max(0.0, (share - REPETITION_FREE) / (REPETITION_FULL - REPETITION_FREE)))

    return [_safe("repetition_guard", lambda c=c: score(completion_text(c)), 0.0) for c in completions]
