"""`pivotrl train` and `pivotrl export verl`: RL training through TRL, and verl's training set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from pivotrl.cli.common import app, console, fail, options_from, recipe_options, write_failed
from pivotrl.train.config import TrainConfig
from pivotrl.train.verl_launch import VerlLaunch

# ------------------------------------------------------------------------------------------------ export

export_app = typer.Typer(help="Export a training set for other trainers (verl on Ray).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("verl")
@options_from(VerlLaunch, "launch")
def export_verl_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A training recipe (see recipes/): "
                      "task, langs, refs, levels, n_train and reward are used.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field (key=value).")]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the parquet files, reward.py and scripts.")]
    = Path("runs/verl"),
    reward_url: Annotated[Optional[str], typer.Option(help="Score through `pivotrl reward serve` at this URL.")]
    = None,
    launch: VerlLaunch = None,  # type: ignore[assignment] - built by options_from from the options below
) -> None:
    """Write verl's RL data (train.parquet, test.parquet from the held-out split), the reward module and
    GRPO / PPO launch scripts for Ray, from the same recipe `pivotrl train` uses."""
    from pivotrl.data import load_problems
    from pivotrl.data.errors import DataError
    from pivotrl.run_folder import WriteError, check_output_dir
    from pivotrl.train.config import TrainConfigError, load_train_config
    from pivotrl.train.run import TrainError, held_out_examples, training_examples
    from pivotrl.train.verl_export import export_verl

    try:
        recipe = load_train_config(config, list(set_ or []) + [f"output_dir={out}"])
        check_output_dir(out, "--out folder")  # before the training set is built
        train, _ = training_examples(recipe, progress=True)
        held = held_out_examples(recipe)
        reward = recipe.reward if isinstance(recipe.reward, str) else "hybrid"
        problems = load_problems(recipe.task, recipe.langs, data_dir=recipe.data_dir) \
            if any(e.answer_type == "choice" for e in train) else None
        summary = export_verl(train, out, held_out=held or None, launch=launch, reward=reward,
                              reward_url=reward_url, prompt_style=recipe.prompt_style, problems=problems)
    except (TrainConfigError, TrainError, DataError, ValueError) as exc:
        fail(str(exc))
    except WriteError as exc:
        fail(write_failed(exc))
    console.print_json(json.dumps(summary, default=str))
    console.print(f"verl export written to {out}: see {out}/README.md")


# ------------------------------------------------------------------------------------------------ train


def _recipe_fields() -> str:
    from pivotrl.config_fields import field_help
    from pivotrl.train.algorithms import ALGORITHMS

    lines = [f"[bold]{name}[/]: {text}" for name, text in field_help(TrainConfig).items()]
    algorithms = [f"[bold]{row.describe().replace(':', '[/]:', 1)}" for row in ALGORITHMS.values()]
    return ("Recipe fields (YAML keys, or --set key=value):\n\n" + "\n\n".join(lines)
            + "\n\nAlgorithms (algorithm: NAME; trl: takes the fields of its TRL config class):\n\n"
            + "\n\n".join(algorithms))


# The recipe fields with an option of their own (a shortcut for --set FIELD=VALUE): field -> its spellings. The run
# folder is --out, as in every command; --output-dir, its old spelling (TRL's word), still works.
TRAIN_OPTIONS: dict[str, tuple[str, ...]] = {"model": (), "output_dir": ("--out", "-o"), "task": (), "langs": (),
                                             "reward": (), "algorithm": (), "seed": ()}
_SHORTCUTS = "Recipe fields (each a shortcut for --set FIELD=VALUE)"


@app.command("train", epilog=_recipe_fields())
@recipe_options(TrainConfig, "fields", TRAIN_OPTIONS, aliases={"output_dir": ("--output-dir",)}, panel=_SHORTCUTS)
def train_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A YAML recipe (see recipes/).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field: key=value, "
                    "dotted for nested fields (trl.max_steps=30, reward.weights.answer_format=0.5, langs=de,zh). "
                    "Repeatable.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Shortcut for --set trl.max_steps=N.",
                                                     rich_help_panel=_SHORTCUTS)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in the run folder "
                      "(same data order and step count).")] = False,
    device: Annotated[Optional[str], typer.Option(help="Where the reward's encoder and translator run (shortcut "
                      "for --set reward.device=...; default auto: this process's GPU when there is one). TRL and "
                      "accelerate place the policy itself.", show_default=False,
                      rich_help_panel=_SHORTCUTS)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    fields: dict = None,  # type: ignore[assignment] - the recipe fields given as options (recipe_options)
) -> None:
    """Train the policy with TRL on target-language prompts, rewarded against English pivot references by a
    composed reward: online (GRPO by default, or RLOO: answers sampled at every step) or offline in rounds (DPO on
    pairs, RFT on targets, chosen from the policy's own scored answers). Evaluates a held-out slice during
    training, checkpoints, resumes after a kill, and saves a transformers folder that
    `pivotrl eval --model <run>/final` loads. The online algorithms run under `accelerate launch` unchanged."""
    from pivotrl.train.config import TrainConfigError, load_train_config

    overrides = list(set_ or []) + [f"{key}={value}" for key, value in fields.items()]
    if max_steps is not None:
        overrides.append(f"trl.max_steps={max_steps}")
    if device is not None:
        overrides.append(f"reward.device={device}")
    try:  # the recipe is checked before torch and transformers are imported (many seconds on a busy machine)
        recipe = load_train_config(config, overrides)
    except (TrainConfigError, ValueError) as exc:
        fail(str(exc))
    from pivotrl.data.errors import DataError
    from pivotrl.evaluation import evaluate_loaded
    from pivotrl.models import ModelLoadError
    from pivotrl.train.run import TrainError, run_train

    try:
        summary = run_train(recipe, resume=resume, progress=progress, evaluate=evaluate_loaded)
    except (TrainConfigError, TrainError, DataError, ModelLoadError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(write_failed(exc, "the last complete checkpoint is kept; continue with --resume", recipe.output_dir))
    console.print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; final model: {summary['final']}")
    for entry in summary.get("rounds", []):
        kept = ", ".join(f"{code} {s['kept']}/{s['prompts']}" for code, s in entry["selection"].items())
        console.print(f"round {entry['round']}: {entry['kept']} of {entry['prompts']} prompts kept ({kept}), "
                      f"{entry['steps']} steps; sampling {entry['sample_seconds']:.0f} s, training "
                      f"{entry['train_seconds']:.0f} s")
    last = summary.get("last_log")
    if last:
        console.print("last step: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                                                if isinstance(v, float) and (k.startswith("reward") or k == "loss")))
