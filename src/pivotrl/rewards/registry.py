"""The reward components a config can name, each described once: what computes it, the range of its score,
its role, its own settings, and the shared config fields it reads. The built-ins are declared at the end of
this module, so ``REGISTRY`` is complete as soon as it is imported.

Roles decide how :class:`~pivotrl.rewards.compose.ComposedReward` combines a component by default:

* ``credit`` - a score in [0, 1] for doing something right; multiplied by the language gate (an answer in
  English earns no credit), so a new credit component is gated without its author having to know;
* ``penalty`` - a score in [-1, 0] (a guard against padding, loops); never gated, since a penalty times 0
  would be a reward;
* ``gate`` - ``language_fidelity``: the share of the answer in the asked language, which gates the credit.

A component is computed by a plain function ``fn(completions, **columns) -> list[float]`` (TRL's reward
function contract, see :mod:`pivotrl.rewards.components`), or, when it needs a model, by a ``factory`` that
builds such a callable from the reward config on first use. Either may be given as a ``"module:function"``
string, imported on first use, so that listing components never loads a model.

A component's own **settings** (:class:`Setting`: default, help, the check a value must pass) are part of its
entry. A reward config accepts each of them as a top-level key (``length_tolerance: 3``), checks it against the
entry, and the composed reward passes its value to the component's function as a keyword argument, to that
component only. Register your own from your module::

    from pivotrl.rewards.registry import Setting, register_component

    def shows_work(completions, *, steps_for_full_credit=3, **_):
        return [min(1.0, text.count("=") / steps_for_full_credit) for text in map(completion_text, completions)]

    register_component("shows_work", fn=shows_work, range=(0.0, 1.0), role="credit",
                       summary="arithmetic steps written out",
                       settings={"steps_for_full_credit": Setting(3, "steps for full credit",
                                                                  at_least=1)})

and name the module in the reward config's ``plugins`` (``plugins: [my_rewards]``) so that ``pivotrl train``,
``reward score`` and the reward server import it before they read the weights (examples/custom_reward.py).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pivotrl.config_fields import Bounds

__all__ = ["REGISTRY", "Component", "RewardFunc", "Setting", "default_gated", "import_plugins", "plain_functions",
           "register_component", "score_ranges", "setting_owners"]

RewardFunc = Callable[..., list[float]]
ROLES = ("credit", "penalty", "gate")


@dataclass(frozen=True)
class Setting:
    """One setting of a component: its default, a line of help, and the values it takes, declared as every
    config setting declares them (:class:`pivotrl.config_fields.Bounds`: ``Setting(2.0, "...", above=0)``).
    ``argument`` is the keyword the component's function takes, when it differs from the setting's name.
    """

    default: Any
    help: str
    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None
    check: Callable[[Any], bool] | None = None
    expected: str = ""
    argument: str | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None when it is fine): ``must be ..., got VALUE``."""
        bounds = Bounds(self.at_least, self.at_most, self.above, self.check, self.expected)
        numeric = isinstance(self.default, (int, float)) and not isinstance(self.default, bool)
        if value is None or (numeric and (isinstance(value, bool) or not isinstance(value, (int, float))
                                          or not math.isfinite(value))):
            return f"must be {bounds.describe()} (a number), got {value!r}"
        problem = bounds.problem(value)
        return None if problem is None else f"{problem}, got {value!r}"


def _resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    """A callable, or the function a ``"module:function"`` string names (imported now)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Component:
    """One reward component: its name, score range, role, and what computes it (``fn`` or ``factory``)."""

    name: str
    range: tuple[float, float]
    role: str  # credit | penalty | gate (see the module docstring)
    # a plain reward function, or its "module:function" path (imported on first use)
    fn: RewardFunc | str | None = None
    # builds the reward function from the config: factory(config, encoder=..., translator=...) -> RewardFunc;
    # a "module:function" string is imported on first use
    factory: Callable[..., RewardFunc] | str | None = None
    fields: tuple[str, ...] = ()  # the shared RewardConfig fields the factory reads (encoder, device, ...)
    summary: str = ""  # one line for `pivotrl reward show`
    settings: Mapping[str, Setting] = dataclasses.field(default_factory=dict)  # this component's own

    def build(self, config: Any, **shared: Any) -> RewardFunc:
        """The reward function: ``fn``, or the factory's product for ``config`` (``shared``: loaded encoder /
        translator objects to reuse)."""
        if self.fn is not None:
            return _resolve(self.fn)
        return _resolve(self.factory)(config, **shared)  # type: ignore[arg-type]

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments that pass this component's settings to its function: ``values`` where a config
        sets them, the defaults otherwise."""
        return {s.argument or name: values.get(name, s.default) for name, s in self.settings.items()}


