"""Scoring the cases and their probes with a reward, and the statistics: probe win rates, ROC-AUC per component
and language, pooled results (:func:`run_audit`)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pivotrl.languages import get_language
from pivotrl.records import RewardInput
from pivotrl.rewards.audit.cases import AuditCase
from pivotrl.rewards.audit.probes import PROBES, REQUIRED_PROBES, Probe, ProbeContext, probe_wrong_number

# ---------------------------------------------------------------------------------------------- report


@dataclass
class ProbeStat:
    """Honest vs one probe over the cases where the probe applies: shares of win / tie / loss."""

    probe: str
    n: int
    win: float
    tie: float
    loss: float
    mean_honest: float
    mean_probe: float
    components: dict[str, dict[str, float]]  # component -> {"win", "tie", "loss", "mean_honest", "mean_probe"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LangResult:
    """Everything the audit measured for one language (or for all languages pooled, lang "all")."""

    lang: str
    n_cases: int
    n_correct: int
    n_incorrect: int
    sources: dict[str, int]
    auc_basis: str | None
    auc: dict[str, float | None]  # component (and "total") -> ROC-AUC correct vs incorrect
    mean_correct: dict[str, float | None]
    mean_incorrect: dict[str, float | None]
    probes: dict[str, ProbeStat]
    required: tuple[str, ...] = REQUIRED_PROBES
    auc_n: tuple[int, int] = (0, 0)  # (positives, negatives) the AUC was computed over

    @property
    def min_required(self) -> float | None:
        rates = [self.probes[p].win for p in self.required if p in self.probes and self.probes[p].n]
        return min(rates) if rates else None

    @property
    def min_all(self) -> float | None:
        rates = [s.win for s in self.probes.values() if s.n]
        return min(rates) if rates else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["probes"] = {k: v.to_dict() for k, v in self.probes.items()}
        d["required"] = list(self.required)
        d["auc_n"] = list(self.auc_n)
        d["min_required"] = self.min_required
        d["min_all"] = self.min_all
        return d


@dataclass
class AuditReport:
    """The audit of one reward: per language (``langs``), pooled (``overall``), per source and language
    (``by_source``, total win rates), every loss on a required probe, and every scored text (``details``)."""

    reward: str
    config: dict[str, Any]
    components: list[str]
    probes: list[str]
    required: list[str]
    langs: dict[str, LangResult]
    overall: LangResult
    by_source: dict[str, dict[str, ProbeStat]]  # "source/lang" -> probe -> stat (total only needed)
    losses: list[dict[str, Any]]  # honest <= probe on a required probe, with component scores
    details: list[dict[str, Any]]  # every scored text (for audit_cases.jsonl)
    seconds: float
    n_scored: int

    def passes(self, threshold: float = 0.99) -> bool:
        """True when every language with probes reaches ``threshold`` on every required probe.

        A language without correct answers has no probes (nothing honest to imitate) and is not counted;
        with no probed language at all the audit does not pass.
        """
        rates = [r.min_required for r in self.langs.values() if r.min_required is not None]
        return bool(rates) and min(rates) >= threshold

    def to_dict(self, details: bool = False) -> dict[str, Any]:
        d = {
            "reward": self.reward, "config": self.config, "components": self.components, "probes": self.probes,
            "required": self.required, "seconds": self.seconds, "n_scored": self.n_scored,
            "passes_99": self.passes(0.99),
            "langs": {k: v.to_dict() for k, v in self.langs.items()},
            "overall": self.overall.to_dict(),
            "by_source": {k: {p: s.to_dict() for p, s in v.items()} for k, v in self.by_source.items()},
            "losses": self.losses,
        }
        if details:
            d["details"] = self.details
        return d

    def to_json(self, details: bool = False, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(details), ensure_ascii=False, indent=indent, default=json_default)


def json_default(value: Any) -> Any:
    """``json.dumps``'s fallback for the audit's figures: a NaN or infinite float as null, anything else as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


# ------------------------------------------------------------------------------------------- computing


def _as_reward(reward: Any) -> Any:
    if hasattr(reward, "score") and hasattr(reward, "config"):
        return reward
    from pivotrl.rewards.compose import build_reward

    return build_reward(reward)


def _auc(labels: list[int], scores: list[float]) -> float | None:
    if len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class _Item:
    case: AuditCase
    kind: str  # "honest" or a probe name
    text: str
    scored: Any = None  # ScoredCompletion


