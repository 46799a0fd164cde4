"""Config fields that describe themselves: a dataclass field with its help text and command-line spelling.

A stage's config dataclass declares each setting once, with :func:`setting`; the CLI builds its options from
those fields (``pivotrl.cli.common.options_from``), so a setting's default and help live in one place, as
TRL's ``GRPOConfig`` fields do for its argument parser. Fields several stages share are declared once here
(:class:`ServerFields`).

A setting also declares the values it takes (``at_least=1``, ``at_most=65535``, ``above=0``, or ``check=`` with
the ``expected`` text: a :class:`Bounds`), and :func:`check_fields` checks them all, in one place: the CLI for each
option it builds, and every config's validation (a recipe, a config built in code) before anything loads, each
error naming the setting and what it takes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DATA_DIR_HELP", "SEED", "SERVER_PANEL", "Bounds", "ServerFields", "SettingError", "check_fields",
           "field_help", "field_problem", "setting"]

# the help of every data_dir setting and --data-dir option
DATA_DIR_HELP = ("Folder with the benchmark files (mgsm/, msvamp/, gsm8k/, mmlu_prox/); default: $PIVOTRL_DATA_DIR, "
                 "else the Hugging Face hub.")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class SettingError(ValueError):
    """A setting outside the values it takes; the message names the setting and what it takes."""


@dataclass(frozen=True)
class Bounds:
    """The values a setting takes: numbers ``at_least`` / ``above`` a low end and ``at_most`` a high end, and a
    ``check`` returning True for an acceptable value; ``expected`` says what it wants, for the error (default:
    the bounds in words). None is always accepted here (an unset optional setting); a bool is never a number."""

    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None
    check: Callable[[Any], bool] | None = None
    expected: str = ""

    def describe(self) -> str:
        """What a value must be, in words (``at least 1``, ``between 0 and 65535``, ``above 0 and at most 1``)."""
        if self.expected:
            return self.expected
        if self.at_least is not None and self.at_most is not None:
            return f"between {_number(self.at_least)} and {_number(self.at_most)}"
        low = (f"at least {_number(self.at_least)}" if self.at_least is not None
               else f"above {_number(self.above)}" if self.above is not None else "")
        high = f"at most {_number(self.at_most)}" if self.at_most is not None else ""
        return " and ".join(part for part in (low, high) if part) or "valid"

    def problem(self, value: Any) -> str | None:
        """``must be ...`` when ``value`` is not one this setting takes; None when it is."""
        if value is None:
            return None
        numeric = (self.at_least, self.at_most, self.above) != (None, None, None)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            return f"must be a number {self.describe()}"
        try:
            fits = not ((self.at_least is not None and value < self.at_least)
                        or (self.above is not None and value <= self.above)
                        or (self.at_most is not None and value > self.at_most)
                        or (self.check is not None and not self.check(value)))
        except (TypeError, ValueError):  # a check that cannot even compare the value
            fits = False
        return None if fits else f"must be {self.describe()}"


# what a random seed takes (NumPy's seeds, which transformers.set_seed sets, stop at 2**32 - 1)
SEED = Bounds(at_least=0, at_most=2**32 - 1)


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
            flags: tuple[str, ...] = (), aliases: tuple[str, ...] = (), cli: bool = True, panel: str | None = None,
            parse: Callable[[Any], Any] | None = None, cli_type: Any = None, cli_default: Any = dataclasses.MISSING,
            envvar: str | None = None, at_least: float | None = None, at_most: float | None = None,
            above: float | None = None, check: Callable[[Any], bool] | None = None, expected: str = "",
            bounds: Bounds | None = None) -> Any:
    """A dataclass field with its help and the values it takes.

    ``flags`` are the option's spellings (default ``--field-name``); ``aliases`` are older spellings still
    accepted but not shown in ``--help``; ``cli=False`` keeps a field out of the command line; ``panel`` groups it
    under a heading of ``--help``; ``parse`` turns the command-line value into the field's value and ``cli_type``
    is then the command-line value's type (e.g. ``"de,zh"`` into a list). ``cli_default`` is the command-line
    default where the field's default is spelled differently there (a list of codes is shown comma-joined without
    it); ``envvar`` is an environment variable the option falls back to. ``at_least``, ``at_most``, ``above``,
    ``check`` and ``expected`` (or a whole ``bounds``, e.g. :data:`SEED`) declare the values the field takes
    (:class:`Bounds`), checked by :func:`check_fields`.
    """
    if bounds is None and (at_least, at_most, above, check, expected) != (None, None, None, None, ""):
        bounds = Bounds(at_least=at_least, at_most=at_most, above=above, check=check, expected=expected)
    metadata = {"help": help, "flags": tuple(flags), "aliases": tuple(aliases), "cli": cli, "panel": panel,
                "parse": parse, "cli_type": cli_type, "cli_default": cli_default, "envvar": envvar, "bounds": bounds}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_problem(f: dataclasses.Field, value: Any) -> str | None:
    """``must be ...`` when ``value`` is outside what the field ``f`` declares it takes; None when it is not."""
    bounds = f.metadata.get("bounds")
    return bounds.problem(value) if bounds is not None else None


def check_fields(config: Any, source: str = "", names: Callable[[dataclasses.Field], str] | None = None) -> None:
    """Check every field of the dataclass ``config`` against the values its :func:`setting` declares; raise
    :class:`SettingError` for the first one outside them: ``SOURCE: NAME must be WHAT, got VALUE`` (``names``
    spells a field, e.g. as its command-line flag; default: its name)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        problem = field_problem(f, value)
        if problem is not None:
            where = f"{source}: " if source else ""
            raise SettingError(f"{where}{names(f) if names else f.name} {problem}, got {value!r}")


