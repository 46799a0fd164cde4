"""Answer extraction and checking: unit cases, properties, and the round trip of every real gold answer."""

import json
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotrl.answers import (
    answers_match, canonical_number, extract_choice, extract_number, find_numbers, format_number, is_correct,
    normalize_digits, parse_exact_number, parse_number,
)
from pivotrl.languages import LANGUAGES


@pytest.mark.parametrize("text, value", [
    ("1,000", 1000), ("1.000", 1000), ("1 000", 1000), ("1\u202f000", 1000), ("1\u00a0000", 1000),
    ("1'000", 1000), ("1,234,567", 1234567), ("1.234.567", 1234567), ("1,14,200", 114200),
    ("2,5", Fraction(5, 2)), ("2.5", Fraction(5, 2)), ("0,125", Fraction(1, 8)), ("1.234,5", Fraction(2469, 2)),
    ("1,234.5", Fraction(2469, 2)), ("1 234,5", Fraction(2469, 2)), ("$1,234.50", Fraction(2469, 2)),
    ("€18", 18), ("18 €", 18), ("-5", -5), ("−5", -5), ("-$5", -5), ("$-5", -5), ("+7", 7),
    ("3/4", Fraction(3, 4)), ("3 / 4", Fraction(3, 4)), ("50%", 50), ("18.0", 18), ("18,00", 18),
    ("৩৫", 35), ("১,১৪,২০০", 114200), ("๑๒", 12), ("१२.५", Fraction(25, 2)), ("౧౦", 10), ("٣٥", 35),
    ("۳۵", 35), ("１２３", 123), ("１，０００", 1000), ("18元", 18), ("18個", 18),
])
def test_number_forms(text, value):
    assert parse_number(text) == value
    assert parse_number(f"Total: {text}.") == value


def test_numbers_inside_text():
    assert find_numbers("5 + 6 = 11.") == [5, 6, 11]
    assert find_numbers("5-3=2") == [5, 3, 2]  # a minus between numbers is an operator, not a sign
    assert find_numbers("x2 and A4 paper") == []  # digits glued to a Latin word are not quantities
    assert find_numbers("Ответ — 1 000.") == [1000]  # a dash before the answer is not a minus
    assert find_numbers("Am 1.1.2018 kaufte er 1,2,3 Äpfel für 4 Euro.") == [4]  # dates and lists are no answers
    assert find_numbers("die Ausfühung der 10.0.0.0.") == []
    assert parse_exact_number("114,200") == 114200
    assert parse_exact_number("18 dollars") is None and parse_exact_number("") is None


@pytest.mark.parametrize("lang, response, strict, flexible", [
    ("en", "5 + 6 = 11. The answer is 11.", "11", "11"),
    ("en", "The answer is $1,080. Then 3 more.", "1080", "3"),  # strict: first answer sentence
    ("en", "We get 12 apples in total.", None, "12"),
    ("en", "the answer is: **-7**", "-7", "-7"),
    ("de", "5 + 6 = 11. Die Antwort lautet 11.", "11", "11"),
    ("de", "Die Antwort ist 2,5 Liter.", "2.5", "2.5"),
    ("de", "Die Antwort lautet 114.200 US-Dollar.", "114200", "114200"),
    ("de", "The answer is 9.", "9", "9"),  # English answer sentences count in every language
    ("fr", "La réponse est 1\u202f500 €.", "1500", "1500"),
    ("ru", "Ответ — 42.", "42", "42"),
    ("ja", "5+6=11。答えは11です。", "11", "11"),
    ("zh", "答案是 １８。", "18", "18"),
    ("bn", "উত্তর হল ১১।", "11", "11"),
    ("th", "คำตอบคือ ๑๑", "11", "11"),
    ("hi", "उत्तर 1,14,200 है।", "114200", "114200"),
    ("sw", "Jibu ni 3/4.", "0.75", "0.75"),
    ("es", "La respuesta es -3.", "-3", "-3"),
    ("en", "", None, None),
    ("en", "no numbers here", None, None),
])
def test_extract_number(lang, response, strict, flexible):
    ex = extract_number(response, lang)
    assert (ex.strict, ex.flexible) == (strict, flexible)


