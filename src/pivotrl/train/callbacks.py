"""TrainerCallbacks of `pivotrl train`: the kill-safe log file, the multilingual evaluation during training,
and the step bar that shows the reward. Imported when training starts (transformers loads with it)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from pivotrl.run_folder import open_output
from pivotrl.train.config import TrainConfig

__all__ = ["EvaluateFn", "LogFile", "MultilingualEval", "RewardProgress"]

# (EvalConfig fields, the loaded model) -> the evaluation's metrics; pivotrl.evaluation.evaluate_loaded is one
EvaluateFn = Callable[[dict[str, Any], Any], dict[str, Any]]


class LogFile(TrainerCallback):
    """Appends every logged dict to ``path`` as one JSON line, flushed and fsync'ed: a kill loses nothing
    logged. ``step_offset`` is added to the trainer's step (an offline round's steps continue the run's count)
    and ``extra`` goes into every line (its round)."""

    def __init__(self, path: Path, step_offset: int = 0, extra: dict[str, Any] | None = None) -> None:
        self.path = path
        self.step_offset = step_offset
        self.extra = extra or {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            entry = {"step": state.global_step + self.step_offset, **self.extra, **logs}
            with open_output(self.path, "a") as f:  # a full disk: an error naming the log
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())


class MultilingualEval(TrainerCallback):
    """Runs ``pivotrl eval`` on a held-out slice every ``eval_every`` steps and at the end, with the model being
    trained, into ``<output_dir>/evals/step-N``, and logs accuracy and fidelity per language through the trainer
    (set ``trainer`` after the trainer is built).

    ``evaluate(settings, loaded)`` is :func:`pivotrl.evaluation.evaluate_loaded`, handed in by the caller:
    evaluation is a later stage than training, so training does not import it."""

    def __init__(self, config: TrainConfig, tokenizer: Any, evaluate: EvaluateFn) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.evaluate_fn = evaluate
        self.langs = config.eval_langs or (["en"] + [x for x in config.langs if x != "en"])
        self.trainer: Any = None
        self.done: set[int] = set()

    def evaluate(self, step: int, model: Any) -> dict[str, Any] | None:
        """Evaluate ``model`` as of training step ``step`` (once per step); returns what it logs, logged through
        ``trainer`` when one is set."""
        from pivotrl.models import LoadedModel

        config = self.config
        if step in self.done:
            return None
        self.done.add(step)
        out = Path(config.output_dir) / "evals" / f"step-{step}"
        task = config.eval_task or config.task
        settings = {"model": config.model, "task": task, "langs": self.langs, "split": "held-out", "n": config.eval_n,
                    "max_new_tokens": config.eval_max_new_tokens, "data_dir": config.data_dir, "out": str(out),
                    "prompt": config.prompt_style, "levels": config.levels if task == "synthetic" else None,
                    "extra": {"train_step": step}}
        was_training = model.training
        model.eval()
        started = time.perf_counter()
        try:
            metrics = self.evaluate_fn(settings, LoadedModel(model, self.tokenizer, config.model, "training", str(out)))
        finally:
            model.train(was_training)
        logged = {f"eval/accuracy/{code}": m["accuracy"] for code, m in metrics["languages"].items()}
        logged.update({f"eval/fidelity/{code}": m["fidelity"] for code, m in metrics["languages"].items()})
        summary = metrics["summary"]
        for key in ("non_en_accuracy", "en_accuracy", "english_gap_points", "non_en_fidelity"):
            if summary.get(key) is not None:
                logged[f"eval/{key}"] = summary[key]
        logged["eval/seconds"] = round(time.perf_counter() - started, 1)
        if self.trainer is not None:
            self.trainer.log(logged)
        return logged

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.config.eval_every and state.global_step % self.config.eval_every == 0 and state.is_world_process_zero:
            self.evaluate(state.global_step, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.config.eval_n and state.is_world_process_zero:
            self.evaluate(state.global_step, model)


class RewardProgress(ProgressCallback):
    """transformers' step bar, with the mean reward and the share of groups without spread as its postfix
    (online algorithms), or the loss and, for DPO, the share of pairs ranked right (offline ones), instead of a
    full dict printed at every step."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (state.is_world_process_zero and self.training_bar is not None and logs):
            return
        if "reward" in logs:
            self.training_bar.set_postfix(reward=f"{logs['reward']:.3f}",
                                          zero_spread=f"{logs.get('frac_reward_zero_std', 0):.2f}", refresh=False)
        elif "loss" in logs:
            postfix = {"loss": f"{logs['loss']:.4f}"}
            if "rewards/accuracies" in logs:
                postfix["pairs_right"] = f"{logs['rewards/accuracies']:.2f}"
            self.training_bar.set_postfix(postfix, refresh=False)