REGISTRY: dict[str, Component] = {}


def register_component(name: str, *, range: tuple[float, float], role: str, fn: RewardFunc | str | None = None,
                       factory: Callable[..., RewardFunc] | str | None = None, fields: tuple[str, ...] = (),
                       summary: str = "", settings: Mapping[str, Setting] | None = None,
                       replace: bool = False) -> Component:
    """Add a component to :data:`REGISTRY` (see the module docstring); returns it.

    Raises ValueError for a name already taken (unless ``replace``), an unknown role, a range that is not
    ``low < high`` inside [-1, 1] or does not fit the role, not exactly one of ``fn`` / ``factory``, or a
    setting whose name another component's setting already has (a config names settings without their
    component) or whose default fails its own check.
    """
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"component name {name!r}: use letters, digits and underscores")
    if name in REGISTRY and not replace:
        raise ValueError(f"a reward component named {name!r} is already registered; pass replace=True to replace it")
    if role not in ROLES:
        raise ValueError(f"component {name!r}: role must be one of {', '.join(ROLES)}, got {role!r}")
    low, high = (float(x) for x in range)
    if not -1.0 <= low < high <= 1.0:
        raise ValueError(f"component {name!r}: range must be (low, high) with -1 <= low < high <= 1, got {range!r}")
    if role == "penalty" and high > 0 or role != "penalty" and low < 0:
        raise ValueError(f"component {name!r}: a {role} scores in {'[-1, 0]' if role == 'penalty' else '[0, 1]'}, "
                         f"got range {range!r}")
    if (fn is None) == (factory is None):
        raise ValueError(f"component {name!r}: give exactly one of fn (a reward function) or factory")
    settings = dict(settings or {})
    for key, value in settings.items():
        if not isinstance(value, Setting) or not key.isidentifier():
            raise ValueError(f"component {name!r}: settings must map names to Setting(...), got {key!r}: {value!r}")
        owner = setting_owners().get(key)
        if owner is not None and owner != name:
            raise ValueError(f"component {name!r}: setting {key!r} is already a setting of {owner!r}")
        if value.problem(value.default) is not None:
            raise ValueError(f"component {name!r}: the default of setting {key!r} {value.problem(value.default)}")
    component = Component(name, (low, high), role, fn, factory, tuple(fields), summary, settings)
    REGISTRY[name] = component
    return component


def setting_owners() -> dict[str, str]:
    """Setting name -> the component it belongs to, over every registered component."""
    return {key: c.name for c in REGISTRY.values() for key in c.settings}


class _View(Mapping):
    """A read-only mapping over the registry, live (components registered later appear in it)."""

    def __init__(self, value: Callable[[Component], Any], keep: Callable[[Component], bool] = lambda c: True):
        self._value, self._keep = value, keep

    def __getitem__(self, name: str) -> Any:
        component = REGISTRY[name]
        if not self._keep(component):
            raise KeyError(name)
        return self._value(component)

    def __iter__(self) -> Iterator[str]:
        return (name for name, c in REGISTRY.items() if self._keep(c))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


# name -> (low, high) of every registered component
score_ranges: Mapping[str, tuple[float, float]] = _View(lambda c: c.range)
# name -> reward function of the components that are plain functions (no model to build)
plain_functions: Mapping[str, RewardFunc] = _View(lambda c: _resolve(c.fn), lambda c: c.fn is not None)


def default_gated() -> list[str]:
    """Every credit component: what the language gate multiplies unless a config says otherwise."""
    return [name for name, c in REGISTRY.items() if c.role == "credit"]


