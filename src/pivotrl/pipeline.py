"""The whole PB-RLSVR pipeline in one call: pivot references -> evaluation before -> training -> evaluation
after -> report. ``pivotrl demo`` runs it on the embedded default; the CPU-scale reproduction
(``experiments/reproduce.py``) runs its stages many times.

Every stage writes into one run folder and skips work that is already there, so running the same command
again after a kill continues where it stopped:

* ``pivot/`` - the pivot's English references (a :class:`~pivotrl.pivot.store.ReferenceStore`);
* ``eval/base/`` and ``eval/trained/`` - ``pivotrl eval`` run folders (resumable batch by batch);
* ``train/`` - a ``pivotrl train`` run folder (checkpoints, ``log.jsonl``, ``final/``);
* ``report/`` - ``report.md`` with its plots; ``summary.json`` - the figures of every stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from pivotrl.config_fields import DATA_DIR_HELP, SEED, check_fields, setting
from pivotrl.devices import DEVICE_HELP
from pivotrl.run_folder import open_output, write_figure, write_output
from pivotrl.train.config import CPU_TRL, DEMO_LORA, LABELS  # the demo's GRPO and LoRA settings

__all__ = ["CPU_TRL", "DEMO_LORA", "PipelineConfig", "eval_stage", "pivot_stage", "run_pipeline", "train_stage"]


def _target_langs(text: str) -> list[str]:
    from pivotrl.languages import parse_langs

    codes = [code for code in parse_langs(text) if code != "en"]
    if not codes:
        raise ValueError("name at least one target language other than English (e.g. de,zh)")
    return codes


def _levels(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError("expected comma-separated difficulty levels, e.g. 1,2") from None


def _lora_of_rank(rank: int) -> dict[str, Any] | None:
    if rank < 0:
        raise ValueError("must be at least 0 (0 trains every weight)")
    return {**DEMO_LORA, "r": rank, "lora_alpha": 2 * rank} if rank else None


def _labels(text: str) -> str:
    if text not in LABELS:
        raise ValueError(f"expected {' or '.join(LABELS)}")
    return text


_PIVOT, _TRAIN, _EVAL = "Pivot references", "Training", "Evaluation before and after"


@dataclass
class PipelineConfig:
    """One pipeline run. The defaults are ``pivotrl demo``; each field (but ``algorithm``, ``offline`` and ``trl``)
    is also one of its options, with this help."""

    out: str = setting("runs/demo", flags=("-o", "--out"), help="Run folder (re-running continues it).")
    model: str = setting("qwen0.5b", help="Policy: packaged alias (pivotrl models), folder, .gguf file or hub id.")
    pivot: str = setting("qwen0.5b", help="English pivot: a model (alias, folder, hub id) or 'gold' (the set's "
                                          "worked solutions).")
    task: str = setting("synthetic", help="Training problems (train split): synthetic (embedded), msvamp, mgsm, "
                                          "gsm8k, or a file.")
    langs: list[str] = setting(default_factory=lambda: ["de", "fr", "ja"], cli_type=str, parse=_target_langs,
                               help="Comma-separated target languages.")
    levels: list[int] | None = setting(default_factory=lambda: [1, 2], cli_type=str, parse=_levels,
                                       help="Synthetic set only: difficulty levels, e.g. 1,2.")
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    # -- pivot references (verified against the English gold answers; gold solutions where none verifies)
    pivot_n: int = setting(16, at_least=1, panel=_PIVOT, help="English training problems given to the pivot.")
    pivot_k: int = setting(2, at_least=1, panel=_PIVOT, help="The pivot's samples per problem.")
    pivot_max_new_tokens: int = setting(256, at_least=1, panel=_PIVOT,  # as long as the policy's answers
                                        help="The pivot's budget per worked answer, in tokens.")
    # -- training
    reward: Any = setting("hybrid", cli_type=str, panel=_TRAIN, help="Reward preset (hybrid, hybrid-judge, embedding, "
                                                                     "translate, answer) or a YAML file.")
    labels: str = setting("pivot", parse=_labels, panel=_TRAIN, help="pivot: rewarded against the pivot's English "
                          "references (PB-RLSVR); gold: against target-language gold answers (the RLVR baseline).")
    algorithm: str = setting("grpo", cli=False, help="A name of pivotrl.train.algorithms.ALGORITHMS.")
    steps: int = setting(10, at_least=1, panel=_TRAIN,
                         help="GRPO steps (two prompts, 4 sampled answers each).")  # online algorithms: TRL steps
    offline: dict[str, Any] = setting(default_factory=dict, cli=False,
                                      help="Offline algorithms: TrainConfig's round fields.")
    trl: dict[str, Any] = setting(default_factory=dict, cli=False,
                                  help="TRL config fields: online, on top of CPU_TRL; offline, the whole TRL config.")
    lora: dict[str, Any] | None = setting(default_factory=lambda: dict(DEMO_LORA), flags=("--lora-r",), cli_type=int,
                                          cli_default=DEMO_LORA["r"], parse=_lora_of_rank, panel=_TRAIN,
                                          help="LoRA rank on every linear layer; 0 trains every weight.")
    seed: int = setting(0, bounds=SEED, help="Seed of sampling and training.")
    # -- evaluation (held-out split, English plus the target languages)
    eval_task: str | None = setting(None, panel=_EVAL, help="Held-out evaluation set; default: --task.")
    eval_n: int = setting(32, at_least=1, panel=_EVAL, help="Held-out problems per language.")
    eval_max_new_tokens: int = setting(256, at_least=1, panel=_EVAL,  # a longer answer is not cut in evaluation
                                       help="Budget per answer, in tokens (at least training's).")
    # -- where generation-only stages (pivot, evaluation) and the reward's encoder run; TRL places the policy
    device: str = setting("auto", help="Where the pivot, the evaluations and the reward's encoder run: "
                                       + DEVICE_HELP + "; TRL places the policy.")

    def eval_levels(self, task: str) -> list[int] | None:
        return self.levels if task == "synthetic" else None


def _say(console: Any, text: str) -> None:
    if console is not None:
        console.print(text, highlight=False)


def pivot_stage(config: PipelineConfig, out: Path, progress: bool = True) -> dict[str, Any]:
    """English references for the first ``pivot_n`` training problems, written by ``config.pivot``."""
    from pivotrl.pivot.run import PivotConfig, run_pivot

    pivot_config = PivotConfig(pivot=config.pivot, task=config.task, split="train", n=config.pivot_n,
                               levels=config.levels if config.task == "synthetic" else None,
                               data_dir=config.data_dir, out=str(out), k=config.pivot_k,
                               max_new_tokens=config.pivot_max_new_tokens, seed=config.seed, fallback_gold=True,
                               device=config.device)
    return run_pivot(pivot_config, progress=progress)


def eval_stage(model: str, config: PipelineConfig, out: Path, task: str | None = None, n: int | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Greedy held-out evaluation of ``model`` in English and the target languages."""
    from pivotrl.data import PROBLEM_SETS
    from pivotrl.evaluation import EvalConfig, run_eval

    task = task or config.eval_task or config.task
    has = PROBLEM_SETS[task].langs if task in PROBLEM_SETS else None
    langs = [code for code in ["en", *config.langs] if has is None or code in has]
    eval_config = EvalConfig(model=model, task=task, langs=langs, split="held-out", n=n or config.eval_n,
                             levels=config.eval_levels(task), max_new_tokens=config.eval_max_new_tokens,
                             data_dir=config.data_dir, device=config.device, out=str(out))
    return run_eval(eval_config, progress=progress)


