"""Stage 6 of the pipeline: compare evaluation runs side by side (markdown table and PNG plots).

``write_report([run_a, run_b], out)`` reads each run folder's ``metrics.json`` and writes ``report.md`` with
one table per metric (languages as rows, runs as columns, the difference to the first run), and three
plots: accuracy per language per run, the English gap per run, fidelity per language per run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pivotrl.markdown import pct, table
from pivotrl.run_folder import OutputPathError, check_output_dir, existing_file, write_figure, write_output


class ReportError(Exception):
    pass


def load_run(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "metrics.json"
    try:
        found = existing_file(path, "metrics file")
    except OutputPathError as exc:  # a pipe or a device would block the report or never end
        raise ReportError(str(exc)) from None
    if not found:
        raise ReportError(f"{run_dir}: no metrics.json (is it a `pivotrl eval` output folder?)")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
        metrics["languages"], metrics["summary"]  # noqa: B018 - check the shape early
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReportError(f"{path}: not a pivotrl metrics file ({exc})") from None
    return metrics


def _label(run_dir: Path, names: list[str]) -> str:
    """A short unique name for a run: its folder name, with the parent when two folders share a name."""
    name = run_dir.name
    return f"{run_dir.parent.name}/{name}" if names.count(name) > 1 else name


def write_report(run_dirs: list[str | Path], out: str | Path, title: str = "pivotrl report") -> Path:
    """Write ``out/report.md`` and its plots; returns its path. ReportError for runs that cannot be read and an
    output folder that cannot be written (checked before any plot is drawn); OSError naming the file when a write
    fails (a full disk)."""
    if not run_dirs:
        raise ReportError("give at least one run folder")
    dirs = [Path(d) for d in run_dirs]
    runs = [load_run(d) for d in dirs]
    names = [_label(d, [x.name for x in dirs]) for d in dirs]
    try:
        out = check_output_dir(out, "report folder")
    except OutputPathError as exc:
        raise ReportError(str(exc)) from None
    langs: list[str] = []
    for run in runs:
        langs += [code for code in run["languages"] if code not in langs]

    lines = [f"# {title}", "", "Runs:", ""]
    for name, d, run in zip(names, dirs, runs):
        info = run.get("run", {})
        lines.append(f"- **{name}** (`{d}`): model `{info.get('model', '?')}`, task `{info.get('task', '?')}`, "
                     f"{info.get('prompt', '?')} prompt, {'chat' if info.get('chat') else 'no chat'}")
    lines.append("")
    for key, heading in (("accuracy", "Accuracy % (strict answer when found, else last number)"),
                         ("strict", "Strict-match accuracy %"), ("flexible", "Flexible-extract accuracy %"),
                         ("fidelity", "Language fidelity % (answers written in the asked language)"),
                         ("cut", "Answers cut at the new-token budget %")):
        if key == "cut" and not any(m.get("cut") is not None for run in runs for m in run["languages"].values()):
            continue  # runs from before endings were recorded: an empty table says nothing
        lines += [f"## {heading}", "", _comparison(runs, names, langs, key), ""]
    lines += ["## Summary", "", "| run | English % | non-English mean % | English gap (points) | "
              "non-English fidelity % |", "|---|---|---|---|---|"]
    for name, run in zip(names, runs):
        s = run["summary"]
        gap = s.get("english_gap_points")
        lines.append(f"| {name} | {pct(s.get('en_accuracy'))} | {pct(s.get('non_en_accuracy'))} | "
                     f"{'-' if gap is None else f'{gap:+.1f}'} | {pct(s.get('non_en_fidelity'))} |")
    plots = _plots(runs, names, langs, out)
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return write_output(out / "report.md", "\n".join(lines) + "\n")


def _comparison(runs: list[dict], names: list[str], langs: list[str], key: str) -> str:
    header = ["language", *names] + ([f"{n} - {names[0]}" for n in names[1:]] if len(runs) > 1 else [])
    rows = []
    for code in langs:
        values = [run["languages"].get(code, {}).get(key) for run in runs]
        cells = [code] + [pct(v) for v in values]
        for v in values[1:]:
            base = values[0]
            cells.append("-" if v is None or base is None else f"{100 * (v - base):+.1f}")
        rows.append(cells)
    return "\n".join(table(header, rows))


def _plots(runs: list[dict], names: list[str], langs: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    width = 0.8 / len(runs)
    x = np.arange(len(langs))
    for key, ylabel, fname in (("accuracy", "accuracy (%)", "accuracy.png"),
                               ("fidelity", "answers in the asked language (%)", "fidelity.png")):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(langs) + 2), 4))
        for i, (name, run) in enumerate(zip(names, runs)):
            values = [100 * (run["languages"].get(c, {}).get(key) or 0) for c in langs]
            bars = ax.bar(x + (i - (len(runs) - 1) / 2) * width, values, width, label=name)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        ax.set_xticks(x, langs)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 105)
        ax.set_title(f"{key} per language")
        # Below the axes, so the legend never hides a bar
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(len(runs), 3), frameon=False)
        fig.tight_layout()
        paths.append(write_figure(fig, out / fname))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(runs) + 2), 3.5))
    gaps = [run["summary"].get("english_gap_points") or 0.0 for run in runs]
    bars = ax.bar(names, gaps, color=["tab:red" if g > 0 else "tab:green" for g in gaps])
    ax.bar_label(bars, fmt="%+.1f", fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("English minus non-English mean (points)")
    ax.set_title("English gap per run (lower is better)")
    fig.tight_layout()
    paths.append(write_figure(fig, out / "english_gap.png"))
    return paths
