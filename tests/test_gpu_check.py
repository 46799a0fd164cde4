"""bench/gpu_check.py on the CPU with tiny shapes: the same script the GPU machine runs, end to end (a random
policy built from a config, `pivotrl train` with the hybrid reward, `pivotrl eval`), so it cannot rot between
the rare runs on a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_with_tiny_shapes(tmp_path, tiny_folder):
    out = tmp_path / "check"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--shape", "tiny", "--tokenizer",
                           str(tiny_folder), "--steps", "2", "--rewards", "hybrid", "--encoder", "random",
                           "--device", "cpu", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    assert result["policy"]["device"] == "cpu" and result["policy"]["dtype"] == "float32"
    assert result["policy"]["parameters"] < 1_000_000
    (train,) = result["train"]
    assert train["reward"] == "hybrid" and train["steps"] == 2 and train["completions_per_step"] == 4
    assert train["encoder"] == f"st:{out / 'encoder' / 'st'}"  # the GPU machine's encoder: random weights
    # the reward's time is measured inside the step: a positive part of it
    assert 0 < train["reward_seconds"] < train["step_seconds"]
    assert 0 < train["reward_share"] < 1
    ev = result["eval"]
    assert ev["answers"] == 10 and ev["new_tokens"] > 0 and ev["tokens_per_second"] > 0 and ev["dtype"] == "float32"
    assert "| train (GRPO, 2 steps) | hybrid |" in done.stdout


def test_gpu_check_refuses_a_missing_tokenizer(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--tokenizer",
                           str(tmp_path / "nothing"), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--tokenizer: a folder with tokenizer files is needed" in done.stderr
    assert not (tmp_path / "out").exists()
