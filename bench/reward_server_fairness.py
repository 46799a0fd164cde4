"""How long a 1-item request waits behind a 4096-item one at the reward server, with the real `hybrid` reward.

Side by side in one run: the server's default ``max_batch`` (256: a large request is scored a batch at a time
and goes to the back of the line after each batch) and ``max_batch=4096`` (a whole 4096-item request in one
batch, which is how the server scored large requests before). For each: start a 4096-item request, send a
1-item request 0.5 s later, and time both.

    .venv/bin/python bench/reward_server_fairness.py          # ~3 min on 2 cores (e5 encoder on the CPU)
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor


def run(max_batch: int, n: int, delay: float) -> dict:
    from pivotrl.data import load_problems
    from pivotrl.rewards.client import RewardClient
    from pivotrl.rewards.server import RewardServer

    problems = load_problems("synthetic", ["en", "de"], n=64)
    english = {p.id: p for p in problems if p.lang == "en"}
    german = [p for p in problems if p.lang == "de"]
    # distinct texts (the result cache is off anyway): real German answers with their English references
    items = [{"response": f"{p.solution} ({i})", "reference": english[p.id].solution,
              "reference_answer": p.answer, "lang": "de"} for i, p in zip(range(n), german * (n // len(german) + 1))]
    small = [{"response": german[0].solution + " !", "reference": english[german[0].id].solution,
              "reference_answer": german[0].answer, "lang": "de"}]
    with RewardServer("hybrid", "127.0.0.1", 0, max_batch=max_batch, cache_size=0) as server:
        client = RewardClient(server.url, chunk_size=n, timeout=3600)
        with ThreadPoolExecutor(1) as pool:
            started = time.perf_counter()
            big = pool.submit(client.score_items, items)
            time.sleep(delay)
            t = time.perf_counter()
            client.score_items(small)
            small_s = time.perf_counter() - t
            big.result()
            big_s = time.perf_counter() - started
        health = server.health()
    return {"max_batch": max_batch, "small_wait_s": small_s, "big_s": big_s, "batches": health["batches"],
            "per_batch_s": big_s / max(1, health["batches"] - 1), "max_batch_seen": health["max_batch_seen"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=4096)
    ap.add_argument("--delay", type=float, default=0.5)
    args = ap.parse_args()
    rows = [run(256, args.n, args.delay), run(args.n, args.n, args.delay)]
    print(f"\n1-item request sent {args.delay} s after a {args.n}-item one, hybrid reward (e5 on the CPU)\n")
    print("| max_batch | 1-item request waited s | large request took s | batches | largest batch |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['max_batch']} | {r['small_wait_s']:.2f} | {r['big_s']:.1f} | {r['batches']} | "
              f"{r['max_batch_seen']} |")


if __name__ == "__main__":
    main()
