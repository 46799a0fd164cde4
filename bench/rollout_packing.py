"""GRPO steps on a CPU with and without packed rollout weights (``packed_rollouts``), side by side.

The same ``pivotrl train`` run twice in separate processes, one after the other, differing only in
``packed_rollouts``: the study's settings by default (the packaged Qwen2.5-0.5B policy with LoRA on every linear
layer, MSVAMP in 7 languages against the 1.5B pivot's references, 2 prompts x 4 answers of at most 256 tokens,
T 0.7, the ``hybrid`` reward). Reported per run: TRL's ``step_time`` per step (rollout sampling, reward and
update together), the mean over the steps after the first, and what the runs sampled (mean completion length
and reward per step: equal when the packed weights sampled the very same answers).

Run (about 2 x steps x 2 minutes; ``--refs`` is a ``pivotrl pivot`` folder, e.g. the study's):
    python bench/rollout_packing.py --refs runs/reproduce/qwen/pivot [--steps 3] [--model qwen0.5b]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(args: argparse.Namespace, packed: bool, out: Path) -> dict:
    sets = {
        "model": args.model, "task": args.task, "langs": args.langs, "refs": args.refs, "reward": args.reward,
        "packed_rollouts": str(packed).lower(), "eval_n": 0, "seed": 0,
        "lora": '{"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}',
        "trl.num_generations": 4, "trl.per_device_train_batch_size": 8, "trl.max_completion_length": args.tokens,
        "trl.learning_rate": "0.00005", "trl.beta": 0.0, "trl.loss_type": "dapo", "trl.temperature": 0.7,
        "trl.gradient_checkpointing": "false", "trl.save_steps": 1000, "trl.logging_steps": 1,
    }
    cmd = [sys.executable, "-m", "pivotrl.cli", "train", "--max-steps", str(args.steps), "--output-dir", str(out),
           "--no-progress"]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    if args.data_dir:
        cmd += ["--set", f"data_dir={args.data_dir}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        which = "packed" if packed else "plain"
        sys.exit(f"pivotrl train failed ({which}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [r for r in rows if "step_time" in r]
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    return {"packed": packed, "wall": wall, "step_time": [r["step_time"] for r in steps],
            "length": [r.get("completions/mean_length") for r in steps], "reward": [r.get("reward") for r in steps],
            "peak_mb_so_far": child}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen0.5b")
    ap.add_argument("--task", default="msvamp")
    ap.add_argument("--langs", default="de,fr,ru,zh,ja,th,sw")
    ap.add_argument("--refs", required=True, help="a pivotrl pivot folder with references for the task")
    ap.add_argument("--reward", default="hybrid")
    ap.add_argument("--tokens", type=int, default=256, help="max_completion_length")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("PIVOTRL_DATA_DIR"))
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (the first step is left out of the mean)")

    results = []
    with tempfile.TemporaryDirectory(prefix="pivotrl-bench-rollouts-") as tmp:
        for packed in (False, True):
            results.append(train(args, packed, Path(tmp) / ("packed" if packed else "plain")))
    plain = statistics.fmean(results[0]["step_time"][1:])
    print(f"\n{args.steps} GRPO steps of {args.model} (LoRA), {args.task} in {args.langs}, 2 prompts x 4 answers, "
          f"<= {args.tokens} tokens, reward {args.reward}\n")
    print("| rollouts | step s (each) | mean step s, steps 2+ | vs plain | mean completion length per step | "
          "reward per step | wall s |")
    print("|---|---|---:|---:|---|---|---:|")
    for r in results:
        mean = statistics.fmean(r["step_time"][1:])
        print(f"| {'packed' if r['packed'] else 'plain'} | {', '.join(f'{t:.1f}' for t in r['step_time'])} | "
              f"{mean:.1f} | {plain / mean:.2f}x | {', '.join(f'{x:.1f}' for x in r['length'])} | "
              f"{', '.join(f'{x:.3f}' for x in r['reward'])} | {r['wall']:.0f} |")
    same = results[0]["length"] == results[1]["length"] and results[0]["reward"] == results[1]["reward"]
    print(f"\nsampled the same answers (lengths and rewards equal at every step): {'yes' if same else 'no'}")
    print(f"peak memory (max RSS): plain run {results[0]['peak_mb_so_far']:.0f} MB; the larger of the two runs "
          f"{results[1]['peak_mb_so_far']:.0f} MB")


if __name__ == "__main__":
    main()
