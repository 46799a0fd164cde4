"""What every ``pivotrl`` sub-command shares: the app, the consoles, the common options, the error exits."""

from __future__ import annotations

from typing import Annotated, Optional

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