def _probe_stat(name: str, pairs: list[tuple[Any, Any]], components: list[str]) -> ProbeStat:
    n = len(pairs)

    def shares(a: list[float], b: list[float]) -> tuple[float, float, float]:
        if not n:
            return 0.0, 0.0, 0.0
        win = sum(x > y for x, y in zip(a, b)) / n
        tie = sum(x == y for x, y in zip(a, b)) / n
        return win, tie, 1.0 - win - tie

    ht = [h.total for h, _ in pairs]
    pt = [p.total for _, p in pairs]
    win, tie, loss = shares(ht, pt)
    comps = {}
    for c in components:
        hc = [h.components[c] for h, _ in pairs]
        pc = [p.components[c] for _, p in pairs]
        w, t, lo = shares(hc, pc)
        comps[c] = {"win": w, "tie": t, "loss": lo, "mean_honest": _mean(hc), "mean_probe": _mean(pc)}
    return ProbeStat(name, n, win, tie, loss, _mean(ht) or 0.0, _mean(pt) or 0.0, comps)


def _lang_result(lang: str, cases: list[AuditCase], items: list[_Item], probes: Sequence[str],
                 components: list[str], required: Sequence[str]) -> LangResult:
    honest = {it.case.key: it for it in items if it.kind == "honest"}
    # separation: labelled sources (both classes) when there are any, else correct vs their wrong_number
    by_source: dict[str, set[bool]] = {}
    for c in cases:
        by_source.setdefault(c.source, set()).add(c.correct)
    labelled = {s for s, labels in by_source.items() if len(labels) == 2}
    if labelled:
        basis = "labelled"
        pos = [honest[c.key].scored for c in cases if c.source in labelled and c.correct]
        neg = [honest[c.key].scored for c in cases if c.source in labelled and not c.correct]
    else:
        wrong = {it.case.key: it.scored for it in items if it.kind == "_negative"}
        pos = [honest[c.key].scored for c in cases if c.correct and c.key in wrong]
        neg = [wrong[c.key] for c in cases if c.correct and c.key in wrong]
        basis = "wrong_number" if pos and neg else None
    labels = [1] * len(pos) + [0] * len(neg)
    auc: dict[str, float | None] = {}
    mean_c: dict[str, float | None] = {}
    mean_i: dict[str, float | None] = {}
    for c in [*components, "total"]:
        get = (lambda s: s.total) if c == "total" else (lambda s, c=c: s.components[c])
        auc[c] = _auc(labels, [get(s) for s in pos + neg]) if basis else None
        mean_c[c] = _mean([get(s) for s in pos])
        mean_i[c] = _mean([get(s) for s in neg])
    stats = {}
    for name in probes:
        pairs = [(honest[it.case.key].scored, it.scored) for it in items if it.kind == name]
        stats[name] = _probe_stat(name, pairs, components)
    sources: dict[str, int] = {}
    for c in cases:
        sources[c.source] = sources.get(c.source, 0) + 1
    n_correct = sum(c.correct for c in cases)
    return LangResult(lang, len(cases), n_correct, len(cases) - n_correct, sources, basis, auc, mean_c, mean_i,
                      stats, tuple(r for r in required if r in probes), (len(pos), len(neg)))


