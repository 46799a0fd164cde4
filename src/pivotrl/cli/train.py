"""`pivotrl train` and `pivotrl export verl`: RL training through TRL, and verl's training set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pivotrl.cli.common import _fail, _write_failed, app, console

# ------------------------------------------------------------------------------------------------ export

export_app = typer.Typer(help="Export a training set for other trainers (verl on Ray).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("verl")
def export_verl_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A training recipe (see recipes/): "
                      "task, langs, refs, levels, n_train and reward are used.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field (key=value).")]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the parquet files, reward.py and scripts.")]
    = Path("runs/verl"),
    model: Annotated[str, typer.Option(help="The policy verl trains (hub id or path on the cluster).")]
    = "Qwen/Qwen2.5-7B-Instruct",
    n_gpus: Annotated[int, typer.Option(help="GPUs per node.")] = 8,
    nnodes: Annotated[int, typer.Option(help="Nodes.")] = 1,
    reward_url: Annotated[Optional[str], typer.Option(help="Score through `pivotrl reward serve` at this URL.")]
    = None,
) -> None:
    """Write verl's RL data (train.parquet, test.parquet from the held-out split), the reward module and
    GRPO / PPO launch scripts for Ray, from the same recipe `pivotrl train` uses."""
    from pivotrl.data import load_problems
    from pivotrl.data.errors import DataError
    from pivotrl.pivot.train_set import TrainExample
    from pivotrl.train.config import TrainConfigError, load_train_config
    from pivotrl.train.run import TrainError, build_rows
    from pivotrl.train.verl_export import export_verl

    try:
        recipe = load_train_config(config, list(set_ or []) + [f"output_dir={out}"])
        rows, _ = build_rows(recipe, progress=True)
        english = {p.id: p for p in load_problems(recipe.task, ["en"], data_dir=recipe.data_dir)}

        def example(pid: str, lang: str, question: str, reference: str, answer: str, kind: str) -> TrainExample:
            question_en = english[pid].question if pid in english else ""
            return TrainExample(pid, lang, question, question_en, reference, answer, kind,
                                f"parallel:{recipe.task}", "gold" if recipe.refs is None else str(recipe.refs),
                                "gold" if recipe.refs is None else "verified")

        train = [example(r["problem_id"], r["lang"], r["question"], r["reference"], r["reference_answer"],
                         r["answer_type"]) for r in rows]
        held = [example(p.id, p.lang, p.question, english[p.id].solution, p.answer, p.answer_type)
                for p in load_problems(recipe.task, recipe.langs, split="held-out", data_dir=recipe.data_dir)
                if p.id in english and english[p.id].solution]
        reward = recipe.reward if isinstance(recipe.reward, str) else "hybrid"
        summary = export_verl(train, out, held_out=held or None, reward=reward, reward_url=reward_url, model=model,
                              n_gpus=n_gpus, nnodes=nnodes)
    except (TrainConfigError, TrainError, DataError, ValueError) as exc:
        _fail(str(exc))
    console.print_json(json.dumps(summary, default=str))
    console.print(f"verl export written to {out}: see {out}/README.md")


# ------------------------------------------------------------------------------------------------ train


@app.command("train")
def train_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A YAML recipe (see recipes/).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field: key=value, "
                    "dotted for nested fields (trl.max_steps=30, reward.weights.answer_format=0.5, langs=de,zh). "
                    "Repeatable.")] = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Run folder (checkpoints, "
                          "log.jsonl, evals/, final/).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Policy: packaged alias, folder, GGUF or hub id.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Shortcut for --set trl.max_steps=N.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in the run folder "
                      "(same data order and step count).")] = False,
    device: Annotated[Optional[str], typer.Option(help="Where the reward's encoder and translator run (shortcut "
                      "for --set reward.device=...; default auto: this process's GPU when there is one). TRL and "
                      "accelerate place the policy itself.", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """RL-train the policy with TRL (GRPO by default, or RLOO) on target-language prompts, rewarded against
    English pivot references by a composed reward; evaluates a held-out slice during training, checkpoints,
    resumes, and saves a transformers folder that `pivotrl eval --model <run>/final` loads. Runs under
    `accelerate launch` unchanged."""
    from pivotrl.data.errors import DataError
    from pivotrl.models import ModelLoadError
    from pivotrl.train.config import TrainConfigError, load_train_config
    from pivotrl.train.run import TrainError, run_train

    overrides = list(set_ or [])
    if output_dir is not None:
        overrides.append(f"output_dir={output_dir}")
    if model is not None:
        overrides.append(f"model={model}")
    if max_steps is not None:
        overrides.append(f"trl.max_steps={max_steps}")
    if device is not None:
        overrides.append(f"reward.device={device}")
    try:
        recipe = load_train_config(config, overrides)
        summary = run_train(recipe, resume=resume, progress=progress)
    except (TrainConfigError, TrainError, DataError, ModelLoadError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_write_failed(exc, "the last complete checkpoint is kept; continue with --resume"))
    last = summary["last_log"]
    console.print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; final model: {summary['final']}")
    if last:
        console.print("last step: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                                                if isinstance(v, float) and (k.startswith("reward") or k == "loss")))
