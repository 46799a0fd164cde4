"""`pivotrl pivot`: English pivot references (write, verify, store), export, build-train."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from pivotrl.cli.common import DataDir, app, console, fail, options_from, write_failed
from pivotrl.config_fields import ServerFields
from pivotrl.devices import DEVICE_HELP
from pivotrl.pivot.run import PivotConfig

# ------------------------------------------------------------------------------------------------ pivot

pivot_app = typer.Typer(help="English pivot references: write, verify and store them (resumable), then pair "
                        "them with target-language questions.", invoke_without_command=True)
app.add_typer(pivot_app, name="pivot")


@pivot_app.callback()
@options_from(PivotConfig, "config")
@options_from(ServerFields, "server")  # the server settings `pivotrl eval` has too (with --pivot endpoint)
def pivot_cmd(
    ctx: typer.Context,
    config: PivotConfig = None,  # type: ignore[assignment] - built by options_from from the options below
    server: ServerFields = None,  # type: ignore[assignment]
) -> None:
    """Write verified English references: k samples per problem, the final answer checked against the
    English gold answer (else a majority vote), appended to OUT/references.jsonl as soon as verified.

    Example: pivotrl pivot --pivot smollm2 --task msvamp --split train --k 4 --out runs/pivot

    Through a server: pivotrl pivot --pivot endpoint --endpoint http://127.0.0.1:8000/v1 --endpoint-model NAME
    """
    if ctx.invoked_subcommand is not None:
        return
    from pivotrl.data import DataError
    from pivotrl.models import ModelLoadError
    from pivotrl.pivot.endpoint import EndpointError
    from pivotrl.pivot.run import run_pivot

    if config.pivot == "endpoint":
        if not server.endpoint or not server.endpoint_model:
            fail("--pivot endpoint needs --endpoint and --endpoint-model")
        config.endpoint = {"base_url": server.endpoint, "model": server.endpoint_model,
                           "api_key_env": server.api_key_env, "concurrency": server.concurrency,
                           "timeout": server.request_timeout, "deadline": server.deadline}
    try:
        summary = run_pivot(config)
    except (DataError, ModelLoadError, ValueError) as exc:
        fail(str(exc))
    except EndpointError as exc:  # it carries its own clear message (URL, status, attempts); and what is kept
        fail(f"{exc}; {_stored_now(config)}")
    except OSError as exc:
        fail(write_failed(exc, "references already stored are kept", config.out))
    _print_summary("pivot references", summary)
    console.print(f"store: {Path(config.out) / 'references.jsonl'}")


def _stored_now(config: PivotConfig) -> str:
    """How many references of this pivot and settings the store holds (after a failed run: what it kept)."""
    from pivotrl.pivot.run import make_backend, settings_key
    from pivotrl.pivot.store import ReferenceStore

    try:
        stored = len(ReferenceStore(config.out).done_ids(make_backend(config).name, settings_key(config)))
    except Exception:  # noqa: BLE001 - only a count for the message
        return "references stored so far are kept; run the same command again to continue"
    return (f"{stored} reference{'s' if stored != 1 else ''} of this pivot are stored in "
            f"{Path(config.out) / 'references.jsonl'} (kept: run the same command again to continue)")


def _print_summary(title: str, summary: dict) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(key, shown)
    console.print(table)


@pivot_app.command("export")
def pivot_export(
    refs: Annotated[Path, typer.Option(help="Reference store folder of `pivotrl pivot`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .jsonl, .parquet, or a folder (a Hugging "
                                      "Face datasets dataset).")],
    with_none: Annotated[bool, typer.Option(help="Also export problems without a reference.")] = False,
) -> None:
    """Export a reference store (every pivot and settings pair it holds) for other tools."""
    from pivotrl.pivot.store import ReferenceStore, StoreError
    from pivotrl.pivot.train_set import write_rows
    from pivotrl.run_folder import OutputPathError

    if not refs.is_dir():  # ReferenceStore would create it: a mistyped --refs must not export an empty store
        fail(f"reference store {refs} {'is a file, not a folder' if refs.exists() else 'does not exist'}: --refs "
             "takes the --out folder of `pivotrl pivot`")
    _check_rows_out(out)
    try:
        rows = [r.to_dict() for r in ReferenceStore(refs).read() if with_none or r.status != "none"]
    except (StoreError, OutputPathError) as exc:
        fail(str(exc))
    path = _write_rows(write_rows, rows, out)
    console.print(f"wrote {len(rows)} references to {path}")


def _check_rows_out(out: Path) -> None:
    """``--out`` of export and build-train, checked before any work: a .jsonl or .parquet file, else a folder
    (a Hugging Face datasets dataset), as :func:`pivotrl.pivot.train_set.write_rows` writes them."""
    from pivotrl.run_folder import OutputPathError, check_output_dir, check_output_file

    try:
        if out.suffix in (".jsonl", ".parquet"):
            check_output_file(out, "--out file")
        else:
            check_output_dir(out, "--out folder")
    except OutputPathError as exc:
        fail(str(exc))


def _write_rows(write: Callable[[Any, Path], Path], rows: Any, out: Path) -> Path:
    """``write(rows, out)``; an OSError while writing (a full disk) is one line naming the file."""
    from pivotrl.run_folder import writing

    try:
        with writing(out):
            return write(rows, out)
    except OSError as exc:
        fail(write_failed(exc))


@pivot_app.command("build-train")
def pivot_build_train(
    refs: Annotated[Path, typer.Option(help="Reference store folder of `pivotrl pivot`.")],
    langs: Annotated[str, typer.Option(help="Target languages, comma-separated.")],
    task: Annotated[str, typer.Option(help="Parallel problem set holding the target-language questions.")]
    = "msvamp",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output: .jsonl, .parquet, or a folder (a Hugging "
                                      "Face datasets dataset).")] = Path("runs/train.jsonl"),
    translator: Annotated[Optional[str], typer.Option(help="For languages the set lacks: seq2seq:MODEL or "
                                                     "llm:MODEL.")] = None,
    pivot_name: Annotated[Optional[str], typer.Option(help="Which pivot's references (when the store holds "
                                                      "several).")] = None,
    settings: Annotated[Optional[str], typer.Option(help="Which settings hash (when several).")] = None,
    device: Annotated[str, typer.Option(help="Where a model translator runs: " + DEVICE_HELP + ".")] = "auto",
    data_dir: DataDir = None,
) -> None:
    """Pair every stored reference with the same problem in each target language (from the parallel set or
    a translator); held-out problems are left out."""
    from pivotrl.data import DataError
    from pivotrl.languages import UnknownLanguageError, parse_langs
    from pivotrl.pivot.train_set import build_train_set, write_examples

    _check_rows_out(out)  # before the references are read or a translator loads
    try:
        tr = None
        if translator:
            from pivotrl.translators import make_translator

            tr = make_translator(translator, device=device)
        examples, summary = build_train_set(refs, task, parse_langs(langs), pivot=pivot_name, settings=settings,
                                            data_dir=data_dir, translator=tr)
    except (DataError, UnknownLanguageError, ValueError) as exc:
        fail(str(exc))
    path = _write_rows(write_examples, examples, out)
    _print_summary("training set", summary)
    console.print(f"wrote {len(examples)} examples to {path}")
