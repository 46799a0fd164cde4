"""The training recipe: one dataclass, read from YAML, every field overridable from the command line.

A recipe names the policy, where its problems and English references come from, the reward (a preset, a
YAML file or an inline mapping of :class:`pivotrl.rewards.compose.RewardConfig` fields), the algorithm (a row of
:mod:`pivotrl.train.algorithms`: ``grpo``, ``rloo``, ``dpo``, ``rft``), and passes the fields of that
algorithm's TRL config class through unchanged under ``trl:`` (``num_generations``, ``beta``, ``loss_type``,
``use_vllm``, ``gradient_accumulation_steps``, ``bf16``, ``report_to``, ...): pivotrl does not rename or
second-guess them. The offline algorithms (dpo, rft) also read the sampling and selection fields listed in
:data:`pivotrl.train.algorithms.OFFLINE_FIELDS`; null takes the algorithm's default.

Overrides are ``key=value`` strings with dotted keys for nested fields (``trl.max_steps=30``,
``reward.weights.answer_format=0.5``, ``langs=de,zh``); values are parsed as YAML (numbers, booleans, lists).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import enum
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pivotrl.config_fields import SEED, Bounds, SettingError, check_fields, setting
from pivotrl.train.algorithms import (
    ALGORITHMS,
    COMMON_TRL,
    OFFLINE_FIELDS,
    algorithm,
    cpu_has_native_bf16,
    trl_classes,
)
from pivotrl.yaml_files import DuplicateKeyError, read_yaml_mapping, yaml_value

__all__ = ["TrainConfig", "TrainConfigError", "apply_overrides", "load_train_config", "trl_args"]

LABELS = ("pivot", "gold")
ROLLOUTS = ("auto", "engine", "trl")


class TrainConfigError(ValueError):
    """A recipe that cannot be used; the message names the file and field."""


# ``bf16`` (autocast of the update's forward and backward; weights, adapters and optimizer state stay float32) is
# set per machine when a recipe does not set it (trl_args below): on a CPU with native bfloat16
# (AVX512-BF16 or AMX), where it made a GRPO update with Qwen2.5-0.5B 2.5x faster and its peak memory 6.6 GB
# smaller (docs/BENCHMARKS.md), and off elsewhere, as before.

# GRPO with a small LoRA policy on a CPU (`pivotrl demo`, the reproduction): two prompts x 4 sampled answers a
# step, DAPO's token-level loss, no KL term (so no reference model), a LoRA-sized learning rate. Written whole into
# the recipes it makes (a resumed run compares them), so it repeats the defaults it keeps
# (pivotrl.train.algorithms).
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
    n_train: int | None = setting(None, at_least=1, help="First n training problems (each in every language).")
    levels: list[int] | None = setting(None, help="Synthetic set only: keep these difficulty levels.")
    prompt_style: str = setting("instruction", help="instruction | mgsm (pivotrl.prompts).")
    # -- reward
    reward: Any = setting("hybrid", help="Reward: preset name, YAML file, or a mapping of RewardConfig fields "
                                         "(reward.weights.answer_format=0.5).")
    # -- trainer
    algorithm: str = setting("grpo", help="grpo | rloo (online: answers sampled at every step) | dpo | rft "
                                          "(offline: answers sampled once per round, then trained on); the "
                                          "algorithms below.")
    trl: dict[str, Any] = setting(default_factory=dict, help="Fields of the algorithm's TRL config class "
                                                             "(GRPOConfig, RLOOConfig, DPOConfig, SFTConfig), "
                                                             "passed unchanged (trl.learning_rate=1e-5).")
    lora: dict[str, Any] | None = setting(None, help="peft LoraConfig fields (lora.r=16); null: full fine-tuning.")
    # A frozen bf16 base with float32 adapters and optimizer state; full fine-tuning keeps float32 master weights
    # (trl.bf16=true adds mixed-precision compute on top).
    dtype: str = setting("float32", help="The policy's weights: float32, or bfloat16 with LoRA only.")
    # -- multilingual evaluation during training (held-out split)
    eval_every: int = setting(0, at_least=0, expected="a non-negative integer",
                              help="Steps between held-out evaluations; 0: only at the end.")
    eval_n: int = setting(8, at_least=0, expected="a non-negative integer",
                          help="Held-out problems per language in those evaluations (0: none).")
    eval_langs: list[str] | None = setting(None, help="Their languages (default: langs plus English).")
    eval_task: str | None = setting(None, help="Their problem set (default: task).")
    eval_max_new_tokens: int = setting(192, at_least=1, expected="a positive integer",
                                       help="Their generation budget per answer.")
    seed: int = setting(0, bounds=SEED, help="Seed of data order, sampling and initialisation.")
    # Rollout sampling is most of a CPU step; packed weights change only the order of additions inside each dot
    # product (pivotrl.packed_linear), so the samples are the same up to float32 rounding.
    packed_rollouts: bool = setting(True, help="On a CPU, sample each step's rollouts with oneDNN-packed copies "
                                               "of the float32 linear weights (faster; no effect on a GPU).")
    # TRL samples with model.generate in fixed batches; pivotrl's continuous engine (pivotrl.train.rollouts) lets a
    # finished answer leave the batch and returns the log-probabilities TRL's rollout_func asks for.
    rollouts: str = setting("auto", help="Who samples each step's answers: engine (pivotrl's continuous engine), "
                                         "trl (TRL's own generate, or vLLM with trl.use_vllm), auto (engine on a "
                                         "CPU without vLLM, else trl).")

    # -- offline algorithms (dpo, rft): each round samples, scores and selects, then trains; null: the default
    rounds: int | None = setting(None, at_least=1, expected="a positive integer",
                                 help="dpo, rft: rounds of sample -> score -> train, each sampling from the policy the "
                                      "previous round trained (default 1).")
    samples_per_prompt: int | None = setting(None, at_least=1, expected="a positive integer",
                                             help="dpo, rft: answers sampled per prompt each round, k (default 4; "
                                                  "dpo needs 2 or more).")
    prompts_per_round: int | None = setting(None, at_least=1, expected="a positive integer",
                                            help="dpo, rft: training rows sampled per round, the next ones in a "
                                                 "seeded order each round (default: all of them).")
    sample_temperature: float | None = setting(None, above=0, expected="above 0 (answers are sampled)",
                                               help="dpo, rft: sampling temperature (default 0.8, MAPO's).")
    sample_max_new_tokens: int | None = setting(None, at_least=1, expected="a positive integer",
                                                help="dpo, rft: sampling budget per answer in tokens (default 256); "
                                                     "a cut answer is never trained on.")
    samples_from: str | None = setting(None, help="dpo, rft: another run's folder (or its round-1 samples.jsonl) "
                                                  "whose first-round answers this run scores with its own reward "
                                                  "instead of sampling: rewards compared on the same answers, and "
                                                  "the sampling paid once. Both runs must share the policy, seed, "
                                                  "prompts and sampling fields (checked against its recipe.yaml).")
    pair_margin: float | None = setting(None, at_least=0, help="dpo: the least reward difference between chosen "
                                                               "and rejected for a pair to be kept (default 0.25).")
    min_reward: float | None = setting(None, help="rft: the least reward of a fine-tuning target (default: the "
                                                  "reward's answer-agreement credit, else 3/4 of its top); dpo: of "
                                                  "a chosen answer (default: none).")

    def offline(self, name: str) -> Any:
        """An offline field's value: the recipe's, else the algorithm's default."""
        value = getattr(self, name)
        return algorithm(self.algorithm).offline_defaults.get(name) if value is None else value

    def validate(self, source: str = "recipe") -> None:
        """Check every field (types, values, the reward, the TRL fields) before anything heavy loads; raise
        TrainConfigError naming the field, the value and what was expected."""
        if isinstance(self.langs, str):
            self.langs = [x.strip() for x in self.langs.split(",") if x.strip()]
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
                raise TrainConfigError(f"{source}: {f.name} must be {_describe(hints[f.name])}, got {shown} "
                                       f"({type(value).__name__})")
        try:
            check_fields(self, source)  # each field within the values its setting declares
            row = algorithm(self.algorithm)
        except ValueError as exc:  # SettingError is one
            raise TrainConfigError(str(exc) if isinstance(exc, SettingError) else f"{source}: {exc}") from None
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
        if self.eval_every and not self.eval_n:
            raise TrainConfigError(f"{source}: eval_every {self.eval_every} evaluates every {self.eval_every} steps, "
                                   "but eval_n 0 asks for no evaluations; set eval_n (problems per language) or "
                                   "eval_every: 0")
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

            reward = load_reward_config(self.reward)
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainConfigError(f"{source}: reward: {exc}") from None
        _check_offline_fields(self, row, reward, source)
        _check_trl_fields(self.trl, self.algorithm, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# YAML 1.1 (PyYAML) reads 3e-5 as a string: only 3.0e-5 is a float there. A learning rate typed the usual way
# would then fail the type check; a string that is exactly a number in exponent form is read as that number.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _numbers_in_exponent_form(value: Any) -> Any:
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers_in_exponent_form(v) for k, v in value.items()}
    return value


