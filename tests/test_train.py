"""`pivotrl train`: recipes and overrides, the training rows, and a real (tiny) GRPO run killed and resumed.

The policy in the run tests is a tiny random-weight Llama (plumbing: checkpoints, resume, data order, the final
folder); learning is measured in docs/RESULTS.md with the packaged SmolLM2, not here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivotrl.train.config import TrainConfig, TrainConfigError, apply_overrides, load_train_config
from pivotrl.train.checkpoints import last_checkpoint as _last_checkpoint
from pivotrl.train.run import build_rows

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_every_recipe_in_the_repo_loads():
    paths = sorted(RECIPES.glob("*/*.yaml"))
    assert len(paths) >= 8
    for path in paths:
        if path.name.startswith("accelerate"):
            continue
        config = load_train_config(path)
        assert config.langs and config.algorithm in ("grpo", "rloo", "dpo", "rft")


def test_overrides_are_dotted_and_typed():
    data = apply_overrides({"reward": "hybrid", "trl": {"beta": 0.0}},
                           ["trl.max_steps=30", "reward.weights.answer_format=0.5", "langs=de,zh", "lora.r=8"])
    assert data["trl"] == {"beta": 0.0, "max_steps": 30}
    assert data["reward"] == {"preset": "hybrid", "weights": {"answer_format": 0.5}}
    assert data["langs"] == ["de", "zh"] and data["lora"] == {"r": 8}


@pytest.mark.parametrize("overrides, message", [
    (["algorithm=ppo"], "algorithm must be one of grpo, rloo"),
    (["langs=de,xx"], "unknown language 'xx'"),
    (["colour=blue"], "unknown field(s) colour"),
    (["trl.max_steps"], "expected key=value"),
    (["eval_every=-1"], "eval_every must be a non-negative integer"),
    # types, checked on load (before any model), with the field, the value and what was expected
    (["langs=3"], "langs must be list[str], got 3 (int)"),
    (["eval_n=2.5"], "eval_n must be an integer, got 2.5"),
    (["lora=7"], "lora must be dict"),
    (["trl.max_steps=ten"], "trl.max_steps must be an integer (GRPOConfig), got 'ten'"),
    (["trl.learning_rat=1e-5"], "trl.learning_rat is not a field of TRL's GRPOConfig; did you mean learning_rate?"),
    (["trl.bf16=yes please"], "trl.bf16 must be bool | None"),
    (["algorithm=rloo", "trl.num_generations=four"], "trl.num_generations must be"),
    # weights against the component's kind
    (["reward.weights.answer_agreement=-1"], "answer_agreement is a credit component"),
    (["reward.weights.repetition_guard=-0.5"], "repetition_guard is a guard"),
])
def test_bad_recipes_name_the_field(overrides, message):
    with pytest.raises(TrainConfigError, match=re.escape(message)):
        load_train_config(None, overrides)


def test_recipe_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes("model: smollm2\nlangs: [de, zh]\ntrl:\n  max_steps: 3\n".encode("utf-8-sig"))
    config = load_train_config(path)
    assert config.langs == ["de", "zh"] and config.trl == {"max_steps": 3}


def test_bad_recipe_file_is_named(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(TrainConfigError, match=str(path)):
        load_train_config(path)


def test_rows_pair_target_prompts_with_english_references(tmp_path):
    config = load_train_config(None, [f"output_dir={tmp_path}", "langs=de,zh", "levels=[1]", "n_train=5"])
    rows, summary = build_rows(config, progress=False)
    assert summary["rows"] == len(rows) == 10 and summary["by_lang"] == {"de": 5, "zh": 5}
    for row in rows:
        assert row["prompt"][0]["role"] == "user" and row["question"] in row["prompt"][0]["content"]
        assert row["reference"].rstrip().endswith(f"The answer is {row['reference_answer']}.")
    from pivotrl.data.splits import split_of

    assert all(split_of(r["problem_id"]) == "train" for r in rows)  # held-out problems never train


def test_gold_labels_use_the_target_language_answers(tmp_path):
    config = load_train_config(None, [f"output_dir={tmp_path}", "langs=sw", "labels=gold", "n_train=3"])
    rows, summary = build_rows(config, progress=False)
    assert summary["source"] == "gold target-language answers" and len(rows) == 3
    assert all(r["lang"] == "sw" and r["reference_answer"] for r in rows)


def _recipe(tmp_path: Path, model: Path, max_steps: int) -> list[str]:
    return ["--set", f"model={model}", "--set", "langs=de,zh", "--set", "levels=[1]", "--set", "n_train=4",
            "--set", "reward=answer", "--set", "eval_n=1", "--set", "eval_max_new_tokens=8",
            "--set", "trl.max_completion_length=8", "--set", "trl.num_generations=2",
            "--set", "trl.per_device_train_batch_size=4", "--set", "trl.save_steps=1",
            "--set", "trl.gradient_checkpointing=false",
            "--max-steps", str(max_steps), "--output-dir", str(tmp_path / "run"), "--no-progress"]


def _train(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pivotrl.cli", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_resume_skips_checkpoints_that_a_kill_cut_short(tmp_path):
    # checkpoint-2 saved whole; checkpoint-3 killed before its trainer state; checkpoint-10 killed mid-write
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "model.safetensors").write_bytes(b"\0" * 16)
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 1')
    (tmp_path / "checkpoint-11").write_text("a file, not a checkpoint folder")
    assert _last_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 10}')
    assert _last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert _last_checkpoint(tmp_path / "missing") is None


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_step_count_and_saves_a_loadable_model(tmp_path, tiny_folder):
    run = tmp_path / "run"
    # 1) start a 16-step run and SIGKILL it as soon as its second checkpoint exists
    proc = _train(_recipe(tmp_path, tiny_folder, 16))
    deadline = time.time() + 240
    while time.time() < deadline and not (run / "checkpoint-2" / "trainer_state.json").exists():
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run / "checkpoint-2").is_dir() and not (run / "final").exists()

    # 2) without --resume the run folder is protected
    again = _train(_recipe(tmp_path, tiny_folder, 16))
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 1 and "pass --resume" in out

    # 3) --resume continues from the last checkpoint to step 16 and saves the final model
    resumed = _train([*_recipe(tmp_path, tiny_folder, 16), "--resume"])
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    state = json.loads((run / "checkpoint-16" / "trainer_state.json").read_text())
    assert state["global_step"] == 16
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from"].startswith("checkpoint-") and summary["steps"] == 16
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train_steps = sorted({entry["step"] for entry in logged if "loss" in entry})
    assert train_steps == list(range(1, 17))  # every step logged, the ones after the kill by the resumed run
    # ... once each, in order: the steps logged after checkpoint-2 by the killed run were cut from the log
    assert [entry["step"] for entry in logged if "loss" in entry] == train_steps
    assert any("eval/non_en_accuracy" in entry for entry in logged)  # the held-out evaluation at the end
    # each step logs, per language, the share of answers cut at the budget and their length (pivotrl's engine
    # sampled them: the default on a CPU); an 8-token budget cuts the random model's rambling answers
    rows = [entry for entry in logged if "loss" in entry]
    seen: set[str] = set()
    for entry in rows:  # each step logs the languages its prompts were in
        langs = {key.rsplit("/", 1)[1] for key in entry if key.startswith("completions/cut_by_lang/")}
        assert langs and langs <= {"de", "zh"}, entry
        assert all(0 < entry[f"completions/length_by_lang/{code}"] <= 8 for code in langs)
        seen |= langs
    assert seen == {"de", "zh"}
    assert sum(entry.get("completions/cut_by_lang/de", 0) + entry.get("completions/cut_by_lang/zh", 0)
               for entry in rows) > 0

    # 4) the final folder is a normal transformers model that `pivotrl eval` loads
    from pivotrl.models import load_model

    loaded = load_model(str(run / "final"))
    assert loaded.source == "folder" and loaded.model.config.num_hidden_layers == 2


@pytest.mark.slow
def test_two_process_accelerate_run_gathers_both_processes(tmp_path, tiny_folder):
    """The same command under `accelerate launch` with 2 CPU processes: each process generates and scores its
    own completions, TRL gathers them (twice the tokens of a 1-process run of the same recipe per step), and
    only the main process writes the log and the final model."""
    def train(processes: int) -> list[dict]:
        run = tmp_path / f"run-{processes}"
        args = ["--set", f"model={tiny_folder}", "--set", "langs=de,zh", "--set", "levels=[1]",
                "--set", "n_train=4", "--set", "reward=answer", "--set", "eval_n=0",
                "--set", "trl.max_completion_length=8", "--set", "trl.num_generations=2",
                "--set", "trl.per_device_train_batch_size=2", "--set", "trl.gradient_checkpointing=false",
                "--set", "trl.save_steps=100", "--max-steps", "2", "-o", str(run), "--no-progress"]
        accelerate = Path(sys.executable).with_name("accelerate")
        # `--cpu` would pick accelerate's single-process launcher; `--multi_gpu` is its torchrun launcher, which
        # with TrainingArguments(use_cpu=True) (pivotrl's default without CUDA) runs gloo MULTI_CPU processes
        launcher = ([str(accelerate), "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines",
                     "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m"] if processes > 1
                    else [sys.executable, "-m"])
        done = subprocess.run([*launcher, "pivotrl.cli", "train", *args], capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        assert json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
        assert (run / "final" / "config.json").is_file()
        logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        return [entry for entry in logged if "loss" in entry]

    two, one = train(2), train(1)
    assert [entry["step"] for entry in two] == [1, 2]  # one log line per step: only the main process writes
    for entry in two:
        assert any(key.startswith("reward_by_lang/") for key in entry)
        assert entry["completions/mean_length"] <= 8
    # every completion is 8 tokens (random weights never stop): the gathered token count covers 2x the prompts
    assert two[-1]["num_tokens"] > 1.5 * one[-1]["num_tokens"]


def test_resume_accepts_a_recipe_from_before_a_new_field_only_at_its_default(tmp_path):
    import yaml

    from pivotrl.train.run import TrainError, _check_recipe

    config = TrainConfig(output_dir=str(tmp_path))
    older = config.to_dict()
    del older["packed_rollouts"]  # written by a pivotrl that did not have the field yet
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(older))
    _check_recipe(config, tmp_path, resume=True)  # the default: the same run
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(older))
    with pytest.raises(TrainError, match="packed_rollouts"):
        _check_recipe(TrainConfig(output_dir=str(tmp_path), packed_rollouts=False), tmp_path, resume=True)


def test_the_log_is_cut_back_to_the_checkpoint_a_run_resumes_from(tmp_path):
    from pivotrl.train.checkpoints import checkpoint_step, cut_log
    from pivotrl.train.offline import _logged_before

    log = tmp_path / "log.jsonl"
    # killed after step 3 with checkpoint-2 saved, the last line torn by the kill
    log.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "lo')
    assert checkpoint_step(tmp_path / "checkpoint-2") == 2 and checkpoint_step(None) == 0
    assert cut_log(log, lambda e: e["step"] <= 2) == 2
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
    assert cut_log(log, lambda e: e["step"] <= 2) == 0 and not (tmp_path / "log.jsonl.tmp").exists()
    assert cut_log(tmp_path / "missing.jsonl", lambda e: True) == 0
    # an offline run resuming round 2 with its trainer at checkpoint 3 (run step 10 + 3): round 1 stays whole,
    # round 2 keeps its sampling line and its training up to the checkpoint; its evaluation and round 3 go
    lines = [{"step": 0, "round": 1, "phase": "sampling"}, {"step": 10, "round": 1, "phase": "training"},
             {"step": 10, "round": 1, "phase": "eval"}, {"step": 10, "round": 2, "phase": "sampling"},
             {"step": 13, "round": 2, "phase": "training"}, {"step": 14, "round": 2, "phase": "training"},
             {"step": 14, "round": 2, "phase": "eval"}, {"step": 14, "round": 3, "phase": "sampling"}]
    assert [_logged_before(e, 2, 13) for e in lines] == [True, True, True, True, True, False, False, False]