def field_help(cls: type) -> dict[str, str]:
    """Each field's help text, by name (for docs and error messages)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


SERVER_PANEL = "Through an OpenAI-compatible server"


@dataclass
class ServerFields:
    """An OpenAI-compatible server (vllm serve, SGLang, llama-server, a hosted API) that writes the answers instead
    of a local model: the settings ``pivotrl eval`` (``EvalConfig``) and ``pivotrl pivot`` share."""

    endpoint: str | None = setting(
        None, aliases=("--base-url",), panel=SERVER_PANEL,
        help="The server's API root, e.g. http://127.0.0.1:8000/v1: the answers come from it instead of a local "
        "model (in `pivotrl pivot`: with --pivot endpoint).")
    endpoint_model: str | None = setting(
        None, panel=SERVER_PANEL, help="With --endpoint: the model name the server serves (as given to `vllm "
        "serve`; GET URL/models lists them); an evaluation records it as the run's model.")
    api_key_env: str | None = setting("OPENAI_API_KEY", panel=SERVER_PANEL, help="With --endpoint: environment "
                                      "variable holding the server's API key (sent as a Bearer token).")
    concurrency: int = setting(8, panel=SERVER_PANEL, help="With --endpoint: requests in flight at a time.")
    # 300 s: a long answer (1-2k tokens) from a busy server that first queues the request; a server that holds a
    # connection and never answers costs this much per attempt (6 attempts). No deadline by default: a large
    # evaluation through a server may rightly take hours; --deadline bounds a run (answers so far are kept).
    request_timeout: float = setting(300.0, above=0, panel=SERVER_PANEL, help="With --endpoint: seconds one request "
                                     "may take (waiting in the server's queue, generating, reading the answer) before "
                                     "it is given up and retried; opening the connection has its own 10 s.")
    deadline: float | None = setting(None, above=0, panel=SERVER_PANEL, help="With --endpoint: seconds the run may "
                                     "spend on the server's answers in all; past it the run stops with an error "
                                     "(answers written so far are kept: running again continues). Default: no limit.")
