"""Settings outside their range: each config field declares the values it takes (``setting(at_least=...)``), one
function checks them (:func:`pivotrl.config_fields.check_fields`; the CLI per option), and every command refuses a
bad value within seconds, naming the option or field and what it takes, before anything loads or is written. Also
the readers of what users write: a key given twice in a YAML file, an empty recipe, a JSON value nested thousands
of levels deep (a data file, `reward score --input`, a request to the reward server)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import time
import typing

import pytest
from typer.testing import CliRunner

from pivotrl.cli import app
from pivotrl.config_fields import SEED, Bounds, SettingError, ServerFields, check_fields, field_problem, setting
from pivotrl.evaluation.run import EvalConfig, EvalError, run_eval
from pivotrl.pipeline import PipelineConfig, run_pipeline
from pivotrl.pivot.run import PivotConfig, run_pivot
from pivotrl.rewards.command_configs import AuditConfig, ScoreConfig, ServeConfig
from pivotrl.text_files import MAX_JSON_DEPTH, json_value
from pivotrl.train.config import TrainConfig, TrainConfigError, load_train_config
from pivotrl.train.verl_launch import VerlLaunch
from pivotrl.yaml_files import DuplicateKeyError, read_yaml_mapping, yaml_value

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000  # far past Python's recursion limit: json.loads raises RecursionError
SECONDS = 10  # "within seconds" on a busy 2-core machine: nothing heavy (torch, TRL, a model) may be loaded first


@pytest.fixture
def env(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("PIVOTRL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # a command that wrongly went ahead would write here, not into the repository


def _refused(args: list[str], *needles: str) -> str:
    """Run ``pivotrl ARGS``: it must exit 1 within SECONDS with every needle in its one error line."""
    started = time.perf_counter()
    result = runner.invoke(app, args)
    seconds = time.perf_counter() - started
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert output.startswith("error:") and all(n in output for n in needles), output
    assert "Traceback" not in output and seconds < SECONDS, (seconds, output)
    return output


# ------------------------------------------------------------------------------------------ the one check


def test_bounds_say_what_they_take():
    assert Bounds(at_least=1).problem(0) == "must be at least 1"
    assert Bounds(at_least=1).problem(1) is None
    assert Bounds(at_least=0, at_most=65535).problem(70000) == "must be between 0 and 65535"
    assert Bounds(above=0, at_most=1).problem(0) == "must be above 0 and at most 1"
    assert Bounds(above=0, at_most=1).problem(1.0) is None
    assert Bounds(at_most=8).problem(9) == "must be at most 8"
    assert Bounds(at_least=0.5).problem(0.25) == "must be at least 0.5"
    assert SEED.problem(-1) == "must be between 0 and 4294967295" and SEED.problem(2**32) is not None
    # None is an unset optional setting; a bool, a string, NaN or infinity is not a number
    assert Bounds(at_least=1).problem(None) is None
    for bad in (True, "3", float("nan"), float("inf")):
        assert Bounds(at_least=1).problem(bad) == "must be a number at least 1"
    # a check with its own words; one that cannot compare the value refuses it instead of raising
    odd = Bounds(check=lambda v: v % 2 == 1, expected="an odd number")
    assert odd.problem(3) is None and odd.problem(4) == "must be an odd number" and odd.problem("x") is not None
    assert Bounds(at_least=1, expected="a positive integer").problem(0) == "must be a positive integer"


@dataclasses.dataclass
class _Example:
    k: int = setting(4, at_least=1, help="k.")
    share: float = setting(0.5, at_least=0, at_most=1, help="A share.")
    n: int | None = setting(None, at_least=1, help="n.")
    free: int = setting(-3, help="No range.")


def test_check_fields_names_the_field_what_it_takes_and_the_value():
    check_fields(_Example())
    with pytest.raises(SettingError, match=r"^recipe\.yaml: k must be at least 1, got 0$"):
        check_fields(_Example(k=0), "recipe.yaml")
    with pytest.raises(SettingError, match=r"^--share must be between 0 and 1, got 2$"):
        check_fields(_Example(share=2), names=lambda f: "--" + f.name)
    assert isinstance(SettingError("x"), ValueError)  # every caller that reports a ValueError reports it
    field = {f.name: f for f in dataclasses.fields(_Example)}
    assert field_problem(field["n"], 0) == "must be at least 1" and field_problem(field["free"], -10**9) is None


CONFIGS = (TrainConfig, EvalConfig, PivotConfig, PipelineConfig, ServeConfig, AuditConfig, ScoreConfig, VerlLaunch)
# numeric settings that take any value of their type, and why
UNBOUNDED = {
    ("TrainConfig", "min_reward"): "a reward total: guards make totals negative, so any number is a threshold",
    ("EvalConfig", "concurrency"): "ServerFields: checked with the other endpoint settings (pivotrl.evaluation."
                                   "endpoint.check_settings: '--concurrency must be at least 1')",
    ("ServerFields", "concurrency"): "as above",
}


def test_every_numeric_setting_declares_its_range():
    missing = []
    for cls in (*CONFIGS, ServerFields):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kinds = typing.get_args(hints[f.name]) or (hints[f.name],)
            if any(k in (int, float) for k in kinds) and f.metadata.get("bounds") is None:
                missing.append((cls.__name__, f.name))
    assert sorted(set(missing) - set(UNBOUNDED)) == []


def test_every_default_is_within_its_own_range():
    for cls in CONFIGS:
        check_fields(cls())


# -------------------------------------------------------------------------------------- pivotrl train


@pytest.mark.parametrize("args, needles", [
    (["--set", "trl.num_generations=0"], ["defaults: trl.num_generations must be at least 2", "got 0"]),
    (["--set", "trl.num_generations=3"], ["trl.num_generations 3 must divide the generation batch of 8 answers",
                                          "per_device_train_batch_size 8"]),
    (["--max-steps", "-1"], ["trl.max_steps must be at least 1 for grpo, got -1", "whole epochs"]),
    (["--max-steps", "0", "--algorithm", "rloo"], ["trl.max_steps must be at least 1 for rloo, got 0"]),
    (["--set", "trl.learning_rate=0"], ["trl.learning_rate must be above 0 (GRPOConfig), got 0"]),
    (["--set", "trl.temperature=-1"], ["trl.temperature must be above 0 (answers are sampled)"]),
    (["--set", "trl.top_p=1.5"], ["trl.top_p must be above 0 and at most 1"]),
    (["--set", "trl.per_device_train_batch_size=0"], ["trl.per_device_train_batch_size must be at least 1"]),
    (["--seed", "-1"], ["seed must be between 0 and 4294967295, got -1"]),
    (["--set", "n_train=0"], ["n_train must be at least 1, got 0"]),
    (["--set", "eval_max_new_tokens=0"], ["eval_max_new_tokens must be a positive integer, got 0"]),
    (["--set", "eval_every=5", "--set", "eval_n=0"], ["eval_every 5", "eval_n 0 asks for no evaluations"]),
    (["--set", "algorithm=dpo", "--set", "pair_margin=-1"], ["pair_margin must be at least 0, got -1"]),
    (["--set", "algorithm=dpo", "--set", "trl.beta=-0.1"], ["trl.beta must be at least 0 (DPOConfig)"]),
])
def test_train_refuses_settings_out_of_range(env, tmp_path, args, needles):
    _refused(["train", *args, "--out", str(tmp_path / "run")], *needles)
    assert not (tmp_path / "run").exists()


def test_train_recipe_with_a_key_twice_or_empty(env, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: smollm2\ntrl:\n  learning_rate: 1.0e-5\n  max_steps: 5\n  learning_rate: 2.0e-5\n")
    _refused(["train", "--config", str(recipe)], f"{recipe}, line 5: key 'learning_rate' is given twice",
             "(first on line 3)")
    recipe.write_text("# to do\n")
    _refused(["train", "--config", str(recipe)], f"recipe {recipe} is empty", "leave out --config")
    recipe.write_text("langs: [de]\nlangs: [zh]\n")
    with pytest.raises(TrainConfigError, match="line 2: key 'langs' is given twice"):
        load_train_config(recipe)


def test_set_values_with_a_key_twice_are_refused(env):
    _refused(["train", "--set", "trl={max_steps: 3, max_steps: 5}"], "--set 'trl={max_steps: 3, max_steps: 5}'",
             "key 'max_steps' is given twice")


def test_trl_bounds_name_the_algorithms_whose_trl_class_has_the_field():
    from pivotrl.train.algorithms import ALGORITHMS, trl_classes
    from pivotrl.train.config import TRL_BOUNDS

    for key, (names, _) in TRL_BOUNDS.items():
        assert set(names) == {n for n in ALGORITHMS if key in trl_classes(n)[0].__dataclass_fields__}, key


def test_recipe_ranges_are_checked_in_code_too():
    config = TrainConfig(eval_n=-1)
    with pytest.raises(TrainConfigError, match="^pipeline: eval_n must be a non-negative integer, got -1$"):
        config.validate("pipeline")
    # an online algorithm's step count: the offline ones train whole epochs over each round's rows by design
    assert load_train_config(None, ["algorithm=rft"]).algorithm == "rft"


# ------------------------------------------------------------------------------------------ reward files


def test_reward_files_with_wrong_weights(env, tmp_path):
    path = tmp_path / "reward.yaml"
    for text in ("preset: hybrid\nweights: [1, 2]\n", "weights: [1, 2]\n", "weights: 3\n"):
        path.write_text(text)
        _refused(["reward", "show", "-r", str(path)], "weights must be a mapping of component name -> number")
    path.write_text("weights: {answer_agreement: 0, language_fidelity: 0.0}\n")
    _refused(["reward", "show", "-r", str(path)], "every weight is 0",
             "give at least one component a weight above 0")
    path.write_text("preset: answer\nthresholds: [0.5]\n")
    _refused(["reward", "show", "-r", str(path)], "thresholds must be a mapping")
    path.write_text("preset: hybrid\nweights:\n  answer_format: 0.5\n  answer_format: 0.7\n")
    _refused(["reward", "show", "-r", str(path)], f"{path}, line 4: key 'answer_format' is given twice")
    path.write_text("preset: hybrid\nweights: [1, 2]\n")
    _refused(["train", "--reward", str(path)], "reward: reward config", "weights must be a mapping")


# ----------------------------------------------------------------------- eval, pivot, demo, reward serve


@pytest.mark.parametrize("args, needles", [
    (["eval", "--temperature", "-1"], ["--temperature -1.0: must be at least 0 (0: greedy)"]),
    (["eval", "--shots", "100"], ["--shots 100: must be between 0 and 8 (MGSM has 8 few-shot exemplars"]),
    (["eval", "-n", "0"], ["-n 0: must be at least 1"]),
    (["eval", "--samples", "0"], ["--samples 0: must be at least 1"]),
    (["eval", "--max-new-tokens", "0"], ["--max-new-tokens 0: must be at least 1"]),
    (["eval", "--batch-size", "0"], ["--batch-size 0: must be at least 1"]),
    (["eval", "--top-p", "0"], ["--top-p 0.0: must be above 0 and at most 1"]),
    (["pivot", "--min-agreement", "2", "--k", "2"], ["--min-agreement 2.0: must be a share of the k samples, "
                                                     "between 0 and 1"]),
    (["pivot", "--k", "0"], ["--k 0: must be at least 1"]),
    (["pivot", "--seed", "-1"], ["--seed -1: must be between 0 and 4294967295"]),
    (["demo", "--steps", "0"], ["--steps 0: must be at least 1"]),
    (["demo", "--pivot-k", "0"], ["--pivot-k 0: must be at least 1"]),
    (["reward", "serve", "--port", "70000"], ["--port 70000: must be between 0 and 65535"]),
    (["reward", "serve", "--port", "-1"], ["--port -1: must be between 0 and 65535"]),
    (["reward", "serve", "--max-batch", "0"], ["--max-batch 0: must be at least 1"]),
    (["reward", "audit", "-n", "0"], ["-n 0: must be at least 1"]),
    (["export", "verl", "--rollout-n", "1"], ["--rollout-n 1: must be at least 2"]),
    (["export", "verl", "--gpu-memory-utilization", "1.5"], ["--gpu-memory-utilization 1.5: must be above 0 and "
                                                             "at most 1"]),
])
def test_commands_refuse_options_out_of_range(env, tmp_path, args, needles):
    _refused([*args, "--out", str(tmp_path / "out")] if args[0] in ("eval", "pivot") else args, *needles)
    assert not (tmp_path / "out").exists() and not any(tmp_path.iterdir())


def test_configs_built_in_code_are_checked_before_anything_is_written(env, tmp_path):
    with pytest.raises(EvalError, match="^evaluation: shots must be between 0 and 8 .*, got 100$"):
        run_eval(EvalConfig(task="synthetic", shots=100, out=str(tmp_path / "e")))
    with pytest.raises(EvalError, match="evaluation: temperature must be at least 0"):
        run_eval(EvalConfig(task="synthetic", temperature=-1.0, out=str(tmp_path / "e")))
    with pytest.raises(SettingError, match="^pivot: min_agreement must be a share of the k samples, between 0 and "
                                           "1, got 2$"):
        run_pivot(PivotConfig(pivot="gold", task="synthetic", min_agreement=2, out=str(tmp_path / "p")))
    with pytest.raises(SettingError, match="^demo: steps must be at least 1, got 0$"):
        run_pipeline(PipelineConfig(steps=0, out=str(tmp_path / "d")))
    with pytest.raises(ValueError, match="rollout_n must be at least 2"):
        VerlLaunch(rollout_n=1).check()
    assert list(tmp_path.iterdir()) == []


def test_the_reward_server_refuses_a_port_out_of_range():
    from pivotrl.rewards.server import RewardServer

    with pytest.raises(ValueError, match="port must be between 0 and 65535, got 70000"):
        RewardServer("answer", port=70000, warmup=False)


# --------------------------------------------------------------------------- YAML and JSON readers


def test_yaml_keys_given_twice_are_refused_with_their_lines(tmp_path):
    with pytest.raises(DuplicateKeyError, match="line 1: key 'a' is given twice in one mapping"):
        yaml_value("{a: 1, a: 2}")
    with pytest.raises(DuplicateKeyError) as caught:
        yaml_value("x:\n  k: 1\n  j: 2\n  k: 3\n")
    assert (caught.value.key, caught.value.line, caught.value.first) == ("k", 4, 2)
    # merge keys override on purpose; the same key in two mappings is no repeat
    assert yaml_value("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\nc: {x: 4}\n") == {
        "a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 2}, "c": {"x": 4}}
    path = tmp_path / "r.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(ValueError, match=r"r\.yaml, line 3: key 'a' is given twice .*first on line 1"):
        read_yaml_mapping(path, "recipe fields")
    path.write_text("a: " + "[" * 100_000)
    with pytest.raises(ValueError, match=r"r\.yaml: not valid YAML: nested too deeply"):
        read_yaml_mapping(path, "recipe fields")


def test_json_nested_too_deeply_is_a_json_error_at_its_line():
    with pytest.raises(json.JSONDecodeError, match=f"nested more than {MAX_JSON_DEPTH} levels deep") as caught:
        json_value('{"a": 1,\n"b": ' + DEEP + "}")
    assert caught.value.lineno == 2
    with pytest.raises(json.JSONDecodeError, match="nested more than"):
        json_value(b"[" * 50_000)
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert json_value(ok) == json.loads(ok)
    # brackets inside strings are text, however many; an escaped quote does not end a string
    text = json.dumps({"q": "[" * 5000, "r": 'say \\"[[[\\"'})
    assert json_value(text) == json.loads(text)


def test_deep_json_in_files_names_the_file_and_line(env, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"response": "Die Antwort ist 4.", "reference": "4", "lang": "de"}\n'
                    '{"response": "x", "reference": ' + DEEP + ', "lang": "de"}\n')
    _refused(["reward", "score", "--input", str(rows), "-r", "answer"],
             f"{rows}, line 2: not valid JSON (nested more than {MAX_JSON_DEPTH} levels deep")
    data = tmp_path / "problems.jsonl"
    data.write_text('{"question": "1+1?", "answer": "2", "lang": "de"}\n{"question": ' + DEEP + ', "answer": "1"}\n')
    _refused(["data", "show", str(data)], f"{data}, line 2: not valid JSON (nested more than")
    whole = tmp_path / "problems.json"
    whole.write_text('[{"question": "1+1?", "answer": "2", "lang": "de"},\n{"question": ' + DEEP + "}]\n")
    _refused(["data", "show", str(whole)], f"{whole}, line 2: not valid JSON (nested more than")


def test_the_reward_server_answers_deep_json_with_a_400():
    from pivotrl.rewards.server import RewardServer

    server = RewardServer("answer", port=0)
    server.start()
    try:
        def post(path: str, body: bytes) -> tuple[int, dict]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = (response.status, json.loads(response.read()))
            conn.close()
            return answer

        status, answer = post("/score", ('{"items": ' + DEEP + "}").encode())
        assert status == 400 and "not valid JSON" in answer["error"] and "nested more than" in answer["error"]
        label = '{"reference": "4", "lang": "de", "x": ' + "[" * 5000 + "]" * 5000 + "}"
        status, answer = post("/get_reward", json.dumps({"query": ["4"], "prompts": [""], "labels": [label]}).encode())
        assert status == 400 and "labels[0]: not JSON" in answer["error"] and "nested more than" in answer["error"]
        good = {"items": [{"response": "Die Antwort lautet 4.", "reference": "4", "lang": "de"}]}
        status, answer = post("/score", json.dumps(good).encode())
        assert status == 200 and answer["scores"][0]["score"] == 1.0  # still serving
    finally:
        server.stop()
