"""Reward components on real answers (honest and reward-hacking ones) and on arbitrary text."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotrl.languages import LANGUAGES, get_language
from pivotrl.rewards.registry import plain_functions, score_ranges
from pivotrl.rewards.components import (
    answer_agreement,
    answer_format,
    brevity_guard,
    completion_text,
    language_fidelity,
    length_guard,
    repetition_guard,
    text_units,
)

# "Tom has 3 apples and buys 10 more. How many apples does he have now?"  Gold: 13.
GOLD = "13"
REASONING = {
    "en": "Tom starts with 3 apples. He buys 10 more apples, so he now has 3 + 10 = 13 apples.",
    "de": "Tom hat am Anfang 3 Äpfel. Er kauft noch 10 Äpfel dazu, also hat er jetzt 3 + 10 = 13 Äpfel.",
    "es": "Tom empieza con 3 manzanas. Compra 10 manzanas más, así que ahora tiene 3 + 10 = 13 manzanas.",
    "fr": "Tom a d'abord 3 pommes. Il achète encore 10 pommes, donc il a maintenant 3 + 10 = 13 pommes.",
    # "Сначала у Тома 3 яблока." alone is identified as Serbian by fidelity.detect_language (short sentence)
    "ru": "Сначала у Тома было 3 яблока. Он покупает ещё 10 яблок, значит, теперь у него 3 + 10 = 13 яблок.",
    "zh": "汤姆一开始有 3 个苹果。他又买了 10 个苹果，所以他现在一共有 3 + 10 = 13 个苹果。",
    "ja": "トムは最初にりんごを3個持っています。さらに10個買ったので、全部で 3 + 10 = 13 個になります。",
    "sw": "Tom ana tufaha 3 mwanzoni. Ananunua tufaha 10 zaidi, kwa hiyo sasa ana 3 + 10 = 13 tufaha.",
    "th": "ทอมมีแอปเปิ้ล 3 ลูก เขาซื้อเพิ่มอีก 10 ลูก ดังนั้นตอนนี้เขามีแอปเปิ้ลทั้งหมด 3 + 10 = 13 ลูก",
}
LANGS = tuple(REASONING)
REFERENCE = REASONING["en"] + " " + get_language("en").answer_sentence(13)


def honest(lang: str, answer: object = 13) -> str:
    return REASONING[lang] + "\n" + get_language(lang).answer_sentence(answer)


def score(name: str, completions: list, lang: str = "de") -> list[float]:
    return plain_functions[name](completions, reference_answer=[GOLD] * len(completions),
                                 lang=[lang] * len(completions), reference=[REFERENCE] * len(completions))


# ---------------------------------------------------------------------------------------------- real text


@pytest.mark.parametrize("lang", LANGS)
def test_honest_answers_get_full_credit(lang):
    text = [honest(lang)]
    assert score("answer_agreement", text, lang) == [1.0]
    assert score("language_fidelity", text, lang)[0] >= 0.9
    assert score("answer_format", text, lang) == [1.0]
    assert score("length_guard", text, lang) == [0.0]
    assert score("brevity_guard", text, lang) == [0.0]
    assert score("repetition_guard", text, lang) == [0.0]


@pytest.mark.parametrize("lang", LANGS)
def test_wrong_final_number_loses_agreement_only(lang):
    wrong = honest(lang, 14)
    assert score("answer_agreement", [honest(lang), wrong], lang) == [1.0, 0.0]
    assert score("answer_format", [wrong], lang) == [1.0]  # the format is right, the answer is not


@pytest.mark.parametrize("lang", [x for x in LANGS if x != "en"])
def test_english_copy_is_not_paid_for_language(lang):
    english = honest("en")
    fidelity = score("language_fidelity", [honest(lang), english], lang)
    assert fidelity[0] >= 0.9 and fidelity[1] <= 0.1
    assert score("answer_format", [english], lang) == [0.0]  # English answer sentence only
    assert score("answer_agreement", [english], lang) == [1.0]  # the answer itself is right


def test_german_question_answered_in_english_ranks_below_honest():
    honest_de, english = honest("de"), honest("en")
    total = {t: sum(score(name, [t])[0] for name in plain_functions) for t in (honest_de, english)}
    assert total[honest_de] > total[english] + 1.5


def test_native_phrase_not_at_the_end_gets_half_format():
    text = "Die Antwort lautet 13. " + REASONING["de"]
    assert score("answer_format", [text]) == [0.5]
    # The phrase without a number at the end: half as well
    assert score("answer_format", [REASONING["de"] + " Die Antwort lautet dreizehn."]) == [0.5]


@pytest.mark.parametrize("code", sorted(c for c, lang in LANGUAGES.items() if lang.answer_templates))
def test_the_instructions_placeholder_copied_as_the_answer_earns_no_format(code):
    # The instructions ask to end with e.g. "Die Antwort lautet N."; a policy that writes exactly that (a 0.5B
    # policy did, in 12 of 32 French answers after 10 steps on the half credit) has given no answer.
    lang = get_language(code)
    for placeholder in ("N", "X"):
        assert score("answer_format", [lang.answer_sentence(placeholder)], code) == [0.0]
        assert score("answer_format", [f"{REASONING.get(code, '')}\n{lang.answer_sentence(placeholder)}"],
                     code) == [0.0]
    assert score("answer_format", [lang.answer_sentence(13)], code) == [1.0]


def test_a_word_starting_with_n_after_the_phrase_is_not_the_placeholder():
    assert score("answer_format", ["Die Antwort lautet Neunzehn."]) == [0.5]
    assert score("answer_format", ["Die Antwort lautet N. Danach: 13 Äpfel und vieles mehr, was nicht passt."]) \
        == [0.5]  # the placeholder is not the ending: the phrase somewhere, as before


def test_format_accepts_markdown_units_and_template_endings():
    base = REASONING["de"] + "\n"
    assert score("answer_format", [base + "**Die Antwort lautet 13.**  \n"]) == [1.0]
    assert score("answer_format", [base + "Die Antwort ist: 13 Äpfel."]) == [1.0]
    assert score("answer_format", [base + "Die Antwort lautet 13. Danach habe ich noch viele andere Dinge erklärt, "
                                          "die mit der Aufgabe nichts zu tun haben."]) == [0.5]
    assert score("answer_format", [REASONING["ja"] + "答えは１３です。"], "ja") == [1.0]


def test_truncated_answer():
    cut = honest("de")[: len(REASONING["de"]) // 2]
    assert score("answer_agreement", [cut]) == [0.0]  # last number is 10, not 13
    assert score("answer_format", [cut]) == [0.0]
    assert score("length_guard", [cut]) == [0.0]
    assert score("repetition_guard", [cut]) == [0.0]


@pytest.mark.parametrize("lang", LANGS)
def test_padding_by_repetition_is_penalised(lang):
    padded = "\n".join([honest(lang)] * 20)
    assert score("repetition_guard", [padded], lang)[0] < -0.5
    assert score("length_guard", [padded], lang)[0] < 0
    assert score("length_guard", [padded], lang)[0] == -1.0
    # Padding does not lose the other rewards, which is why the guards exist
    assert score("answer_agreement", [padded], lang) == [1.0]


def test_degenerate_loops_are_near_minus_one():
    for loop in ("A:\n\nA:\n\nA:\n\n" * 40, "答案是 13。" * 60, "= = = = " * 100, "ลูก" * 300):
        assert repetition_guard([loop])[0] <= -0.9, loop[:20]


def test_unrelated_answer():
    unrelated = ("Die Hauptstadt von Frankreich ist Paris. Sie liegt an der Seine und hat etwa 2 Millionen "
                 "Einwohner.")
    assert score("answer_agreement", [unrelated]) == [0.0]
    assert score("answer_format", [unrelated]) == [0.0]
    assert score("repetition_guard", [unrelated]) == [0.0]


def test_length_guard_is_linear_and_script_robust():
    ref = "word " * 50
    assert length_guard(["word " * 100], reference=ref) == [0.0]
    assert length_guard(["word " * 150], reference=ref) == [pytest.approx(-0.5)]
    assert length_guard(["word " * 400], reference=ref) == [-1.0]
    assert length_guard(["word " * 60], reference=ref, tolerance=1.0) == [pytest.approx(-0.2)]
    # A Chinese or Thai answer of the same content is not longer than the English reference in units
    for lang in ("zh", "ja", "th"):
        assert text_units(honest(lang)) <= 1.5 * text_units(REFERENCE), lang
    with pytest.raises(ValueError):
        length_guard(["x"], reference=ref, tolerance=0)


@pytest.mark.parametrize("lang", LANGS)
def test_a_bare_answer_to_a_worked_reference_is_penalised_in_every_script(lang):
    # the pivot's references in the qwen study: a median of 123 length units (docs/RESULTS.md)
    worked_reference = " ".join([REFERENCE] * 6)
    bare = get_language(lang).answer_sentence(13)
    assert brevity_guard([bare], reference=worked_reference)[0] < -0.8
    assert brevity_guard([honest(lang)], reference=REFERENCE) == [0.0]


def test_brevity_guard_is_linear_from_its_floor():
    ref = "word " * 100  # floor at the default share: 25 units
    assert brevity_guard(["word " * 25, "word " * 40], reference=ref) == [0.0, 0.0]
    assert brevity_guard(["word " * 20], reference=ref) == [pytest.approx(-0.2)]
    assert brevity_guard([""], reference=ref) == [-1.0]
    assert brevity_guard(["word " * 10], reference=ref, min_share=0.1) == [0.0]
    assert brevity_guard([""], reference=ref, min_share=0.0) == [0.0]  # 0 turns it off
    # a short (or missing) reference counts as MIN_REFERENCE_UNITS (20): floor 5 units, a mild penalty
    assert brevity_guard(["Die Antwort lautet 11."], reference="11") == [pytest.approx(-0.2)]
    with pytest.raises(ValueError, match="min_share"):
        brevity_guard(["x"], reference=ref, min_share=1.0)


def test_agreement_reads_reference_solutions_and_choices():
    assert answer_agreement([honest("fr")], reference_answer=REFERENCE, lang="fr") == [1.0]
    assert answer_agreement(["13,0"], reference_answer="13", lang="de") == [1.0]
    assert answer_agreement(["La respuesta es (B)."], reference_answer="B", lang="es", answer_type="choice") == [1.0]
    assert answer_agreement(["La respuesta es (C)."], reference_answer="B", lang="es", answer_type="choice") == [0.0]
    assert answer_agreement(["13"], reference_answer="", lang="de") == [0.0]


def test_wolof_fidelity_is_neutral_but_english_is_not_paid():
    wolof = "Tom am na 3 pom. Mu jënd 10 yeneen, kon am na 3 + 10 = 13. Tontu bi mooy 13."
    fid = language_fidelity([wolof, honest("en"), ""], lang="wo")
    assert fid[0] == pytest.approx(0.5, abs=0.1)
    assert fid[1] <= 0.1
    assert fid[2] == 0.0


def test_empty_and_bare_number_get_no_fidelity():
    assert language_fidelity(["", "   ", "13"], lang="de") == [0.0, 0.0, 0.0]


def test_trl_conversational_completions():
    conv = [[{"role": "assistant", "content": honest("de")}],
            [{"role": "user", "content": "Frage"}, {"role": "assistant", "content": [{"type": "text",
                                                                                     "text": honest("de")}]}],
            [{"role": "assistant", "content": None}], []]
    assert completion_text(conv[0]) == honest("de") == completion_text(conv[1])
    assert completion_text(conv[2]) == "" == completion_text(conv[3])
    n = len(conv)
    kwargs = dict(reference_answer=[GOLD] * n, lang=["de"] * n, reference=[REFERENCE] * n,
                  prompts=["p"] * n, completion_ids=[[1, 2]] * n, trainer_state=None)
    for name, fn in plain_functions.items():
        values = fn(conv, **kwargs)
        assert len(values) == n
        if name in ("answer_agreement", "answer_format"):
            assert values[:2] == [1.0, 1.0] and values[2:] == [0.0, 0.0]


def test_misaligned_column_is_a_configuration_error():
    with pytest.raises(ValueError):
        answer_format(["a", "b"], lang=["de"])


# ------------------------------------------------------------------------------------------ any text at all

MONSTERS = [
    "",
    "x" * 100_000,
    honest("de") * 400,
    "Die Antwort lautet " + " " * 50_000 + "13",
    "\x00\x01\x02\x1b[31m\x7f\u200b\ufeff\ud7ff\r\n\t" * 50,
    "😀🧮👍🏽🇩🇪" * 500,
    "Tom有3個りんご, он купил 10 ثم ทั้งหมด १३ ১৩ ١٣ 𝟏𝟑 Ⅻ ½ ∞ NaN inf -0 1e309 " * 100,
    "The answer is " * 2000,
    "1," * 20_000,
]
_MONSTER_CACHE: dict[str, dict[str, list[float]]] = {}


def _check(name: str, values: list[float], n: int) -> None:
    low, high = score_ranges[name]
    assert len(values) == n
    for v in values:
        assert isinstance(v, float) and math.isfinite(v), (name, v)
        assert low <= v <= high, (name, v)


def _call_all(texts: list, langs: list[str]) -> None:
    n = len(texts)
    for name, fn in plain_functions.items():
        _check(name, fn(texts, reference_answer=[GOLD] * n, lang=langs, reference=texts[::-1]), n)


@pytest.mark.parametrize("lang", ["de", "zh", "th", "wo", "en"])
def test_monsters_stay_in_range(lang):
    _call_all(MONSTERS, [lang] * len(MONSTERS))


_LANG_CODES = sorted(LANGUAGES)
_TEXT = st.text(max_size=2000) | st.sampled_from(MONSTERS[4:7]) | st.sampled_from(
    [honest(x) for x in LANGS])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(_TEXT, min_size=0, max_size=3), langs=st.data())
def test_any_text_any_language_stays_in_range(texts, langs):
    codes = [langs.draw(st.sampled_from(_LANG_CODES)) for _ in texts]
    _call_all(texts, codes)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=2000), lang=st.sampled_from(_LANG_CODES),
       gold=st.sampled_from(["13", "B", "", "abc", "1/2", "13 apples"]), kind=st.sampled_from([None, "number",
                                                                                               "choice"]))
def test_any_reference_stays_in_range(text, lang, gold, kind):
    _check("answer_agreement", answer_agreement([text], reference_answer=gold, lang=lang, answer_type=kind), 1)
    _check("length_guard", length_guard([text], reference=gold), 1)
