"""The audit's files (audit.md, audit.json, audit_cases.jsonl, audit.png) and what `pivotrl reward audit` runs
(:func:`audit_main`)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pivotrl.data.errors import DataError
from pivotrl.markdown import pct, table
from pivotrl.rewards.audit.cases import (
    AuditCase,
    cases_from_exemplars,
    cases_from_generations,
    cases_from_synthetic,
    references_from_gold,
    references_from_store,
)
from pivotrl.rewards.audit.probes import PROBES
from pivotrl.rewards.audit.scoring import AuditReport, json_default, run_audit
from pivotrl.run_folder import open_output, write_figure, write_output

logger = logging.getLogger(__name__)

# -------------------------------------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return pct(x, missing="n/a")


def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    text = text if len(text) <= n else text[:n - 1] + "…"
    return text.replace("|", "\\|")


def audit_markdown(report: AuditReport, max_losses: int = 30) -> str:
    """``audit.md``: the verdict, then the probe win rates, the separation, the per-component wins and the
    losses on required probes (the first ``max_losses`` of them)."""
    sections = [_summary(report), _probe_wins(report), _separation(report), _component_wins(report),
                _wins_by_language(report), _wins_by_source(report), _losses(report, max_losses)]
    return "\n".join(line for section in sections for line in section) + "\n"


def _summary(report: AuditReport) -> list[str]:
    weights = ", ".join(f"{k} {v:g}" for k, v in report.config.get("weights", {}).items())
    if not report.probes:
        verdict = "no probes asked for"
    elif report.passes(0.99):
        verdict = "**every language with probes >= 99% on every required probe**"
    elif any(r.min_required is not None for r in report.langs.values()):
        verdict = "**some language is below 99% on a required probe** (see Losses)"
    else:
        verdict = "**no correct answers: nothing to probe**"
    lines = [f"# Reward audit: `{report.reward}`", "",
             f"Weights: {weights}; gate: {report.config.get('gate')} (full at {report.config.get('gate_full')}).",
             f"{report.overall.n_cases} cases ({', '.join(f'{k}: {v}' for k, v in report.overall.sources.items())}),"
             f" {report.n_scored} texts scored in {report.seconds:.1f} s. Required probes: "
             f"{', '.join(report.required)}. Verdict: {verdict}"]
    unprobed = [r.lang for r in report.langs.values() if r.min_required is None]
    if not report.probes:
        lines += ["No probes were asked for (`--probes none`): the ROC-AUC only."]
    elif unprobed:
        lines += [f"No probes in {', '.join(unprobed)}: no correct answer to build them from."]
    return lines + [""]


def _probe_wins(report: AuditReport) -> list[str]:
    lines = ["## Probe win rate of the total (% of cases where honest total > probe total)", "",
             "Ties count as not won; `min req.` is the minimum over the required probes.", ""]
    rows = []
    for r in [*report.langs.values(), report.overall]:
        cells = [r.lang, str(r.n_cases)]
        for p in report.probes:
            s = r.probes.get(p)
            cells.append("n/a" if s is None or not s.n else _pct(s.win) + (f" (tie {_pct(s.tie)})" if s.tie else ""))
        mr = r.min_required
        cells.append(("**" + _pct(mr) + "**") if mr is not None and mr < 0.99 else _pct(mr))
        rows.append(cells)
    return lines + table(["lang", "cases", *report.probes, "min req."], rows) + [""]


def _separation(report: AuditReport) -> list[str]:
    lines = ["## Separation: ROC-AUC correct vs incorrect, per component", "",
             "`basis`: `labelled` = responses labelled by gold correctness (both classes present); "
             "`wrong_number` = the source has only correct answers, so the negatives are the same answers with "
             "the final number changed: a *number-sensitivity* AUC (an embedding cannot tell numbers apart, "
             "answer agreement can), not a measure of naturally wrong reasoning.", ""]
    comps = [*report.components, "total"]
    rows_all = [*report.langs.values(), report.overall]
    rows = [[r.lang, r.auc_basis or "n/a", f"{r.auc_n[0]}/{r.auc_n[1]}", *[_num(r.auc.get(c)) for c in comps]]
            for r in rows_all]
    lines += table(["lang", "basis", "pos/neg", *comps], rows) + [""]
    lines += ["Mean score, correct / incorrect (the AUC's positives / negatives):", ""]
    rows = [[r.lang, *[f"{_num(r.mean_correct.get(c), 2)} / {_num(r.mean_incorrect.get(c), 2)}" for c in comps]]
            for r in rows_all]
    return lines + table(["lang", *comps], rows) + [""]


def _component_wins(report: AuditReport) -> list[str]:
    lines = ["## Probe wins per component (all languages pooled): win % / tie %", "",
             "Share of cases where the honest answer's component score is above the probe's (penalties: less "
             "penalised), and the share of ties; a component with many ties does not separate that probe.", ""]
    wins, means = [], []
    for p in report.probes:
        s = report.overall.probes.get(p)
        if s is None or not s.n:
            wins.append([p, "0", *["n/a"] * len(report.components)])
            continue
        wins.append([p, str(s.n), *[f"{_pct(s.components[c]['win'])} / {_pct(s.components[c]['tie'])}"
                                    for c in report.components]])
        means.append([p, f"{s.mean_honest:.2f} -> {s.mean_probe:.2f}",
                      *[f"{_num(s.components[c]['mean_honest'], 2)} -> {_num(s.components[c]['mean_probe'], 2)}"
                        for c in report.components]])
    lines += table(["probe", "n", *report.components], wins) + [""]
    lines += ["Mean component score, honest -> probe (all languages pooled):", ""]
    return lines + table(["probe", "total", *report.components], means) + [""]


def _wins_by_language(report: AuditReport) -> list[str]:
    lines = ["## Probe wins per component and language: win % (tie %)", ""]
    for p in report.probes:
        rows = []
        for r in [*report.langs.values(), report.overall]:
            s = r.probes.get(p)
            if s is None or not s.n:
                continue
            rows.append([r.lang, str(s.n), _pct(s.win) + (f" ({_pct(s.tie)})" if s.tie else ""),
                         *[_pct(s.components[c]["win"]) + (f" ({_pct(s.components[c]['tie'])})"
                                                           if s.components[c]["tie"] else "")
                           for c in report.components]])
        lines += [f"### {p}", "", *table(["lang", "n", "total", *report.components], rows), ""]
    return lines


def _wins_by_source(report: AuditReport) -> list[str]:
    if len({k.split("/")[0] for k in report.by_source}) <= 1:
        return []
    rows = [[key, *[_pct(v[p].win) if v[p].n else "n/a" for p in report.probes]]
            for key, v in report.by_source.items()]
    return ["## Probe win rate of the total by source", "", *table(["source/lang", *report.probes], rows), ""]


def _losses(report: AuditReport, max_losses: int) -> list[str]:
    lines = [f"## Losses on required probes ({len(report.losses)})", ""]
    if not report.losses:
        return lines + ["None: the honest answer beat every required probe in every case."]
    lines += ["Honest total <= probe total, with the components that differ (honest -> probe).", ""]
    rows = []
    for loss in report.losses[:max_losses]:
        diff = ", ".join(f"{c} {loss['honest_components'][c]:.2f}->{loss['probe_components'][c]:.2f}"
                         for c in report.components
                         if abs(loss["honest_components"][c] - loss["probe_components"][c]) > 1e-9)
        rows.append([loss["lang"], f"{loss['source']}:{loss['id']}", loss["probe"],
                     f"{loss['honest_total']:.3f} vs {loss['probe_total']:.3f}", diff or "none",
                     _short(loss["honest"]), _short(loss["probe_text"])])
    lines += table(["lang", "case", "probe", "honest vs probe", "components", "honest", "probe text"], rows)
    if len(report.losses) > max_losses:
        lines += ["", f"... and {len(report.losses) - max_losses} more (audit.json)."]
    return lines


# ---------------------------------------------------------------------------------------------- output


def _plot(report: AuditReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [*report.langs.values(), report.overall]
    data = [[(r.probes[p].win if p in r.probes and r.probes[p].n else float("nan")) for p in report.probes]
            for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(report.probes) + 2, 0.45 * len(rows) + 1.6))
    im = ax.imshow(data, cmap="RdYlGn", vmin=0.5, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(report.probes)), report.probes, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r.lang for r in rows])
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, "n/a" if v != v else f"{100 * v:.0f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"honest > probe (% of cases), reward {report.reward}")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    write_figure(fig, path)


def write_audit(report: AuditReport, out_dir: str | Path) -> dict[str, Path]:
    """Write audit.md, audit.json, audit_cases.jsonl (every scored text) and audit.png (the probe win rates: not
    written when no probes were asked for) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "audit.md", "json": out / "audit.json", "cases": out / "audit_cases.jsonl"}
    if report.probes:
        paths["plot"] = out / "audit.png"
    write_output(paths["markdown"], audit_markdown(report))
    write_output(paths["json"], report.to_json())
    with open_output(paths["cases"]) as f:
        for row in report.details:
            f.write(json.dumps(row, ensure_ascii=False, default=json_default) + "\n")
    if "plot" in paths:
        _plot(report, paths["plot"])
    return paths


