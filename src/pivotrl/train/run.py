"""`pivotrl train`: the training set, the reward and TRL's trainer, with evaluation, checkpoints and resume.

The run folder (``output_dir``) holds everything a run produces, written as it goes:

* ``recipe.yaml`` - the resolved recipe (a resume must use the same one);
* ``train_set.jsonl`` - every training row (prompt, reference, reference answer, language, problem id);
* ``checkpoint-N/`` - online algorithms (grpo, rloo): TRL/transformers checkpoints (model, optimizer, scheduler,
  RNG, data position);
* ``round-N/`` - offline algorithms (dpo, rft): each round's scored samples, selection, checkpoints and trained
  adapter (:mod:`pivotrl.train.offline`);
* ``log.jsonl`` - every logged dict (losses, per-component and per-language rewards, evaluations), appended
  and flushed at each logging step, so a killed run keeps its curves;
* ``evals/step-N/`` - ``pivotrl eval`` run folders of the held-out evaluations during training;
* ``final/`` - the trained model as a normal transformers folder (merged when LoRA was used; a single-adapter
  run's adapter itself in ``final/adapter``) that ``pivotrl eval --model <output_dir>/final`` loads.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from pivotrl.pivot.train_set import TrainExample
from pivotrl.records import Problem
from pivotrl.run_folder import open_output, write_output
from pivotrl.train.algorithms import algorithm
from pivotrl.train.checkpoints import checkpoint_step, checkpoints, cut_log, last_checkpoint, save_model_folder
from pivotrl.train.config import TrainConfig, TrainConfigError, trl_args

log = logging.getLogger(__name__)

__all__ = ["TrainError", "build_rows", "build_trainer", "held_out_examples", "run_train", "training_examples",
           "trl_row", "uses_engine"]


class TrainError(RuntimeError):
    """A training run that cannot start or continue; the message says why and what to do."""


# ------------------------------------------------------------------------------------------- training set


def _level_filter(config: TrainConfig) -> set[str] | None:
    if not config.levels:
        return None
    if config.task != "synthetic":
        raise TrainConfigError(f"levels only applies to the synthetic set, not {config.task!r}")
    from pivotrl.data import load_problems

    return {p.id for p in load_problems("synthetic", ["en"], levels=config.levels)}


def _prompt(question: str, lang: str, problem_id: str, answer_type: str, style: str) -> str:
    from pivotrl.prompts import native_prompt
    from pivotrl.records import Problem

    return native_prompt(Problem(problem_id, lang, question, "0", "train", answer_type=answer_type), style)


def training_examples(config: TrainConfig, progress: bool = True) -> tuple[list[TrainExample], dict[str, Any]]:
    """The recipe's training examples: target-language questions with their English references.

    ``labels: pivot`` pairs target-language questions with the English pivot references of ``refs`` (a pivot
    store; without one, the set's gold English worked solutions are used as the pivot and stored in
    ``<output_dir>/refs``). ``labels: gold`` uses the target-language gold answers instead (RLVR baseline).
    Held-out problems never enter training.
    """
    from pivotrl.data import load_problems

    keep = _level_filter(config)
    examples: list[TrainExample] = []
    summary: dict[str, Any] = {"labels": config.labels, "task": config.task}
    if config.labels == "gold":
        problems = load_problems(config.task, config.langs, split="train", data_dir=config.data_dir)
        english = {p.id: p for p in load_problems(config.task, ["en"], split="train", data_dir=config.data_dir)}
        for p in problems:
            if keep is not None and p.id not in keep:
                continue
            examples.append(_gold_example(p, english.get(p.id), config.task))
        summary["source"] = "gold target-language answers"
    else:
        from pivotrl.pivot.train_set import build_train_set

        refs = config.refs
        if refs is None:
            from pivotrl.pivot.run import PivotConfig, run_pivot

            refs = str(Path(config.output_dir) / "refs")
            run_pivot(PivotConfig(pivot="gold", task=config.task, split="train", out=refs, data_dir=config.data_dir),
                      progress=progress)
        built_examples, built = build_train_set(refs, config.task, config.langs, data_dir=config.data_dir)
        summary.update({k: v for k, v in built.items() if k != "languages"})
        examples = [e for e in built_examples if keep is None or e.id in keep]
        summary["source"] = f"pivot references from {refs}"
    if config.n_train is not None:
        ids = set(sorted({e.id for e in examples})[: config.n_train])
        examples = [e for e in examples if e.id in ids]
    if not examples:
        raise TrainError(f"no training rows for task {config.task!r} in {', '.join(config.langs)} "
                         f"({summary.get('source')}); check the languages, levels and references")
    summary["rows"] = len(examples)
    summary["by_lang"] = {code: sum(e.lang == code for e in examples) for code in config.langs}
    return examples, summary


def held_out_examples(config: TrainConfig) -> list[TrainExample]:
    """The recipe's held-out problems with the gold English solutions as references (verl's validation split)."""
    from pivotrl.data import load_problems

    english = {p.id: p for p in load_problems(config.task, ["en"], data_dir=config.data_dir)}
    return [_gold_example(p, english[p.id], config.task)
            for p in load_problems(config.task, config.langs, split="held-out", data_dir=config.data_dir)
            if p.id in english and english[p.id].solution]


def _gold_example(problem: Problem, english: Problem | None, task: str) -> TrainExample:
    """A target-language problem with its gold answer and the English gold worked solution as reference."""
    return TrainExample(id=problem.id, lang=problem.lang, question=problem.question,
                        question_en=english.question if english else "",
                        reference=english.solution if english and english.solution else "",
                        reference_answer=problem.answer, answer_type=problem.answer_type,
                        prompt_source=f"parallel:{task}", pivot="gold", reference_status="gold")


def trl_row(example: TrainExample, prompt_style: str) -> dict[str, Any]:
    """One row of TRL's dataset: the chat ``prompt`` and the columns the reward functions receive."""
    return {"problem_id": example.id, "lang": example.lang, "question": example.question,
            "reference": example.reference, "reference_answer": example.reference_answer,
            "answer_type": example.answer_type,
            "prompt": [{"role": "user", "content": _prompt(example.question, example.lang, example.id,
                                                          example.answer_type, prompt_style)}]}


