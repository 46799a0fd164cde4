"""Seconds per GRPO step of the reproduction's training (Qwen2.5-0.5B policy, LoRA on every linear layer, two
MSVAMP prompts x 4 sampled answers of at most 128 tokens), with the policy's frozen weights in float32 and in
bfloat16, side by side in one run.

Each setting trains ``--steps`` steps from scratch through ``pivotrl``'s own training path (TRL's GRPO trainer,
the same data, seed and reward); the gold-answer reward is used so that the reward costs nothing and the
step is sampling plus the policy update. The first step is reported apart (it carries the warm-up).

    .venv/bin/python bench/train_step_dtype.py            # ~10 min on 2 cores
    .venv/bin/python bench/train_step_dtype.py --dtypes float32 --steps 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--model", default="qwen0.5b")
    args = ap.parse_args()

    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
    from reproduce import STUDIES

    from pivotrl.pipeline import train_config
    from pivotrl.train.run import run_train

    study = STUDIES["qwen"].pipeline
    results = []
    for dtype in args.dtypes.split(","):
        out = Path(tempfile.mkdtemp(prefix=f"pivotrl-bench-train-{dtype}-"))
        run = replace(study, model=args.model, labels="gold", reward="answer", steps=args.steps, seed=0)
        config = train_config(run, out / "train", None)
        config.dtype = dtype
        config.trl = {**config.trl, "save_steps": 10_000}
        started = time.perf_counter()
        run_train(config, progress=False)
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (out / "train" / "log.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "step_time" in r]
        step_times = [float(r["step_time"]) for r in rows]
        results.append({"dtype": dtype, "wall_s": wall, "step_s": step_times,
                        "mean_length": statistics.fmean(float(r["completions/mean_length"]) for r in rows),
                        "reward": [r["reward"] for r in rows]})
        print(json.dumps(results[-1]), flush=True)
        shutil.rmtree(out, ignore_errors=True)

    base = statistics.fmean(results[0]["step_s"][1:] or results[0]["step_s"])
    print(f"\n{args.steps} GRPO steps per setting, {args.model}, LoRA r={study.lora['r']}, "
          f"{study.trl['per_device_train_batch_size']} answers x <= {study.trl['max_completion_length']} tokens\n")
    print("| policy weights | first step s | later steps s (mean) | mean answer tokens | vs first setting |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        later = statistics.fmean(r["step_s"][1:] or r["step_s"])
        print(f"| {r['dtype']} | {r['step_s'][0]:.1f} | {later:.1f} | {r['mean_length']:.0f} | {base / later:.2f}x |")


if __name__ == "__main__":
    main()