def questions_from_run(source: str | Path, data_dir: str | Path | None = None) -> dict[tuple[str, str], str]:
    """(problem id, language code) -> the question asked, for an eval run's generations: the problems of the
    task, split, subset and languages its run folder's ``config.json`` records, loaded again (``data_dir``, when
    given, wins over the recorded one). Empty, with one warning, when the config is missing or unreadable or
    the problems cannot be loaded: the audit then scores without questions."""
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    config_path = folder / "config.json"
    try:
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        config = saved["config"]
        task = config["task"]
        if not isinstance(task, str) or not task:
            raise ValueError(f"task is {task!r}")
        from pivotrl.data import load_problems

        problems = load_problems(task, config.get("langs"), split=config.get("split") or "all",
                                 data_dir=data_dir if data_dir is not None else config.get("data_dir"),
                                 subset=config.get("subset"), levels=config.get("levels"))
    except Exception as exc:  # noqa: BLE001 - questions are optional: never fail the audit for them
        logger.warning("%s: no questions for the audit (%s: %s); the generations are scored without them",
                       config_path, type(exc).__name__, exc)
        return {}
    return {(p.id, p.lang): p.question for p in problems}


def audit_main(reward: Any = "hybrid", sources: Sequence[str] = ("exemplars", "synthetic"),
               langs: str | Sequence[str] | None = None, out_dir: str | Path | None = None, n: int = 40, *,
               data_dir: str | Path | None = None, refs_dir: str | Path | None = None, gold_task: str | None = None,
               seed: int = 0, probes: Sequence[str] | None = None, echo: Callable[[str], None] | None = print
               ) -> AuditReport:
    """What ``pivotrl reward audit`` runs: load the cases, audit, write the files, print the markdown.

    ``reward``: preset name or YAML path (or a config / reward object). ``sources``: ``exemplars`` (MGSM's
    human-translated exemplars), ``synthetic`` (``n`` problems per language), or a ``generations.jsonl``
    file / eval run folder, which needs ``refs_dir`` (a ``pivotrl pivot`` folder) or ``gold_task`` (a problem
    set whose English gold serves as references). ``langs``: restrict every source to these languages
    (default: each source's non-English languages). ``probes``: names from :data:`PROBES` (None: all; empty: none,
    only the ROC-AUC).
    """
    from pivotrl.languages import parse_langs

    lang_list = parse_langs(langs) if langs else None
    if isinstance(sources, str):
        sources = [s for s in sources.split(",") if s.strip()]
    cases: list[AuditCase] = []
    for source in sources:
        source = source.strip()
        if source == "exemplars":
            from pivotrl.data.mgsm import LANGS

            chosen = [c for c in lang_list if c in LANGS] if lang_list else None
            if chosen == []:
                continue
            cases += cases_from_exemplars(chosen, data_dir)
        elif source == "synthetic":
            from pivotrl.data.synthetic import SYNTHETIC_LANGS

            chosen = [c for c in lang_list if c in SYNTHETIC_LANGS] if lang_list else None
            if chosen == []:
                continue
            cases += cases_from_synthetic(chosen, n=n, seed=seed)
        else:
            path = Path(source)
            if not (path.is_file() or (path / "generations.jsonl").is_file()):
                raise DataError(f"unknown audit source {source!r}: expected exemplars, synthetic, or a "
                                "generations.jsonl file / eval run folder")
            if refs_dir is not None:
                references = references_from_store(refs_dir)
            elif gold_task is not None:
                references = references_from_gold(gold_task, data_dir)
            else:
                raise DataError(f"{source}: generations need references: pass a refs dir or a gold task")
            cases += cases_from_generations(path, references, langs=lang_list,
                                            questions=questions_from_run(path, data_dir))
    if not cases:
        raise DataError(f"no audit cases from sources {', '.join(sources)} in languages {langs}")
    selected = dict(PROBES)
    if probes is not None:
        unknown = [p for p in probes if p not in PROBES]
        if unknown:
            raise ValueError(f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(PROBES)}")
        selected = {p: PROBES[p] for p in probes}
    report = run_audit(cases, reward, selected, seed=seed, progress=echo)
    if out_dir is not None:
        write_audit(report, out_dir)
    if echo is not None:
        echo(audit_markdown(report))
        if out_dir is not None:
            echo(f"wrote {Path(out_dir) / 'audit.md'}, audit.json, audit_cases.jsonl"
                 + (", audit.png" if report.probes else ""))
    return report
