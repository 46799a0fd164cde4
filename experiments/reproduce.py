"""The CPU-scale reproduction of PB-RLSVR's claim (docs/RESULTS.md): base model vs RLVR with target-language
gold answers vs PB-RLSVR with the embedding reward vs PB-RLSVR with the hybrid reward, at equal training
steps and several seeds, on the synthetic set and on MSVAMP (evaluated on MSVAMP's held-out split and MGSM).

    .venv/bin/python experiments/reproduce.py                 # every run, then the tables and plots
    .venv/bin/python experiments/reproduce.py --only synthetic --seeds 0
    .venv/bin/python experiments/reproduce.py --report-only   # tables and plots from the runs so far

Every stage skips finished work and training resumes from its last checkpoint, so the command can be killed
and run again (in another session) until everything is done. Runs go to runs/reproduce/, the tables and
plots to docs/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pivotrl.pipeline import PipelineConfig, eval_stage, pivot_stage, read_log, train_stage

LANGS = ["de", "es", "fr", "ru", "zh", "ja", "sw"]
METHODS: dict[str, dict[str, Any]] = {
    "rlvr-gold": {"labels": "gold", "reward": "answer"},  # target-language gold answers, right/wrong reward
    "pbrlsvr-embedding": {"labels": "pivot", "reward": "embedding"},  # no target-language labels
    "pbrlsvr-hybrid": {"labels": "pivot", "reward": "hybrid"},
}
# Training set -> (pipeline settings, {evaluation set: held-out problems per language})
DATASETS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "synthetic": ({"task": "synthetic", "levels": [1, 2], "eval_max_new_tokens": 96}, {"synthetic": 16}),
    "msvamp": ({"task": "msvamp", "levels": None, "eval_max_new_tokens": 128}, {"msvamp": 12, "mgsm": 4}),
}
STEPS = 50
PIVOT_N = 48
# The SmolLM2 study's TRL settings (full fine-tuning, one prompt x 4 answers of 64 tokens per step), kept as
# they were when docs/RESULTS.md was measured; the demo's own defaults (pipeline.CPU_TRL) have moved since.
CPU_TRL: dict[str, Any] = {
    "num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 64,
    "learning_rate": 1e-5, "beta": 0.0, "loss_type": "dapo", "temperature": 1.0,
    "save_steps": 10, "logging_steps": 1, "gradient_checkpointing": False,
}


def base_config(root: Path, dataset: str) -> PipelineConfig:
    settings, _ = DATASETS[dataset]
    return PipelineConfig(out=str(root / dataset), model="smollm2", pivot="smollm2", langs=LANGS,
                          pivot_n=PIVOT_N, pivot_k=4, pivot_max_new_tokens=128, steps=STEPS, trl=dict(CPU_TRL),
                          lora=None, **settings)


def run_all(root: Path, datasets: list[str], seeds: list[int], methods: list[str]) -> None:
    for seed in seeds:
        for dataset in datasets:
            config = base_config(root, dataset)
            evals = DATASETS[dataset][1]
            folder = root / dataset
            pivot = pivot_stage(config, folder / "pivot")  # seed 0 sampling, shared by every run
            print(f"[{dataset}] pivot references: {pivot['by_status']}", flush=True)
            for task, n in evals.items():
                eval_stage(config.model, config, folder / "base" / f"eval-{task}", task=task, n=n)
            for method in methods:
                run = replace(config, seed=seed, **METHODS[method])
                run_dir = folder / f"{method}-s{seed}"
                started = time.perf_counter()
                train_stage(run, run_dir / "train", folder / "pivot" if run.labels == "pivot" else None)
                for task, n in evals.items():
                    eval_stage(str(run_dir / "train" / "final"), run, run_dir / f"eval-{task}", task=task, n=n)
                print(f"[{dataset}] {method} seed {seed}: done in {time.perf_counter() - started:.0f} s", flush=True)
                write_results(root, Path("docs/results"))


# ------------------------------------------------------------------------------------------ tables, plots


def _metrics(path: Path) -> dict[str, Any] | None:
    file = path / "metrics.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


def _fmt(values: list[float], scale: float = 100.0, signed: bool = False, digits: int = 1) -> str:
    """Mean (and, over several seeds, ± the population standard deviation) of ``values`` times ``scale``."""
    if not values:
        return "-"
    mean = scale * statistics.fmean(values)
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if len(values) > 1:
        text += f" ± {scale * statistics.pstdev(values):.{digits}f}"
    return text


def collect(root: Path) -> dict[str, Any]:
    """Every finished evaluation and training log under ``root``, by dataset, evaluation set and method."""
    found: dict[str, Any] = {}
    for dataset, (_, evals) in DATASETS.items():
        folder = root / dataset
        entry: dict[str, Any] = {"evals": {}, "logs": {}}
        for task in evals:
            base = _metrics(folder / "base" / f"eval-{task}")
            if base is None:
                continue
            runs: dict[str, dict[int, Any]] = {"base": {0: base}}
            for method in METHODS:
                for run_dir in sorted(folder.glob(f"{method}-s*")):
                    m = _metrics(run_dir / f"eval-{task}")
                    if m is not None:
                        runs.setdefault(method, {})[int(run_dir.name.rsplit("-s", 1)[1])] = m
            entry["evals"][task] = runs
        for method in METHODS:
            for run_dir in sorted(folder.glob(f"{method}-s*")):
                rows = [r for r in read_log(run_dir / "train") if "reward" in r]
                if rows:
                    entry["logs"].setdefault(method, {})[int(run_dir.name.rsplit("-s", 1)[1])] = rows
        pivot = folder / "pivot" / "references.jsonl"
        if pivot.is_file():
            status: dict[str, int] = {}
            for line in pivot.read_text(encoding="utf-8").splitlines():
                s = json.loads(line)["status"]
                status[s] = status.get(s, 0) + 1
            entry["pivot"] = status
        found[dataset] = entry
    return found


def tables(found: dict[str, Any]) -> str:
    lines: list[str] = []
    for dataset, entry in found.items():
        for task, runs in entry["evals"].items():
            base = runs["base"][0]
            langs = list(base["languages"])
            non_en = [c for c in langs if c != "en"]
            lines += [f"### Trained on {dataset}, evaluated on {task} (held-out)", "",
                      "Accuracy % per language (mean ± spread across seeds), then the summary columns.", "",
                      "| method | seeds | " + " | ".join(langs) + " | non-En mean | non-En gain vs base (points) | "
                      "English gap (points) | non-En fidelity % |",
                      "|" + "---|" * (len(langs) + 6)]
            base_non_en = base["summary"]["non_en_accuracy"] or 0.0
            for method, by_seed in runs.items():
                ms = list(by_seed.values())
                cells = [_fmt([m["languages"][c]["accuracy"] for m in ms if c in m["languages"]]) for c in langs]
                non = [m["summary"]["non_en_accuracy"] or 0.0 for m in ms]
                gain = [x - base_non_en for x in non]
                gap = [(m["summary"].get("english_gap_points") or 0.0) / 100 for m in ms]
                fid = [m["summary"].get("non_en_fidelity") or 0.0 for m in ms]
                lines.append(f"| {method} | {','.join(str(s) for s in sorted(by_seed))} | " + " | ".join(cells)
                             + f" | {_fmt(non)} | {_fmt(gain, signed=True) if method != 'base' else '0'} | "
                             f"{_fmt(gap, signed=True)} | {_fmt(fid)} |")
            n = base.get("languages", {}).get("en", {}).get("problems") or "?"
            lines += ["", f"{n} problems per language; non-English = {', '.join(non_en)}.", ""]
        if entry["logs"]:
            lines += [f"### Training signal on {dataset}", "",
                      "| method | seeds | steps | mean reward, first 10 steps | mean reward, last 10 steps | "
                      "groups without reward spread % | sampled answers right % |",
                      "|---|---|---|---|---|---|---|"]
            for method, by_seed in entry["logs"].items():
                first = [statistics.fmean(float(r["reward"]) for r in rows[:10]) for rows in by_seed.values()]
                last = [statistics.fmean(float(r["reward"]) for r in rows[-10:]) for rows in by_seed.values()]
                zero = [statistics.fmean(float(r.get("frac_reward_zero_std", 0)) for r in rows)
                        for rows in by_seed.values()]
                hit = [statistics.fmean(float(r["rewards/answer_agreement/mean"]) for r in rows)
                       for rows in by_seed.values() if "rewards/answer_agreement/mean" in rows[0]]
                steps = ",".join(str(len(rows)) for rows in by_seed.values())
                lines.append(f"| {method} | {','.join(str(s) for s in sorted(by_seed))} | {steps} | "
                             f"{_fmt(first, 1, digits=3)} | {_fmt(last, 1, digits=3)} | {_fmt(zero)} | {_fmt(hit)} |")
            lines.append("")
        if "pivot" in entry:
            lines += [f"Pivot references for {dataset} (SmolLM2, 4 samples per problem, {PIVOT_N} problems): "
                      + ", ".join(f"{k} {v}" for k, v in sorted(entry["pivot"].items())), ""]
    return "\n".join(lines)


def plots(found: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths = []
    for dataset, entry in found.items():
        for task, runs in entry["evals"].items():
            langs = list(runs["base"][0]["languages"])
            fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
            width = 0.8 / len(runs)
            x = np.arange(len(langs))
            for ax, key in zip(axes, ("accuracy", "fidelity")):
                for i, (method, by_seed) in enumerate(runs.items()):
                    values = np.array([[100 * (m["languages"].get(c, {}).get(key) or 0) for c in langs]
                                       for m in by_seed.values()])
                    ax.bar(x + (i - (len(runs) - 1) / 2) * width, values.mean(0), width,
                           yerr=values.std(0) if len(values) > 1 else None, label=method, capsize=2)
                ax.set_xticks(x, langs)
                ax.set_ylabel(f"{key} (%)")
                ax.set_ylim(0, 105)
                ax.set_title(f"{key}: trained on {dataset}, evaluated on {task}")
            axes[0].legend(fontsize=7)
            fig.tight_layout()
            path = out / f"{dataset}-{task}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
        if entry["logs"]:
            fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
            for method, by_seed in entry["logs"].items():
                for seed, rows in by_seed.items():
                    steps = [r["step"] for r in rows]
                    for ax, key in zip(axes, ("reward", "frac_reward_zero_std")):
                        values = np.array([float(r.get(key, 0)) for r in rows])
                        width = min(5, len(values))
                        sm = np.convolve(values, np.ones(width) / width, mode="valid")
                        ax.plot(steps[len(steps) - len(sm):], sm, label=f"{method} s{seed}")
            axes[0].set_ylabel("mean reward")
            axes[1].set_ylabel("share of groups, no reward spread")
            for ax in axes:
                ax.set_xlabel("training step")
            axes[0].legend(fontsize=7)
            fig.suptitle(f"training on {dataset} (5-step moving averages)")
            fig.tight_layout()
            path = out / f"{dataset}-training.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def write_results(root: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    found = collect(root)
    images = plots(found, out)
    text = ["<!-- written by experiments/reproduce.py; do not edit by hand -->", "", tables(found), ""]
    text += [f"![{p.stem}](results/{p.name})" for p in images]
    path = out / "tables.md"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    _fill_results_page(out.parent / "RESULTS.md", "\n".join(text[2:]))
    settings = {"steps": STEPS, "pivot_n": PIVOT_N, "langs": LANGS, "trl": CPU_TRL, "methods": METHODS,
                "datasets": {k: v[0] | {"evals": v[1]} for k, v in DATASETS.items()}}
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


START, END = "<!-- tables:start -->", "<!-- tables:end -->"


def _fill_results_page(page: Path, tables_md: str) -> None:
    """Put the generated tables between the two markers of docs/RESULTS.md (the prose around stays)."""
    if not page.is_file():
        return
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    page.write_text(f"{head}{START}\n{tables_md.strip()}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs/reproduce", help="Folder of every run (default: %(default)s).")
    parser.add_argument("--only", choices=list(DATASETS), action="append", help="Training set(s) to run.")
    parser.add_argument("--methods", default=",".join(METHODS), help="Comma-separated (default: all).")
    parser.add_argument("--seeds", default="0,1", help="Comma-separated training seeds (default: %(default)s).")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild the tables and plots.")
    args = parser.parse_args()
    root = Path(args.root)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if not args.report_only:
        run_all(root, args.only or list(DATASETS), [int(s) for s in args.seeds.split(",")], methods)
    print(f"tables and plots: {write_results(root, Path('docs/results'))}")


if __name__ == "__main__":
    main()
