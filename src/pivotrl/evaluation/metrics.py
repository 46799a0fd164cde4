"""Per-language metrics over evaluated generations, and their markdown table.

Per language: accuracy (strict answer when the answer phrase was found, else the last number), strict and
flexible accuracy (as lm-evaluation-harness reports them), how often an answer was found, language
fidelity (share of responses written in the asked language), mean response length in tokens and the share of
answers cut at the new-token budget (over the answers whose ending was recorded); with k
samples per problem also pass@k and majority-vote accuracy. Overall: English accuracy, the mean over
non-English languages, and the English gap (English minus that mean) in points.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from statistics import mean
from typing import Any

from pivotrl.answers import answers_match
from pivotrl.languages import get_language
from pivotrl.markdown import pct, table
from pivotrl.records import Generation


def _rate(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def language_metrics(generations: list[Generation]) -> dict[str, Any]:
    """Metrics of one language's generations (any number of samples per problem)."""
    by_id: dict[str, list[Generation]] = defaultdict(list)
    for g in generations:
        by_id[g.id].append(g)
    known_fidelity = [g.in_language for g in generations if g.in_language is not None]
    known_cut = [g.cut for g in generations if g.cut is not None]
    out: dict[str, Any] = {
        "problems": len(by_id),
        "generations": len(generations),
        "accuracy": _rate([g.correct for g in generations]),
        "strict": _rate([g.correct_strict for g in generations]),
        "flexible": _rate([g.correct_flexible for g in generations]),
        "answer_found": _rate([g.strict is not None for g in generations]),
        "any_number_found": _rate([g.flexible is not None for g in generations]),
        "fidelity": _rate(known_fidelity),
        "fidelity_known": len(known_fidelity),
        "mean_tokens": mean(g.n_tokens for g in generations) if generations else None,
        # None for answers recorded before endings were, or from a server that did not say
        "cut": _rate(known_cut),
    }
    samples = max((len(v) for v in by_id.values()), default=0)
    if samples > 1:
        out["samples"] = samples
        out["pass_at_k"] = _rate([any(g.correct for g in v) for v in by_id.values()])
        out["majority"] = _rate([_majority_correct(v) for v in by_id.values()])
    return out


def _majority_correct(samples: list[Generation]) -> bool:
    """Majority vote over the samples' answers (ties: the answer seen first)."""
    answers = [g.strict if g.strict is not None else g.flexible for g in samples]
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == top)
    return answers_match(winner, samples[0].gold, samples[0].answer_type)


def compute_metrics(generations: Iterable[Generation], langs: list[str] | None = None) -> dict[str, Any]:
    """Per-language metrics plus the English / non-English summary."""
    by_lang: dict[str, list[Generation]] = defaultdict(list)
    for g in generations:
        by_lang[g.lang].append(g)
    order = [code for code in (langs or sorted(by_lang)) if code in by_lang]
    per_lang = {code: language_metrics(by_lang[code]) for code in order}
    summary: dict[str, Any] = {}
    for key in ("accuracy", "strict", "flexible", "fidelity", "cut"):
        values = [m[key] for code, m in per_lang.items() if code != "en" and m[key] is not None]
        summary[f"non_en_{key}"] = mean(values) if values else None
        summary[f"en_{key}"] = per_lang["en"][key] if "en" in per_lang else None
    if summary["en_accuracy"] is not None and summary["non_en_accuracy"] is not None:
        summary["english_gap_points"] = 100 * (summary["en_accuracy"] - summary["non_en_accuracy"])
    else:
        summary["english_gap_points"] = None
    return {"languages": per_lang, "summary": summary}


def metrics_markdown(metrics: dict[str, Any], title: str | None = None) -> str:
    per_lang = metrics["languages"]
    sampled = any("samples" in m for m in per_lang.values())
    header = ["language", "problems", "accuracy %", "strict %", "flexible %", "answer found %", "fidelity %",
              "mean tokens", "cut at budget %"] + (["pass@k %", "majority %"] if sampled else [])
    lines = [f"## {title}", ""] if title else []
    rows = []
    for code, m in per_lang.items():
        row = [f"{code} ({get_language(code).name})", str(m["problems"]), pct(m["accuracy"]), pct(m["strict"]),
               pct(m["flexible"]), pct(m["answer_found"]), pct(m["fidelity"]),
               "-" if m["mean_tokens"] is None else f"{m['mean_tokens']:.0f}", pct(m.get("cut"))]
        if sampled:
            row += [pct(m.get("pass_at_k")), pct(m.get("majority"))]
        rows.append(row)
    lines += table(header, rows)
    s = metrics["summary"]
    gap = s["english_gap_points"]
    lines += ["", f"- English accuracy: {pct(s['en_accuracy'])}%",
              f"- mean non-English accuracy: {pct(s['non_en_accuracy'])}%",
              f"- English gap (English minus non-English mean): {'-' if gap is None else f'{gap:+.1f}'} points",
              f"- mean non-English fidelity (answers in the asked language): {pct(s['non_en_fidelity'])}%"]
    if s.get("non_en_cut") is not None or s.get("en_cut") is not None:
        lines.append(f"- answers cut at the new-token budget: English {pct(s.get('en_cut'))}%, non-English mean "
                     f"{pct(s.get('non_en_cut'))}% (an answer cut before its final number is rarely right: a "
                     f"larger --max-new-tokens may change these accuracies)")
    return "\n".join(lines) + "\n"
