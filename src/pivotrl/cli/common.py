"""What every ``pivotrl`` sub-command shares: the app, the consoles, the common options, the error exits."""

from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

from pivotrl import __version__
from pivotrl.config_fields import DATA_DIR_HELP, field_problem

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

DataDir = Annotated[Optional[str], typer.Option("--data-dir", help=DATA_DIR_HELP, show_default=False)]
Split = Annotated[str, typer.Option(help="all | train | held-out (deterministic by problem id).")]


def fail(message: str, code: int = 1) -> NoReturn:
    # the message is plain text: brackets in it (list[str], a file name) must not be read as rich markup
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)
    raise typer.Exit(code)


def write_failed(exc: OSError, kept: str | None = None, folder: object = None) -> str:
    """One line for an OSError while writing (a disk that filled up or turned read-only mid-run, a file-size
    limit; the paths were checked before the work began): the file (:func:`pivotrl.run_folder.writing` names
    it; else the run ``folder`` it was in), the system's reason, what is ``kept`` and what to do."""
    named: BaseException | None = exc
    while named is not None and not (isinstance(named, OSError) and named.filename):
        named = named.__context__  # a file closed after a named failure fails again, naming nothing
    filename = named.filename if isinstance(named, OSError) else None
    where = f" {filename}" if filename else f" a file in {folder}" if folder is not None else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "Free some space (or choose another --out)"
    elif exc.errno == errno.EFBIG:
        advice = "The file system or a file-size limit (ulimit -f) allows no file this large: raise the limit (or " \
                 "choose another --out)"
    else:
        advice = "Choose another --out (or fix the location)"
    again = "run the same command again to continue" if kept else "run the command again"
    return f"could not write{where}: {exc.strerror or exc}{f'; {kept}' if kept else ''}. {advice} and {again}"


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


class _Option:
    """One command-line option of a config field: its parameter, its hidden alias, and its value's parse."""

    def __init__(self, f: dataclasses.Field, kind: Any, default: Any, help: str,
                 flags: tuple[str, ...] | None = None, aliases: tuple[str, ...] | None = None,
                 panel: str | None = None) -> None:
        meta = f.metadata
        self.name = f.name
        self.flags = meta.get("flags", ()) if flags is None else flags
        self.aliases = meta.get("aliases", ()) if aliases is None else aliases
        self.default = default
        self.parse = meta.get("parse")
        envvar = meta.get("envvar")
        panel = panel or meta.get("panel")
        option = typer.Option(*self.flags, help=help, rich_help_panel=panel, envvar=envvar,
                              show_envvar=envvar is not None,
                              show_default=default is not None and default is not inspect.Parameter.empty)
        self.parameter = inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=Annotated[kind, option])
        self.alias_parameter = None
        if self.aliases:  # a separate hidden option: a second flag on the same option would show in --help
            alias = typer.Option(*self.aliases, hidden=True, rich_help_panel=panel,
                                 help=f"Old spelling of {self.flag}.")
            self.alias_parameter = inspect.Parameter(f"_alias_{f.name}", inspect.Parameter.KEYWORD_ONLY, default=None,
                                                     annotation=Annotated[Optional[_strip_optional(kind)], alias])

    @property
    def flag(self) -> str:
        return (self.flags or ("--" + self.name.replace("_", "-"),))[0]

    def take(self, kwargs: dict[str, Any]) -> Any:
        """This option's command-line value (from the alias when only that was given), removed from ``kwargs``."""
        value = kwargs.pop(self.name)
        if self.alias_parameter is not None:
            other = kwargs.pop(self.alias_parameter.name)
            if other is not None:
                if value != self.default and value != other:
                    fail(f"{self.flag} and {self.aliases[0]} are the same setting: give one of them")
                value = other
        return value


def _strip_optional(kind: Any) -> Any:
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None))
    return kind


def _with_options(func: Callable[..., Any], name: str, cls: type, options: list[_Option],
                  build: Callable[[dict[str, Any]], Any]) -> Any:
    """``func`` with ``options`` added to its signature; it receives ``name=build({field: value})``."""
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != name]
    clash = {p.name for p in own} & {o.name for o in options}
    if clash:
        raise TypeError(f"{func.__name__} declares {sorted(clash)} itself and through {cls.__name__}")

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        values = {o.name: o.take(kwargs) for o in options}
        kwargs[name] = build(values)
        return func(**kwargs)

    added = [o.parameter for o in options] + [o.alias_parameter for o in options if o.alias_parameter is not None]
    parameters = own + added
    command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


