import json

import pytest

from pivotrl.answers import extract_number
from pivotrl.languages import (
    LANGUAGES, MGSM_LANGS, MMLU_PROX_LANGS, MSVAMP_LANGS, UnknownLanguageError, get_language, parse_langs,
)


def test_registry_covers_mgsm_and_mmlu_prox():
    assert set(MGSM_LANGS) | set(MMLU_PROX_LANGS) | set(MSVAMP_LANGS) <= set(LANGUAGES)
    assert len(MMLU_PROX_LANGS) == 29


@pytest.mark.parametrize("code", sorted(LANGUAGES))
def test_every_language_is_complete(code):
    lang = LANGUAGES[code]
    for text in (lang.name, lang.script, lang.question_label, lang.answer_label, lang.instruction):
        assert text.strip() == text and text
    assert all("{}" in t for t in lang.answer_templates)
    assert lang.nllb.endswith("_" + lang.nllb.split("_")[1]) and len(lang.nllb.split("_")[0]) == 3
    # The instruction shows the answer sentence the model is asked to write
    assert "N" in lang.instruction and lang.answer_prefixes[0] in lang.instruction
    # The canonical sentence is read back by the strict extractor
    assert extract_number(lang.answer_sentence(1234), code).strict == "1234"
    assert lang.decimal_sep != lang.group_sep


def test_mgsm_exemplars_follow_the_registry(data_dir):
    """Every human-translated MGSM exemplar uses the registry's labels and answer phrase, and the strict
    extractor reads its final number."""
    exemplars = json.loads((data_dir / "mgsm" / "exemplars.json").read_text(encoding="utf-8"))
    numbers = exemplars["number_answers"]
    for code, items in exemplars["exemplars"].items():
        lang = get_language(code)
        assert lang.reviewed
        for i, (key, ex) in enumerate(sorted(items.items(), key=lambda kv: int(kv[0]))):
            assert ex["q"].startswith(lang.question_label), (code, key)
            assert ex["a"].startswith(lang.answer_label), (code, key)
            assert extract_number(ex["a"], code).strict == str(numbers[i]), (code, key, ex["a"])


def test_lookup_by_name_and_codes():
    assert get_language("German").code == "de"
    assert get_language("deu_Latn").code == "de"
    assert get_language(" SW ").code == "sw"
    assert parse_langs("de, zh,de,Swahili") == ["de", "zh", "sw"]
    assert parse_langs(None, default=("en",)) == ["en"]
    with pytest.raises(UnknownLanguageError, match="unknown language 'xx'.*known codes: af"):
        get_language("xx")
