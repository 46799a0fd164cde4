"""The reward component registry: one description per component that configs, presets, `reward show` and
the composed reward read; a user's own component registered from their own module (a plugin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pivotrl.data import load_problems
from pivotrl.rewards import registry
from pivotrl.rewards.compose import RANGES, ComposedReward, load_reward_config

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = '''
from pivotrl.rewards.components import completion_text
from pivotrl.rewards.registry import register_component


def says_seven(completions, **_):
    return [1.0 if "7" in completion_text(c) else 0.0 for c in completions]


register_component("says_seven", fn=says_seven, range=(0.0, 1.0), role="credit", summary="mentions 7")
'''


@pytest.fixture
def clean_registry():
    """Whatever a test registers is gone afterwards (other tests see the built-ins only)."""
    before = dict(registry.REGISTRY)
    modules = set(sys.modules)
    yield
    registry.REGISTRY.clear()
    registry.REGISTRY.update(before)
    for name in set(sys.modules) - modules:
        if name.startswith("my_rewards"):
            del sys.modules[name]


def test_builtins_are_described_once():
    assert list(registry.REGISTRY) == ["answer_agreement", "language_fidelity", "answer_format", "length_guard",
                                       "brevity_guard", "repetition_guard", "embedding_similarity",
                                       "translate_similarity", "translation_likelihood", "reference_judge"]
    roles = {name: c.role for name, c in registry.REGISTRY.items()}
    assert roles["language_fidelity"] == "gate"
    assert {n for n, r in roles.items() if r == "penalty"} == {"length_guard", "brevity_guard", "repetition_guard"}
    # the gated default and the ranges are read from the registry, not kept beside it
    assert registry.default_gated() == [n for n, r in roles.items() if r == "credit"]
    assert dict(RANGES) == {n: c.range for n, c in registry.REGISTRY.items()}
    # model-backed components are factories named by path: describing them loads nothing
    assert isinstance(registry.REGISTRY["embedding_similarity"].factory, str)
    assert "encoder" in registry.REGISTRY["embedding_similarity"].fields


def test_registration_is_checked(clean_registry):
    def fn(completions, **_):
        return [0.0] * len(completions)

    with pytest.raises(ValueError, match="already registered"):
        registry.register_component("answer_agreement", fn=fn, range=(0.0, 1.0), role="credit")
    with pytest.raises(ValueError, match="role must be one of credit, penalty, gate"):
        registry.register_component("x1", fn=fn, range=(0.0, 1.0), role="bonus")
    with pytest.raises(ValueError, match="a penalty scores in \\[-1, 0\\]"):
        registry.register_component("x2", fn=fn, range=(0.0, 1.0), role="penalty")
    with pytest.raises(ValueError, match="-1 <= low < high <= 1"):
        registry.register_component("x3", fn=fn, range=(0.0, 2.0), role="credit")
    with pytest.raises(ValueError, match="exactly one of fn"):
        registry.register_component("x4", range=(0.0, 1.0), role="credit")
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        registry.register_component("bad name", fn=fn, range=(0.0, 1.0), role="credit")
    assert not {"x1", "x2", "x3", "x4"} & set(registry.REGISTRY)


def test_a_plugin_component_is_gated_and_scored(clean_registry, tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_reward_config({"preset": "answer", "plugins": ["my_rewards"], "gate": "language_fidelity",
                                 "weights": {"says_seven": 1.0, "language_fidelity": 0.0}})
    assert "says_seven" in config.gated  # a credit component is gated without the config saying so
    reward = ComposedReward(config)
    problem = load_problems("synthetic", ["de", "en"], n=1)
    german, english = (p.solution for p in sorted(problem, key=lambda p: p.lang))
    texts = [german + " 7", english + " 7", german.replace("7", "")]
    scored = reward.score(texts, reference=[english] * 3, reference_answer=["0"] * 3, lang="de")
    assert scored[0].components["says_seven"] == 1.0 and scored[0].gate > 0.9 and scored[0].total > 0.9
    assert scored[1].components["says_seven"] == 1.0 and scored[1].total < 0.1  # English: the gate takes it
    assert scored[2].components["says_seven"] == 0.0


def test_an_unknown_plugin_or_component_is_named(clean_registry):
    with pytest.raises(ValueError, match="reward plugin 'no_such_rewards' cannot be imported"):
        load_reward_config({"preset": "hybrid", "plugins": ["no_such_rewards"]})
    with pytest.raises(ValueError, match="unknown component 'says_seven'"):
        load_reward_config({"preset": "hybrid", "weights": {"says_seven": 1.0}})


def test_the_example_plugin_through_the_cli():
    done = subprocess.run([sys.executable, "-m", "pivotrl.cli", "reward", "show", "--reward",
                           str(ROOT / "examples" / "custom_reward.yaml")], capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(ROOT / "examples"),
                                            "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if "│ shows_work" in line)
    assert "credit" in row and "0.2" in row and "yes" in row  # registered, weighted and gated
    scored = subprocess.run([sys.executable, "-m", "pivotrl.cli", "reward", "score", "--reward",
                             str(ROOT / "examples" / "custom_reward.yaml"), "--lang", "de", "--response",
                             "12 + 30 = 42. 42 - 2 = 40. 40 / 8 = 5. Die Antwort lautet 5.", "--reference",
                             "12 + 30 = 42, 42 - 2 = 40, 40 / 8 = 5. The answer is 5."], capture_output=True,
                            text=True, timeout=300, env={**__import__("os").environ,
                                                         "PYTHONPATH": str(ROOT / "examples"), "COLUMNS": "250"})
    assert scored.returncode == 0, scored.stderr[-2000:]
    header = next(line for line in scored.stdout.splitlines() if "shows_work" in line)
    values = next(line for line in scored.stdout.splitlines() if line.startswith("│ 1 "))
    column = [c.strip() for c in header.split("┃")].index("shows_work")
    assert float([c.strip() for c in values.split("│")][column]) == 1.0


def test_the_registry_is_complete_in_a_fresh_process():
    # nothing else imported first: the built-ins are declared with the registry itself
    done = subprocess.run([sys.executable, "-c", "from pivotrl.rewards import REGISTRY; print(','.join(REGISTRY))"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().split(",") == list(registry.REGISTRY)
    assert len(registry.REGISTRY) == 10


SETTING_PLUGIN = '''
from pivotrl.rewards.components import completion_text
from pivotrl.rewards.registry import Setting, register_component

SEEN = []


def counts_sevens(completions, *, sevens_needed=2, **columns):
    SEEN.append(sorted(columns))
    return [min(1.0, completion_text(c).count("7") / sevens_needed) for c in completions]


register_component("counts_sevens", fn=counts_sevens, range=(0.0, 1.0), role="credit",
                   settings={"sevens_needed": Setting(2, "sevens for full credit", at_least=1)})
'''


def test_a_plugin_component_has_its_own_setting(clean_registry, tmp_path, monkeypatch):
    (tmp_path / "my_rewards_setting.py").write_text(SETTING_PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    base = {"preset": "answer", "plugins": ["my_rewards_setting"], "weights": {"counts_sevens": 1.0}}
    default, four = load_reward_config(base), load_reward_config({**base, "sevens_needed": 4})
    assert default.sevens_needed == 2 and four.sevens_needed == 4 and four.settings == {"sevens_needed": 4}
    text = ["7 + 7 = 14. Die Antwort lautet 7."]  # three sevens
    assert ComposedReward(default).score(text, reference=["7"], lang="de")[0].components["counts_sevens"] == 1.0
    assert ComposedReward(four).score(text, reference=["7"], lang="de")[0].components["counts_sevens"] == 0.75
    # the setting reaches its own component only; the guards' settings reach the guards only
    seen = sys.modules["my_rewards_setting"].SEEN
    assert seen and all("length_tolerance" not in s and "tolerance" not in s and "min_share" not in s for s in seen)
    # a config round-trips through its dict (run folders store it)
    assert load_reward_config(four.to_dict()).sevens_needed == 4
    with pytest.raises(ValueError, match=r"sevens_needed must be at least 1, got 0 \(a setting of counts_sevens\)"):
        load_reward_config({**base, "sevens_needed": 0})
    with pytest.raises(ValueError, match="unknown reward config field.*sevens_wanted.*sevens_needed"):
        load_reward_config({**base, "sevens_wanted": 3})
    with pytest.raises(ValueError, match="'length_tolerance' is already a setting of 'length_guard'"):
        registry.register_component("x5", fn=lambda completions, **_: [0.0] * len(completions), range=(0.0, 1.0),
                                    role="credit", settings={"length_tolerance": registry.Setting(1.0, "again")})


def test_declared_shared_fields_are_reward_config_fields():
    # `reward show` prints them from the config: a typo in a component's fields would fail there
    import dataclasses

    from pivotrl.rewards.compose import RewardConfig

    names = {f.name for f in dataclasses.fields(RewardConfig)}
    assert all(set(c.fields) <= names for c in registry.REGISTRY.values())
    assert {k for k, v in registry.setting_owners().items() if v != "reference_judge"} == {"length_tolerance",
                                                                                          "min_length_share"}
    assert {"judge", "judge_endpoint", "judge_cache"} <= set(registry.setting_owners())
    assert not set(registry.setting_owners()) & names  # a setting never shadows a field