def _reward(config: PipelineConfig) -> Any:
    """The reward as the recipe gets it: unchanged, or with the pipeline's device for its encoder."""
    if config.device == "auto":
        return config.reward
    from pivotrl.rewards.compose import load_reward_config

    return load_reward_config(config.reward, device=config.device).to_dict()


def train_config(config: PipelineConfig, out: Path, refs: Path | None) -> Any:
    from pivotrl.train.algorithms import algorithm
    from pivotrl.train.config import TrainConfig

    # CPU_TRL holds GRPO's fields; an offline algorithm's TRL config (DPO, SFT) is the pipeline's own
    online = algorithm(config.algorithm).online
    trl = {**CPU_TRL, **config.trl, "max_steps": config.steps} if online else dict(config.trl)
    trained = TrainConfig(model=config.model, output_dir=str(out), task=config.task, langs=list(config.langs),
                          data_dir=config.data_dir, refs=str(refs) if refs else None, labels=config.labels,
                          n_train=config.pivot_n if config.labels == "gold" else None,
                          levels=config.levels if config.task == "synthetic" else None, reward=_reward(config),
                          algorithm=config.algorithm, trl=trl, lora=config.lora, eval_n=0, seed=config.seed,
                          **config.offline)
    trained.validate("pipeline")
    return trained