def test_checking_is_numeric():
    assert answers_match("18.0", "18") and answers_match("1080", "1,080") and not answers_match("17", "18")
    assert not answers_match(None, "18")
    assert is_correct("Die Antwort lautet 18.", "18", "de") == (True, True)
    assert is_correct("I think 18. Finally 20.", "18", "en") == (False, False)
    assert is_correct("The answer is 18. Check: 20", "18", "en") == (True, False)


@pytest.mark.parametrize("lang, response, strict, flexible", [
    ("en", "Let's think. The answer is (C).", "C", "C"),
    ("de", "Die Antwort ist (B)", "B", "B"),
    ("ja", "答えは (D) です", "D", "D"),
    ("zh", "答案是 (J)", "J", "J"),
    ("en", "Options (A) and (E) fail. So (H).", None, "H"),
    ("en", "Answer: G", None, "G"),
    ("en", "The answer is a bit unclear", None, None),
    ("en", "The answer is (K)", None, None),  # only A-J exist
])
def test_extract_choice(lang, response, strict, flexible):
    ex = extract_choice(response, lang, n_choices=10)
    assert (ex.strict, ex.flexible) == (strict, flexible)


def test_normalize_digits_keeps_letters():
    assert normalize_digits("উত্তর হল ১১।") == "উত্তর হল 11।"
    assert normalize_digits("答案是１８") == "答案是18"


# ------------------------------------------------------------------ properties (hypothesis)

_values = st.fractions(min_value=-10**7, max_value=10**7, max_denominator=1000).filter(
    lambda f: f.denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100)
)


@settings(max_examples=300, deadline=None)
@given(value=_values, code=st.sampled_from(sorted(LANGUAGES)), native=st.booleans(), grouping=st.booleans())
def test_format_then_extract_round_trips(value, code, native, grouping):
    """Any terminating decimal, written as a speaker of the language writes it, is read back exactly.

    Decimals with exactly three fractional digits and a non-zero integer part are ambiguous with a
    thousands separator (documented), so the strategy avoids denominators that produce them.
    """
    text = format_number(value, code, grouping=grouping, native_digits=native)
    sentence = "2 + 2 = 4. " + LANGUAGES[code].answer_sentence(text)
    ex = extract_number(sentence, code)
    assert ex.strict == canonical_number(value), (sentence, ex)
    assert ex.flexible == canonical_number(value), (sentence, ex)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300), code=st.sampled_from(sorted(LANGUAGES)))
def test_extraction_never_raises(text, code):
    for ex in (extract_number(text, code), extract_choice(text, code)):
        assert ex.strict is None or isinstance(ex.strict, str)
        assert ex.flexible is None or isinstance(ex.flexible, str)


# ------------------------------------------------------------------ every real gold answer, every language


def _real_gold_answers(data_dir):
    golds = set()
    for path in sorted((data_dir / "mgsm").glob("mgsm_*.tsv")):
        golds |= {line.split("\t")[1].strip() for line in path.read_text(encoding="utf-8").splitlines()}
    for path in sorted((data_dir / "msvamp").glob("test_*.json")):
        golds |= {json.loads(line)["response"] for line in path.read_text(encoding="utf-8").splitlines()}
    for part in ("train", "test"):
        for line in (data_dir / "gsm8k" / f"{part}.jsonl").read_text(encoding="utf-8").splitlines():
            golds.add(json.loads(line)["answer"].rsplit("####", 1)[1].strip())
    return sorted(golds)


def test_every_gold_answer_round_trips_in_every_language(data_dir):
    golds = _real_gold_answers(data_dir)
    assert len(golds) > 500
    failures = []
    checked = 0
    for gold in golds:
        value = parse_exact_number(gold)
        assert value is not None, gold
        expected = canonical_number(value)
        for code, lang in LANGUAGES.items():
            variants = {format_number(value, code), format_number(value, code, grouping=False)}
            if lang.native_zero:
                variants.add(format_number(value, code, native_digits=True))
            for written in variants:
                for template in lang.answer_templates:
                    response = f"12 + 30 = 42. {template.format(written)}"
                    ex = extract_number(response, code)
                    checked += 1
                    if ex.strict != expected or ex.flexible != expected:
                        failures.append((code, gold, response, ex))
    assert not failures, f"{len(failures)} of {checked} failed, e.g. {failures[:5]}"
