"""What every ``pivotrl`` sub-command shares: the app, the consoles, the common options, the error exits."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.text import Text

from pivotrl import __version__
from pivotrl.devices import DEVICE_HELP, DTYPE_HELP

app = typer.Typer(
    name="pivotrl",
    help="Make an LLM reason as well in other languages as in English (PB-RLSVR: pivot-based RL with "
    "semantically verifiable rewards).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Optional[str], typer.Option(
    "--data-dir", help="Folder with the benchmark files (mgsm/, msvamp/, gsm8k/, mmlu_prox/); "
    "default: $PIVOTRL_DATA_DIR, else the Hugging Face hub.", show_default=False)]
Split = Annotated[str, typer.Option(help="all | train | held-out (deterministic by problem id).")]
Device = Annotated[str, typer.Option(help="Where the models run: " + DEVICE_HELP + ".")]
Dtype = Annotated[str, typer.Option(help="Generation precision: " + DTYPE_HELP + ".")]


def _fail(message: str, code: int = 1) -> None:
    # the message is plain text: brackets in it (list[str], a file name) must not be read as rich markup
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(code)


def _write_failed(exc: OSError, kept: str) -> str:
    """A disk that filled up or turned read-only mid-run (the paths were checked before the work began)."""
    where = f" {exc.filename}" if exc.filename else ""
    return (f"could not write{where}: {exc.strerror or exc}; {kept}. Free some space (or choose another "
            "--out) and run the same command again to continue")


def _version(value: bool) -> None:
    if value:
        console.print(f"pivotrl {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """pivotrl: data -> pivot references -> rewards -> training -> evaluation -> report."""


def _option_type(annotation: Any) -> Any:
    """The type typer parses for a field: ``X | None`` as ``Optional[X]``, sequences as ``list[str]``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return Optional[_option_type(inner[0])]  # noqa: UP045 - typer reads typing.Optional
    if typing.get_origin(annotation) in (list, tuple, Sequence):
        return list[args[0] if args else str]
    return annotation


def options_from(cls: type, name: str, *, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Any]:
    """Give a typer command one option per field of the config dataclass ``cls`` and pass it the built config.

    Each field's default, help, spelling and ``--help`` heading come from its :func:`pivotrl.config_fields.setting`
    (one place for a setting); the command's own parameters stay as written. The command receives ``name=cls(...)``.
    Fields in ``skip``, or declared ``cli=False``, keep their dataclass defaults.
    """
    hints = typing.get_type_hints(cls)
    chosen = [f for f in dataclasses.fields(cls) if f.name not in skip and f.metadata.get("cli", True)]

    def decorate(func: Callable[..., Any]) -> Any:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != name]
        clash = {p.name for p in own} & {f.name for f in chosen}
        if clash:
            raise TypeError(f"{func.__name__} declares {sorted(clash)} itself and through {cls.__name__}")
        added = []
        for f in chosen:
            meta = f.metadata
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = inspect.Parameter.empty  # a required field: a required option
            kind = meta.get("cli_type") or _option_type(hints[f.name])
            option = typer.Option(*meta.get("flags", ()), help=meta.get("help", ""),
                                  rich_help_panel=meta.get("panel"),
                                  show_default=default is not None and default is not inspect.Parameter.empty)
            added.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=Annotated[kind, option]))

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            values = {}
            for f in chosen:
                value = kwargs.pop(f.name)
                parse = f.metadata.get("parse")
                try:
                    values[f.name] = parse(value) if parse is not None and value is not None else value
                except (KeyError, ValueError) as exc:
                    flag = (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0]
                    _fail(f"{flag} {value!r}: {str(exc).strip(chr(39))}")
            kwargs[name] = cls(**values)
            return func(**kwargs)

        parameters = own + added
        command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command

    return decorate
