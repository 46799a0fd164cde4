"""Generation speed on this CPU by engine, dtype, batch size and threads, with greedy agreement against the first.

    .venv/bin/python bench/generation_speed.py --model qwen0.5b \
        --settings hf:float32:16,continuous:float32:16,continuous:float32:32,continuous:bfloat16:32 \
        --langs en,de,fr,ja,sw,zh -n 8 --new-tokens 256

Every setting answers the same prompts: real MSVAMP held-out questions, built exactly as ``pivotrl eval`` builds
them (instruction prompt, the model's chat template), languages mixed and sorted by length as there. A setting
is ``engine:dtype:batch_size`` or ``engine:dtype:batch_size:threads``; engines: ``hf`` (transformers'
generate, a batch runs until its longest row ends) and ``continuous`` (pivotrl's decoder: rows leave and
join), each with plain ``nn.Linear`` weights; ``+packed`` after either (``continuous+packed``, pivotrl's
default on a CPU) multiplies by oneDNN-packed weights (``pivotrl.packed_linear``).
Prints one table row per setting: useful tokens/s (tokens before each answer's end, over wall time),
the speed ratio to the first setting, and how many answers are identical to the first setting's, as text and
as extracted final answer. ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from pivotrl.answers import extract_answer
from pivotrl.data import load_problems
from pivotrl.generation import GenerationConfig, generate_with_stats
from pivotrl.models import build_prompt, load_model
from pivotrl.prompts import native_prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="qwen0.5b")
    parser.add_argument("--settings", default="hf:float32:16,continuous:float32:16")
    parser.add_argument("--task", default="msvamp")
    parser.add_argument("--prompt", default="instruction", help="prompt style, as pivotrl eval --prompt")
    parser.add_argument("--langs", default="en,de,fr,ja,sw,zh")
    parser.add_argument("-n", type=int, default=8, help="problems per language (held-out split)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--data-dir", default=os.environ.get("PIVOTRL_DATA_DIR", "../shared/data"))
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args()

    problems = load_problems(args.task, args.langs.split(","), split="held-out", n=args.n, data_dir=args.data_dir)
    rows, first = [], None
    loaded_dtype, loaded = None, None
    for setting in args.settings.split(","):
        engine, dtype, batch, *threads = setting.split(":")
        if threads:
            torch.set_num_threads(int(threads[0]))
        if dtype != loaded_dtype:
            loaded, loaded_dtype = None, None
            loaded = load_model(args.model, dtype=dtype)
            loaded_dtype = dtype
        prompts = [build_prompt(loaded.tokenizer, native_prompt(p, args.prompt)) for p in problems]
        config = GenerationConfig(max_new_tokens=args.new_tokens, batch_size=int(batch),
                                  engine=engine.removesuffix("+packed"), packed_weights=engine.endswith("+packed"))
        start = time.perf_counter()
        texts, stats = generate_with_stats(loaded, prompts, config)
        seconds = time.perf_counter() - start
        answers = [extract_answer(t[0], p.lang, p.answer_type).best for t, p in zip(texts, problems)]
        if first is None:
            first = (texts, answers)
        same_text = sum(a[0] == b[0] for a, b in zip(texts, first[0]))
        same_answer = sum(a == b for a, b in zip(answers, first[1]))
        rows.append({"setting": setting, "engine": engine, "dtype": dtype, "batch_size": int(batch),
                     "threads": torch.get_num_threads(), "items": len(problems), "new_tokens": stats["new_tokens"],
                     "seconds": round(seconds, 1), "tokens_per_second": round(stats["new_tokens"] / seconds, 1),
                     "same_text": same_text, "same_answer": same_answer})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["tokens_per_second"]
    print(f"\nmodel {args.model}, {len(problems)} {args.task} held-out prompts ({args.langs}), greedy, at most "
          f"{args.new_tokens} new tokens, {os.cpu_count()} CPUs")
    print("| engine | dtype | batch | threads | useful tokens | seconds | tokens/s | vs first | same text "
          "| same answer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['engine']} | {r['dtype']} | {r['batch_size']} | {r['threads']} | {r['new_tokens']} | "
              f"{r['seconds']} | "
              f"{r['tokens_per_second']} | {r['tokens_per_second'] / base:.2f}x | {r['same_text']}/{r['items']} | "
              f"{r['same_answer']}/{r['items']} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
