"""`pivotrl pivot`: English pivot references (write, verify, store), export, build-train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pivotrl.cli.common import DEVICE_HELP, DataDir, _fail, _write_failed, app, console, options_from
from pivotrl.pivot.run import PivotConfig

# ------------------------------------------------------------------------------------------------ pivot

pivot_app = typer.Typer(help="English pivot references: write, verify and store them (resumable), then pair "
                        "them with target-language questions.", invoke_without_command=True)
app.add_typer(pivot_app, name="pivot")


_ENDPOINT = "Pivot through a server (--pivot endpoint)"


@pivot_app.callback()
@options_from(PivotConfig, "config", skip=("endpoint",))
def pivot_cmd(
    ctx: typer.Context,
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible base URL, e.g. "
                                                    "http://127.0.0.1:8000/v1.", rich_help_panel=_ENDPOINT)] = None,
    endpoint_model: Annotated[Optional[str], typer.Option(help="Model name.", rich_help_panel=_ENDPOINT)] = None,
    api_key_env: Annotated[str, typer.Option(help="Env var with the API key.", rich_help_panel=_ENDPOINT)]
    = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Requests in flight.", rich_help_panel=_ENDPOINT)] = 8,
    config: PivotConfig = None,  # type: ignore[assignment] - built by options_from from the options below
) -> None:
    """Write verified English references: k samples per problem, the final answer checked against the
    English gold answer (else a majority vote), appended to OUT/references.jsonl as soon as verified.

    Example: pivotrl pivot --pivot smollm2 --task msvamp --split train --k 4 --out runs/pivot
    """
    if ctx.invoked_subcommand is not None:
        return
    from pivotrl.data import DataError
    from pivotrl.models import ModelLoadError
    from pivotrl.pivot.run import run_pivot

    if config.pivot == "endpoint":
        if not base_url or not endpoint_model:
            _fail("--pivot endpoint needs --base-url and --endpoint-model")
        config.endpoint = {"base_url": base_url, "model": endpoint_model, "api_key_env": api_key_env,
                           "concurrency": concurrency}
    try:
        summary = run_pivot(config)
    except (DataError, ModelLoadError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_write_failed(exc, "references already stored are kept"))
    except Exception as exc:  # endpoint errors carry their own clear message
        if type(exc).__name__ == "EndpointError":
            _fail(str(exc))
        raise
    _print_summary("pivot references", summary)
    console.print(f"store: {Path(config.out) / 'references.jsonl'}")


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

    try:
        rows = [r.to_dict() for r in ReferenceStore(refs).read() if with_none or r.status != "none"]
    except StoreError as exc:
        _fail(str(exc))
    path = write_rows(rows, out)
    console.print(f"wrote {len(rows)} references to {path}")


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

    try:
        tr = None
        if translator:
            from pivotrl.translators import make_translator

            tr = make_translator(translator, device=device)
        examples, summary = build_train_set(refs, task, parse_langs(langs), pivot=pivot_name, settings=settings,
                                            data_dir=data_dir, translator=tr)
    except (DataError, UnknownLanguageError, ValueError) as exc:
        _fail(str(exc))
    path = write_examples(examples, out)
    _print_summary("training set", summary)
    console.print(f"wrote {len(examples)} examples to {path}")