def _parse_value(text: str) -> Any:
    try:
        return _numbers_in_exponent_form(yaml_value(text))
    except DuplicateKeyError:
        raise
    except yaml.YAMLError:  # not YAML (or nested too deeply): the text itself
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
        try:
            parsed = _parse_value(value)
        except DuplicateKeyError as exc:
            raise TrainConfigError(f"{source} {item!r}: {exc}") from None
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


# The values of TRL fields where one outside them crashes or hangs a run only after the policy has loaded (TRL checks
# a few in its config class, with a ZeroDivisionError for num_generations 0; a sampling temperature of 0 divides the
# logits by 0): checked with the recipe, as pivotrl's own fields are (pivotrl.config_fields.Bounds), before TRL is
# even imported (many seconds on a busy machine). Each with the algorithms whose TRL config class has the field.
_ONLINE, _EVERY = ("grpo", "rloo"), tuple(ALGORITHMS)  # every class: transformers' TrainingArguments fields
TRL_BOUNDS: dict[str, tuple[tuple[str, ...], Bounds]] = {
    "num_generations": (_ONLINE, Bounds(at_least=2, expected="at least 2 (the answers to one prompt are compared)")),
    "temperature": (_ONLINE, Bounds(above=0, expected="above 0 (answers are sampled)")),
    "top_p": (_ONLINE, Bounds(above=0, at_most=1)),
    "steps_per_generation": (_ONLINE, Bounds(at_least=1)),
    "generation_batch_size": (_ONLINE, Bounds(at_least=1)),
    "max_completion_length": (_ONLINE, Bounds(at_least=1)),
    "beta": (("grpo", "rloo", "dpo"), Bounds(at_least=0)),
    "learning_rate": (_EVERY, Bounds(above=0)),
    "per_device_train_batch_size": (_EVERY, Bounds(at_least=1)),
    "gradient_accumulation_steps": (_EVERY, Bounds(at_least=1)),
    "num_train_epochs": (_EVERY, Bounds(above=0)),
}


