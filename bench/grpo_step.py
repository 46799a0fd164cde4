"""GRPO steps through `pivotrl train`'s trainer, side by side: TRL's own sampling path against pivotrl's engine.

Workload (the study's shape): the packaged Qwen2.5-Coder-0.5B-Instruct with LoRA rank 16 on every linear layer,
8 sampled answers of at most 256 tokens per prompt (``--prompts``, 2 by default), the `hybrid` reward against
the synthetic set's English worked solutions, the demo's TRL settings otherwise (DAPO loss, no KL, overlong
answers masked).
Each variant runs in its own process (its peak memory is its own), from the same weights, seed and prompts:

* ``before``: pivotrl as it was before this bench's issue: TRL's ``model.generate`` on the step's rows with
  packed CPU weights, a float32 update, TRL's fused LM head scoring every position, every row updated;
* ``trl``: TRL's sampling path with today's update (bf16 autocast where the CPU has native bf16, only
  completion tokens scored, rows without gradient dropped and padding trimmed: ``pivotrl.train.update``);
* ``engine``: today's default on a CPU: pivotrl's continuous engine through ``rollout_func`` (LoRA layers as one
  packed merged product) and today's update.

A step is broken into sampling (TRL's ``_generate``: whichever engine), reward (TRL's ``_calculate_rewards``)
and the update (the rest: log-probabilities, loss, backward, optimizer). Sampled answers differ between
variants (different random streams), so the tokens sampled are reported beside the times.

Run: ``python bench/grpo_step.py --prompts 1 --steps 3`` (CPU, offline, about 15 minutes). At the default 2 prompts x
8 answers the ``before`` variant's float32 update needs more than this machine's 24 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def timed(owner, name: str, bucket: list[float]) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    setattr(owner, name, wrapper)


def run(variant: str, args) -> dict:
    import torch

    from pivotrl.models import load_model
    from pivotrl.train.config import CPU_TRL, DEMO_LORA, TrainConfig
    from pivotrl.train.run import build_rows, build_trainer

    torch.manual_seed(0)
    trl = {**CPU_TRL, "num_generations": args.generations,
           "per_device_train_batch_size": args.prompts * args.generations,
           "max_completion_length": args.tokens, "max_steps": args.steps, "save_strategy": "no"}
    if variant == "before":
        import pivotrl.train.update as update

        trl["bf16"] = False
        update.skip_rows_without_gradient = lambda trainer: False
        update.score_only_completion_tokens = lambda: None
    config = TrainConfig(model="qwen0.5b", output_dir=f"/tmp/pivotrl-bench-grpo-{variant}", task="synthetic",
                         langs=["de", "fr", "ja", "ru", "zh", "sw"], levels=[1, 2], reward="hybrid", trl=trl,
                         lora=dict(DEMO_LORA), rollouts="engine" if variant == "engine" else "trl", eval_n=0, seed=0)
    config.validate("bench")
    rows, _ = build_rows(config, progress=False)
    loaded = load_model(config.model)
    trainer = build_trainer(config, loaded.model, loaded.tokenizer, rows)
    sampling: list[float] = []
    reward: list[float] = []
    timed(trainer, "_generate", sampling)
    timed(trainer, "_calculate_rewards", reward)
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "loss" in h]
    rows_per_step = args.prompts * args.generations
    return {"variant": variant, "steps": len(logs), "total": total, "sampling": sum(sampling), "reward": sum(reward),
            "update": total - sum(sampling) - sum(reward),
            "tokens": sum(h.get("completions/mean_length", 0) * rows_per_step for h in logs),
            "cut": sum(h.get("completions/clipped_ratio", 0) for h in logs) / max(1, len(logs)),
            "reward_mean": sum(h.get("reward", 0) for h in logs) / max(1, len(logs)),
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--variants", default="before,trl,engine")
    ap.add_argument("--variant", default=None, help="run one variant in this process and print its JSON")
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run(args.variant, args)))
        return
    results = []
    for variant in args.variants.split(","):
        cmd = [sys.executable, __file__, "--variant", variant, "--prompts", str(args.prompts), "--generations",
               str(args.generations), "--tokens", str(args.tokens), "--steps", str(args.steps)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            why = " (killed: out of memory? try --prompts 1)" if out.returncode == -9 else ""
            sys.exit(f"{variant} failed with exit code {out.returncode}{why}:\n{out.stderr[-3000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    base = results[0]
    print(f"\n{args.steps} GRPO step(s) of {args.prompts} prompts x {args.generations} answers, at most {args.tokens} "
          "tokens, Qwen2.5-0.5B + LoRA r16, hybrid reward; seconds per step\n")
    print("| variant | step s | sampling s | reward s | update s | tokens sampled / step | cut % | peak GB | "
          "step vs first |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        n = max(1, r["steps"])
        print(f"| {r['variant']} | {r['total'] / n:.1f} | {r['sampling'] / n:.1f} | {r['reward'] / n:.1f} | "
              f"{r['update'] / n:.1f} | {r['tokens'] / n:.0f} | {100 * r['cut']:.0f} | {r['peak_gb']:.1f} | "
              f"{base['total'] / r['total']:.2f}x |")


if __name__ == "__main__":
    main()
