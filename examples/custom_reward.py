"""A reward component of your own, registered from your own module.

``shows_work`` gives credit for showing the arithmetic: the share of the first three ``a op b = c`` steps
written out, in any script (the equations are digits and operators whatever the language). It is a *credit*,
so the language gate multiplies it like every other credit: an English answer to a German question earns
nothing from it.

Use it from a reward config (YAML, or a recipe's ``reward:`` mapping)::

    preset: hybrid
    plugins: [custom_reward]          # this module, importable (on PYTHONPATH or installed)
    weights: {shows_work: 0.2}
    steps_for_full_credit: 3          # this component's own setting (its default)

    PYTHONPATH=examples .venv/bin/pivotrl reward show --reward examples/custom_reward.yaml
"""

from __future__ import annotations

import re
from typing import Any

from pivotrl.rewards.components import completion_text
from pivotrl.rewards.registry import Setting, register_component

# a written-out step: "12 + 30 = 42", "7 × 6 = 42", "48/6=8" (ASCII or the usual typographic operators)
_STEP = re.compile(r"\d[\d.,]*\s*[-+*/×÷x−]\s*\d[\d.,]*\s*=\s*\d")


def shows_work(completions: list[Any], *, steps_for_full_credit: int = 3, **_: Any) -> list[float]:
    """One score in [0, 1] per completion: written-out steps, ``steps_for_full_credit`` or more for full credit."""
    return [min(1.0, len(_STEP.findall(completion_text(c))) / steps_for_full_credit) for c in completions]


# The setting is part of the registry entry: a reward config may then say `steps_for_full_credit: 2`, the
# value is checked here, and the composed reward passes it to shows_work alone.
register_component("shows_work", fn=shows_work, range=(0.0, 1.0), role="credit",
                   summary="arithmetic steps written out (three for full credit)", replace=True,
                   settings={"steps_for_full_credit": Setting(
                       3, "written-out steps that earn full credit", at_least=1)})