def train_stage(config: PipelineConfig, out: Path, refs: Path | None, progress: bool = True) -> dict[str, Any]:
    """Train (or continue training) the policy; a finished run folder is returned as it is."""
    from pivotrl.evaluation import evaluate_loaded
    from pivotrl.train.run import run_train

    from pivotrl.train.algorithms import algorithm

    done = out / "summary.json"
    if done.is_file() and (out / "final").is_dir():
        summary = json.loads(done.read_text(encoding="utf-8"))
        if not algorithm(config.algorithm).online or summary.get("steps", 0) >= config.steps:
            return summary
    return run_train(train_config(config, out, refs), resume=True, progress=progress, evaluate=evaluate_loaded)


def run_pipeline(config: PipelineConfig, progress: bool = True, console: Any = None,
                 on_stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every stage (skipping finished ones); returns the summary also written to ``<out>/summary.json``.

    The run folder is checked and locked first: a second writer gets an error naming the holder."""
    from pivotrl.run_folder import claim

    check_fields(config, "demo")  # each setting within what it takes, before the run folder is made
    with claim(config.out, "demo run folder"):
        return _run_pipeline(config, progress, console, on_stage)


def _run_pipeline(config: PipelineConfig, progress: bool, console: Any,
                  on_stage: Callable[[str], None] | None) -> dict[str, Any]:
    from pivotrl.report import write_report

    out = Path(config.out)
    summary: dict[str, Any] = {"config": asdict(config), "seconds": {}}
    started = time.perf_counter()

    def stage(name: str, title: str) -> float:
        if on_stage is not None:
            on_stage(name)
        _say(console, f"\n[bold cyan]{title}[/]")
        return time.perf_counter()

    refs = None
    if config.labels == "pivot":
        t = stage("pivot", f"1/5 pivot references: {config.pivot} on {config.pivot_n} English {config.task} "
                           f"training problems, {config.pivot_k} samples each")
        pivot = pivot_stage(config, out / "pivot", progress)
        refs = out / "pivot"
        status = pivot["by_status"]
        summary["pivot"] = pivot
        summary["seconds"]["pivot"] = round(time.perf_counter() - t, 1)
        _say(console, f"references: {status.get('verified', 0)} verified by the pivot (right final answer), "
                      f"{status.get('majority', 0)} by majority, {status.get('gold', 0)} gold worked solutions "
                      f"(fallback where no sample verified), {status.get('none', 0)} without any")

    t = stage("eval-base", f"2/5 evaluation before training: {config.model}, greedy, held-out problems")
    summary["base"] = eval_stage(config.model, config, out / "eval" / "base", progress=progress)["summary"]
    summary["seconds"]["eval_base"] = round(time.perf_counter() - t, 1)

    t = stage("train", f"3/5 training: {config.steps} GRPO steps, reward {config.reward!r}, "
                       f"languages {', '.join(config.langs)}")
    trained = train_stage(config, out / "train", refs, progress)
    summary["train"] = {k: trained.get(k) for k in ("steps", "seconds", "final", "data")}
    summary["seconds"]["train"] = round(time.perf_counter() - t, 1)

    t = stage("eval-trained", "4/5 evaluation after training: the same held-out problems")
    summary["trained"] = eval_stage(str(out / "train" / "final"), config, out / "eval" / "trained",
                                    progress=progress)["summary"]
    summary["seconds"]["eval_trained"] = round(time.perf_counter() - t, 1)

    stage("report", "5/5 report")
    report = write_report([out / "eval" / "base", out / "eval" / "trained"], out / "report",
                          title=f"pivotrl: {config.model} before and after PB-RLSVR ({config.reward} reward, "
                                f"{config.steps} steps on {config.task})")
    _append_training(report, out / "train", summary)
    summary["report"] = str(report)
    summary["seconds"]["total"] = round(time.perf_counter() - started, 1)
    write_output(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    return summary


def read_log(train_dir: Path) -> list[dict[str, Any]]:
    """The training log (``log.jsonl``): one dict per logged step; a resumed run's repeated steps keep the last."""
    path = train_dir / "log.jsonl"
    if not path.is_file():
        return []
    def kind(row: dict[str, Any]) -> str:  # a step can log a sampling, a loss, an evaluation and a summary line
        if "reward" in row:
            return "a reward"
        if any(key.startswith("eval/") for key in row):
            return "c eval"
        return "b loss" if "loss" in row else "d other"

    by_step: dict[tuple[int, str], dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_step[(int(row.get("step", 0)), kind(row))] = row
    return [row for _, row in sorted(by_step.items())]


def training_curve(rows: list[dict[str, Any]], out: Path, title: str) -> Path | None:
    """Reward per step (total and components) from a training log, smoothed over 5 steps."""
    steps = [r for r in rows if "reward" in r]
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def smooth(values: list[float]) -> np.ndarray:
        width = min(5, len(values))
        return np.convolve(values, np.ones(width) / width, mode="valid")

    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = [r["step"] for r in steps]
    # "reward" is the weighted total; rewards/pivotrl_<preset> repeats it, rewards/<component> are the parts
    keys = ["reward"] + sorted(k for k in steps[0] if k.startswith("rewards/") and k.endswith("/mean")
                               and not k.startswith("rewards/pivotrl_"))
    for key in keys:
        values = [float(r.get(key, 0.0)) for r in steps]
        sm = smooth(values)
        ax.plot(x[len(x) - len(sm):], sm, label=key.replace("rewards/", "").replace("/mean", ""),
                linewidth=2.2 if key == "reward" else 1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel("mean reward (5-step average)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, frameon=False)
    fig.tight_layout()
    return write_figure(fig, out / "training_reward.png")


def rollout_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: per language, over the steps that sampled it (first third -> last third of them), the
    training reward, the share of sampled answers cut at the sampling budget and their mean length in tokens.
    A budget that cuts a language's reasoning, or a policy collapsing to bare answers, shows here before it
    shows in accuracy; per language, because the languages of a step's prompts vary from step to step."""
    codes = sorted({key.rsplit("/", 1)[1] for r in rows for key in r if key.startswith("completions/cut_by_lang/")})
    if not codes:
        return []

    def mean(part: list[dict[str, Any]], key: str, digits: int) -> str:
        values = [float(r[key]) for r in part if key in r]
        return f"{sum(values) / len(values):.{digits}f}" if values else "-"

    lines = ["", "Sampled answers per language, over the steps that sampled it (first third -> last third of those "
                 "steps):", "",
             "| language | steps | reward | cut at the budget (share) | mean length (tokens) |",
             "|---|---:|---|---|---|"]
    for code in codes:
        cut, length = f"completions/cut_by_lang/{code}", f"completions/length_by_lang/{code}"
        seen = [r for r in rows if cut in r]
        third = max(1, len(seen) // 3)
        first, last = seen[:third], seen[-third:]
        cells = [f"{mean(first, key, d)} -> {mean(last, key, d)}"
                 for key, d in ((f"reward_by_lang/{code}", 3), (cut, 2), (length, 0))]
        lines.append(f"| {code} | {len(seen)} | " + " | ".join(cells) + " |")
    return lines


def _append_training(report: Path, train_dir: Path, summary: dict[str, Any]) -> None:
    rows = [r for r in read_log(train_dir) if "reward" in r]
    lines = ["", "## Training", ""]
    pivot = summary.get("pivot")
    if pivot:
        status = pivot["by_status"]
        lines.append(f"Pivot references: {status.get('verified', 0)} verified, {status.get('majority', 0)} "
                     f"majority, {status.get('gold', 0)} gold fallback, {status.get('none', 0)} none, of "
                     f"{pivot['problems']} English problems.")
    if rows and "round" in rows[0]:  # an offline run (dpo, rft): a sampling line per round
        lines.append(f"{len(rows)} round(s); mean sampled reward {rows[0]['reward']:.3f} in the first, "
                     f"{rows[-1]['reward']:.3f} in the last; {sum(int(r.get('kept', 0)) for r in rows)} pairs or "
                     "targets trained on in all.")
        lines += rollout_table(rows)
    elif rows:
        first, last = rows[: max(1, len(rows) // 5)], rows[-max(1, len(rows) // 5):]
        mean = lambda xs, k: sum(float(r.get(k, 0.0)) for r in xs) / len(xs)  # noqa: E731
        zero = sum(float(r.get("frac_reward_zero_std", 0.0)) for r in rows) / len(rows)
        lines.append(f"{len(rows)} steps; mean reward {mean(first, 'reward'):.3f} over the first fifth, "
                     f"{mean(last, 'reward'):.3f} over the last fifth; {100 * zero:.0f}% of the groups had no "
                     "reward spread (no learning signal).")
        lines += rollout_table(rows)
        curve = training_curve(rows, report.parent, "reward during training")
        if curve is not None:
            lines += ["", f"![training reward]({curve.name})"]
    with open_output(report, "a") as f:
        f.write("\n".join(lines) + "\n")
