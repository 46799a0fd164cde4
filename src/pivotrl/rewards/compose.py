"""Composing reward components into the reward a trainer optimises: weights, a language gate, thresholds, presets.

A composed reward is declared as data (:class:`RewardConfig`, from a preset, YAML or keyword overrides)::

    total = gate * sum(w[c] * s[c] for c in gated) + sum(w[c] * s[c] for c not in gated)
    gate  = min(1, language_fidelity / gate_full)

where ``s[c]`` is component ``c``'s score in its own range (after its threshold, if any: a score below the
threshold counts 0). The gate is what makes the semantic reward verifiable against the cheapest hack: an
answer copied or written in English has fidelity ~0, so every gated credit (agreement, similarity, format)
is multiplied by ~0, while penalties (length, brevity, repetition) are never gated. ``gate_full`` (0.8) gives full
credit to answers that are mostly in the language, since numbers, names and formulas are legitimately shared.

Presets (:data:`PRESETS`):

* ``hybrid`` (default): answer agreement 1.0 + rescaled embedding similarity 0.5 + native format 0.2, gated by
  fidelity; length, repetition and brevity guards 0.5 each. Agreement separates right from wrong numbers
  (which embeddings cannot), similarity rewards reasoning that means what the reference means (which a bare
  answer does not), the gate and guards stop the known hacks: the brevity guard the bare guessed answer a
  policy trained without it collapsed to (docs/RESULTS.md).
* ``hybrid-judge``: the hybrid with the ``reference_judge`` LLM judge (:mod:`pivotrl.rewards.judge`; a local
  ``qwen1.5b`` by default, or any OpenAI-compatible server with ``judge_endpoint``) at weight 1.0 in place of the
  embedding similarity.
* ``embedding``: rescaled embedding similarity alone, gated by fidelity, with the guards (the paper's
  semantic reward; no answer check).
* ``translate``: translate-then-compare (chrF++ by default) gated by fidelity, with the guards.
* ``answer``: answer agreement alone, ungated (RLVR with gold answers; the labelled baseline).

:class:`ComposedReward` is the one object trainers use. It is a TRL reward function itself (returns the
totals; logs per-language means through TRL's ``log_metric``), and :meth:`ComposedReward.trl_reward_funcs`
gives the total plus one zero-weight function per component, so TRL logs ``rewards/<component>/mean`` while
optimising exactly the composed total. Every component is computed once per batch (the last batch's scores
are memoised, so the extra logging functions cost nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotrl.languages import get_language
from pivotrl.records import RewardInput, ScoredCompletion
from pivotrl.rewards import components as comp
from pivotrl.rewards import registry

__all__ = [
    "PRESETS",
    "ComposedReward",
    "RewardConfig",
    "build_reward",
    "load_reward_config",
    "score_inputs",
]

RANGES = registry.score_ranges  # every component a config can name -> the range of its own score (live)


@dataclass
class RewardConfig:
    """What a composed reward is made of. Every field can come from YAML or the command line.

    ``weights``: component name -> weight (a component with weight 0 is still computed and logged).
    ``gate``: the component whose score gates the credit (``language_fidelity``), or None for no gate.
    ``gate_full``: gate score from which credit is full; below it the gate falls linearly to 0.
    ``gated``: components multiplied by the gate (penalties should not be: a penalty times 0 is a reward).
    ``thresholds``: component -> minimum score; below it the component counts 0.
    ``settings``: the components' own settings (:class:`~pivotrl.rewards.registry.Setting`), by name; a config
    file or mapping gives each as a top-level key (``length_tolerance: 3``: ``length_guard``'s allowed length as a
    multiple of the reference's; ``min_length_share``: ``brevity_guard``'s shortest length without penalty, as a
    share of the reference's; a plugin's own), read back as attributes (``config.length_tolerance``); a setting
    left out takes its registered default.
    ``encoder``, ``embedding_baseline``, ``embedding_ceiling``: the embedding similarity's encoder spec and
    rescaling (None: calibrated on the synthetic parallel set). ``translator``, ``translate_metric``: the
    translate-then-compare backend and metric (chrf, embedding, comet); the translation likelihood uses the
    same translator. ``plugins``: modules imported before the config is checked, which register their own
    components (:func:`pivotrl.rewards.registry.register_component`). ``device``: where the encoder and
    translator run (``auto``: this process's GPU when there is one, so each process of a distributed launch
    scores beside its own policy; else the CPU).
    """

    name: str = "hybrid"
    weights: dict[str, float] = field(default_factory=dict)
    gate: str | None = "language_fidelity"
    gate_full: float = 0.8
    gated: list[str] | None = None  # None: every credit component (plugins' included), filled in on creation
    thresholds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # component settings by name (registry.Setting)
    encoder: str = "e5-torch"
    embedding_baseline: float | None = None
    embedding_ceiling: float | None = None
    translator: str = "seq2seq:facebook/nllb-200-distilled-600M"
    translate_metric: str = "chrf"
    device: str = "auto"
    plugins: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.plugins, list):
            registry.import_plugins([m for m in self.plugins if isinstance(m, str) and m])
        if self.gated is None:  # after the plugins: their credit components are gated too
            self.gated = registry.default_gated()
        self.validate()

    def __getattr__(self, name: str) -> Any:
        # a component's setting reads like a field: its value here, else its registered default
        owner = registry.setting_owners().get(name) if not name.startswith("_") else None
        if owner is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        settings = self.__dict__.get("settings") or {}
        return settings[name] if name in settings else registry.REGISTRY[owner].settings[name].default

    def validate(self) -> None:
        """Raise ValueError naming the field and what was expected."""
        if not isinstance(self.plugins, list) or not all(isinstance(m, str) and m for m in self.plugins):
            raise ValueError(f"reward config {self.name!r}: plugins must be a list of module names, "
                             f"got {self.plugins!r}")
        known = ", ".join(RANGES)
        for key in ("weights", "thresholds"):  # YAML can give a list or a number where a mapping belongs
            if not isinstance(getattr(self, key), Mapping):
                raise ValueError(f"reward config {self.name!r}: {key} must be a mapping of component name -> number "
                                 f"(e.g. answer_agreement: 1.0), got {getattr(self, key)!r}")
        if not self.weights:
            raise ValueError(f"reward config {self.name!r}: 'weights' is empty; name at least one of: {known}")
        for name, weight in self.weights.items():
            if name not in RANGES:
                raise ValueError(f"reward config {self.name!r}: weights: unknown component {name!r}; known: {known}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise ValueError(f"reward config {self.name!r}: weights.{name} must be a finite number, got {weight!r}")
            if weight < 0:
                # Credit components score in [0, 1] and guards in [-1, 0]: the sign is in the score, so a negative
                # weight turns credit into a penalty for right answers, or a guard into pay for padding.
                low, high = RANGES[name]
                kind = "a guard (a penalty" if high <= 0 else "a credit component (a score"
                raise ValueError(f"reward config {self.name!r}: weights.{name} = {weight!r}: {name} is {kind} in "
                                 f"[{low:g}, {high:g}]) and needs a weight >= 0; a negative weight would reward "
                                 "what it is meant to discourage")
        if all(weight == 0 for weight in self.weights.values()):  # every total 0: nothing to learn or to rank
            raise ValueError(f"reward config {self.name!r}: every weight is 0, so every answer would get a total of "
                             "0; give at least one component a weight above 0 (a weight of 0 only logs a component)")
        if not isinstance(self.gated, (list, tuple)):
            raise ValueError(f"reward config {self.name!r}: gated must be a list of component names, got "
                             f"{self.gated!r}")
        for name in self.gated:
            if name not in RANGES:
                raise ValueError(f"reward config {self.name!r}: gated: unknown component {name!r}; known: {known}")
        if self.gate is not None and self.gate not in RANGES:
            raise ValueError(f"reward config {self.name!r}: gate: unknown component {self.gate!r}; known: {known}")
        if self.gate is not None and self.gate in self.gated:
            raise ValueError(f"reward config {self.name!r}: the gate {self.gate!r} cannot gate itself")
        if not (isinstance(self.gate_full, (int, float)) and 0 < self.gate_full <= 1):
            raise ValueError(f"reward config {self.name!r}: gate_full must be in (0, 1], got {self.gate_full!r}")
        for name, value in self.thresholds.items():
            if name not in RANGES:
                raise ValueError(f"reward config {self.name!r}: thresholds: unknown component {name!r}; known: {known}")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"reward config {self.name!r}: thresholds.{name} must be a number, got {value!r}")
        if not isinstance(self.device, str) or not self.device.strip():
            raise ValueError(f"reward config {self.name!r}: device must be a device name like auto, cpu or cuda:0, "
                             f"got {self.device!r}")
        if not isinstance(self.settings, dict):
            raise ValueError(f"reward config {self.name!r}: settings must be a mapping of component settings, "
                             f"got {self.settings!r}")
        owners = registry.setting_owners()
        for key, value in self.settings.items():
            if key not in owners:
                raise ValueError(f"reward config {self.name!r}: settings: unknown setting {key!r}; the registered "
                                 f"components have: {', '.join(sorted(owners)) or 'none'}")
            problem = registry.REGISTRY[owners[key]].settings[key].problem(value)
            if problem is not None:
                raise ValueError(f"reward config {self.name!r}: {key} {problem} (a setting of {owners[key]})")
        from pivotrl.rewards.translation import METRICS

        if self.translate_metric not in METRICS:
            raise ValueError(f"reward config {self.name!r}: translate_metric must be one of {', '.join(METRICS)}, "
                             f"got {self.translate_metric!r}")

    @property
    def components(self) -> list[str]:
        """Every component computed: the weighted ones and the gate."""
        names = list(self.weights)
        if self.gate is not None and self.gate not in names:
            names.append(self.gate)
        return names

    def combine(self, scores: Mapping[str, float]) -> tuple[float, float]:
        """(total, gate) from one answer's component scores (clamped and thresholded as ``score`` leaves them):
        the formula at the top of this module. Also re-totals stored scores under other weights (an audit's
        cases) without computing the components again."""
        gate = 1.0 if self.gate is None else min(1.0, max(0.0, scores[self.gate] / self.gate_full))
        # a zero-weight component (logged, not optimised) may be missing from stored scores
        gated = sum(w * scores[c] for c, w in self.weights.items() if w and c in self.gated)
        free = sum(w * scores[c] for c, w in self.weights.items() if w and c not in self.gated)
        return gate * gated + free, gate

    def total_range(self) -> tuple[float, float]:
        """The lowest and highest total this config can give."""
        low = high = 0.0
        for name, weight in self.weights.items():
            lo, hi = sorted((weight * RANGES[name][0], weight * RANGES[name][1]))
            if self.gate is not None and name in self.gated:  # the gate can scale credit down to 0
                lo, hi = min(lo, 0.0), max(hi, 0.0)
            low, high = low + lo, high + hi
        return low, high

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_GUARDS = {"length_guard": 0.5, "repetition_guard": 0.5}

PRESETS: dict[str, dict[str, Any]] = {
    # the brevity guard only where a bare answer can collect credit (agreement, format): see brevity_guard
    "hybrid": {"weights": {"answer_agreement": 1.0, "embedding_similarity": 0.5, "answer_format": 0.2,
                           "language_fidelity": 0.0, **_GUARDS, "brevity_guard": 0.5}},
    # the hybrid with the LLM judge in place of the embedding similarity, at the weight of the answer: the judge
    # reads the reasoning, which is what the embedding could not tell apart (ROC-AUC 0.57, docs/RESULTS.md)
    "hybrid-judge": {"weights": {"answer_agreement": 1.0, "reference_judge": 1.0, "answer_format": 0.2,
                                 "language_fidelity": 0.0, **_GUARDS, "brevity_guard": 0.5}},
    "embedding": {"weights": {"embedding_similarity": 1.0, "language_fidelity": 0.0, **_GUARDS}},
    "translate": {"weights": {"translate_similarity": 1.0, "language_fidelity": 0.0, **_GUARDS}},
    "answer": {"weights": {"answer_agreement": 1.0}, "gate": None},
}


def load_reward_config(source: str | Path | Mapping[str, Any] | RewardConfig | None = None,
                       **overrides: Any) -> RewardConfig:
    """A :class:`RewardConfig` from a preset name, a YAML file, a mapping or a config, plus overrides.

    A mapping (or YAML file) may name a ``preset`` to start from; its other keys replace the preset's
    (``weights`` entries are merged into the preset's weights). Unknown keys are an error naming the key.
    """
    if isinstance(source, RewardConfig):
        data: dict[str, Any] = source.to_dict()
    elif source is None or (isinstance(source, str) and source in PRESETS):
        data = {"preset": source or "hybrid"}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"reward config {str(source)!r} is neither a preset ({', '.join(PRESETS)}) nor a file")
        from pivotrl.yaml_files import read_yaml_mapping

        loaded = read_yaml_mapping(path, "reward config fields")
        data = dict(loaded.get("reward", loaded)) if isinstance(loaded.get("reward"), Mapping) else dict(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    preset = data.pop("preset", None)
    base: dict[str, Any] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown reward preset {preset!r}; expected one of: {', '.join(PRESETS)}")
        base = {"name": preset, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].items()}}
    if "weights" in data and "weights" in base and isinstance(data["weights"], Mapping):  # else validate says so
        data["weights"] = {**base["weights"], **dict(data["weights"])}
    merged = {**base, **data}
    plugins = merged.get("plugins")
    if isinstance(plugins, list):  # their components' settings are keys this config may use
        registry.import_plugins([m for m in plugins if isinstance(m, str) and m])
    allowed = {f.name for f in dataclasses.fields(RewardConfig)}
    owners = registry.setting_owners()
    settings = merged.pop("settings", None) or {}
    if not isinstance(settings, Mapping):
        raise ValueError(f"reward config field settings must be a mapping of component settings, got {settings!r}")
    settings = dict(settings)
    settings.update({key: merged.pop(key) for key in list(merged) if key in owners and key not in allowed})
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise ValueError(f"unknown reward config field(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(allowed - {'settings'}))}, and the components' settings: "
                         f"{', '.join(sorted(owners))}")
    return RewardConfig(**merged, settings=settings)


def _digest(*columns: Sequence[Any]) -> str:
    h = hashlib.sha1()
    for column in columns:
        for value in column:
            h.update(repr(value).encode("utf-8", "replace"))
            h.update(b"\x1e")
        h.update(b"\x1d")
    return h.hexdigest()


class ComposedReward:
    """A composed reward: a TRL reward function over ``completions`` with the training set's columns.

    Columns: ``reference`` (the English pivot reference), ``reference_answer`` (its final answer; read from
    ``reference`` when absent), ``lang`` (the asked language), ``answer_type`` ("number" or "choice") and
    ``question`` (the question in the asked language; optional, None or "" where unknown, for the components
    that read it). Every component receives every column (``question`` as None values when not given).
    ``encoder`` / ``translator`` objects may be passed to share loaded models between rewards.
    """

    def __init__(self, config: RewardConfig | str | Mapping[str, Any] | None = None, *, encoder: Any = None,
                 translator: Any = None) -> None:
        self.config = config if isinstance(config, RewardConfig) else load_reward_config(config)
        self._encoder = encoder
        self._translator = translator
        self._funcs: dict[str, Callable[..., list[float]]] = {}
        self._memo: tuple[str, list[ScoredCompletion]] | None = None
        self.__name__ = f"pivotrl_{self.config.name}"

    # -- components

    def component(self, name: str) -> Callable[..., list[float]]:
        """The callable computing one component (built on first use: encoders and translators load lazily)."""
        if name not in self._funcs:
            if name not in registry.REGISTRY:
                raise KeyError(f"unknown reward component {name!r}")
            self._funcs[name] = registry.REGISTRY[name].build(self.config, encoder=self._encoder,
                                                              translator=self._translator)
        return self._funcs[name]

    # -- scoring

    def score(self, completions: Sequence[Any], **columns: Any) -> list[ScoredCompletion]:
        """Every component, the gate and the total for each completion (memoised for the last batch)."""
        completions = list(completions)
        n = len(completions)
        reference = columns.get("reference")
        reference_answer = columns.get("reference_answer")
        if reference_answer is None:
            reference_answer = reference
        lang = columns.get("lang", "en")
        answer_type = columns.get("answer_type")
        question = columns.get("question")
        texts = [comp.completion_text(c) for c in completions]
        cols = {name: comp._column(value, n, name) for name, value in
                (("reference", reference), ("reference_answer", reference_answer), ("lang", lang),
                 ("answer_type", answer_type), ("question", question))}
        for code in set(map(str, cols["lang"])):
            get_language(code)  # an unknown language is a set-up error: say so before scoring anything
        key = _digest(texts, *cols.values())
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1]
        cfg = self.config
        scores: dict[str, list[float]] = {}
        for name in cfg.components:
            # each component gets the columns and its own settings, nobody else's
            own = registry.REGISTRY[name].arguments(cfg.settings)
            values = [float(v) for v in self.component(name)(texts, **cols, **own)]
            lo, hi = RANGES[name]
            values = [min(hi, max(lo, v)) if math.isfinite(v) else 0.0 for v in values]
            if name in cfg.thresholds:
                values = [v if v >= cfg.thresholds[name] else 0.0 for v in values]
            scores[name] = values
        out = []
        for i in range(n):
            components = {c: scores[c][i] for c in scores}
            total, gate = cfg.combine(components)
            out.append(ScoredCompletion(total=total, components=components, gate=gate))
        self._memo = (key, out)
        return out

    def __call__(self, completions: Sequence[Any], log_metric: Callable[[str, float], None] | None = None,
                 **columns: Any) -> list[float]:
        """TRL reward function: the totals. With TRL's ``log_metric``, also logs the total per language and
        ``reward_seconds``, the wall time of scoring the batch (beside TRL's ``step_time``: the reward's share
        of a step)."""
        started = time.perf_counter()
        scored = self.score(completions, **columns)
        if log_metric is not None:
            log_metric("reward_seconds", time.perf_counter() - started)
        if log_metric is not None and scored:
            # One value per completion: TRL averages pending metrics as sum / count gathered over processes, so
            # this is the exact mean per language over every process's completions.
            langs = comp._column(columns.get("lang", "en"), len(scored), "lang")
            for s, code in zip(scored, langs, strict=True):
                log_metric(f"reward_by_lang/{get_language(str(code)).code}", s.total)
        return [s.total for s in scored]

    def component_view(self, name: str) -> Callable[..., list[float]]:
        """A TRL reward function returning one component's score (through the memo: no second computation)."""
        if name not in self.config.components:
            raise KeyError(f"{name!r} is not a component of reward {self.config.name!r}")

        def view(completions: Sequence[Any], **columns: Any) -> list[float]:
            columns.pop("log_metric", None)
            return [s.components[name] for s in self.score(completions, **columns)]

        view.__name__ = name
        return view

    def trl_reward_funcs(self) -> tuple[list[Callable[..., list[float]]], list[float]]:
        """``(reward_funcs, reward_weights)`` for TRL: the composed total (weight 1) and each component (weight 0).

        TRL then optimises exactly the composed total and logs ``rewards/<component>/mean`` for every
        component. Pass the weights as ``GRPOConfig(reward_weights=...)``.
        """
        funcs: list[Callable[..., list[float]]] = [self]
        funcs += [self.component_view(name) for name in self.config.components]
        return funcs, [1.0] + [0.0] * len(self.config.components)


def score_inputs(reward: Any, items: Sequence[RewardInput]) -> list[ScoredCompletion]:
    """Score :class:`~pivotrl.records.RewardInput` records in one batch with ``reward`` (a
    :class:`ComposedReward`, or anything with its ``score(completions, **columns)``): the one path the reward
    server, verl, ``pivotrl reward score`` and the audit take. A missing ``reference_answer`` is read from the
    reference text (:attr:`RewardInput.answer`); ``question`` goes through as given (None where unknown)."""
    items = list(items)
    return reward.score([it.response for it in items], reference=[it.reference for it in items],
                        reference_answer=[it.answer for it in items], lang=[it.lang for it in items],
                        answer_type=[it.answer_type for it in items], question=[it.question for it in items])


def build_reward(config: RewardConfig | str | Mapping[str, Any] | Path | None = None, **overrides: Any
                 ) -> ComposedReward:
    """A :class:`ComposedReward` from a preset name, YAML path, mapping or config, with field overrides."""
    encoder = overrides.pop("encoder_object", None)
    translator = overrides.pop("translator_object", None)
    return ComposedReward(load_reward_config(config, **overrides), encoder=encoder, translator=translator)
