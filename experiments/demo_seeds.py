"""The README's demo tables: held-out answers before and after training, per language, for each seed's run.

Reads ``eval/base`` and ``eval/trained`` of each ``pivotrl demo`` run folder (nothing is generated) and prints,
per seed, a markdown table: accuracy before and after, answers that turned right or wrong, strict-match
accuracy (the native answer sentence with the number), language fidelity, mean answer length and bare answers
(under 20 tokens), then one line per seed with the non-English mean, the English gap, the wall time and
whether the run meets the demo's bar (the non-English mean rises, no language loses more than 2 answers).

Run: ``python experiments/demo_seeds.py runs/demo-s0 runs/demo-s1 runs/demo-s2``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BARE_TOKENS = 20  # "La réponse est 2." is 7-9 tokens; a worked answer to a level 1-2 problem runs to 50-150


def _answers(folder: Path) -> dict[tuple[str, str], dict]:
    rows = {}
    with (folder / "generations.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows[(row["lang"], row["id"])] = row
    return rows


def seed_table(run: Path) -> tuple[list[str], dict]:
    before, after = _answers(run / "eval" / "base"), _answers(run / "eval" / "trained")
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    trained_langs = summary["config"]["langs"]
    langs = sorted(dict.fromkeys(lang for lang, _ in before),
                   key=lambda code: trained_langs.index(code) if code in trained_langs else len(trained_langs))
    lines = ["| language | before % | after % | wrong -> right | right -> wrong | strict before -> after % | "
             "fidelity after % | mean tokens before -> after | bare answers after |",
             "|---|---:|---:|---:|---:|---|---:|---|---:|"]
    worst_loss = 0
    for lang in langs:
        keys = [k for k in before if k[0] == lang and k in after]
        n = len(keys)
        acc = [100 * sum(side[k]["correct"] for k in keys) / n for side in (before, after)]
        strict = [100 * sum(side[k]["correct_strict"] for k in keys) / n for side in (before, after)]
        gained = sum(after[k]["correct"] and not before[k]["correct"] for k in keys)
        lost = sum(before[k]["correct"] and not after[k]["correct"] for k in keys)
        tokens = [sum(side[k]["n_tokens"] for k in keys) / n for side in (before, after)]
        fidelity = 100 * sum(bool(after[k]["in_language"]) for k in keys) / n
        bare = sum(after[k]["n_tokens"] < BARE_TOKENS for k in keys)
        worst_loss = max(worst_loss, lost - gained)  # English too: training must not cost the pivot language
        name = f"{lang} (not trained)" if lang == "en" else lang
        lines.append(f"| {name} | {acc[0]:.1f} | {acc[1]:.1f} | {gained} | {lost} | {strict[0]:.1f} -> "
                     f"{strict[1]:.1f} | {fidelity:.0f} | {tokens[0]:.0f} -> {tokens[1]:.0f} | {bare} of {n} |")
    base, trained = summary["base"], summary["trained"]
    facts = {"non_en": (base["non_en_accuracy"], trained["non_en_accuracy"]),
             "gap": (base["english_gap_points"], trained["english_gap_points"]),
             "minutes": summary["seconds"]["total"] / 60, "worst_net_loss": worst_loss,
             "references": summary.get("pivot", {}).get("by_status", {})}
    facts["meets_bar"] = facts["non_en"][1] > facts["non_en"][0] and worst_loss <= 2
    return lines, facts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="pivotrl demo run folders, one per seed")
    args = ap.parse_args()
    for run in args.runs:
        lines, facts = seed_table(run)
        seed = json.loads((run / "summary.json").read_text(encoding="utf-8"))["config"]["seed"]
        print(f"\n**Seed {seed}** ({run}): non-English mean {100 * facts['non_en'][0]:.1f} -> "
              f"{100 * facts['non_en'][1]:.1f}%, English gap {facts['gap'][0]:.1f} -> {facts['gap'][1]:.1f} points, "
              f"{facts['minutes']:.1f} min, references {facts['references']}; largest net loss in a language "
              "(English included): "
              f"{facts['worst_net_loss']} answers; meets the bar: {'yes' if facts['meets_bar'] else 'no'}\n")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
