"""The training recipe: one dataclass, read from YAML, every field overridable from the command line.

A recipe names the policy, where its problems and English references come from, the reward (a preset, a
YAML file or an inline mapping of :class:`pivotrl.rewards.compose.RewardConfig` fields), the trainer
(``grpo`` or ``rloo``), and passes TRL's own config fields through unchanged under ``trl:``
(``num_generations``, ``beta``, ``epsilon``, ``loss_type``, ``use_vllm``, ``vllm_mode``,
``gradient_accumulation_steps``, ``bf16``, ``report_to``, ...): pivotrl does not rename or second-guess them.

Overrides are ``key=value`` strings with dotted keys for nested fields (``trl.max_steps=30``,
``reward.weights.answer_format=0.5``, ``langs=de,zh``); values are parsed as YAML (numbers, booleans, lists).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import enum
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pivotrl.config_fields import setting
from pivotrl.yaml_files import read_yaml_mapping

__all__ = ["TrainConfig", "TrainConfigError", "load_train_config", "apply_overrides"]

ALGORITHMS = ("grpo", "rloo")
LABELS = ("pivot", "gold")
ROLLOUTS = ("auto", "engine", "trl")


class TrainConfigError(ValueError):
    """A recipe that cannot be used; the message names the file and field."""


# pivotrl's TRL settings under every run (a recipe's ``trl:`` mapping goes on top, field by field): a short run
# at a full-fine-tuning learning rate, one checkpoint kept (the newest, written before the older one is
# removed: enough to resume; a 135M policy's checkpoint with optimizer state is already 1.6 GB).
TRL_DEFAULTS: dict[str, Any] = {
    "logging_steps": 1, "save_strategy": "steps", "save_steps": 10, "save_total_limit": 1, "max_steps": 30,
    "num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 128,
    "learning_rate": 1e-6, "temperature": 1.0, "report_to": [],
}
# ``bf16`` (autocast of the update's forward and backward; weights, adapters and optimizer state stay float32) is
# set per machine when a recipe does not set it (pivotrl.train.run.trl_args): on a CPU with native bfloat16
# (AVX512-BF16 or AMX), where it made a GRPO update with Qwen2.5-0.5B 2.5x faster and its peak memory 6.6 GB
# smaller (docs/BENCHMARKS.md), and off elsewhere, as before.

# A small LoRA policy on a CPU (`pivotrl demo`, the reproduction): two prompts x 4 sampled answers a step, DAPO's
# token-level loss, no KL term (so no reference model), a LoRA-sized learning rate. Written whole into the recipes
# it makes (a resumed run compares them), so it repeats the TRL_DEFAULTS it keeps.
# The budget must fit the policy's right answers: sampled from Qwen2.5-0.5B on the synthetic training split
# (levels 1-2), right French answers ran to 114 tokens at the median, 149 at the 90th percentile and 231 at most.
# At the old 96 tokens most worked answers were cut, lost their final number and with it every answer credit,
# while a bare guessed "La réponse est 2." never was: GRPO learned to guess (docs/TRAINING.md, "The sampling
# budget"). 256 tokens keep the right answers whole; a cut answer is left out of the loss
# (mask_truncated_completions, DAPO's overlong filtering): being cut says nothing about its reasoning.
CPU_TRL: dict[str, Any] = {
    "num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 256,
    "mask_truncated_completions": True,
    "learning_rate": 5e-5, "beta": 0.0, "loss_type": "dapo", "temperature": 1.0,
    "save_steps": 10, "logging_steps": 1, "gradient_checkpointing": False,
}
# LoRA on every linear layer of the policy: a 0.5B policy trains with a few MB of adapter and optimizer state.
DEMO_LORA: dict[str, Any] = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}


@dataclass
class TrainConfig:
    """What a training run is made of. See ``recipes/`` for complete examples."""

    model: str = setting("smollm2", help="The policy: packaged alias, folder, GGUF file or hub id.")
    output_dir: str = setting("runs/train", help="The run folder (checkpoints, log.jsonl, evals/, final/).")
    # -- data: problems in the target languages, and the English references they are rewarded against
    task: str = setting("synthetic", help="Problem set of the target-language questions (pivotrl data list).")
    langs: list[str] = setting(default_factory=lambda: ["de", "es", "fr", "ru", "zh", "ja", "sw"],
                               help="Target languages (de,zh or a YAML list).")
    data_dir: str | None = setting(None, help="Benchmark folder (default $PIVOTRL_DATA_DIR, else the hub).")
    refs: str | None = setting(None, help="Pivot store folder (pivotrl pivot --out); null: the set's gold English "
                                          "worked solutions as the pivot.")
    labels: str = setting("pivot", help="pivot: English references (PB-RLSVR); gold: target-language gold answers "
                                        "(the RLVR baseline).")
    n_train: int | None = setting(None, help="First n training problems (each in every language).")
    levels: list[int] | None = setting(None, help="Synthetic set only: keep these difficulty levels.")
    prompt_style: str = setting("instruction", help="instruction | mgsm (pivotrl.prompts).")
    # -- reward
    reward: Any = setting("hybrid", help="Reward: preset name, YAML file, or a mapping of RewardConfig fields "
                                         "(reward.weights.answer_format=0.5).")
    # -- trainer
    algorithm: str = setting("grpo", help="grpo | rloo (TRL's trainers).")
    trl: dict[str, Any] = setting(default_factory=dict, help="GRPOConfig / RLOOConfig fields, passed unchanged "
                                                             "(trl.max_steps=30, trl.learning_rate=1e-5).")
    lora: dict[str, Any] | None = setting(None, help="peft LoraConfig fields (lora.r=16); null: full fine-tuning.")
    # A frozen bf16 base with float32 adapters and optimizer state; full fine-tuning keeps float32 master weights
    # (trl.bf16=true adds mixed-precision compute on top).
    dtype: str = setting("float32", help="The policy's weights: float32, or bfloat16 with LoRA only.")
    # -- multilingual evaluation during training (held-out split)
    eval_every: int = setting(0, help="Steps between held-out evaluations; 0: only at the end.")
    eval_n: int = setting(8, help="Held-out problems per language in those evaluations (0: none).")
    eval_langs: list[str] | None = setting(None, help="Their languages (default: langs plus English).")
    eval_task: str | None = setting(None, help="Their problem set (default: task).")
    eval_max_new_tokens: int = setting(192, help="Their generation budget per answer.")
    seed: int = setting(0, help="Seed of data order, sampling and initialisation.")
    # Rollout sampling is most of a CPU step; packed weights change only the order of additions inside each dot
    # product (pivotrl.packed_linear), so the samples are the same up to float32 rounding.
    packed_rollouts: bool = setting(True, help="On a CPU, sample each step's rollouts with oneDNN-packed copies "
                                               "of the float32 linear weights (faster; no effect on a GPU).")
    # TRL samples with model.generate in fixed batches; pivotrl's continuous engine (pivotrl.train.rollouts) lets a
    # finished answer leave the batch and returns the log-probabilities TRL's rollout_func asks for.
    rollouts: str = setting("auto", help="Who samples each step's answers: engine (pivotrl's continuous engine), "
                                         "trl (TRL's own generate, or vLLM with trl.use_vllm), auto (engine on a "
                                         "CPU without vLLM, else trl).")

    def validate(self, source: str = "recipe") -> None:
        """Check every field (types, values, the reward, the TRL fields) before anything heavy loads; raise
        TrainConfigError naming the field, the value and what was expected."""
        if isinstance(self.langs, str):
            self.langs = [x.strip() for x in self.langs.split(",") if x.strip()]
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise TrainConfigError(f"{source}: {f.name} must be {_describe(hints[f.name])}, got {value!r} "
                                       f"({type(value).__name__})")
        if self.algorithm not in ALGORITHMS:
            raise TrainConfigError(
                f"{source}: algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        if self.labels not in LABELS:
            raise TrainConfigError(f"{source}: labels must be one of {', '.join(LABELS)}, got {self.labels!r}")
        if not self.langs:
            raise TrainConfigError(f"{source}: langs is empty; name the target languages (e.g. [de, zh])")
        from pivotrl.languages import UnknownLanguageError, get_language

        for code in self.langs + (self.eval_langs or []):
            try:
                get_language(str(code))
            except UnknownLanguageError as exc:
                raise TrainConfigError(f"{source}: langs: {exc}") from exc
        if not isinstance(self.trl, dict):
            raise TrainConfigError(
                f"{source}: trl must be a mapping of TRL config fields, got {type(self.trl).__name__}")
        for key in ("eval_every", "eval_n", "eval_max_new_tokens"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 0:
                raise TrainConfigError(f"{source}: {key} must be a non-negative integer, got {value!r}")
        if self.lora is not None and not isinstance(self.lora, dict):
            raise TrainConfigError(f"{source}: lora must be a mapping of peft LoraConfig fields or null")
        if self.rollouts not in ROLLOUTS:
            raise TrainConfigError(f"{source}: rollouts must be one of {', '.join(ROLLOUTS)}, got {self.rollouts!r}")
        if self.rollouts == "engine":
            from pivotrl.train.rollouts import check_engine_settings

            why = check_engine_settings(self.trl)
            if why:
                raise TrainConfigError(f"{source}: rollouts engine: {why}; set rollouts: trl")
        if self.dtype not in ("float32", "bfloat16"):
            raise TrainConfigError(f"{source}: dtype must be float32 or bfloat16, got {self.dtype!r}")
        if self.dtype == "bfloat16" and self.lora is None:
            raise TrainConfigError(
                f"{source}: dtype bfloat16 needs lora (a frozen bf16 base with float32 adapters); full "
                "fine-tuning in pure bf16 loses small updates, so it keeps float32 weights (use trl.bf16=true "
                "for mixed precision)")

        try:
            from pivotrl.rewards.compose import load_reward_config

            load_reward_config(self.reward)
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainConfigError(f"{source}: reward: {exc}") from None
        _check_trl_fields(self.trl, self.algorithm, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys for nested mappings) to a recipe mapping, in place."""
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainConfigError(f"{source} {item!r}: expected key=value (e.g. trl.max_steps=30)")
        parts = key.split(".")
        target = data
        for part in parts[:-1]:
            nested = target.get(part)
            if nested is None or isinstance(nested, str):  # a preset name becomes a mapping that names it
                nested = {} if nested is None else {"preset": nested}
                target[part] = nested
            if not isinstance(nested, dict):
                raise TrainConfigError(f"{source} {item!r}: {part!r} is not a mapping")
            target = nested
        parsed = _parse_value(value)
        if parts[-1] in ("langs", "eval_langs") and isinstance(parsed, str):
            parsed = [x.strip() for x in parsed.split(",") if x.strip()]
        target[parts[-1]] = parsed
    return data


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (parsed from YAML) fits a type annotation; an annotation this does not understand
    accepts anything (the trainer then decides)."""
    if annotation is Any or annotation is object:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, annotation) or value in {m.value for m in annotation}
    if origin in (list, tuple, collections.abc.Sequence) or annotation in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return isinstance(value, (list, tuple)) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return True


def _describe(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(text, text)


def _check_trl_fields(trl: dict[str, Any], algorithm: str, source: str) -> None:
    """Every ``trl:`` field must be a field of TRL's config class for the algorithm, with a value of its type
    (checked here, before a model loads, rather than deep inside transformers minutes later)."""
    if not trl:
        return
    from trl import GRPOConfig, RLOOConfig

    cls = GRPOConfig if algorithm == "grpo" else RLOOConfig
    hints = typing.get_type_hints(cls)
    for key, value in trl.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), hints, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TrainConfigError(f"{source}: trl.{key} is not a field of TRL's {cls.__name__}{hint}")
        if not _matches(value, hints[key]):
            raise TrainConfigError(f"{source}: trl.{key} must be {_describe(hints[key])} ({cls.__name__}), got "
                                   f"{value!r} ({type(value).__name__})")


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML recipe (or the defaults) plus ``key=value`` overrides."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise TrainConfigError(f"recipe {path} does not exist")
        try:
            data = read_yaml_mapping(path, "recipe fields")
        except ValueError as exc:
            raise TrainConfigError(str(exc)) from exc
    data = apply_overrides(data, overrides or [])
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TrainConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    config = TrainConfig(**data)
    config.validate(source)
    return config