def _cli_default(f: dataclasses.Field) -> Any:
    """A field's default as the command line spells it (a list of codes comma-joined when parsed from text)."""
    meta = f.metadata
    if meta.get("cli_default", dataclasses.MISSING) is not dataclasses.MISSING:
        return meta["cli_default"]
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return inspect.Parameter.empty  # a required field: a required option
    if meta.get("parse") is not None and meta.get("cli_type") is str and isinstance(default, (list, tuple)):
        return ",".join(str(x) for x in default)
    return default


def options_from(cls: type, name: str, *, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Any]:
    """Give a typer command one option per field of the config dataclass ``cls`` and pass it the built config.

    Each field's default, help, spelling and ``--help`` heading come from its :func:`pivotrl.config_fields.setting`
    (one place for a setting); the command's own parameters stay as written. The command receives ``name=cls(...)``.
    Fields in ``skip``, or declared ``cli=False``, keep their dataclass defaults. A field's ``aliases`` become one
    hidden option giving the same value (an old spelling that keeps working). Decorators stack: a command can
    take several configs. A value outside what its field declares it takes (``setting(at_least=...)``) is refused
    with the option's flag, before the command runs (:func:`pivotrl.config_fields.field_problem`).
    """
    hints = typing.get_type_hints(cls)
    chosen = [f for f in dataclasses.fields(cls) if f.name not in skip and f.metadata.get("cli", True)]

    def decorate(func: Callable[..., Any]) -> Any:
        options = [_Option(f, f.metadata.get("cli_type") or _option_type(hints[f.name]), _cli_default(f),
                           f.metadata.get("help", "")) for f in chosen]

        def build(values: dict[str, Any]) -> Any:
            for o, f in zip(options, chosen, strict=True):
                value = values[o.name]
                try:
                    values[o.name] = o.parse(value) if o.parse is not None and value is not None else value
                except (KeyError, ValueError) as exc:  # a bare KeyError quotes its message
                    reason = exc.args[0] if type(exc) is KeyError and exc.args else exc
                    fail(f"{o.flag} {value!r}: {reason}")
                problem = field_problem(f, values[o.name])  # the values the field declares it takes
                if problem is not None:
                    fail(f"{o.flag} {value!r}: {problem}")
            return cls(**values)

        return _with_options(func, name, cls, options, build)

    return decorate


def _shown(value: Any) -> str:
    return ",".join(str(x) for x in value) if isinstance(value, (list, tuple)) else str(value)


def recipe_options(cls: type, name: str, flags: dict[str, tuple[str, ...]], *,
                   aliases: dict[str, tuple[str, ...]] | None = None, panel: str | None = None
                   ) -> Callable[[Callable[..., Any]], Any]:
    """Give a command one option per named field of the recipe dataclass ``cls`` (``flags``: field -> its
    spellings, empty for ``--field-name``; ``aliases``: field -> hidden old spellings; ``panel``: their heading in
    ``--help``), each a shortcut for ``--set FIELD=VALUE``: its help is the field's, with the field's default; left
    out, the recipe's value stays. The command receives ``name={field: value}`` for the options given, in field
    order."""
    hints = typing.get_type_hints(cls)
    chosen = [f for f in dataclasses.fields(cls) if f.name in flags]
    missing = set(flags) - {f.name for f in chosen}
    if missing:
        raise TypeError(f"{cls.__name__} has no field {sorted(missing)}")

    def decorate(func: Callable[..., Any]) -> Any:
        options = []
        for f in chosen:
            kind = _strip_optional(hints[f.name])
            kind = kind if kind in (str, int, float) else str  # lists and mappings: YAML text, as --set reads it
            default = _cli_default(f)
            shown = "" if default in (None, inspect.Parameter.empty) else f", else {_shown(default)}"
            help = f"{f.metadata.get('help', '')} Default: the recipe's{shown}."
            options.append(_Option(f, Optional[kind], None, help, flags=flags[f.name] or None,
                                   aliases=(aliases or {}).get(f.name, ()), panel=panel))
        return _with_options(func, name, cls, options,
                             lambda values: {k: v for k, v in values.items() if v is not None})

    return decorate