def build_rows(config: TrainConfig, progress: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """TRL's training rows (:func:`trl_row` of each of :func:`training_examples`) and the data summary."""
    examples, summary = training_examples(config, progress=progress)
    return [trl_row(e, config.prompt_style) for e in examples], summary


# ----------------------------------------------------------------------------------------------- TRL setup


def uses_engine(config: TrainConfig, args: Any) -> bool:
    """Whether pivotrl's engine samples the rollouts: ``rollouts: engine``, or ``auto`` on a CPU without vLLM
    (on a GPU, TRL's path and vLLM stay the default)."""
    if config.rollouts == "auto":
        from pivotrl.train.rollouts import check_engine_settings

        return bool(args.use_cpu) and check_engine_settings(config.trl) is None
    return config.rollouts == "engine"


def build_trainer(config: TrainConfig, model: Any, tokenizer: Any, rows: list[dict[str, Any]], *,
                  callbacks: list[Any] | None = None) -> Any:
    """TRL's trainer for the recipe, as ``pivotrl train`` runs it: the composed reward (its total optimised, its
    components logged, rollout lengths and cuts per language logged beside it), LoRA, the rollout engine and
    the update's shortcuts."""
    from datasets import Dataset

    from pivotrl.generation import end_token_ids
    from pivotrl.train.config import build_run_reward
    from pivotrl.train.algorithms import trl_classes
    from pivotrl.train.rollouts import grpo_rollout_func, log_rollout_lengths, sample_rloo_rollouts_with_engine
    from pivotrl.train.update import score_only_completion_tokens, skip_rows_without_gradient

    if not algorithm(config.algorithm).online:
        raise ValueError(f"build_trainer builds the online algorithms' trainers; {config.algorithm} trains in "
                         "rounds (pivotrl.train.offline)")
    funcs, weights = build_run_reward(config).trl_reward_funcs()
    args = trl_args(config, reward_weights=weights)
    engine = uses_engine(config, args)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):  # a base model without a chat template: the plain text
        rows = [{**r, "prompt": r["prompt"][0]["content"]} if isinstance(r["prompt"], list) else r for r in rows]
    peft_config = None
    if config.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(**{"task_type": "CAUSAL_LM", **config.lora})
    funcs = [log_rollout_lengths(funcs[0], end_token_ids(model, tokenizer)), *funcs[1:]]
    extra: dict[str, Any] = {}
    Trainer = trl_classes(config.algorithm)[1]
    if config.algorithm == "grpo" and engine:
        extra["rollout_func"] = grpo_rollout_func(packed_weights=config.packed_rollouts)
    trainer = Trainer(model=model, processing_class=tokenizer, reward_funcs=funcs, args=args,
                      train_dataset=Dataset.from_list(rows), peft_config=peft_config, callbacks=callbacks or [],
                      **extra)
    if engine and config.algorithm != "grpo":
        sample_rloo_rollouts_with_engine(trainer, packed_weights=config.packed_rollouts)
    elif config.packed_rollouts and args.use_cpu and not engine:
        from pivotrl.packed_linear import pack_while_generating

        pack_while_generating(trainer.model, rows=args.generation_batch_size or args.per_device_train_batch_size)
    if config.algorithm == "grpo":
        skip_rows_without_gradient(trainer)
    if args.use_cpu:
        score_only_completion_tokens()
    return trainer


