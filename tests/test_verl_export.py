"""verl export: parquet rows in verl's documented RL layout, the reward module, the GRPO / PPO launch scripts."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import socket
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pivotrl.data import load_problems, split_of
from pivotrl.pivot import PivotConfig, build_train_set, run_pivot
from pivotrl.pivot.train_set import TrainExample
from pivotrl.prompts import native_prompt
from pivotrl.records import Problem
from pivotrl.rewards import verl
from pivotrl.rewards.server import RewardServer
from pivotrl.train.verl_export import COLUMNS, EXTRA_INFO_FIELDS, VERL_VERSION, VerlLaunch, export_verl

LANGS = ["de", "zh", "sw"]
N = 30
NATIVE = {(p.id, p.lang): p for p in load_problems("synthetic", LANGS, n=N)}  # native questions and solutions


def _held_out_examples() -> list[TrainExample]:
    """Held-out problems as TrainExamples built directly (build_train_set drops them by design)."""
    english = {p.id: p for p in load_problems("synthetic", ["en"], n=N)}
    return [TrainExample(p.id, p.lang, p.question, p.question_en or "", english[p.id].solution or "",
                         english[p.id].answer, "number", "parallel:synthetic", "gold", "gold")
            for p in NATIVE.values() if split_of(p.id) == "held-out"]


@pytest.fixture(scope="module")
def train_examples(tmp_path_factory) -> list[TrainExample]:
    refs = tmp_path_factory.mktemp("refs")
    run_pivot(PivotConfig(pivot="gold", task="synthetic", split="all", n=N, out=str(refs)), progress=False)
    examples, _ = build_train_set(refs, "synthetic", LANGS)
    return examples


@pytest.fixture(scope="module")
def held_out() -> list[TrainExample]:
    return _held_out_examples()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, train_examples, held_out):
    out = tmp_path_factory.mktemp("verl")
    summary = export_verl(train_examples, out, held_out=held_out)
    return out, summary


@pytest.fixture(autouse=True)
def fresh_reward_cache():
    verl.reset_cache()
    yield
    verl.reset_cache()


@pytest.fixture
def clean_env(monkeypatch):
    """No reward variables set; whatever reward.py sets is undone after the test."""
    for name in (verl.ENV_CONFIG, verl.ENV_URL):
        monkeypatch.setenv(name, "x")  # recorded, so monkeypatch restores the original state afterwards
        monkeypatch.delenv(name)
    return monkeypatch


def _load_reward_module(path: Path):
    """Load reward.py the way verl 0.5.0 does (verl/trainer/ppo/reward.py: get_custom_reward_fn)."""
    spec = importlib.util.spec_from_file_location("custom_module", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _no_nulls(array: pa.Array) -> None:
    assert array.null_count == 0
    if pa.types.is_struct(array.type):
        for i in range(array.type.num_fields):
            _no_nulls(array.field(i))
    elif pa.types.is_list(array.type):
        _no_nulls(array.flatten())


# ----------------------------------------------------------------------------------------------- parquet


def test_parquet_matches_verl_layout(exported, train_examples, held_out):
    out, summary = exported
    assert held_out and train_examples and {e.id for e in held_out}.isdisjoint(e.id for e in train_examples)
    expected = {"train": train_examples, "test": held_out}
    for split, examples in expected.items():
        table = pq.read_table(out / f"{split}.parquet")
        assert tuple(table.column_names) == COLUMNS  # exactly verl's five columns, nothing else
        schema = table.schema
        assert schema.field("data_source").type == pa.string()
        assert schema.field("ability").type == pa.string()
        prompt = schema.field("prompt").type
        assert pa.types.is_list(prompt) and pa.types.is_struct(prompt.value_type)
        assert {f.name: f.type for f in prompt.value_type} == {"role": pa.string(), "content": pa.string()}
        reward_model = schema.field("reward_model").type
        assert {f.name: f.type for f in reward_model} == {"style": pa.string(), "ground_truth": pa.string()}
        extra = {f.name: f.type for f in schema.field("extra_info").type}
        assert set(extra) == set(EXTRA_INFO_FIELDS)
        assert extra["index"] == pa.int64() and all(t == pa.string() for k, t in extra.items() if k != "index")
        for name in table.column_names:
            _no_nulls(table.column(name).combine_chunks())

        rows = table.to_pylist()
        assert len(rows) == len(examples) == summary["rows"][split]
        by_lang = {lang: sum(e.lang == lang for e in examples) for lang in LANGS}
        assert summary["by_lang"][split] == by_lang and all(n > 0 for n in by_lang.values())
        for i, (row, e) in enumerate(zip(rows, examples, strict=True)):
            assert row["data_source"] == "pivotrl" and row["ability"] == "math"
            assert row["reward_model"] == {"style": "rule", "ground_truth": e.reference_answer}
            native = NATIVE[(e.id, e.lang)]
            assert row["prompt"] == [{"role": "user", "content": native_prompt(native, "instruction")}]
            assert native.question in row["prompt"][0]["content"]
            assert row["extra_info"] == {"split": split, "index": i, "problem_id": e.id, "lang": e.lang,
                                         "reference": e.reference, "question": e.question,
                                         "question_en": e.question_en, "answer_type": "number",
                                         "prompt_source": "parallel:synthetic"}
            assert row["extra_info"]["question"] == native.question  # the target-language question asked

    # verl's RLHFDataset reads the files with datasets.load_dataset("parquet", ...): same rows, plain dicts
    import datasets

    loaded = datasets.load_dataset("parquet", data_files=str(out / "train.parquet"))["train"]
    first = loaded[0]
    assert len(loaded) == len(train_examples)
    assert first["prompt"] == [{"role": "user", "content": first["prompt"][0]["content"]}]
    assert isinstance(first["reward_model"]["ground_truth"], str) and first["extra_info"]["lang"] in LANGS

    assert summary["verl_version"] == VERL_VERSION == "0.5.0"
    assert json.loads((out / "export.json").read_text()) == summary
    for key in ("train", "test", "reward", "run_grpo", "run_ppo", "readme"):
        assert Path(summary["paths"][key]).is_file(), key
    readme = (out / "README.md").read_text()
    assert "verl 0.5.0" in readme and "pivotrl reward serve" in readme and "ray start" in readme


# ------------------------------------------------------------------------------------------------ reward


def test_reward_module_defaults_and_override(exported, clean_env):
    out, _ = exported
    module = _load_reward_module(out / "reward.py")
    assert module.compute_score is verl.compute_score
    assert os.environ[verl.ENV_CONFIG] == "hybrid" and verl.ENV_URL not in os.environ
    clean_env.setenv(verl.ENV_CONFIG, "answer")  # the environment wins over the export's default
    _load_reward_module(out / "reward.py")
    assert os.environ[verl.ENV_CONFIG] == "answer"


def test_reward_module_scores_like_the_adapter(tmp_path, train_examples, clean_env):
    summary = export_verl(train_examples, tmp_path, reward="answer")
    assert summary["reward"]["config"] == "answer" and "test" not in summary["rows"]
    module = _load_reward_module(tmp_path / "reward.py")
    assert os.environ[verl.ENV_CONFIG] == "answer"
    rows = pq.read_table(tmp_path / "train.parquet").to_pylist()[:4]
    solutions = [NATIVE[(r["extra_info"]["problem_id"], r["extra_info"]["lang"])].solution for r in rows]
    for row, solution in zip(rows, solutions, strict=True):
        kwargs = {"data_source": row["data_source"], "solution_str": solution,
                  "ground_truth": row["reward_model"]["ground_truth"], "extra_info": row["extra_info"]}
        got = module.compute_score(**kwargs)
        assert isinstance(got, dict) and math.isfinite(got["score"]) and got["score"] > 0
        assert got == verl.compute_score(**kwargs)
    batch = module.compute_score(data_sources=[r["data_source"] for r in rows], solution_strs=solutions,
                                 ground_truths=[r["reward_model"]["ground_truth"] for r in rows],
                                 extra_infos=[r["extra_info"] for r in rows])
    assert [b["score"] for b in batch] == [verl.compute_score(data_source="x", solution_str=s,
                                                              ground_truth=r["reward_model"]["ground_truth"],
                                                              extra_info=r["extra_info"])["score"]
                                           for s, r in zip(solutions, rows, strict=True)]


def test_reward_yaml_is_copied_into_the_export(tmp_path, train_examples, clean_env):
    config = tmp_path / "my-reward.yaml"
    config.write_text("preset: answer\n", encoding="utf-8")
    out = tmp_path / "export"
    summary = export_verl(train_examples, out, reward=config)
    assert (out / "reward.yaml").read_text() == config.read_text() and summary["reward"]["name"] == "answer"
    module = _load_reward_module(out / "reward.py")
    assert os.environ[verl.ENV_CONFIG] == str(out / "reward.yaml")
    row = pq.read_table(out / "train.parquet").to_pylist()[0]
    solution = NATIVE[(row["extra_info"]["problem_id"], row["extra_info"]["lang"])].solution
    score = module.compute_score(data_source="pivotrl", solution_str=solution,
                                 ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
    assert set(score) == {"score", "answer_agreement", "gate"} and score["score"] == 1.0
    assert '${PIVOTRL_REWARD_CONFIG:-$EXPORT_DIR/reward.yaml}' in (out / "run_grpo.sh").read_text()
    with pytest.raises(ValueError, match="reward"):
        export_verl(train_examples, tmp_path / "missing", reward=tmp_path / "nope.yaml")


def test_exported_question_reaches_the_reward(tmp_path, train_examples, clean_env):
    """The question an exported row carries in extra_info is the column every reward component receives."""
    import yaml
    from question_recorder import recording_questions

    with recording_questions() as rec:
        config = tmp_path / "records.yaml"
        config.write_text(yaml.safe_dump(rec.config(answer_agreement=1.0)), encoding="utf-8")
        export_verl(train_examples, tmp_path / "export", reward=config)
        module = _load_reward_module(tmp_path / "export" / "reward.py")
        rows = pq.read_table(tmp_path / "export" / "train.parquet").to_pylist()[:3]
        natives = [NATIVE[(r["extra_info"]["problem_id"], r["extra_info"]["lang"])] for r in rows]
        scores = module.compute_score(data_sources=[r["data_source"] for r in rows],
                                      solution_strs=[p.solution for p in natives],
                                      ground_truths=[r["reward_model"]["ground_truth"] for r in rows],
                                      extra_infos=[r["extra_info"] for r in rows])
        assert [s["answer_agreement"] for s in scores] == [1.0] * 3
        assert rec.seen[-1] == [p.question for p in natives] and all(rec.seen[-1])


def test_reward_module_through_a_reward_server(tmp_path, train_examples, clean_env):
    server = RewardServer("answer", port=0)
    server.start()
    try:
        export_verl(train_examples, tmp_path, reward="answer", reward_url=server.url)
        module = _load_reward_module(tmp_path / "reward.py")
        assert os.environ[verl.ENV_URL] == server.url
        row = pq.read_table(tmp_path / "train.parquet").to_pylist()[0]
        solution = NATIVE[(row["extra_info"]["problem_id"], row["extra_info"]["lang"])].solution
        remote = module.compute_score(data_source="pivotrl", solution_str=solution,
                                      ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
        assert server.health()["served"] >= 1
        clean_env.delenv(verl.ENV_URL)
        verl.reset_cache()
        local = verl.compute_score(data_source="pivotrl", solution_str=solution,
                                   ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
        assert remote["score"] == pytest.approx(local["score"]) and math.isfinite(remote["score"])
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------- scripts


def _stub_python(tmp_path: Path) -> dict[str, str]:
    """A PATH whose python3 prints verl's arguments instead of training (other python3 calls pass through)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"
    stub.write_text('#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "verl.trainer.main_ppo" ]; then\n'
                    '    shift 2; for a in "$@"; do printf "%s\\n" "$a"; done; exit 0\nfi\n'
                    f'exec {sys.executable} "$@"\n')
    stub.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = {k: v for k, v in os.environ.items() if k not in (verl.ENV_CONFIG, verl.ENV_URL)}
    return {**env, "PATH": path}


