"""Greedy generation throughput of pivotrl.generation.generate by batch size (the packaged SmolLM2 by default).

    .venv/bin/python bench/generation_throughput.py --batch-sizes 1,4,8,16,32,64 --new-tokens 64

Prints a table: batch size, prompts, new tokens, seconds, tokens/s, and the ratio to batch size 1. Prompts are
real MGSM German questions in lm-evaluation-harness's native CoT layout; every row runs the full budget.
"""

from __future__ import annotations

import argparse
import os
import time

from pivotrl.data import load_problems
from pivotrl.generation import GenerationConfig, generate_with_stats
from pivotrl.models import load_model
from pivotrl.prompts import native_prompt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--data-dir", default=os.environ.get("PIVOTRL_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    loaded = load_model(args.model)
    problems = load_problems("mgsm", "de", n=max(sizes + [4]), data_dir=args.data_dir)
    prompts = [native_prompt(p, "mgsm") for p in problems]
    # Rows may stop early at eos, so the tokens actually produced are counted rather than assumed.
    rows = []
    for size in sizes:
        batch = prompts[: max(size, 4)]
        start = time.perf_counter()
        _, stats = generate_with_stats(loaded, batch, GenerationConfig(max_new_tokens=args.new_tokens,
                                                                       batch_size=size))
        seconds = time.perf_counter() - start
        rows.append((size, len(batch), stats["new_tokens"], seconds, stats["new_tokens"] / seconds))
    base = rows[0][4]
    print(f"model {args.model}, {args.new_tokens} new tokens per prompt, {os.cpu_count()} CPUs")
    print("| batch size | prompts | new tokens | seconds | tokens/s | vs first |")
    print("|---|---|---|---|---|---|")
    for size, n, tokens, seconds, rate in rows:
        print(f"| {size} | {n} | {tokens} | {seconds:.1f} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
