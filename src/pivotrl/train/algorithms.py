"""The training algorithms `pivotrl train` runs: one table, one row per algorithm.

Each row names TRL's config and trainer classes, the TRL settings pivotrl puts under a recipe's ``trl:`` for
it, whether it samples inside its own steps (online: GRPO, RLOO) or once per round before training (offline:
DPO, RFT), and which of the recipe's offline fields it reads, with their defaults. A recipe names the algorithm
(``algorithm: dpo``); ``pivotrl train --help`` and docs/TRAINING.md list each one's fields from this table.

Why a table: the algorithms differ in data (prompts, preference pairs, fine-tuning targets), in TRL classes and
in defaults, and a setting that belongs to one (GRPO's ``num_generations``, DPO's ``pair_margin``) must neither
leak into another's run nor be silently ignored there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALGORITHMS", "COMMON_TRL", "Algorithm", "OFFLINE_FIELDS", "algorithm", "cpu_has_native_bf16",
           "trl_classes"]

# pivotrl's TRL settings under every algorithm (a recipe's ``trl:`` mapping goes on top, field by field): one
# checkpoint kept (the newest, written before the older one is removed: enough to resume; a 135M policy's
# checkpoint with optimizer state is already 1.6 GB), a log line per step, no external loggers.
COMMON_TRL: dict[str, Any] = {
    "logging_steps": 1, "save_strategy": "steps", "save_steps": 10, "save_total_limit": 1,
    "per_device_train_batch_size": 8, "learning_rate": 1e-6, "report_to": [],
}

# The recipe fields only offline algorithms read (pivotrl.train.config.TrainConfig), with what each means.
OFFLINE_FIELDS = ("rounds", "samples_per_prompt", "prompts_per_round", "sample_temperature",
                  "sample_max_new_tokens", "samples_from", "pair_margin", "min_reward")


@dataclass(frozen=True)
class Algorithm:
    """One training algorithm: TRL's classes (by name, imported when a run starts), pivotrl's defaults for it,
    and the offline fields it reads (a recipe's ``null`` takes the default here)."""

    name: str
    summary: str
    config_class: str
    trainer_class: str
    trl_defaults: dict[str, Any]
    online: bool
    # offline fields this algorithm reads -> default; the other offline fields are an error in its recipes
    offline_defaults: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One paragraph for ``--help`` and the docs: what it does, its TRL classes and its defaults."""
        trl = ", ".join(f"{k}={v}" for k, v in self.trl_defaults.items())
        text = f"{self.name}: {self.summary} TRL {self.config_class} / {self.trainer_class}; trl defaults: {trl}."
        if self.offline_defaults:
            fields = ", ".join(f"{k}={v}" for k, v in self.offline_defaults.items())
            text += f" Fields: {fields}."
        return text


# Online algorithms: TRL samples each step's answers (through pivotrl's engine on a CPU, pivotrl.train.rollouts).
_ONLINE_TRL = {"max_steps": 30, "num_generations": 4, "max_completion_length": 128, "temperature": 1.0}
# Offline algorithms train one epoch over each round's pairs or targets: the number of steps follows from what
# the round kept. TRL's max_length (1024 tokens by default) holds a prompt and a 256-token answer.
_SAMPLING = {"rounds": 1, "samples_per_prompt": 4, "prompts_per_round": None, "sample_temperature": 0.8,
             "sample_max_new_tokens": 256, "samples_from": None}

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("grpo", "Group-relative policy optimisation: k answers per prompt sampled at every step, each "
              "weighted by its reward relative to its group's mean.", "GRPOConfig", "GRPOTrainer",
              _ONLINE_TRL, online=True),
    Algorithm("rloo", "REINFORCE leave-one-out: as GRPO, with each answer's baseline the mean reward of the other "
              "answers to its prompt.", "RLOOConfig", "RLOOTrainer", _ONLINE_TRL, online=True),
    # MAPO (arXiv 2401.06838) trains DPO on pairs ranked by alignment to English answers: beta 0.1. The reference
    # is the policy at the round's start, its log-probabilities computed once before the round trains.
    Algorithm("dpo", "Direct preference optimisation on pairs from the policy's own answers: per prompt, the "
              "best-scored answer (chosen) against the worst (rejected), where they differ by pair_margin.",
              "DPOConfig", "DPOTrainer",
              {"max_steps": -1, "num_train_epochs": 1, "beta": 0.1, "precompute_ref_log_probs": True},
              online=False, offline_defaults={**_SAMPLING, "pair_margin": 0.25, "min_reward": None}),
    # Rejection-sampling fine-tuning (RFT; MathOctopus's xRFT): the policy's own best answer, where it passes.
    Algorithm("rft", "Rejection-sampling fine-tuning: per prompt, the best-scored of the policy's own answers "
              "becomes a fine-tuning target where it scores at least min_reward (default: the reward's answer "
              "credit, i.e. the answer agrees with the reference).", "SFTConfig", "SFTTrainer",
              {"max_steps": -1, "num_train_epochs": 1},
              online=False, offline_defaults={**_SAMPLING, "min_reward": None}),
)}


def algorithm(name: str) -> Algorithm:
    """The table's row for ``name``; a ValueError naming the known ones otherwise."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {name!r}") from None


def trl_classes(name: str) -> tuple[type, type]:
    """``(config class, trainer class)`` of an algorithm, imported from TRL."""
    import trl

    row = algorithm(name)
    return getattr(trl, row.config_class), getattr(trl, row.trainer_class)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports it): there bf16
    autocast speeds the update up (docs/BENCHMARKS.md: a GRPO update with Qwen2.5-0.5B 2.5x faster, 6.6 GB
    smaller); elsewhere it would be emulated, and slower than float32."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
