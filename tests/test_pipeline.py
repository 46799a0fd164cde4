"""`pivotrl demo` (the whole pipeline) and the level filter it relies on.

The pipeline test runs the real command in a subprocess with a tiny random-weight Llama as policy and the gold
pivot: plumbing only (stages, files, resume, report). The packaged SmolLM2 run and its figures are in the
README and docs/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from pivotrl.data import DataError, load_problems


def test_levels_keep_only_those_synthetic_levels_in_every_split():
    for split in ("train", "held-out"):
        problems = load_problems("synthetic", ["en", "de"], split=split, levels=[1, 2])
        assert problems and {p.meta["level"] for p in problems} == {1, 2}
    first = load_problems("synthetic", ["en"], levels=[3], n=5)
    assert len(first) == 5 and all(p.meta["level"] == 3 for p in first)
    with pytest.raises(DataError, match="only applies to the synthetic set"):
        load_problems("mgsm", ["en"], levels=[1])


def _demo(tmp_path, tiny_folder, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "pivotrl.cli", "demo", "-o", str(tmp_path / "demo"), "--model", str(tiny_folder),
            "--pivot", "gold", "--langs", "de,zh", "--steps", "2", "--pivot-n", "4", "--eval-n", "2",
            "--no-progress", *extra]
    return subprocess.run(args, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_demo_runs_every_stage_writes_the_report_and_continues_a_finished_run(tmp_path, tiny_folder):
    proc = _demo(tmp_path, tiny_folder)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "demo"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["pivot"]["by_status"] == {"gold": 4}  # gold pivot: every reference is a gold solution
    assert summary["train"]["steps"] == 2 and (run / "train" / "final" / "config.json").is_file()
    for stage in ("base", "trained"):
        metrics = json.loads((run / "eval" / stage / "metrics.json").read_text())
        assert list(metrics["languages"]) == ["en", "de", "zh"]
        assert all(m["problems"] == 2 for m in metrics["languages"].values())
    report = (run / "report" / "report.md").read_text()
    assert "| language | base | trained | trained - base |" in report
    assert "## Training" in report and "2 steps" in report
    # per trained language: its reward, the share of sampled answers cut at the budget, their mean length
    table = [line for line in report.splitlines() if line.startswith(("| de |", "| zh |"))
             and line.count("->") == 3]
    assert 1 <= len(table) <= 2, report  # the languages its 2 steps sampled
    # the demo prints its English gap rounded
    assert re.search(r"English gap \(points\): -?\d+\.\d -> -?\d+\.\d;", proc.stdout.replace("\n", " "))
    for png in ("accuracy.png", "fidelity.png", "english_gap.png", "training_reward.png"):
        assert (run / "report" / png).stat().st_size > 1000
    assert str(run / "report" / "report.md") in proc.stdout.replace("\n", "")

    # the same command again finds every stage done: nothing is trained or generated twice
    log_lines = (run / "train" / "log.jsonl").read_text()
    again = _demo(tmp_path, tiny_folder)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (run / "train" / "log.jsonl").read_text() == log_lines
    assert json.loads((run / "summary.json").read_text())["seconds"]["train"] < summary["seconds"]["train"]


def test_demo_rejects_bad_flags_with_the_flag_named(tmp_path):
    for extra, message in ((["--langs", "en"], "--langs"), (["--langs", "xx"], "--langs"),
                           (["--steps", "0"], "--steps")):
        proc = subprocess.run([sys.executable, "-m", "pivotrl.cli", "demo", "-o", str(tmp_path / "d"), *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr


@pytest.mark.slow
def test_demo_flags_switch_to_msvamp_training_and_mgsm_evaluation(tmp_path, tiny_folder):
    from pivotrl.data import resolve_data_dir

    if resolve_data_dir(None) is None:
        pytest.skip("needs the benchmark files ($PIVOTRL_DATA_DIR)")
    proc = _demo(tmp_path, tiny_folder, "--task", "msvamp", "--eval-task", "mgsm", "--steps", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "demo"
    rows = [json.loads(line) for line in (run / "train" / "train_set.jsonl").read_text().splitlines()]
    assert {r["problem_id"].split("-")[0] for r in rows} == {"msvamp"} and {r["lang"] for r in rows} == {"de", "zh"}
    metrics = json.loads((run / "eval" / "trained" / "metrics.json").read_text())
    assert metrics["run"]["task"] == "mgsm" and list(metrics["languages"]) == ["en", "de", "zh"]


def test_the_pipeline_builds_an_offline_recipe_without_grpo_settings(tmp_path):
    from pathlib import Path

    from pivotrl.pipeline import PipelineConfig, train_config

    online = train_config(PipelineConfig(steps=7), tmp_path / "grpo", None)
    assert online.algorithm == "grpo" and online.trl["max_steps"] == 7 and "num_generations" in online.trl
    offline = train_config(PipelineConfig(algorithm="rft", offline={"rounds": 2, "samples_per_prompt": 3},
                                          trl={"learning_rate": 5e-5}, labels="gold", reward="answer"),
                           tmp_path / "rft", None)
    # the round fields reach the recipe, and GRPO's TRL defaults (CPU_TRL, steps) do not leak into SFT's config
    assert offline.algorithm == "rft" and offline.offline("rounds") == 2 and offline.offline("samples_per_prompt") == 3
    assert offline.trl == {"learning_rate": 5e-5} and Path(offline.output_dir) == tmp_path / "rft"
