"""`pivotrl eval` and `pivotrl report`: multilingual evaluation and the comparison of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pivotrl.cli.common import DataDir, Device, Dtype, Split, _fail, _write_failed, app, console

# ------------------------------------------------------------------------------------------------- eval


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option(help="Model: packaged alias (smollm2), folder, .gguf file or hub id.")]
    = "smollm2",
    task: Annotated[str, typer.Option(help="mgsm | msvamp | mmlu_prox | mmlu_prox_lite | synthetic | gsm8k | "
                                           "a .jsonl/.csv/.parquet file.")] = "mgsm",
    langs: Annotated[Optional[str], typer.Option("--langs", "--lang", "-l",
                                                 help="Comma-separated codes; default: all of the task.")] = None,
    split: Split = "all",
    n: Annotated[Optional[int], typer.Option("-n", help="First n problems per language.")] = None,
    subset: Annotated[Optional[str], typer.Option(help="GSM8K train|test; MMLU-ProX test|validation.")] = None,
    shots: Annotated[int, typer.Option(help="Few-shot MGSM exemplars in the question's language.")] = 0,
    prompt: Annotated[str, typer.Option(help="instruction: question + native step-by-step instruction; "
                                             "mgsm: lm-evaluation-harness native CoT ('Frage: ...').")]
    = "instruction",
    chat: Annotated[Optional[bool], typer.Option("--chat/--no-chat", help="Apply the chat template "
                                                 "(default: when the tokenizer has one; with --endpoint: yes).",
                                                 show_default=False)]
    = None,
    max_new_tokens: Annotated[int, typer.Option(help="Generation budget per answer.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Prompts decoded together (continuous batching: a finished "
                                                 "answer's place goes to the next prompt).")] = 32,
    dtype: Dtype = "auto",
    device: Device = "auto",
    samples: Annotated[int, typer.Option(help="Samples per problem (>1: pass@k and majority vote).")] = 1,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature; default greedy for "
                                                         "one sample, 0.7 for several.", show_default=False)]
    = None,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    stop: Annotated[Optional[list[str]], typer.Option(help="Stop string (repeatable); default: the question "
                                                      "label of the language for --prompt mgsm.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default "
                                                "runs/eval/TASK-MODEL). Re-running resumes it.")] = None,
    data_dir: DataDir = None,
    endpoint: Annotated[Optional[str], typer.Option(
        help="Take the answers from an OpenAI-compatible server (vllm serve, SGLang, llama-server, a hosted API) "
        "instead of loading --model: its API root, e.g. http://127.0.0.1:8000/v1. Chat sends /chat/completions "
        "(the server applies its own chat template); --no-chat sends /completions with the raw prompt.",
        show_default=False, rich_help_panel="Evaluating through a server")] = None,
    endpoint_model: Annotated[Optional[str], typer.Option(
        help="With --endpoint: the model name the server serves (as given to `vllm serve`; GET URL/models lists "
        "them); recorded as the run's model.", show_default=False,
        rich_help_panel="Evaluating through a server")] = None,
    api_key_env: Annotated[str, typer.Option(
        help="With --endpoint: environment variable holding the server's API key (sent as a Bearer token).",
        rich_help_panel="Evaluating through a server")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(
        help="With --endpoint: requests in flight at a time.", rich_help_panel="Evaluating through a server")] = 8,
) -> None:
    """Evaluate a model per language: accuracy (strict / flexible), answer-found rate, language fidelity,
    response length, and the English gap. Writes generations.jsonl, metrics.json and metrics.md; re-running
    the same command resumes where it stopped.

    Example: pivotrl eval --task mgsm --langs en,de,zh,sw -n 50

    Through a server: pivotrl eval --endpoint http://127.0.0.1:8000/v1 --endpoint-model Qwen/Qwen2.5-0.5B-Instruct
    --task mgsm -n 50
    """
    from pivotrl.data import DataError
    from pivotrl.evaluation import EvalConfig, EvalError, run_eval
    from pivotrl.languages import UnknownLanguageError, parse_langs
    from pivotrl.models import ModelLoadError

    if out is None:
        name = endpoint_model if endpoint and endpoint_model else model
        slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name or name)
        out = Path("runs") / "eval" / f"{Path(task).stem}-{slug}"
    try:
        config = EvalConfig(model=model, task=task, langs=parse_langs(langs) or None, split=split, n=n,
                            subset=subset, shots=shots, prompt=prompt, chat=chat, max_new_tokens=max_new_tokens,
                            batch_size=batch_size, dtype=dtype, device=device, samples=samples,
                            temperature=temperature, top_p=top_p,
                            seed=seed, stop=stop, data_dir=data_dir, out=str(out), endpoint=endpoint,
                            endpoint_model=endpoint_model, api_key_env=api_key_env, concurrency=concurrency)
        metrics = run_eval(config)
    except (DataError, EvalError, ModelLoadError, UnknownLanguageError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_write_failed(exc, "answers written so far are kept"))
    console.print((out / "metrics.md").read_text(encoding="utf-8"), highlight=False, markup=False)
    run = metrics["run"]
    rate = run["generated_now"] / run["seconds_now"] if run["seconds_now"] else 0.0
    console.print(f"generated {run['generated_now']} answers in {run['seconds_now']:.1f} s "
                  f"({rate:.2f} items/s); run folder: {out}")


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
        _fail(str(exc))
    console.print(path.read_text(encoding="utf-8"), highlight=False, markup=False)
    console.print(f"report written to {path} (plots beside it)")
