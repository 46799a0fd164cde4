"""Final-answer extraction and checking, in every registered language.

Two extractions are reported for every response, following the conventions of lm-evaluation-harness:

* **strict**: the number (or choice letter) right after the first native answer phrase ("Die Antwort
  lautet 18.", "答えは18です。"); the English phrase is accepted too, since answering in English is a
  fidelity problem, measured separately, not an extraction problem;
* **flexible**: the last number (or choice letter) anywhere in the response.

Numbers are read in the many ways people and models write them: thousands separators (1,000 / 1.000 /
1 000 / 1'000 / Indian 1,14,200), decimal commas (2,5), currency signs, signs, simple fractions (3/4),
percentages, full-width and native digits (Bengali, Devanagari, Thai, Telugu, Arabic-Indic, ...). They are
compared as exact rationals (``fractions.Fraction``), so "18", "18.0", "18,00" and "$18" are all 18.

Runs of digits with separators that fit no number ("1.1.2018", "1,2,3") are dates, versions or lists, not
answers, and are skipped. The one real ambiguity is a single separator followed by exactly three digits:
"1,000" and "1.000" are read as one thousand (grouping), because in arithmetic answers a three-decimal
number with a non-zero integer part is far rarer than a thousands separator; "0,125" and "2,5" are read as
decimals.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from pivotrl.languages import LANGUAGES, get_language

CHOICE_LETTERS = "ABCDEFGHIJKLMNOP"

# Characters that are spacing in numbers: space, no-break space, narrow no-break space, thin space, ...
_SPACES = "\u0020\u00a0\u2009\u202f\u2007\u200a"
_CURRENCY = "$€£¥₹₩₽฿৳₺₦₫₱﷼"
# Minus signs besides "-". En and em dashes are left out: "Ответ — 5" uses a dash as punctuation.
_MINUS = "\u2212\u2012\ufe63"

# Full-width ASCII (０-９，．％＄ etc.) is folded by NFKC; these are what NFKC leaves alone.
_PUNCT_FOLD = str.maketrans({"٫": ".", "٬": ",", "،": ",", "٪": "%", "’": "'"})


def normalize_digits(text: str) -> str:
    """Fold full-width forms and every Unicode decimal digit (Bengali ৩, Thai ๓, Devanagari ३, ...) to ASCII.

    Only digits and full-width punctuation change; letters and scripts are kept, so answer phrases still
    match afterwards. NFKC is applied per character for the full-width block only: applying it to the
    whole text would also rewrite ligatures and compatibility characters in the prose.
    """
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        if "\uff01" <= ch <= "\uff5e":  # full-width ASCII block
            out.append(unicodedata.normalize("NFKC", ch))
            continue
        digit = unicodedata.decimal(ch, None)
        out.append(str(digit) if digit is not None else ch)
    return "".join(out).translate(_PUNCT_FOLD)


# A number as written in text. Grouped forms need every group after the first to be 3 digits (or 2 digits
# in the Indian system before the final 3); a decimal part may follow.
_SEP = rf"[,.'{_SPACES}]"
NUMBER_RE = re.compile(
    rf"""
    (?<![A-Za-z\d_.,])        # not glued to a Latin word (x2) or the tail of another number; CJK may touch
    (?P<sign>[-+{_MINUS}])?
    (?:(?P<cur>[{re.escape(_CURRENCY)}])\s?)?
    (?P<sign2>[-+{_MINUS}])?
    (?P<num>
        \d{{1,3}}(?:{_SEP}\d{{2}})*(?:{_SEP}\d{{3}})+(?:[.,]\d+)?   # grouped: 1,000 / 1.000,5 / 1,14,200
      | \d+(?:[.,]\d+)?                                            # plain: 18 / 2.5 / 2,5
    )
    (?:\s?/\s?(?P<den>\d+)(?![.,]?\d))?            # simple fraction 3/4
    (?P<pct>\s?%)?
    (?![.,]?\d)              # no more digits: 1.1.2018 (a date), 1,2,3 (a list), 10.0.0.0 are no number
    """,
    re.VERBOSE,
)


def _parse_digits(num: str) -> Fraction | None:
    """Turn the matched number text (ASCII digits and separators) into an exact value."""
    seps = [c for c in num if not c.isdigit()]
    if not seps:
        return Fraction(int(num))
    spaceish = set(_SPACES) | {"'"}
    kinds = []
    for c in seps:
        kind = " " if c in spaceish else c
        if kind not in kinds:
            kinds.append(kind)
    if len(kinds) >= 2:
        decimal = kinds[-1]  # the last separator kind is the decimal mark: 1.234,5 / 1,234.5 / 1 234,5
        if decimal == " " or num.count(decimal) > 1:
            return None
        int_part, frac_part = num.rsplit(decimal, 1)
        return Fraction("".join(c for c in int_part if c.isdigit()) + "." + frac_part)
    only = kinds[0]
    if only == " ":
        return Fraction(int("".join(c for c in num if c.isdigit())))
    parts = num.split(only)
    groups_ok = all(len(p) == 3 for p in parts[1:])
    if len(parts) > 2:
        # 1,234,567 / 1.234.567 / Indian 1,14,200 (the regex already checked the group lengths)
        return Fraction(int("".join(parts)))
    head, tail = parts
    if groups_ok and head.lstrip("0") != "" and not (len(head) > 3):
        return Fraction(int(head + tail))  # 1,000 / 1.000 / 12,500: a thousands separator
    return Fraction(f"{head}.{tail}")  # 2,5 / 0,125 / 3.14: a decimal mark


def value_of(match: re.Match[str]) -> Fraction | None:
    """The value of a :data:`NUMBER_RE` match (sign, grouping, decimal mark, fraction, percent read), or None
    for digits that are no number."""
    value = _parse_digits(match.group("num"))
    if value is None:
        return None
    if match.group("den"):
        den = int(match.group("den"))
        if den == 0:
            return None
        value = value / den
    if (match.group("sign") or match.group("sign2") or "") in {"-", *_MINUS}:
        value = -value
    return value


def parse_number(text: str) -> Fraction | None:
    """The value of the first number in ``text`` (any digits, separators, currency), or None."""
    match = NUMBER_RE.search(normalize_digits(text))
    return value_of(match) if match else None


def parse_exact_number(text: str) -> Fraction | None:
    """The value of ``text`` when the whole of it is one number ("114,200", "8.0", "-3"), else None.

    Used for gold answers in data files, where anything but a clean number is a format error.
    """
    match = NUMBER_RE.fullmatch(normalize_digits(text.strip()))
    return value_of(match) if match else None


def find_numbers(text: str) -> list[Fraction]:
    """All numbers in ``text``, in order."""
    values = (value_of(m) for m in NUMBER_RE.finditer(normalize_digits(text)))
    return [v for v in values if v is not None]


def format_number(value: Fraction | int | str, lang: str = "en", *, grouping: bool = True,
                  native_digits: bool = False) -> str:
    """Write a number the way a speaker of ``lang`` would (used to write answers and to test reading them)."""
    if isinstance(value, str):
        parsed = parse_number(value)
        if parsed is None:
            raise ValueError(f"not a number: {value!r}")
        value = parsed
    value = Fraction(value)
    language = get_language(lang)
    negative = value < 0
    value = abs(value)
    if value.denominator == 1:
        int_text, frac_text = str(value.numerator), ""
    else:
        # Exact decimal when the denominator allows it, else 6 significant decimals
        text = _decimal_text(value)
        int_text, _, frac_text = text.partition(".")
    if grouping and len(int_text) > 3:
        if language.indian_grouping:
            head, last3 = int_text[:-3], int_text[-3:]
            pairs = []
            while len(head) > 2:
                pairs.insert(0, head[-2:])
                head = head[:-2]
            int_text = language.group_sep.join([head, *pairs, last3])
        else:
            groups = []
            while len(int_text) > 3:
                groups.insert(0, int_text[-3:])
                int_text = int_text[:-3]
            int_text = language.group_sep.join([int_text, *groups])
    text = int_text + (language.decimal_sep + frac_text if frac_text else "")
    if native_digits and language.native_zero:
        zero = ord(language.native_zero)
        text = "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)
    return ("-" if negative else "") + text


def _decimal_text(value: Fraction) -> str:
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:  # terminating decimal: write it exactly
        digits = 0
        scaled = value
        while scaled.denominator != 1:
            scaled *= 10
            digits += 1
        whole = str(scaled.numerator).rjust(digits + 1, "0")
        return f"{whole[:-digits]}.{whole[-digits:]}"
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def canonical_number(value: Fraction) -> str:
    """Plain machine form of a value: "18", "-3", "2.5" (used for gold answers in records)."""
    if value.denominator == 1:
        return str(value.numerator)
    return ("-" if value < 0 else "") + _decimal_text(abs(value))


# --------------------------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class Extraction:
    """What was read from a response. ``strict``/``flexible`` are canonical strings ("18", "B") or None."""

    strict: str | None
    flexible: str | None

    @property
    def best(self) -> str | None:
        """The strict answer when the answer phrase was found, else the flexible one."""
        return self.strict if self.strict is not None else self.flexible


def _phrase_pattern(prefix: str) -> str:
    # Match the phrase loosely: any run of spaces stands for any spacing, case is ignored, and an optional
    # colon, dash or "is" punctuation may sit between the phrase and the answer.
    words = [re.escape(w) for w in prefix.split()]
    return r"\s*".join(words) if prefix[-1:] in "：:" else r"\s+".join(words)


@lru_cache(maxsize=None)
def strict_number_re(lang: str) -> re.Pattern[str]:
    """The answer sentence of ``lang`` (and English's) up to where its number starts ("Die Antwort ist ")."""
    prefixes = _phrases_for(lang)
    alternatives = "|".join(_phrase_pattern(p) for p in sorted(prefixes, key=len, reverse=True))
    # After the phrase: optional colon/dash/"**" (markdown bold), then the number.
    # A "-" there is punctuation unless a digit follows it (then it is the answer's sign).
    return re.compile(rf"(?:{alternatives})(?:[\s:：—–*]|-(?!\d))*(?=[-+{_MINUS}{re.escape(_CURRENCY)}\d])",
                      re.IGNORECASE)


@lru_cache(maxsize=None)
def _strict_choice_re(lang: str) -> re.Pattern[str]:
    prefixes = _phrases_for(lang)
    alternatives = "|".join(_phrase_pattern(p) for p in sorted(prefixes, key=len, reverse=True))
    # The phrase is matched case-insensitively, the letter is not: "the answer is a bit unclear" is no answer.
    return re.compile(rf"(?i:{alternatives})[\s:：\-—–*]*[(（\[]?\s*([A-P])\s*[)）\]]?(?![A-Za-z])")


def _phrases_for(lang: str) -> tuple[str, ...]:
    language = LANGUAGES.get(lang) or get_language(lang)
    english = LANGUAGES["en"]
    phrases = list(language.answer_prefixes)
    for p in english.answer_prefixes:
        if p not in phrases:
            phrases.append(p)
    # Responses are normalised before matching (full-width colon -> ":"), so the phrases must be too.
    return tuple(normalize_digits(unicodedata.normalize("NFC", p)) for p in phrases)


def extract_number(response: str, lang: str = "en") -> Extraction:
    """Read the final numeric answer from a free-form response written in ``lang``."""
    text = normalize_digits(unicodedata.normalize("NFC", response))
    strict = None
    for phrase in strict_number_re(lang).finditer(text):
        number = NUMBER_RE.match(text, phrase.end())
        if number is not None:
            value = value_of(number)
            if value is not None:
                strict = canonical_number(value)
                break  # the first answer sentence counts, as in lm-evaluation-harness's take_first
    flexible = None
    for number in reversed(list(NUMBER_RE.finditer(text))):
        value = value_of(number)
        if value is not None:
            flexible = canonical_number(value)
            break
    return Extraction(strict=strict, flexible=flexible)


_CHOICE_FALLBACKS = (
    re.compile(r"[(（\[]\s*([A-P])\s*[)）\]]"),  # (B)
    re.compile(r"(?:answer|antwort|respuesta|réponse|ответ|答案|答え|jibu)\s*[:：]\s*\(?([A-P])\b", re.I),
    re.compile(r"(?<![A-Za-z])([A-P])(?![A-Za-z])"),  # a lone capital letter
)


def extract_choice(response: str, lang: str = "en", n_choices: int = 10) -> Extraction:
    """Read a multiple-choice letter (A-J for MMLU-ProX) from a response written in ``lang``."""
    text = unicodedata.normalize("NFC", normalize_digits(response))
    allowed = CHOICE_LETTERS[:n_choices]
    strict = None
    for m in _strict_choice_re(lang).finditer(text):
        letter = m.group(1).upper()
        if letter in allowed:
            strict = letter
            break
    flexible = None
    for pattern in _CHOICE_FALLBACKS:
        letters = [m.group(1).upper() for m in pattern.finditer(text) if m.group(1).upper() in allowed]
        if letters:
            flexible = letters[-1]
            break
    if flexible is None:
        flexible = strict
    return Extraction(strict=strict, flexible=flexible)


def extract_answer(response: str, lang: str = "en", answer_type: str = "number", n_choices: int = 10) -> Extraction:
    if answer_type == "choice":
        return extract_choice(response, lang, n_choices)
    return extract_number(response, lang)


def answers_match(predicted: str | None, gold: str, answer_type: str = "number") -> bool:
    """True when a predicted answer equals the gold one: as exact numbers, or as choice letters."""
    if predicted is None:
        return False
    if answer_type == "choice":
        return predicted.strip().upper() == gold.strip().upper()
    a, b = parse_number(predicted), parse_number(gold)
    return a is not None and b is not None and a == b


def is_correct(response: str, gold: str, lang: str = "en", answer_type: str = "number") -> tuple[bool, bool]:
    """(strict correct, flexible correct) for a response against the gold answer."""
    ex = extract_answer(response, lang, answer_type)
    return answers_match(ex.strict, gold, answer_type), answers_match(ex.flexible, gold, answer_type)
