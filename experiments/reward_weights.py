"""How the hybrid reward's weights change what GRPO learns from, measured on stored audit scores.

`pivotrl reward audit` on a policy's sampled answers stores every component's score per answer
(``audit_cases.jsonl``). A reward's total is a fixed function of those scores (``RewardConfig.combine``), so
other weightings can be compared on the same answers without computing a component again. For each weighting
this reports, over the sampled answers grouped as GRPO groups them (the same question in the same language):

* ROC-AUC of the total, right vs wrong answers (pooled over languages);
* groups with reward spread (a GRPO gradient at all);
* of the groups holding both a right and a wrong answer, the share where every right answer outscores every
  wrong one (the gradient points the right way);
* the share of all advantage magnitude that sits in groups with *no* right answer: what the policy learns there
  comes only from the components that do not check the answer;
* the mean GRPO advantage of right answers (TRL's group normalisation: (r - mean) / (std + 1e-4)).

    .venv/bin/python experiments/reward_weights.py runs/reproduce/qwen/audit/hybrid/audit_cases.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sklearn.metrics import roc_auc_score

from pivotrl.rewards.compose import RewardConfig, load_reward_config

# The hybrid as the qwen study ran it: before the brevity guard (a stored audit from then has no score for it).
_NO_BREVITY = {"brevity_guard": 0.0}
_STUDY_HYBRID = {"preset": "hybrid", "weights": _NO_BREVITY}
# The study's hybrid and what the audit points at: less or no weight on the embedding similarity (ROC-AUC 0.57
# on these answers), no format credit, no gate; the embedding and answer presets for reference.
WEIGHTINGS: dict[str, Any] = {
    "hybrid (the study's: agreement 1, embedding 0.5, format 0.2, gated)": _STUDY_HYBRID,
    "hybrid, embedding 0.2": {**_STUDY_HYBRID, "weights": {**_NO_BREVITY, "embedding_similarity": 0.2}},
    "hybrid, no embedding": {**_STUDY_HYBRID, "weights": {**_NO_BREVITY, "embedding_similarity": 0.0}},
    "hybrid, no format": {**_STUDY_HYBRID, "weights": {**_NO_BREVITY, "answer_format": 0.0}},
    "hybrid, agreement and guards only": {**_STUDY_HYBRID, "weights": {**_NO_BREVITY, "embedding_similarity": 0.0,
                                                                        "answer_format": 0.0}},
    "hybrid, no gate": {**_STUDY_HYBRID, "gate": None},
    "hybrid with the brevity guard (the default since the study)": "hybrid",
    "embedding (preset)": "embedding",
    "answer agreement alone (preset answer)": "answer",
}


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The audit's honest sampled answers (probes left out): lang, id, correct and component scores."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if row["source"] == "samples" and row["kind"] == "honest":
                rows.append({"group": (row["lang"], row["id"]), "correct": bool(row["correct"]),
                             "components": dict(row["components"])})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{number}: expected an audit case with source, kind, lang, id, correct and "
                             f"components ({exc!r})") from None
    if not rows:
        raise SystemExit(f"{path}: no sampled answers (source 'samples', kind 'honest'): audit a generations file")
    return rows


def advantages(rewards: Sequence[float]) -> list[float]:
    """TRL's GRPO advantages within one group (scale_rewards='group': the sample standard deviation)."""
    if len(rewards) < 2:
        return [0.0] * len(rewards)
    mean, std = statistics.fmean(rewards), statistics.stdev(rewards)
    return [(r - mean) / (std + 1e-4) for r in rewards]


def weighting_stats(rows: Sequence[dict[str, Any]], config: RewardConfig) -> dict[str, float | None]:
    """The figures described at the top, for one weighting."""
    totals = [config.combine(row["components"])[0] for row in rows]
    labels = [int(row["correct"]) for row in rows]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row["group"]].append(i)
    spread = ordered = mixed = 0
    magnitude = magnitude_no_right = 0.0
    right_advantages = []
    for members in groups.values():
        rewards = [totals[i] for i in members]
        adv = advantages(rewards)
        right = [labels[i] for i in members]
        spread += max(rewards) - min(rewards) > 1e-9
        magnitude += sum(map(abs, adv))
        if not any(right):
            magnitude_no_right += sum(map(abs, adv))
        if any(right) and not all(right):
            mixed += 1
            ordered += min(r for r, ok in zip(rewards, right) if ok) > max(r for r, ok in zip(rewards, right) if not ok)
        right_advantages += [a for a, ok in zip(adv, right) if ok]
    return {
        "auc": float(roc_auc_score(labels, totals)) if len(set(labels)) == 2 else None,
        "spread": spread / len(groups),
        "ordered": ordered / mixed if mixed else None,
        "no_right_share": magnitude_no_right / magnitude if magnitude else None,
        "right_advantage": statistics.fmean(right_advantages) if right_advantages else None,
        "groups": len(groups), "mixed": mixed,
    }


def report(rows: Sequence[dict[str, Any]], weightings: Mapping[str, Any]) -> str:
    right = sum(row["correct"] for row in rows)
    first = weighting_stats(rows, load_reward_config("answer"))  # group counts: any weighting gives them
    lines = [f"{len(rows)} sampled answers ({right} right) in {first['groups']} groups; {first['mixed']} groups hold "
             "both a right and a wrong answer.", "",
             "| weighting | ROC-AUC right vs wrong | groups with spread % | mixed groups ranked right % | "
             "advantage in groups without a right answer % | mean advantage of right answers |",
             "|---|---|---|---|---|---|"]

    def cell(value: float | None, scale: float = 100.0, digits: int = 1) -> str:
        return "-" if value is None else f"{scale * value:.{digits}f}"

    stored = set(rows[0]["components"])
    for label, source in weightings.items():
        config = load_reward_config(source)
        missing = [c for c in config.components if c not in stored and (c == config.gate or config.weights.get(c))]
        if missing:  # an older audit: say which weighting cannot be re-totalled, and go on with the others
            lines.append(f"| {label} | not stored in this audit: {', '.join(missing)} | | | | |")
            continue
        s = weighting_stats(rows, config)
        lines.append(f"| {label} | {cell(s['auc'], 1, 3)} | {cell(s['spread'])} | {cell(s['ordered'])} | "
                     f"{cell(s['no_right_share'])} | {cell(s['right_advantage'], 1, 2)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", type=Path, help="An audit's audit_cases.jsonl (from `pivotrl reward audit` run "
                        "on sampled generations).")
    parser.add_argument("--out", type=Path, help="Also write the table to this Markdown file.")
    args = parser.parse_args()
    if not args.cases.is_file():
        parser.error(f"{args.cases}: no such file; expected an audit's audit_cases.jsonl")
    text = report(read_samples(args.cases), WEIGHTINGS)
    print(text)
    if args.out:
        args.out.write_text(f"<!-- written by experiments/reward_weights.py {args.cases} -->\n\n{text}\n",
                            encoding="utf-8")


if __name__ == "__main__":
    main()
