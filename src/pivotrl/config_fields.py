"""Config fields that describe themselves: a dataclass field with its help text and command-line spelling.

A stage's config dataclass declares each setting once, with :func:`setting`; the CLI builds its options from
those fields (``pivotrl.cli.common.options_from``), so a setting's default and help live in one place, as
TRL's ``GRPOConfig`` fields do for its argument parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["field_help", "setting"]


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
            flags: tuple[str, ...] = (), cli: bool = True, panel: str | None = None,
            parse: Callable[[Any], Any] | None = None, cli_type: Any = None) -> Any:
    """A dataclass field with its help.

    ``flags`` are the option's spellings (default ``--field-name``); ``cli=False`` keeps a field out of the
    command line; ``panel`` groups it under a heading of ``--help``; ``parse`` turns the command-line value into
    the field's value and ``cli_type`` is then the command-line value's type (e.g. ``"de,zh"`` into a list).
    """
    metadata = {"help": help, "flags": tuple(flags), "cli": cli, "panel": panel, "parse": parse,
                "cli_type": cli_type}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_help(cls: type) -> dict[str, str]:
    """Each field's help text, by name (for docs and error messages)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}
