"""Each training step's rollouts, sampled by pivotrl's generation engine instead of TRL's ``generate``.

Why: on a CPU, sampling is most of a GRPO step, and TRL's path runs ``model.generate`` on fixed batches, where
a batch decodes until its longest answer ends. pivotrl's continuous engine (:mod:`pivotrl.generation`) lets a
finished answer leave the batch at once, prefills each prompt once for all its samples, and multiplies by
oneDNN-packed weights. It returns each sampled token's log-probability, which TRL's ``rollout_func`` asks for.

On-policy by construction: every call samples from the trainer's model as it is at that moment (the PEFT
adapters are injected into the model the engine drives; packed weights are re-packed at every call), at the
trainer's own ``temperature``, ``top_p`` and ``max_completion_length``. ``tests/test_rollouts.py`` checks that
the returned log-probabilities equal the ones TRL's loss computes, and that greedy rollouts match TRL's own path.

GRPO takes :func:`grpo_rollout_func` through TRL's ``GRPOTrainer(rollout_func=...)``. TRL 1.16's RLOO trainer has
no such argument: :func:`sample_rloo_rollouts_with_engine` replaces its single-turn sampling method on the
instance. Both call :func:`sample_rollouts`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["check_engine_settings", "grpo_rollout_func", "log_rollout_lengths", "render_prompts",
           "sample_rloo_rollouts_with_engine", "sample_rollouts"]

# Sampling settings of TRL's configs the engine does not implement, with the values that mean "off".
_UNSUPPORTED = {"top_k": (0, None), "min_p": (None, 0, 0.0), "repetition_penalty": (1.0, None),
                "generation_kwargs": (None, {}), "use_vllm": (False,), "use_transformers_paged": (False,)}


def check_engine_settings(trl: dict[str, Any]) -> str | None:
    """Why the engine cannot sample with these TRL settings (a recipe's ``trl:`` mapping), or None."""
    for key, off in _UNSUPPORTED.items():
        if key in trl and trl[key] not in off:
            return f"trl.{key}={trl[key]!r} is a sampling setting pivotrl's engine does not implement"
    return None


def render_prompts(prompts: Sequence[Any], tokenizer: Any, chat_template_kwargs: dict[str, Any] | None = None,
                   chat_template: str | None = None) -> list[list[int]]:
    """Token ids of each prompt as TRL renders it: chat messages through the chat template with the generation
    prompt added, plain strings through the tokenizer."""
    if prompts and isinstance(prompts[0], list):
        return list(tokenizer.apply_chat_template(conversation=list(prompts), chat_template=chat_template,
                                                  add_generation_prompt=True, tokenize=True, return_dict=True,
                                                  **(chat_template_kwargs or {}))["input_ids"])
    return list(tokenizer(text=list(prompts))["input_ids"])


def _groups(prompt_ids: list[list[int]], size: int) -> tuple[list[list[int]], int]:
    """The distinct prompts and samples per prompt: TRL repeats each prompt ``num_generations`` times in a row,
    so one prefill and ``size`` samples each reproduce its batch; anything else is sampled row by row."""
    if size > 1 and len(prompt_ids) % size == 0 and all(
            prompt_ids[i] == prompt_ids[i - i % size] for i in range(len(prompt_ids))):
        return prompt_ids[::size], size
    return prompt_ids, 1


def sample_rollouts(trainer: Any, prompt_ids: list[list[int]], packed_weights: bool = True
                    ) -> tuple[list[list[int]], list[list[float]]]:
    """Sample one completion per entry of ``prompt_ids`` (TRL's rows) from the trainer's current model; returns
    ``(completion_ids, logprobs)``, each completion ending with its end token when the model ended it."""
    from pivotrl.generation import GenerationConfig, generate_ids

    args = trainer.args
    unique, samples = _groups(prompt_ids, int(getattr(trainer, "num_generations", 1) or 1))
    config = GenerationConfig(max_new_tokens=args.max_completion_length, do_sample=True,
                              temperature=args.temperature, top_p=args.top_p, num_samples=samples,
                              batch_size=max(1, len(unique)), packed_weights=packed_weights)
    model = trainer.accelerator.unwrap_model(trainer.model)
    sampled = generate_ids((model, trainer.processing_class), unique, config)
    rows = [s for per_prompt in sampled for s in per_prompt]
    return [s.ids for s in rows], [s.logprobs for s in rows]


def grpo_rollout_func(packed_weights: bool = True) -> Callable[[list[Any], Any], dict[str, Any]]:
    """A ``rollout_func`` for TRL's ``GRPOTrainer``: renders the prompts as TRL would and samples them with the
    engine."""
    # TRL warns that rollout_func is experimental at every trainer it builds; pivotrl pins the TRL version
    # whose contract this follows (constraints.txt) and tests it, so the warning says nothing to a user.
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        prompt_ids = render_prompts(prompts, trainer.processing_class, getattr(trainer, "chat_template_kwargs", None),
                                    getattr(trainer, "chat_template", None))
        completion_ids, logprobs = sample_rollouts(trainer, prompt_ids, packed_weights)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs}

    return rollout


def sample_rloo_rollouts_with_engine(trainer: Any, packed_weights: bool = True) -> None:
    """Make a TRL ``RLOOTrainer`` sample with the engine: its single-turn sampling method (which receives the
    prompts already rendered by TRL and returns completion ids) is replaced on this instance."""

    def generate_single_turn(prompt_ids: list[list[int]], images: Any = None, multimodal_fields: Any = None,
                             *_: Any, **__: Any) -> list[list[int]]:
        if images is not None:
            raise ValueError("pivotrl's rollout engine samples text only; set rollouts: trl for image prompts")
        return sample_rollouts(trainer, [list(p) for p in prompt_ids], packed_weights)[0]

    trainer._generate_single_turn = generate_single_turn


def log_rollout_lengths(reward_func: Callable[..., list[float]], end_ids: set[int]) -> Callable[..., list[float]]:
    """``reward_func`` (a TRL reward function) that also logs, per language, the share of sampled answers cut
    at the sampling budget (``completions/cut_by_lang/<code>``: no end token, as TRL's ``clipped_ratio``
    counts it) and their mean length in tokens (``completions/length_by_lang/<code>``).

    Why here: the reward function is the one place where TRL hands over each completion's ids with its row's
    columns (``lang``) and a metric logger, whichever engine sampled it. A budget that cuts one language's
    reasoning shows there first (a cut answer loses its final number, so the reward teaches short answers).
    """

    def func(completions: Sequence[Any], completion_ids: Sequence[Sequence[int]] | None = None,
             lang: Sequence[str] | None = None, log_metric: Callable[[str, float], None] | None = None,
             **columns: Any) -> list[float]:
        if log_metric is not None and completion_ids is not None and lang is not None:
            for ids, code in zip(completion_ids, lang, strict=True):
                cut = bool(ids) and ids[-1] not in end_ids
                log_metric(f"completions/cut_by_lang/{code}", float(cut))
                log_metric(f"completions/length_by_lang/{code}", float(len(ids)))
        return reward_func(completions, completion_ids=completion_ids, lang=lang, log_metric=log_metric, **columns)

    func.__name__ = getattr(reward_func, "__name__", type(reward_func).__name__)
    return func