def _check_trl_bounds(trl: dict[str, Any], keys: Any, class_name: str, source: str) -> None:
    for key in keys:
        problem = TRL_BOUNDS[key][1].problem(trl[key]) if key in TRL_BOUNDS else None
        if problem is not None:
            raise TrainConfigError(f"{source}: trl.{key} {problem} ({class_name}), got {trl[key]!r}")


def _check_trl_fields(trl: dict[str, Any], name: str, source: str) -> None:
    """Every ``trl:`` field must be a field of TRL's config class for the algorithm ``name``, with a value of its
    type and within :data:`TRL_BOUNDS`; an online algorithm needs a step count and whole prompt groups per
    generation batch (checked here, before a model loads, rather than deep inside transformers minutes later)."""
    row = algorithm(name)
    _check_online_steps(trl, row, source)
    _check_trl_bounds(trl, [k for k in trl if k in TRL_BOUNDS and name in TRL_BOUNDS[k][0]], row.config_class, source)
    _check_prompt_groups(trl, row, source)
    if not trl:
        return
    cls = trl_classes(name)[0]
    hints = typing.get_type_hints(cls)
    for key, value in trl.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), hints, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            owners = [other for other in ALGORITHMS if other != name
                      and key in trl_classes(other)[0].__dataclass_fields__]
            if owners and not close:
                hint = f"; it is a field of {', '.join(owners)} (algorithm: {name})"
            raise TrainConfigError(f"{source}: trl.{key} is not a field of TRL's {cls.__name__}{hint}")
        if not _matches(value, hints[key]):
            raise TrainConfigError(f"{source}: trl.{key} must be {_describe(hints[key])} ({cls.__name__}), got "
                                   f"{value!r} ({type(value).__name__})")


