"""`pivotrl eval` and `pivotrl report`: multilingual evaluation and the comparison of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pivotrl.cli.common import app, console, fail, options_from, write_failed
from pivotrl.evaluation.run import EvalConfig

# ------------------------------------------------------------------------------------------------- eval


@app.command("eval")
@options_from(EvalConfig, "config")
def eval_cmd(
    config: EvalConfig = None,  # type: ignore[assignment] - built by options_from from the options below
) -> None:
    """Evaluate a model per language: accuracy (strict / flexible), answer-found rate, language fidelity,
    response length, and the English gap. Writes generations.jsonl, metrics.json and metrics.md; re-running
    the same command resumes where it stopped.

    Example: pivotrl eval --task mgsm --langs en,de,zh,sw -n 50

    Through a server: pivotrl eval --endpoint http://127.0.0.1:8000/v1 --endpoint-model Qwen/Qwen2.5-0.5B-Instruct
    --task mgsm -n 50
    """
    from pivotrl.data import DataError
    from pivotrl.evaluation import EvalError, run_eval
    from pivotrl.languages import UnknownLanguageError
    from pivotrl.models import ModelLoadError

    if config.out is None:  # the command line's default: one folder per task and model
        name = config.endpoint_model if config.endpoint and config.endpoint_model else config.model
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name or name)
        config.out = str(Path("runs") / "eval" / f"{Path(config.task).stem}-{slug}")
    out = Path(config.out)
    try:
        metrics = run_eval(config)
    except (DataError, EvalError, ModelLoadError, UnknownLanguageError, ValueError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(write_failed(exc, "answers written so far are kept", out))
    console.print((out / "metrics.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    run = metrics["run"]
    rate = run["generated_now"] / run["seconds_now"] if run["seconds_now"] else 0.0
    console.print(f"generated {run['generated_now']} answers in {run['seconds_now']:.1f} s "
                  f"({rate:.2f} items/s); run folder: {out}")
    if run.get("no_text_now"):  # the server's empty answers are not stored: the metrics leave those problems out
        console.print(f"{run['no_text_now']} problems got no text from the server and are not in these metrics; "
                      "run the same command again to ask for them again", highlight=False, markup=False)


@app.command("report")
def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of `pivotrl eval` (the first is the baseline).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.md and the PNG plots.")]
    = Path("runs/report"),
    title: Annotated[str, typer.Option(help="Report title.")] = "pivotrl report",
) -> None:
    """Compare evaluation runs side by side: markdown tables and PNG plots (accuracy and fidelity per
    language per run, English gap per run)."""
    from pivotrl.report import ReportError, write_report

    try:
        path = write_report(runs, out, title)
    except ReportError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(write_failed(exc))
    console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False)
    console.print(f"report written to {path} (plots beside it)")