def _run(script: Path, env: dict[str, str], *extra: str) -> dict[str, str]:
    result = subprocess.run(["bash", str(script), *extra], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "=" in line and not line.startswith("pivotrl ")]
    return dict(line.split("=", 1) for line in lines)


def test_scripts_parse_and_point_at_the_export(exported, tmp_path):
    out, summary = exported
    env = _stub_python(tmp_path)
    for name, algo in (("run_grpo.sh", "grpo"), ("run_ppo.sh", "gae")):
        script = out / name
        assert script.stat().st_mode & stat.S_IXUSR
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
        text = script.read_text()
        assert "verl 0.5.0" in text and "train.parquet" in text and "test.parquet" in text and "reward.py" in text
        args = _run(script, env, "trainer.total_epochs=2")
        assert args["algorithm.adv_estimator"] == algo
        assert args["data.train_files"] == str(out / "train.parquet")
        assert args["data.val_files"] == str(out / "test.parquet")
        assert args["custom_reward_function.path"] == str(out / "reward.py")
        assert args["custom_reward_function.name"] == "compute_score"
        assert args["data.prompt_key"] == "prompt" and args["actor_rollout_ref.rollout.name"] == "vllm"
        assert args["reward_model.reward_manager"] == "batch"
        assert args["trainer.n_gpus_per_node"] == "8" and args["trainer.nnodes"] == "1"
        assert args["actor_rollout_ref.model.path"] == "Qwen/Qwen2.5-7B-Instruct"
        assert args["trainer.total_epochs"] == "2"  # the extra override comes last and wins in Hydra
        batch = summary["grpo" if algo == "grpo" else "ppo"]
        assert args["data.train_batch_size"] == str(batch["train_batch_size"])
        assert args["actor_rollout_ref.rollout.n"] == str(batch["rollout_n"])
        assert int(args["data.train_batch_size"]) * int(args["actor_rollout_ref.rollout.n"]) % 8 == 0
        assert ("critic.model.path" in args) == (algo == "gae")
        assert args["trainer.val_before_train"] == "True" and args["trainer.test_freq"] == "5"
    assert summary["grpo"]["rollout_n"] == 8 and summary["ppo"]["rollout_n"] == 1