def _check_online_steps(trl: dict[str, Any], row: Any, source: str) -> None:
    """An online algorithm trains ``max_steps`` steps: TRL reads 0 or -1 (its default) as "num_train_epochs passes
    over the training set", and with every prompt in every language sampled k times a step that is a run of hours
    to days nobody asked for; refused, with what to write instead."""
    steps = {**COMMON_TRL, **row.trl_defaults, **trl}.get("max_steps", -1)
    if row.online and isinstance(steps, int) and not isinstance(steps, bool) and steps < 1:
        raise TrainConfigError(f"{source}: trl.max_steps must be at least 1 for {row.name}, got {steps}: TRL reads "
                               f"{steps} as whole epochs over the training set, an open-ended run when answers are "
                               "sampled at every step; give the number of steps (trl.max_steps=30, or --max-steps 30)")


def _check_prompt_groups(trl: dict[str, Any], row: Any, source: str) -> None:
    """GRPO and RLOO sample ``num_generations`` answers per prompt into a generation batch that must hold whole
    groups (TRL's rule, from its config class; WORLD_SIZE processes under accelerate launch)."""
    merged = {**COMMON_TRL, **row.trl_defaults, **trl}
    k = merged.get("num_generations")
    sizes = [merged.get(key) for key in ("per_device_train_batch_size", "gradient_accumulation_steps",
                                         "steps_per_generation", "generation_batch_size")]
    if (not row.online or not isinstance(k, int) or k < 1
            or not all(v is None or (isinstance(v, int) and v >= 1) for v in sizes)
            or ("generation_batch_size" in trl and "steps_per_generation" in trl)):
        return  # not an online algorithm, or a type error or TRL's own error says what is wrong
    try:
        world = max(1, int(os.environ.get("WORLD_SIZE") or 1))
    except ValueError:
        world = 1
    per_device = merged.get("per_device_train_batch_size") or 8
    steps_key = "steps_per_generation" if merged.get("steps_per_generation") else "gradient_accumulation_steps"
    steps = merged.get(steps_key) or 1
    batch = merged.get("generation_batch_size") or per_device * world * steps
    if batch % k:
        how = ("generation_batch_size" if merged.get("generation_batch_size") else
               f"per_device_train_batch_size {per_device} x {world} process(es) x {steps_key} {steps}")
        raise TrainConfigError(f"{source}: trl.num_generations {k} must divide the generation batch of {batch} "
                               f"answers ({how}): each prompt's {k} answers are sampled in one batch (TRL's rule); "
                               f"set num_generations to a divisor of {batch} or change the batch")


