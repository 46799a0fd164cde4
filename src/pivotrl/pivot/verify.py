"""Verification of pivot samples: keep what reaches the English gold answer, else a clear majority."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pivotrl.answers import answers_match, extract_answer


@dataclass(frozen=True)
class Verdict:
    status: str  # verified | majority | none
    reason: str
    chosen: int | None  # index of the sample used as the reference
    answer: str | None
    agreement: float
    answers: tuple[str | None, ...]
    kept: tuple[int, ...]


def verify_samples(samples: list[str], gold: str | None, answer_type: str = "number",
                   min_agreement: float = 0.5) -> Verdict:
    """Pick the reference among an English pivot's samples.

    With a gold answer: the samples whose final answer equals it are kept (the first is the reference).
    Without one: the most frequent answer wins when at least ``min_agreement`` of the samples give it.
    """
    answers = tuple(extract_answer(s, "en", answer_type).best for s in samples)
    k = len(samples)
    if gold is not None:
        kept = tuple(i for i, a in enumerate(answers) if answers_match(a, gold, answer_type))
        if kept:
            return Verdict("verified", f"{len(kept)}/{k} samples reach the gold answer {gold}", kept[0], gold,
                           len(kept) / k, answers, kept)
        found = ", ".join(str(a) for a in answers)
        return Verdict("none", f"no sample reaches the gold answer {gold} (answers: {found})", None, None, 0.0,
                       answers, ())
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return Verdict("none", f"no final answer found in {k} samples", None, None, 0.0, answers, ())
    answer, count = votes.most_common(1)[0]
    agreement = count / k
    if agreement < min_agreement:
        return Verdict("none", f"no gold answer and no clear majority ({answer!r} in {count}/{k} samples)",
                       None, None, agreement, answers, ())
    kept = tuple(i for i, a in enumerate(answers) if a == answer)
    return Verdict("majority", f"no gold answer; {count}/{k} samples agree on {answer}", kept[0], answer,
                   agreement, answers, kept)