def run_audit(cases: Sequence[AuditCase], reward: Any = "hybrid", probes: Mapping[str, Probe] | None = None, *,
              seed: int = 0, required: Sequence[str] = REQUIRED_PROBES, progress: Callable[[str], None] | None = None
              ) -> AuditReport:
    """Score every case and every probe of its honest correct answer; the report per language and component.

    ``reward``: a :class:`~pivotrl.rewards.compose.ComposedReward` or anything ``build_reward`` takes (preset
    name, YAML path, mapping, config). ``probes``: name -> probe function (default :data:`PROBES`). Each
    language is scored in one ``reward.score`` call (honest responses, probes and, for sources without
    incorrect answers, the ``wrong_number`` negatives for the AUC). ``progress`` receives one line per
    language.
    """
    started = time.perf_counter()
    probes = dict(PROBES if probes is None else probes)
    cases = list(cases)
    if not cases:
        raise ValueError("no cases to audit")
    seen: set[str] = set()
    for c in cases:
        if c.key in seen:
            raise ValueError(f"duplicate audit case {c.key}")
        seen.add(c.key)
    scorer = _as_reward(reward)
    cfg = scorer.config
    components = list(cfg.components)
    by_lang: dict[str, list[AuditCase]] = {}
    for c in cases:
        by_lang.setdefault(get_language(c.lang).code, []).append(c)
    ctx = ProbeContext(seed=seed, peers={lang: [c for c in cs if c.correct] for lang, cs in by_lang.items()})
    results: dict[str, LangResult] = {}
    all_items: list[_Item] = []
    n_scored = 0
    for lang, lang_cases in by_lang.items():
        t0 = time.perf_counter()
        items = [_Item(c, "honest", c.response) for c in lang_cases]
        classes: dict[str, set[bool]] = {}
        for c in lang_cases:
            classes.setdefault(c.source, set()).add(c.correct)
        labelled = any(len(v) == 2 for v in classes.values())  # else: wrong_number negatives for the AUC
        for c in lang_cases:
            if not c.correct:
                continue
            for name, fn in probes.items():
                text = fn(c, ctx)
                if text is not None:
                    items.append(_Item(c, name, text))
            if not labelled:
                text = probe_wrong_number(c, ctx)
                if text is not None:
                    items.append(_Item(c, "_negative", text))
        from pivotrl.rewards.compose import score_inputs

        # a probe changes the response only: every text of a case is scored with the case's question
        scored = score_inputs(scorer, [RewardInput(it.text, it.case.reference, lang, it.case.reference_answer,
                                                   it.case.answer_type, it.case.question or None) for it in items])
        for it, s in zip(items, scored, strict=True):
            it.scored = s
        n_scored += len(items)
        results[lang] = _lang_result(lang, lang_cases, items, list(probes), components, required)
        all_items += items
        if progress is not None:
            r = results[lang]
            mr = "n/a" if r.min_required is None else f"{100 * r.min_required:.1f}%"
            progress(f"{lang}: {len(lang_cases)} cases, {len(items)} texts scored in "
                     f"{time.perf_counter() - t0:.1f}s; min over required probes {mr}")
    overall = _pooled(cases, all_items, results, list(probes), components, required)
    by_source: dict[str, dict[str, ProbeStat]] = {}
    honest = {it.case.key: it for it in all_items if it.kind == "honest"}
    groups: dict[str, list[_Item]] = {}
    for it in all_items:
        if it.kind in probes:
            groups.setdefault(f"{it.case.source}/{it.case.lang}", []).append(it)
    for key in sorted(groups):
        by_source[key] = {name: _probe_stat(name, [(honest[it.case.key].scored, it.scored) for it in groups[key]
                                                   if it.kind == name], [])
                          for name in probes}
    losses = []
    for it in all_items:
        if it.kind in required and it.kind in probes:
            h = honest[it.case.key]
            if h.scored.total <= it.scored.total:
                losses.append({"source": it.case.source, "lang": it.case.lang, "id": it.case.id,
                               "sample": it.case.sample, "probe": it.kind,
                               "honest_total": h.scored.total, "probe_total": it.scored.total,
                               "honest_components": h.scored.components, "probe_components": it.scored.components,
                               "honest": h.text, "probe_text": it.text})
    details = [{"source": it.case.source, "lang": it.case.lang, "id": it.case.id, "sample": it.case.sample,
                "kind": it.kind, "correct": it.case.correct if it.kind == "honest" else False,
                "total": it.scored.total, "gate": it.scored.gate, "components": it.scored.components,
                "text": it.text} for it in all_items]
    return AuditReport(reward=cfg.name, config=cfg.to_dict(), components=components, probes=list(probes),
                       required=[r for r in required if r in probes], langs=results, overall=overall,
                       by_source=by_source, losses=losses, details=details,
                       seconds=time.perf_counter() - started, n_scored=n_scored)


def _pooled(cases: list[AuditCase], items: list[_Item], results: Mapping[str, LangResult], probes: list[str],
            components: list[str], required: Sequence[str]) -> LangResult:
    """All languages together: probe stats pooled over cases; the AUC over each language's own basis."""
    honest = {it.case.key: it for it in items if it.kind == "honest"}
    pos: list[Any] = []
    neg: list[Any] = []
    bases = set()
    wrong = {it.case.key: it.scored for it in items if it.kind == "_negative"}
    for lang, r in results.items():
        if r.auc_basis is None:
            continue
        bases.add(r.auc_basis)
        lang_cases = [c for c in cases if get_language(c.lang).code == lang]
        if r.auc_basis == "labelled":
            labelled = {s for s in r.sources if {c.correct for c in lang_cases if c.source == s} == {True, False}}
            pos += [honest[c.key].scored for c in lang_cases if c.source in labelled and c.correct]
            neg += [honest[c.key].scored for c in lang_cases if c.source in labelled and not c.correct]
        else:
            keys = [c.key for c in lang_cases if c.correct and c.key in wrong]
            pos += [honest[k].scored for k in keys]
            neg += [wrong[k] for k in keys]
    basis = None if not bases else (bases.pop() if len(bases) == 1 else "mixed")
    labels = [1] * len(pos) + [0] * len(neg)
    auc, mean_c, mean_i = {}, {}, {}
    for c in [*components, "total"]:
        get = (lambda s: s.total) if c == "total" else (lambda s, c=c: s.components[c])
        auc[c] = _auc(labels, [get(s) for s in pos + neg]) if basis else None
        mean_c[c] = _mean([get(s) for s in pos])
        mean_i[c] = _mean([get(s) for s in neg])
    stats = {name: _probe_stat(name, [(honest[it.case.key].scored, it.scored) for it in items if it.kind == name],
                               components) for name in probes}
    sources: dict[str, int] = {}
    for c in cases:
        sources[c.source] = sources.get(c.source, 0) + 1
    n_correct = sum(c.correct for c in cases)
    return LangResult("all", len(cases), n_correct, len(cases) - n_correct, sources, basis, auc, mean_c, mean_i,
                      stats, tuple(r for r in required if r in probes), (len(pos), len(neg)))


