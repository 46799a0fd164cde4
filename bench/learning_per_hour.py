"""Learning per CPU-hour: GRPO, DPO and RFT from the same policy, references, reward and time budget.

Workload: the packaged Qwen2.5-Coder-0.5B-Instruct with the demo's LoRA (rank 16, every linear layer), the
synthetic set's training split (levels 1-2) in the demo's languages (de, fr, ja), the set's English worked
solutions as the pivot references (the same for all three: no pivot model spends the budget), the ``hybrid``
reward, 256-token answers. Each algorithm trains for ``--minutes`` of wall time in its own process:

* ``grpo``: the demo's GRPO (2 prompts x 4 answers a step, DAPO loss, cut answers masked), stopped when the
  budget is spent;
* ``dpo`` / ``rft``: rounds of ``--prompts`` training prompts x 4 answers (temperature 0.8), each round from the
  previous round's policy, started while budget is left (the last round may end past it: its time is counted).

For each: answers sampled per hour; completion tokens the update trained on per hour (GRPO: the answers of
groups with reward spread, cut ones masked; DPO: chosen + rejected; RFT: the targets); and the reward separation
among what it trained on (GRPO: a group's best minus worst reward, over groups with spread; DPO: chosen minus
rejected; RFT: the target's reward minus its group's mean). Then a greedy held-out evaluation of the base
model and of each trained one on ``--eval-n`` problems per language (en, de, fr, ja): an indication only, at a
resolution of 100/eval_n points per language.

Run (CPU, offline, about 4 x --minutes plus 4 evaluations): ``python bench/learning_per_hour.py --minutes 15``.
Results go to ``--out`` as one JSON per part; a killed bench re-run with the same ``--out`` skips the finished
parts and resumes the offline runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

LANGS = ["de", "fr", "ja"]
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}


def _config(name: str, args, rounds: int = 1):
    from pivotrl.train.config import CPU_TRL, TrainConfig

    common = dict(model="qwen0.5b", output_dir=str(Path(args.out) / name), task="synthetic", langs=LANGS,
                  levels=[1, 2], reward="hybrid", lora=dict(LORA), eval_n=0, seed=args.seed)
    if name == "grpo":
        trl = {**CPU_TRL, "max_steps": 10_000, "save_strategy": "no"}
        return TrainConfig(**common, algorithm="grpo", trl=trl)
    trl = {"learning_rate": CPU_TRL["learning_rate"], "per_device_train_batch_size": 4, "save_steps": 10,
           "gradient_checkpointing": False}
    return TrainConfig(**common, algorithm=name, trl=trl, rounds=rounds, prompts_per_round=args.prompts,
                       samples_per_prompt=4, sample_max_new_tokens=256)


def run_grpo(args) -> dict:
    """GRPO through pivotrl train's trainer, stopped at the budget; the answers each step scored, recorded."""
    from transformers import TrainerCallback

    import pivotrl.rewards.compose as compose
    from pivotrl.models import load_model
    from pivotrl.train.checkpoints import save_model_folder
    from pivotrl.train.run import build_rows, build_trainer

    config = _config("grpo", args)
    config.validate("bench")
    scored: list[tuple[list[float], list[int]]] = []  # per step: rewards, completion lengths (0: cut)
    original = compose.ComposedReward.__call__

    def recording(self, completions, log_metric=None, **columns):
        totals = original(self, completions, log_metric=log_metric, **columns)
        ids = columns.get("completion_ids") or []
        budget = config.trl["max_completion_length"]
        scored.append((list(totals), [0 if len(x) >= budget else len(x) for x in ids]))
        return totals

    compose.ComposedReward.__call__ = recording
    started = time.perf_counter()
    budget = args.minutes * 60

    class Budget(TrainerCallback):
        def on_step_end(self, targs, state, control, **kwargs):
            if time.perf_counter() - started >= budget:
                control.should_training_stop = True

    rows, _ = build_rows(config, progress=False)
    loaded = load_model(config.model)
    trainer = build_trainer(config, loaded.model, loaded.tokenizer, rows, callbacks=[Budget()])
    trainer.train()
    seconds = time.perf_counter() - started
    save_model_folder(trainer.model, loaded.tokenizer, Path(config.output_dir) / "final", {"algorithm": "grpo"})
    k = config.trl["num_generations"]
    answers = tokens = 0
    spreads = []
    groups = with_spread = 0
    for totals, lengths in scored:
        answers += len(totals)
        for g in range(0, len(totals), k):
            group, group_lengths = totals[g:g + k], lengths[g:g + k]
            groups += 1
            if max(group) > min(group):
                with_spread += 1
                spreads.append(max(group) - min(group))
                tokens += sum(group_lengths)  # cut answers (0) are masked out of the loss
    return {"algorithm": "grpo", "seconds": seconds, "steps": trainer.state.global_step, "answers": answers,
            "trained_tokens": tokens, "separation": sum(spreads) / max(1, len(spreads)),
            "units": groups, "units_trained": with_spread, "peak_gb": _peak_gb()}


