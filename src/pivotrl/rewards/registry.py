"""The reward components a config can name, each described once: what computes it, the range of its score,
its role, and the config fields it reads.

Roles decide how :class:`~pivotrl.rewards.compose.ComposedReward` combines a component by default:

* ``credit`` - a score in [0, 1] for doing something right; multiplied by the language gate (an answer in
  English earns no credit), so a new credit component is gated without its author having to know;
* ``penalty`` - a score in [-1, 0] (a guard against padding, loops); never gated, since a penalty times 0
  would be a reward;
* ``gate`` - ``language_fidelity``: the share of the answer in the asked language, which gates the credit.

A component is computed by a plain function ``fn(completions, **columns) -> list[float]`` (TRL's reward
function contract, see :mod:`pivotrl.rewards.components`), or, when it needs a model, by a ``factory`` that
builds such a callable from the reward config on first use (``"module:function"`` strings are imported
then, so listing a component never loads a model). Register your own from your module::

    from pivotrl.rewards.registry import register_component

    def shows_work(completions, **_):
        return [min(1.0, text.count("=") / 3) for text in map(completion_text, completions)]

    register_component("shows_work", fn=shows_work, range=(0.0, 1.0), role="credit",
                       summary="at least three equations")

and name the module in the reward config's ``plugins`` (``plugins: [my_rewards]``) so that ``pivotrl train``,
``reward score`` and the reward server import it before they read the weights (examples/custom_reward.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["REGISTRY", "Component", "RewardFunc", "default_gated", "import_plugins", "plain_functions",
           "register_component", "score_ranges"]

RewardFunc = Callable[..., list[float]]
ROLES = ("credit", "penalty", "gate")


@dataclass(frozen=True)
class Component:
    """One reward component: its name, score range, role, and what computes it (``fn`` or ``factory``)."""

    name: str
    range: tuple[float, float]
    role: str  # credit | penalty | gate (see the module docstring)
    fn: RewardFunc | None = None  # a plain reward function
    # builds the reward function from the config: factory(config, encoder=..., translator=...) -> RewardFunc;
    # a "module:function" string is imported on first use
    factory: Callable[..., RewardFunc] | str | None = None
    fields: tuple[str, ...] = ()  # the RewardConfig fields the factory reads
    summary: str = ""  # one line for `pivotrl reward show`

    def build(self, config: Any, **shared: Any) -> RewardFunc:
        """The reward function: ``fn``, or the factory's product for ``config`` (``shared``: loaded encoder /
        translator objects to reuse)."""
        if self.fn is not None:
            return self.fn
        factory = self.factory
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module), attr)
        return factory(config, **shared)


REGISTRY: dict[str, Component] = {}


def register_component(name: str, *, range: tuple[float, float], role: str, fn: RewardFunc | None = None,
                       factory: Callable[..., RewardFunc] | str | None = None, fields: tuple[str, ...] = (),
                       summary: str = "", replace: bool = False) -> Component:
    """Add a component to :data:`REGISTRY` (see the module docstring); returns it.

    Raises ValueError for a name already taken (unless ``replace``), an unknown role, a range that is not
    ``low < high`` inside [-1, 1] or does not fit the role, or not exactly one of ``fn`` / ``factory``.
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
    component = Component(name, (low, high), role, fn, factory, tuple(fields), summary)
    REGISTRY[name] = component
    return component


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
plain_functions: Mapping[str, RewardFunc] = _View(lambda c: c.fn, lambda c: c.fn is not None)


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
