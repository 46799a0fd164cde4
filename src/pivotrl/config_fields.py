"""Config fields that describe themselves: a dataclass field with its help text and command-line spelling.

A stage's config dataclass declares each setting once, with :func:`setting`; the CLI builds its options from
those fields (``pivotrl.cli.common.options_from``), so a setting's default and help live in one place, as
TRL's ``GRPOConfig`` fields do for its argument parser. Fields several stages share are declared once here
(:class:`ServerFields`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DATA_DIR_HELP", "SERVER_PANEL", "ServerFields", "at_least", "field_help", "setting"]

# the help of every data_dir setting and --data-dir option
DATA_DIR_HELP = ("Folder with the benchmark files (mgsm/, msvamp/, gsm8k/, mmlu_prox/); default: $PIVOTRL_DATA_DIR, "
                 "else the Hugging Face hub.")


def setting(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
            flags: tuple[str, ...] = (), aliases: tuple[str, ...] = (), cli: bool = True, panel: str | None = None,
            parse: Callable[[Any], Any] | None = None, cli_type: Any = None, cli_default: Any = dataclasses.MISSING,
            envvar: str | None = None) -> Any:
    """A dataclass field with its help.

    ``flags`` are the option's spellings (default ``--field-name``); ``aliases`` are older spellings still
    accepted but not shown in ``--help``; ``cli=False`` keeps a field out of the command line; ``panel`` groups it
    under a heading of ``--help``; ``parse`` turns the command-line value into the field's value and ``cli_type``
    is then the command-line value's type (e.g. ``"de,zh"`` into a list). ``cli_default`` is the command-line
    default where the field's default is spelled differently there (a list of codes is shown comma-joined without
    it); ``envvar`` is an environment variable the option falls back to.
    """
    metadata = {"help": help, "flags": tuple(flags), "aliases": tuple(aliases), "cli": cli, "panel": panel,
                "parse": parse, "cli_type": cli_type, "cli_default": cli_default, "envvar": envvar}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def field_help(cls: type) -> dict[str, str]:
    """Each field's help text, by name (for docs and error messages)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def at_least(low: int) -> Callable[[int], int]:
    """A ``parse`` hook refusing a number below ``low`` (the CLI names the option in its error)."""

    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}")
        return value

    return check


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
