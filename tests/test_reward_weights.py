"""experiments/reward_weights.py: re-totalling stored component scores under other weights, and the GRPO
figures it reports, on hand-made groups whose answers are known."""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from pathlib import Path

import pytest

from pivotrl.rewards.compose import load_reward_config

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "reward_weights.py"
_spec = importlib.util.spec_from_file_location("reward_weights", _PATH)
reward_weights = importlib.util.module_from_spec(_spec)
sys.modules["reward_weights"] = reward_weights
_spec.loader.exec_module(reward_weights)


def _row(group: str, correct: bool, agreement: float, embedding: float, fidelity: float = 1.0) -> dict:
    components = {"answer_agreement": agreement, "embedding_similarity": embedding, "answer_format": 0.0,
                  "language_fidelity": fidelity, "length_guard": 0.0, "repetition_guard": 0.0, "brevity_guard": 0.0}
    return {"group": ("de", group), "correct": correct, "components": components}


def test_combine_is_the_documented_formula():
    config = load_reward_config("hybrid")  # agreement 1.0 + embedding 0.5 + format 0.2, gated from fidelity 0.8
    total, gate = config.combine(_row("a", True, 1.0, 0.6, fidelity=0.4)["components"])
    assert gate == pytest.approx(0.5) and total == pytest.approx(0.5 * (1.0 + 0.5 * 0.6))
    assert load_reward_config("answer").combine(_row("a", True, 1.0, 0.6, fidelity=0.0)["components"]) == (1.0, 1.0)


def test_advantages_are_trls_group_normalisation():
    adv = reward_weights.advantages([0.0, 1.0, 1.0, 0.0])
    assert sum(adv) == pytest.approx(0.0) and statistics.stdev(adv) == pytest.approx(1.0, rel=1e-3)
    assert reward_weights.advantages([0.3, 0.3, 0.3]) == [0.0, 0.0, 0.0]


def test_weighting_stats_separate_the_answer_signal_from_the_rest():
    rows = [_row("a", True, 1.0, 0.2), _row("a", False, 0.0, 0.9),  # a mixed group: the right answer first
            _row("b", False, 0.0, 1.0), _row("b", False, 0.0, 0.0)]  # no right answer: only the embedding differs
    hybrid = reward_weights.weighting_stats(rows, load_reward_config("hybrid"))
    assert hybrid["spread"] == 1.0 and hybrid["ordered"] == 1.0 and hybrid["mixed"] == 1
    assert hybrid["no_right_share"] == pytest.approx(0.5, abs=1e-3)  # two groups of two: equal |advantage|
    answer = reward_weights.weighting_stats(rows, load_reward_config("answer"))
    assert answer["spread"] == 0.5 and answer["no_right_share"] == 0.0 and answer["auc"] == 1.0
    # the embedding alone ranks the mixed group the wrong way round
    embedding = reward_weights.weighting_stats(rows, load_reward_config("embedding"))
    assert embedding["ordered"] == 0.0 and embedding["right_advantage"] < 0


def test_read_samples_names_the_bad_line(tmp_path):
    path = tmp_path / "audit_cases.jsonl"
    good = {"source": "samples", "kind": "honest", "lang": "de", "id": "p1", "correct": True,
            "components": {"answer_agreement": 1.0}}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"source": "samples", "kind": "honest"}) + "\n")
    with pytest.raises(SystemExit, match=r"audit_cases.jsonl:2: expected an audit case"):
        reward_weights.read_samples(path)
    path.write_text(json.dumps({**good, "kind": "padded"}) + "\n")
    with pytest.raises(SystemExit, match="no sampled answers"):
        reward_weights.read_samples(path)
