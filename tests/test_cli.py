"""The `pivotrl` command: data list/show/export, languages, models, and the errors every command gives."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotrl.cli import app

runner = CliRunner()


@pytest.fixture
def env(data_dir, monkeypatch):
    monkeypatch.setenv("PIVOTRL_DATA_DIR", str(data_dir))
    monkeypatch.setenv("COLUMNS", "200")


def test_data_list_shows_every_set(env, data_dir):
    result = runner.invoke(app, ["data", "list"])
    assert result.exit_code == 0, result.output
    for name in ("synthetic", "mgsm", "msvamp", "gsm8k", "mmlu_prox", "mmlu_prox_lite"):
        assert name in result.output
    assert str(data_dir / "mgsm") in result.output and "250" in result.output and "1000" in result.output
    assert "hub: li-lab/MMLU-ProX" in result.output


def test_data_show_real_problems(env):
    result = runner.invoke(app, ["data", "show", "mgsm", "--lang", "de", "-n", "3"])
    assert result.exit_code == 0, result.output
    assert "Janets Enten legen 16 Eier" in result.output
    assert result.output.count("mgsm-00") == 3 and "answer: 18" in result.output
    result = runner.invoke(app, ["data", "show", "msvamp", "--lang", "zh", "-n", "2", "--json"])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["id"] for r in rows] == ["msvamp-0000", "msvamp-0001"] and rows[0]["lang"] == "zh"


def test_data_export_round_trip(env, tmp_path):
    out = tmp_path / "train.jsonl"
    result = runner.invoke(app, ["data", "export", "msvamp", "--langs", "de,sw", "--split", "train",
                                 "-n", "20", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40 and {r["lang"] for r in rows} == {"de", "sw"}
    parquet = tmp_path / "syn.parquet"
    result = runner.invoke(app, ["data", "export", "synthetic", "-n", "5", "-o", str(parquet)])
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    assert table.num_rows == 5 * len(set(table.column("lang").to_pylist())) and "question_en" in table.column_names


def test_errors_are_clear(env):
    result = runner.invoke(app, ["data", "show", "mgsn"])
    assert result.exit_code == 1 and "unknown problem set 'mgsn'" in result.output
    result = runner.invoke(app, ["data", "show", "mgsm", "--lang", "xx"])
    assert result.exit_code == 1 and "unknown language 'xx'" in result.output
    result = runner.invoke(app, ["train", "--config", "x"])
    assert result.exit_code == 1 and "recipe x does not exist" in result.output
    result = runner.invoke(app, ["train", "--set", "algorithm=ppo"])
    assert result.exit_code == 1 and "algorithm must be one of grpo, rloo" in result.output
    result = runner.invoke(app, ["reward", "show", "--reward", "nope"])
    assert result.exit_code == 1 and "neither a preset" in result.output


def test_languages_table(env):
    result = runner.invoke(app, ["languages"])
    assert result.exit_code == 0
    assert "29 languages" in result.output and "Die Antwort lautet 42." in result.output


def test_installed_entry_point_runs(data_dir):
    """The console script, in a real subprocess, as a user runs it."""
    exe = os.path.join(os.path.dirname(sys.executable), "pivotrl")
    result = subprocess.run([exe, "data", "show", "mgsm", "--lang", "ja", "-n", "1", "--json",
                             "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["lang"] == "ja" and row["answer"] == "18"


def test_export_verl_from_a_recipe(env, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "verl"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "cpu" / "pbrlsvr-hybrid.yaml"
    result = runner.invoke(app, ["export", "verl", "-c", str(recipe), "--set", "langs=de,sw",
                                 "--set", "n_train=6", "-o", str(out), "--n-gpus", "2"])
    assert result.exit_code == 0, result.output
    train = pq.read_table(out / "train.parquet").to_pylist()
    assert len(train) == 12 and {r["extra_info"]["lang"] for r in train} == {"de", "sw"}
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert test and not {r["extra_info"]["problem_id"] for r in test} & {r["extra_info"]["problem_id"] for r in train}
    assert (out / "reward.py").is_file() and (out / "run_grpo.sh").is_file()



def test_export_verl_options_come_from_the_launch_settings(env, tmp_path):
    """Every VerlLaunch field is an option of `export verl` with the field's help; values reach the export."""
    import dataclasses

    from pivotrl.config_fields import field_help
    from pivotrl.train.verl_launch import VerlLaunch

    shown = runner.invoke(app, ["export", "verl", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    for f in dataclasses.fields(VerlLaunch):
        assert "--" + f.name.replace("_", "-") in shown.output, f.name
    assert field_help(VerlLaunch)["rollout_tp"].split(" (")[0] in shown.output

    out = tmp_path / "verl"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "cpu" / "pbrlsvr-hybrid.yaml"
    result = runner.invoke(app, ["export", "verl", "-c", str(recipe), "--set", "langs=de", "--set", "n_train=8",
                                 "-o", str(out), "--n-gpus", "4", "--rollout-tp", "1", "--rollout-n", "4",
                                 "--actor-lr", "3e-6", "--logger", "console", "--logger", "wandb",
                                 "--experiment-name", "trial"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "export.json").read_text())
    assert (summary["n_gpus"], summary["rollout_tp"], summary["grpo"]["rollout_n"]) == (4, 1, 4)
    assert summary["actor_lr"] == 3e-6 and summary["logger"] == ["console", "wandb"]
    script = (out / "run_grpo.sh").read_text()
    assert 'LOGGER="${LOGGER:-[console,wandb]}"' in script and "trial-grpo" in script
    refused = runner.invoke(app, ["export", "verl", "-c", str(recipe), "--set", "langs=de", "-o", str(tmp_path / "x"),
                                  "--n-gpus", "3", "--rollout-tp", "2"])
    assert refused.exit_code == 1 and "rollout_tp=2 must divide n_gpus=3" in refused.output


def test_train_help_lists_every_recipe_field():
    import dataclasses

    from pivotrl.config_fields import field_help
    from pivotrl.train.config import TrainConfig

    shown = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    helps = field_help(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        assert f"{f.name}: " in shown.output, f.name
        assert helps[f.name] and helps[f.name].split(" (")[0][:30] in shown.output

def _problem_file(path: Path, question_chars: int) -> Path:
    long = {"id": "long-1", "lang": "en", "answer": "7",
            "question": ("Tom has 3 apples and buys 4 more apples at the market. " * (question_chars // 56 + 1))}
    short = {"id": "short-1", "lang": "en", "question": "What is 2 + 3?", "answer": "5"}
    path.write_text(json.dumps(short) + "\n" + json.dumps(long) + "\n", encoding="utf-8")
    return path


def test_data_show_stays_fast_on_a_huge_question(tmp_path):
    # 5 MB in one field took 18 s to lay out (superlinear); the readable view now shows its start
    path = _problem_file(tmp_path / "huge.jsonl", 5_000_000)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pivotrl.cli", "data", "show", str(path), "-n", "2"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 15
    assert "more characters; --json prints all" in " ".join(result.stdout.split())
    assert len(result.stdout) < 20_000


@pytest.mark.model
def test_eval_refuses_a_question_beyond_the_context_naming_it(tmp_path):
    path = _problem_file(tmp_path / "long.jsonl", 100_000)
    result = subprocess.run([sys.executable, "-m", "pivotrl.cli", "eval", "--model", "smollm2", "--task", str(path),
                             "-o", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "Traceback" not in output
    assert "problem long-1 (en)" in output and "does not fit the model's context of 8,192" in output


def test_options_from_a_config_dataclass():
    """options_from: defaults, required fields, a parse hook, and a refused value naming its option."""
    from dataclasses import dataclass

    import typer

    from pivotrl.cli.common import options_from
    from pivotrl.config_fields import setting

    @dataclass
    class Toy:
        name: str = setting(help="A required name.")
        sizes: list[int] | None = setting(None, flags=("--sizes", "-s"), cli_type=str,
                                          parse=lambda text: [int(x) for x in text.split(",")], help="Sizes.")
        k: int = setting(3, help="K.")

    toy = typer.Typer()
    seen = []

    @toy.command()
    @options_from(Toy, "config")
    def go(config: Toy = None) -> None:  # type: ignore[assignment]
        seen.append(config)

    assert runner.invoke(toy, ["--name", "a", "-s", "1,2"]).exit_code == 0
    assert seen[-1] == Toy(name="a", sizes=[1, 2], k=3)
    assert runner.invoke(toy, ["-s", "1"]).exit_code == 2  # --name is required
    refused = runner.invoke(toy, ["--name", "a", "--sizes", "1,x"])
    assert refused.exit_code == 1 and "--sizes '1,x'" in refused.output and len(seen) == 1


def _help(*command: str) -> str:
    shown = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    return shown.output


def test_train_out_is_the_run_folder_and_output_dir_still_works(env, monkeypatch, tmp_path):
    """--out/-o names the run folder as in every command; --output-dir, the old spelling, is a hidden alias."""
    import pivotrl.train.config as train_config
    import pivotrl.train.run as train_run

    seen = []

    def load(path, overrides):
        seen.append(list(overrides))
        raise train_config.TrainConfigError("stop here")

    monkeypatch.setattr(train_config, "load_train_config", load)
    monkeypatch.setattr(train_run, "run_train", lambda *a, **k: pytest.fail("must not train"))
    for flag in ("--out", "-o", "--output-dir"):
        result = runner.invoke(app, ["train", "--set", "seed=3", flag, str(tmp_path / "run"), "--model", "tiny",
                                     "--max-steps", "2"])
        assert result.exit_code == 1 and "stop here" in result.output
        assert seen[-1] == ["seed=3", "model=tiny", f"output_dir={tmp_path / 'run'}", "trl.max_steps=2"]
    runner.invoke(app, ["train", "--langs", "de,zh", "--algorithm", "rft", "--seed", "1", "--reward", "answer"])
    assert seen[-1] == ["langs=de,zh", "reward=answer", "algorithm=rft", "seed=1"]
    runner.invoke(app, ["train"])
    assert seen[-1] == []  # an option left out keeps the recipe's value
    both = runner.invoke(app, ["train", "--out", "a", "--output-dir", "b"])
    assert both.exit_code == 1 and "--out and --output-dir are the same setting" in both.output
    shown = _help("train")
    assert "--out" in shown and "--output-dir" not in shown and "Default: the recipe's, else smollm2" in shown


def test_demo_options_are_the_pipeline_config_and_keep_its_defaults(env, monkeypatch):
    """`pivotrl demo` with no flags runs PipelineConfig() exactly; its flags reach the config's fields."""
    import pivotrl.pipeline as pipeline

    seen = []

    def run(config, **kwargs):
        seen.append(config)
        raise ValueError("stop here")

    monkeypatch.setattr(pipeline, "run_pipeline", run)
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 1 and "stop here" in result.output
    assert seen[-1] == pipeline.PipelineConfig()
    assert (seen[-1].out, seen[-1].model, seen[-1].langs, seen[-1].levels, seen[-1].steps, seen[-1].lora) == (
        "runs/demo", "qwen0.5b", ["de", "fr", "ja"], [1, 2], 10, pipeline.DEMO_LORA)
    runner.invoke(app, ["demo", "-o", "x", "--langs", "en,de,sw", "--task", "msvamp", "--lora-r", "0",
                        "--steps", "3", "--pivot-k", "4", "--labels", "gold"])
    config = seen[-1]
    assert (config.out, config.langs, config.levels, config.lora, config.steps, config.pivot_k, config.labels) == (
        "x", ["de", "sw"], None, None, 3, 4, "gold")
    runner.invoke(app, ["demo", "--lora-r", "8"])
    assert seen[-1].lora == {**pipeline.DEMO_LORA, "r": 8, "lora_alpha": 16}
    for extra, message in ((["--lora-r", "-1"], "--lora-r -1"), (["--labels", "x"], "--labels 'x'"),
                           (["--eval-n", "0"], "--eval-n 0: must be at least 1"), (["--levels", "1,x"], "--levels")):
        refused = runner.invoke(app, ["demo", *extra])
        assert refused.exit_code == 1 and message in refused.output, refused.output
    shown = _help("demo")
    for flag in ("--out", "--pivot-n", "--eval-task", "--lora-r", "--no-progress", "[default: de,fr,ja]"):
        assert flag in shown
    assert "--algorithm" not in shown and "--offline" not in shown and "--trl" not in shown


def test_pivot_and_eval_share_the_server_options(env, monkeypatch):
    """The four server options are one declaration (ServerFields) in `pivot` and `eval`; --base-url still works."""
    import dataclasses

    import pivotrl.pivot.run as pivot_run
    from pivotrl.config_fields import ServerFields, field_help

    for command in ("pivot", "eval"):
        shown = _help(command)
        for f in dataclasses.fields(ServerFields):
            assert "--" + f.name.replace("_", "-") in shown
        assert field_help(ServerFields)["concurrency"] in shown and "--base-url" not in shown
    seen = []

    def run(config, **kwargs):
        seen.append(config)
        raise ValueError("stop here")

    monkeypatch.setattr(pivot_run, "run_pivot", run)
    for flag in ("--endpoint", "--base-url"):
        result = runner.invoke(app, ["pivot", "--pivot", "endpoint", flag, "http://127.0.0.1:9/v1", "--endpoint-model",
                                     "m", "--concurrency", "3"])
        assert result.exit_code == 1 and "stop here" in result.output
        assert seen[-1].endpoint == {"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                     "api_key_env": "OPENAI_API_KEY", "concurrency": 3, "timeout": 300.0,
                                     "deadline": None}
    refused = runner.invoke(app, ["pivot", "--pivot", "endpoint", "--endpoint-model", "m"])
    assert refused.exit_code == 1 and "--pivot endpoint needs --endpoint and --endpoint-model" in refused.output


def test_reward_commands_take_their_options_from_their_configs(env):
    import dataclasses

    from pivotrl.config_fields import field_help
    from pivotrl.rewards.command_configs import AuditConfig, ScoreConfig, ServeConfig

    for command, cls in (("score", ScoreConfig), ("serve", ServeConfig), ("audit", AuditConfig)):
        shown = _help("reward", command)
        for f in dataclasses.fields(cls):
            flags = f.metadata["flags"] or ("--" + f.name.replace("_", "-"),)
            assert flags[0] in shown, (command, f.name)
            assert field_help(cls)[f.name][:30] in " ".join(shown.split()), (command, f.name)
    assert "PIVOTRL_REWARD_API_KEY" in _help("reward", "serve")
    refused = runner.invoke(app, ["reward", "score", "--response", "Die Antwort lautet 5.", "-r", "answer"])
    assert refused.exit_code == 1 and "--response needs --reference" in refused.output


def test_reward_score_passes_each_line_question_to_the_reward(env, tmp_path):
    import yaml
    from question_recorder import recording_questions

    item = {"response": "Die Antwort lautet 4.", "reference": "2 + 2 = 4. The answer is 4.", "lang": "de"}
    lines = tmp_path / "items.jsonl"
    lines.write_text(json.dumps({**item, "question": "Was ist 2 + 2?"}) + "\n" + json.dumps(item) + "\n",
                     encoding="utf-8")
    with recording_questions() as rec:
        config = tmp_path / "records.yaml"
        config.write_text(yaml.safe_dump(rec.config(answer_agreement=1.0)), encoding="utf-8")
        out = tmp_path / "scores.jsonl"
        result = runner.invoke(app, ["reward", "score", "-i", str(lines), "-o", str(out), "-r", str(config)])
        assert result.exit_code == 0, result.output
        assert rec.seen[-1] == ["Was ist 2 + 2?", None]
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [r.get("question") for r in rows] == ["Was ist 2 + 2?", None] and rows[0]["score"] == 1.0
        lines.write_text(json.dumps(item) + "\n" + json.dumps({**item, "question": 4}) + "\n", encoding="utf-8")
        refused = runner.invoke(app, ["reward", "score", "-i", str(lines), "-r", str(config)])
        assert refused.exit_code == 1 and "line 2.question: expected a string or null" in " ".join(
            refused.output.split())
