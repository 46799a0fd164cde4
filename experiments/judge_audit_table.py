"""The judge audit's table: ROC-AUC right vs wrong per language for the reference judge, beside the embedding
similarity, answer agreement, the hybrid total and the hybrid-judge total, from one audit's stored scores.

    .venv/bin/python experiments/judge_audit_table.py runs/judge/audit/audit_cases.jsonl

Both totals are re-computed from the stored component scores (``RewardConfig.combine``), so one audit that
computes every component gives both. Languages with fewer than ``--min-right`` right answers are listed but
marked: their AUC rests on too few answers. Also prints the mean judge score of right answers that are bare
(under 40 characters) and of right worked answers, and the judge's score on the answers named with ``--show``
(``id:lang:sample``).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

from sklearn.metrics import roc_auc_score

from pivotrl.rewards.compose import load_reward_config

COLUMNS = ("reference_judge", "embedding_similarity", "answer_agreement", "hybrid", "hybrid-judge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases")
    parser.add_argument("--min-right", type=int, default=5)
    parser.add_argument("--show", nargs="*", default=[])
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.cases, encoding="utf-8")]
    rows = [r for r in rows if r["kind"] == "honest"]
    totals = {name: load_reward_config(name) for name in ("hybrid", "hybrid-judge")}
    by_lang: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        for name, config in totals.items():
            r["components"][name] = config.combine(r["components"])[0]
        by_lang[r["lang"]].append(r)
    by_lang["all"] = rows
    print("| lang | right / wrong | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for lang, group in by_lang.items():
        labels = [int(r["correct"]) for r in group]
        right = sum(labels)
        cells = []
        for column in COLUMNS:
            if 0 < right < len(labels):
                cells.append(f"{roc_auc_score(labels, [r['components'][column] for r in group]):.3f}")
            else:
                cells.append("n/a")
        mark = "" if right >= args.min_right else " (too few right)"
        print(f"| {lang}{mark} | {right} / {len(labels) - right} | " + " | ".join(cells) + " |")
    right = [r for r in rows if r["correct"]]
    bare = [r["components"]["reference_judge"] for r in right if len(r["text"].strip()) < 40]
    worked = [r["components"]["reference_judge"] for r in right if len(r["text"].strip()) >= 40]
    wrong = [r["components"]["reference_judge"] for r in rows if not r["correct"]]
    print(f"\njudge mean: right worked {sum(worked) / len(worked):.3f} (n={len(worked)}), right bare "
          f"{sum(bare) / max(1, len(bare)):.3f} (n={len(bare)}), wrong {sum(wrong) / len(wrong):.3f} (n={len(wrong)})")
    for key in args.show:
        pid, lang, sample = key.split(":")
        for r in rows:
            if r["id"] == pid and r["lang"] == lang and r["sample"] == int(sample):
                rank = sum(w < r["components"]["reference_judge"] for w in wrong) / len(wrong)
                print(f"{key}: judge {r['components']['reference_judge']:.3f} (above {100 * rank:.0f}% of the wrong "
                      f"answers), agreement {r['components']['answer_agreement']:.0f}")


if __name__ == "__main__":
    main()