def _check_offline_fields(config: TrainConfig, row: Any, reward: Any, source: str) -> None:
    """The offline fields: only under an algorithm that reads them, each in range, and a pair margin or reward
    threshold the recipe's reward can reach (checked before anything loads)."""
    for name in OFFLINE_FIELDS:
        if getattr(config, name) is not None and name not in row.offline_defaults:
            users = ", ".join(a.name for a in ALGORITHMS.values() if name in a.offline_defaults)
            raise TrainConfigError(f"{source}: {name} applies to {users}, not to algorithm {row.name}; remove it "
                                   "or change the algorithm")
    if row.online:
        return
    if config.offline("rounds") > 1 and config.dtype == "bfloat16":
        raise TrainConfigError(f"{source}: rounds above 1 merge each round's adapter into the policy's weights, "
                               "where bfloat16 would round small updates away; use dtype float32")
    k = config.offline("samples_per_prompt")
    if row.name == "dpo" and k < 2:
        raise TrainConfigError(f"{source}: samples_per_prompt must be 2 or more for dpo (a pair compares two "
                               f"answers to the same prompt), got {k}")
    low, high = reward.total_range()
    margin = config.offline("pair_margin")
    if margin is not None and not 0 <= margin <= high - low:
        raise TrainConfigError(f"{source}: pair_margin {margin} is out of reach: the {reward.name} reward's totals "
                               f"span {low:g} to {high:g}, so no two answers differ by more than {high - low:g}")
    threshold = config.min_reward
    if threshold is not None and threshold > high:
        raise TrainConfigError(f"{source}: min_reward {threshold} is out of reach: the {reward.name} reward's "
                               f"highest total is {high:g}")


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
        if not data:  # an empty or all-comment file: a wrong path or a lost edit, not a wish for every default
            raise TrainConfigError(f"recipe {path} is empty (no fields); write the fields to change (see recipes/), "
                                   "or leave out --config to train with the defaults")
    data = apply_overrides(_numbers_in_exponent_form(data), overrides or [])
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TrainConfigError(
            f"{source}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    config = TrainConfig(**data)
    config.validate(source)
    return config


def trl_args(config: Any, *, output_dir: str | Path | None = None, reward_weights: list[float] | None = None
             ) -> Any:
    """TRL's config object for a recipe: pivotrl's defaults for its algorithm (the row of
    :data:`pivotrl.train.algorithms.ALGORITHMS`), then the recipe's ``trl:`` unchanged on top. ``output_dir``
    defaults to the recipe's (an offline round trains in its own folder); ``reward_weights`` go to the online
    algorithms, which score inside their steps."""
    import torch

    row = algorithm(config.algorithm)
    cls = trl_classes(config.algorithm)[0]
    on_cpu = not torch.cuda.is_available()
    defaults: dict[str, Any] = {
        **COMMON_TRL, **row.trl_defaults, "output_dir": str(output_dir or config.output_dir), "seed": config.seed,
        "data_seed": config.seed, "use_cpu": on_cpu, "bf16": on_cpu and cpu_has_native_bf16(),
    }
    if row.online:  # TRL hands the rows' own columns (lang, reference, ...) to the reward functions
        defaults.update(reward_weights=reward_weights, remove_unused_columns=False)
    if "reward_weights" in config.trl:
        raise TrainConfigError("trl.reward_weights: set weights in the reward config (reward.weights), not in trl")
    merged = {**defaults, **config.trl}
    unknown = sorted(set(merged) - set(cls.__dataclass_fields__))
    if unknown:
        raise TrainConfigError(f"trl: unknown {cls.__name__} field(s) {', '.join(unknown)}")
    return cls(**merged)


def build_run_reward(config: Any) -> Any:
    """The composed reward of a training run (``config.reward``). An LLM judge in it keeps its scores in the run
    folder (``judge_cache.jsonl``) unless the reward names its own cache, so a resumed run judges nothing twice."""
    from pivotrl.rewards.compose import ComposedReward, load_reward_config

    reward_config = load_reward_config(config.reward)
    if "reference_judge" in reward_config.components and not reward_config.judge_cache:
        reward_config.settings["judge_cache"] = str(Path(config.output_dir) / "judge_cache.jsonl")
    return ComposedReward(reward_config)