def test_scripts_without_held_out_and_with_overrides(tmp_path, train_examples):
    out = tmp_path / "export"
    export_verl(train_examples, out, reward="answer", data_source_by_lang=True,
                launch=VerlLaunch(model="/models/small", n_gpus=2, rollout_tp=1, rollout_n=4, train_batch_size=16,
                                  ppo_mini_batch_size=8))
    assert not (out / "test.parquet").exists()
    assert {r["data_source"] for r in pq.read_table(out / "train.parquet").to_pylist()} == {
        f"pivotrl/{lang}" for lang in LANGS}  # verl then reports validation metrics per language
    env = {**_stub_python(tmp_path), "N_GPUS_PER_NODE": "4"}
    args = _run(out / "run_grpo.sh", env)
    assert args["data.val_files"] == str(out / "train.parquet")  # verl needs val_files; validation off
    assert args["trainer.val_before_train"] == "False" and args["trainer.test_freq"] == "-1"
    assert args["actor_rollout_ref.model.path"] == "/models/small" and args["trainer.n_gpus_per_node"] == "4"
    assert (args["data.train_batch_size"], args["actor_rollout_ref.actor.ppo_mini_batch_size"]) == ("16", "8")
    assert args["actor_rollout_ref.rollout.n"] == "4"


def test_script_starts_the_reward_server(tmp_path, train_examples):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "export"
    export_verl(train_examples, out, reward="answer", reward_url=f"http://127.0.0.1:{port}",
                launch=VerlLaunch(n_gpus=2, rollout_tp=1))
    env = {**_stub_python(tmp_path), "START_REWARD_SERVER": "1"}
    result = subprocess.run(["bash", str(out / "run_grpo.sh")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"reward 'answer' at http://127.0.0.1:{port}" in result.stdout + result.stderr
    deadline = time.monotonic() + 10
    while True:  # the script stops the server on exit
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        assert time.monotonic() < deadline, "the reward server outlived the launch script"
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_refused(tmp_path, train_examples, held_out):
    with pytest.raises(ValueError, match="empty"):
        export_verl([], tmp_path / "a")
    with pytest.raises(ValueError, match="held_out is empty"):
        export_verl(train_examples, tmp_path / "b", held_out=[])
    with pytest.raises(ValueError, match="both in examples and held_out"):
        export_verl(train_examples, tmp_path / "c", held_out=train_examples[:1])
    with pytest.raises(TypeError, match="not a pivotrl.pivot.train_set.TrainExample"):
        export_verl([{"id": "x"}], tmp_path / "d")
    with pytest.raises(ValueError, match="appears twice"):
        export_verl(train_examples[:1] * 2, tmp_path / "e")
    bad = replace(train_examples[0], reference=" ")
    with pytest.raises(ValueError, match="no reference"):
        export_verl([bad], tmp_path / "f")
    with pytest.raises(ValueError, match="reward"):
        export_verl(train_examples, tmp_path / "g", reward="no-such-preset")
    with pytest.raises(ValueError, match="too few for 8 GPUs"):
        export_verl(train_examples[:3], tmp_path / "h", launch=VerlLaunch(rollout_n=2))  # 3 prompts x 2 on 8 GPUs
    with pytest.raises(ValueError, match="reward_url"):
        export_verl(train_examples, tmp_path / "i", reward_url="localhost:8000")
    assert not any((tmp_path / d).exists() for d in "abcdefghi")  # nothing written on refusal


def test_multiple_choice_needs_its_options(tmp_path):
    example = TrainExample("mc-1", "de", "Welche Zahl ist gerade?", "Which number is even?",
                           "2 is even. The answer is B.", "B", "choice", "parallel:toy", "gold", "gold")
    with pytest.raises(ValueError, match="options are unknown"):
        export_verl([example], tmp_path / "a", launch=VerlLaunch(n_gpus=1, rollout_tp=1))
    assert not (tmp_path / "a").exists()
    options = Problem("mc-1", "de", "Welche Zahl ist gerade?", "B", "toy", answer_type="choice",
                      choices=("drei", "zwei", "fünf"))
    export_verl([example], tmp_path / "b", launch=VerlLaunch(n_gpus=1, rollout_tp=1), problems=[options])
    row = pq.read_table(tmp_path / "b" / "train.parquet").to_pylist()[0]
    assert "B. zwei" in row["prompt"][0]["content"] and row["extra_info"]["answer_type"] == "choice"
    assert row["reward_model"]["ground_truth"] == "B"