def run_offline(name: str, args) -> dict:
    """DPO or RFT rounds through run_train until the budget is spent (a round starts only with budget left);
    resumable: finished rounds are skipped, a killed one resumes."""
    from pivotrl.train.offline import preference_pair, read_samples, sft_target
    from pivotrl.train.run import run_train

    out = Path(args.out) / name
    progress = out / "bench-progress.json"
    spent = json.loads(progress.read_text())["seconds"] if progress.is_file() else 0.0
    rounds = len([p for p in out.glob("round-*/done.json")])
    while spent < args.minutes * 60:
        started = time.perf_counter()
        rounds += 1
        run_train(_config(name, args, rounds), resume=True, progress=False)
        spent += time.perf_counter() - started
        progress.write_text(json.dumps({"seconds": spent}))
    config = _config(name, args, rounds)
    min_reward = config.offline("min_reward")
    if name == "rft" and min_reward is None:
        from pivotrl.rewards.compose import load_reward_config
        from pivotrl.train.offline import default_min_reward

        min_reward = default_min_reward(load_reward_config(config.reward))
    answers = tokens = units = kept = steps = 0
    separations = []
    for r in range(1, rounds + 1):
        steps += json.loads((out / f"round-{r}" / "done.json").read_text())["steps"]
        for record in read_samples(out / f"round-{r}" / "samples.jsonl"):
            answers += len(record["answers"])
            units += 1
            if name == "dpo":  # the pairs the round trained on, as select_round chose them
                pair, _ = preference_pair(record, config.offline("pair_margin"), min_reward)
                if pair:
                    kept += 1
                    tokens += pair[0]["tokens"] + pair[1]["tokens"]
                    separations.append(pair[0]["reward"] - pair[1]["reward"])
            else:
                target, _ = sft_target(record, min_reward)
                if target:
                    kept += 1
                    tokens += target["tokens"]
                    mean = sum(a["reward"] for a in record["answers"]) / len(record["answers"])
                    separations.append(target["reward"] - mean)
    return {"algorithm": name, "seconds": spent, "steps": steps, "rounds": rounds, "answers": answers,
            "trained_tokens": tokens, "separation": sum(separations) / max(1, len(separations)),
            "units": units, "units_trained": kept, "peak_gb": _peak_gb()}


def run_eval(name: str, args) -> dict:
    from pivotrl.evaluation.run import EvalConfig
    from pivotrl.evaluation.run import run_eval as evaluate

    model = "qwen0.5b" if name == "base" else str(Path(args.out) / name / "final")
    metrics = evaluate(EvalConfig(model=model, task="synthetic", langs=["en", *LANGS], split="held-out",
                                  n=args.eval_n, levels=[1, 2], max_new_tokens=256,
                                  out=str(Path(args.out) / "evals" / name)), progress=False)
    return {"model": name, "accuracy": {c: m["accuracy"] for c, m in metrics["languages"].items()},
            "non_en": metrics["summary"]["non_en_accuracy"]}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="training wall time per algorithm")
    ap.add_argument("--prompts", type=int, default=48, help="dpo, rft: training prompts sampled per round")
    ap.add_argument("--eval-n", type=int, default=16, help="held-out problems per language (0: no evaluation)")
    ap.add_argument("--algorithms", default="dpo,rft,grpo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/pivotrl-bench-lph")
    ap.add_argument("--part", default=None, help="run one part in this process and print its JSON")
    args = ap.parse_args()
    if args.part:
        kind, _, name = args.part.partition(":")
        result = run_eval(name, args) if kind == "eval" else run_grpo(args) if name == "grpo" else \
            run_offline(name, args)
        print(json.dumps(result))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    algorithms = args.algorithms.split(",")
    parts = [f"train:{a}" for a in algorithms]
    if args.eval_n:
        parts += [f"eval:{m}" for m in ["base", *algorithms]]
    results = {}
    for part in parts:
        path = out / (part.replace(":", "-") + ".json")
        if not path.is_file():
            cmd = [sys.executable, __file__, "--part", part, "--minutes", str(args.minutes), "--prompts",
                   str(args.prompts), "--eval-n", str(args.eval_n), "--seed", str(args.seed), "--out", args.out]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{part} failed with exit code {done.returncode}:\n{done.stderr[-3000:]}")
            path.write_text(done.stdout.strip().splitlines()[-1] + "\n")
        results[part] = json.loads(path.read_text())
        print(part, json.dumps(results[part]), flush=True)
    print(f"\nQwen2.5-0.5B + LoRA r16, hybrid reward, synthetic levels 1-2 in {', '.join(LANGS)}, "
          f"{args.minutes:g} minutes of training each\n")
    print("| algorithm | minutes | steps | answers sampled / h | tokens trained / h | prompts trained on | "
          "reward separation | peak GB |" + (" held-out non-en (base -> trained) |" if args.eval_n else ""))
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if args.eval_n else ""))
    base = results.get("eval:base")
    for a in algorithms:
        r = results[f"train:{a}"]
        hours = r["seconds"] / 3600
        row = (f"| {a} | {r['seconds'] / 60:.1f} | {r['steps']} | {r['answers'] / hours:.0f} | "
               f"{r['trained_tokens'] / hours:.0f} | {r['units_trained']} of {r['units']} | {r['separation']:.3f} | "
               f"{r['peak_gb']:.1f} |")
        if base:
            e = results[f"eval:{a}"]
            row += f" {100 * base['non_en']:.1f} -> {100 * e['non_en']:.1f} |"
        print(row)
    if base:
        print("\nheld-out accuracy per language (greedy, " + str(args.eval_n) + " problems each):")
        for m in ["base", *algorithms]:
            acc = results[f"eval:{m}"]["accuracy"]
            print(f"  {m}: " + ", ".join(f"{c} {100 * v:.1f}" for c, v in acc.items()))


if __name__ == "__main__":
    main()