def import_plugins(modules: list[str] | tuple[str, ...]) -> None:
    """Import the modules that register a config's own components; a missing one is a clear error."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"reward plugin {module!r} cannot be imported ({exc}); it must be importable "
                             "(installed, or on PYTHONPATH) and register its components when imported") from None


# ---------------------------------------------------------------------------------------------- built-ins

# In the order configs and reports list them. Each is named by path: registering reads no module, and the
# functions' module (components.py, embedding.py, translation.py) is imported when a reward first uses one.
_COMPONENTS = "pivotrl.rewards.components"
register_component("answer_agreement", fn=f"{_COMPONENTS}:answer_agreement", range=(0.0, 1.0), role="credit",
                   summary="same final answer as the reference (exact numbers or choice letters)")
register_component("language_fidelity", fn=f"{_COMPONENTS}:language_fidelity", range=(0.0, 1.0), role="gate",
                   summary="share of the completion written in the asked language")
register_component("answer_format", fn=f"{_COMPONENTS}:answer_format", range=(0.0, 1.0), role="credit",
                   summary="ends with the native answer sentence and a number")
register_component("length_guard", fn=f"{_COMPONENTS}:length_guard", range=(-1.0, 0.0), role="penalty",
                   summary="completions much longer than the reference",
                   settings={"length_tolerance": Setting(
                       2.0, "allowed length as a multiple of the reference's", above=0, argument="tolerance")})
register_component("brevity_guard", fn=f"{_COMPONENTS}:brevity_guard", range=(-1.0, 0.0), role="penalty",
                   summary="completions much shorter than the reference (a bare answer)",
                   settings={"min_length_share": Setting(
                       0.25, "shortest length without penalty, as a share of the reference's",
                       check=lambda v: 0 <= v < 1, expected="in [0, 1)", argument="min_share")})
register_component("repetition_guard", fn=f"{_COMPONENTS}:repetition_guard", range=(-1.0, 0.0), role="penalty",
                   summary="repeated n-grams (padding, loops)")
register_component("embedding_similarity", factory="pivotrl.rewards.embedding:similarity_from_config",
                   range=(0.0, 1.0), role="credit",
                   fields=("encoder", "embedding_baseline", "embedding_ceiling", "device"),
                   summary="rescaled cross-lingual embedding similarity to the English reference")
register_component("translate_similarity", factory="pivotrl.rewards.translation:translate_from_config",
                   range=(0.0, 1.0), role="credit", fields=("translator", "translate_metric", "encoder", "device"),
                   summary="the completion translated into English, compared with the reference")
register_component("translation_likelihood", factory="pivotrl.rewards.translation:likelihood_from_config",
                   range=(0.0, 1.0), role="credit", fields=("translator", "device"),
                   summary="likelihood of the reference given the completion under a translation model")


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


register_component("reference_judge", factory="pivotrl.rewards.judge:judge_from_config", range=(0.0, 1.0),
                   role="credit", fields=("device",),
                   summary="an LLM judge's P(yes): does the answer reach the English reference's result by "
                           "reasoning that agrees with it?",
                   settings={
                       "judge": Setting("qwen1.5b", "the judge model: a local model spec (packaged name, folder, "
                                        "GGUF file, hub id), or the model name the judge_endpoint serves",
                                        check=lambda v: _text(v) and bool(v.strip()), expected="a model name"),
                       "judge_endpoint": Setting("", "an OpenAI-compatible server URL (http://host:8000/v1) to ask "
                                                 "instead of loading the judge here; empty: local",
                                                 check=_text, expected="a URL or empty"),
                       "judge_api_key_env": Setting("OPENAI_API_KEY", "environment variable holding the judge "
                                                    "server's API key (unset or empty: no key)",
                                                    check=_text, expected="a variable name"),
                       "judge_concurrency": Setting(8, "judge server requests in flight at once", at_least=1,
                                                    check=_whole, expected="a whole number >= 1"),
                       "judge_batch_size": Setting(8, "answers per forward pass of the local judge", at_least=1,
                                                   check=_whole, expected="a whole number >= 1"),
                       "judge_dtype": Setting("auto", "the local judge's dtype (auto: bfloat16 on a GPU, float32 "
                                              "on a CPU)", check=lambda v: v in ("auto", "float32", "bfloat16",
                                                                                 "float16"),
                                              expected="auto, float32, bfloat16 or float16"),
                       "judge_cache": Setting("", "JSONL file of judged scores, read at start and appended to "
                                              "(resuming a run rescores nothing); empty: in memory only",
                                              check=_text, expected="a file path or empty"),
                       "judge_max_chars": Setting(6000, "characters of each text the judge sees (a longer one "
                                                  "keeps its head and its end)", at_least=200,
                                                  check=_whole, expected="a whole number >= 200"),
                   })