def _check_recipe(config: TrainConfig, out: Path, resume: bool) -> None:
    path = out / "recipe.yaml"
    current = yaml.safe_dump(config.to_dict(), sort_keys=True, allow_unicode=True)
    if path.exists() and resume:
        before = yaml.safe_load(path.read_text(encoding="utf-8"))
        now = yaml.safe_load(current)
        # A field added to pivotrl after the run started, at its default, is no difference.
        defaults = TrainConfig().to_dict()
        for key in set(now) - set(before):
            if now[key] == defaults.get(key):
                now.pop(key)
        # max_steps and rounds may grow on resume (continue a run longer); everything else must match
        for d in (before, now):
            d.get("trl", {}).pop("max_steps", None)
            d.pop("rounds", None)
        if before != now:
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            raise TrainError(f"{out} was trained with a different recipe (fields {', '.join(changed)} differ); "
                             "resume with the same recipe or use another --out")
    write_output(path, current)


# ------------------------------------------------------------------------------------------------ the run


def run_train(config: TrainConfig, *, resume: bool = False, progress: bool = True,
              evaluate: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Train; returns a summary (steps, seconds, final model folder, last logged metrics).

    ``evaluate`` runs the held-out evaluations during training (``eval_every``, ``eval_n``): pass
    :func:`pivotrl.evaluation.evaluate_loaded`, as ``pivotrl train`` does. Without it there are none (a later
    stage is handed in, never imported).

    The output folder is checked and locked first: a second writer gets an error naming the holder."""
    from pivotrl.run_folder import claim

    with claim(config.output_dir, "training output folder"):
        return _run_train(config, resume, progress, evaluate)


def _run_train(config: TrainConfig, resume: bool, progress: bool, evaluate: Any) -> dict[str, Any]:
    out = Path(config.output_dir)
    online = algorithm(config.algorithm).online
    existing = checkpoints(out) if online else sorted(out.glob("round-*"))
    if existing and not resume:
        what = "checkpoints" if online else "rounds"
        raise TrainError(f"{out} already has {what} (last: {existing[0 if online else -1].name}); pass --resume "
                         "to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    _check_recipe(config, out, resume)

    rows, data_summary = build_rows(config, progress=progress)
    with open_output(out / "train_set.jsonl") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if evaluate is None and config.eval_n:
        log.warning("no evaluate function was passed to run_train: no held-out evaluation during training")
    if online:
        summary = _train_online(config, out, rows, resume, progress, evaluate)
    else:
        from pivotrl.train.offline import run_rounds

        summary = run_rounds(config, rows, out, progress=progress, evaluate=evaluate)
    summary["data"] = data_summary
    write_output(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    return summary


def _train_online(config: TrainConfig, out: Path, rows: list[dict[str, Any]], resume: bool, progress: bool,
                  evaluate: Any) -> dict[str, Any]:
    """GRPO or RLOO: one TRL trainer over every step, resumed from the newest whole checkpoint."""
    from transformers.trainer_callback import ProgressCallback

    from pivotrl.models import load_model
    from pivotrl.train.callbacks import LogFile, MultilingualEval, RewardProgress

    last = last_checkpoint(out) if resume else None
    if resume and last is None:
        log.warning("--resume: no checkpoint in %s yet; starting from the beginning", out)
    # the steps logged after that checkpoint (every line, starting over) are trained and logged again
    resumed_at = checkpoint_step(last)
    cut_log(out / "log.jsonl", lambda entry: last is not None and int(entry.get("step", 0)) <= resumed_at)
    loaded = load_model(config.model, dtype=config.dtype)
    callbacks: list[Any] = [LogFile(out / "log.jsonl")]
    evaluator = MultilingualEval(config, loaded.tokenizer, evaluate) if evaluate is not None else None
    if evaluator is not None:
        callbacks.append(evaluator)
    trainer = build_trainer(config, loaded.model, loaded.tokenizer, rows, callbacks=callbacks)
    if evaluator is not None:
        evaluator.trainer = trainer
    trainer.remove_callback(ProgressCallback)
    if progress:  # a step bar showing the reward, instead of a full dict printed at every step
        trainer.add_callback(RewardProgress())

    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    seconds = time.perf_counter() - started

    final = out / "final"
    if trainer.is_world_process_zero():
        args = asdict(trainer.args) if hasattr(trainer.args, "__dataclass_fields__") else {}
        save_model_folder(trainer.model, loaded.tokenizer, final,
                          {"kind": "trained policy", "algorithm": config.algorithm, "lora": config.lora is not None,
                           "args": args})
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": trainer.state.global_step, "seconds": round(seconds, 1), "final": str(final),
            "last_log": history[-1] if history else {}, "resumed_from": last.name if last is not None else None}
