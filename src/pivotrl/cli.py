"""The ``pivotrl`` command: one sub-command per pipeline stage.

    pivotrl data     list / show / export problem sets
    pivotrl pivot    English pivot references, verified and resumable; build-train pairs them
    pivotrl reward   semantically verifiable rewards: show, score, serve, audit
    pivotrl train    RL training through TRL (GRPO, RLOO), evaluation during training, resume
    pivotrl eval     multilingual evaluation: accuracy, fidelity, English gap
    pivotrl report   compare evaluation runs (tables and plots)
    pivotrl demo     the main job on the embedded default
    pivotrl models   the packaged models: installed, assembled, checked
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
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
data_app = typer.Typer(help="List, show and export problem sets (MGSM, MSVAMP, GSM8K, MMLU-ProX, synthetic, files).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

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


# ------------------------------------------------------------------------------------------------- data


@data_app.command("list")
def data_list(data_dir: DataDir = None) -> None:
    """Show every problem set, its languages, and where it would be read from here."""
    from pivotrl.data import PROBLEM_SETS, DataError, load_problems, local_source, resolve_data_dir

    try:
        folder = resolve_data_dir(data_dir)
    except DataError as exc:
        _fail(str(exc))
    table = Table(title="problem sets", show_lines=False)
    for column in ("name", "languages", "answers", "source here", "problems / language"):
        table.add_column(column)
    for ps in PROBLEM_SETS.values():
        local = local_source(ps.name, folder)
        if ps.name == "synthetic":
            source, count = "embedded (generated, any size)", "500 by default"
        elif local is not None:
            source = str(local)
            try:
                count = str(len(load_problems(ps.name, [ps.langs[0]], data_dir=folder)))
            except DataError as exc:
                count = f"unreadable: {exc}"
        else:
            source, count = f"hub: {ps.hub_id}", "needs hub access"
        table.add_row(ps.name, f"{len(ps.langs)}: {' '.join(ps.langs)}", ps.answer_type, source, count)
    console.print(table)
    if folder is None:
        console.print("No data folder given: pass --data-dir or set $PIVOTRL_DATA_DIR to read local files.")


def _load(name: str, langs: Optional[str], split: str, n: Optional[int], data_dir: Optional[str],
          subset: Optional[str], seed: int, columns: Optional[str] = None, answer_type: str = "number"):
    from pivotrl.data import DataError, load_problems
    from pivotrl.data.files import parse_column_map
    from pivotrl.languages import UnknownLanguageError

    try:
        return load_problems(name, langs, split=split, n=n, data_dir=data_dir, subset=subset, seed=seed,
                             columns=parse_column_map(columns), answer_type=answer_type)
    except (DataError, UnknownLanguageError, ValueError) as exc:
        _fail(str(exc))


@data_app.command("show")
def data_show(
    name: Annotated[str, typer.Argument(help="Problem set name (see `pivotrl data list`) or a file path.")],
    lang: Annotated[Optional[str], typer.Option("--lang", "--langs", "-l",
                                                help="Language code(s), comma-separated.")] = None,
    n: Annotated[int, typer.Option("-n", help="Number of problems to show.")] = 3,
    split: Split = "all",
    subset: Annotated[Optional[str], typer.Option(help="GSM8K train|test; MMLU-ProX test|validation.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split (and of the synthetic set).")] = 0,
    columns: Annotated[Optional[str], typer.Option(help="For files: FIELD=COLUMN,... mapping.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines instead of a readable view.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Print a few problems of a set, e.g. `pivotrl data show mgsm --lang de -n 3`."""
    problems = _load(name, lang, split, n, data_dir, subset, seed, columns)
    for p in problems:
        if as_json:
            print(json.dumps(p.to_dict(), ensure_ascii=False))
            continue
        console.rule(f"[bold]{p.id}[/]  {p.lang}  ({p.source})", align="left")
        console.print(_clip(p.question), highlight=False, markup=False)
        if p.choices:
            for letter, option in zip("ABCDEFGHIJ", p.choices):
                console.print(f"  {letter}. {_clip(option)}", highlight=False, markup=False)
        if p.question_en and p.lang != "en":
            console.print(f"en: {_clip(p.question_en)}", style="dim", highlight=False, markup=False)
        if p.solution:
            console.print(f"solution: {_clip(p.solution)}", style="dim", highlight=False, markup=False)
        console.print(f"answer: {_clip(p.answer)}", style="bold green", highlight=False, markup=False)


SHOW_CHARS = 4000


def _clip(text: str) -> str:
    # Laying out text for a terminal costs more than linear time in its length (a 5 MB question took 18 s);
    # the readable view shows the start of very long fields, --json prints them whole.
    if len(text) <= SHOW_CHARS:
        return text
    return f"{text[:SHOW_CHARS]} ... [{len(text) - SHOW_CHARS:,} more characters; --json prints all]"


@data_app.command("export")
def data_export(
    name: Annotated[str, typer.Argument(help="Problem set name or a file path.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .jsonl, .csv or .parquet.")],
    langs: Annotated[Optional[str], typer.Option("--langs", "--lang", "-l", help="Comma-separated codes.")] = None,
    n: Annotated[Optional[int], typer.Option("-n", help="Keep the first n problems (all languages).")] = None,
    split: Split = "all",
    subset: Annotated[Optional[str], typer.Option(help="GSM8K train|test; MMLU-ProX test|validation.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split (and of the synthetic set).")] = 0,
    data_dir: DataDir = None,
) -> None:
    """Write problems as JSON Lines, CSV or Parquet (one row per problem and language)."""
    from pivotrl.run_folder import OutputPathError, check_output_file

    suffix = out.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".parquet"):
        _fail(f"unsupported output type {suffix!r} for {out}: use .jsonl, .csv or .parquet")
    try:
        check_output_file(out, "--out file")
    except OutputPathError as exc:
        _fail(str(exc))
    problems = _load(name, langs, split, n, data_dir, subset, seed)
    rows = [p.to_dict() for p in problems]
    if suffix == ".jsonl":
        with open(out, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif suffix in (".csv", ".parquet"):
        import pyarrow as pa

        flat = [{**r, "choices": json.dumps(r["choices"], ensure_ascii=False) if r["choices"] else None,
                 "meta": json.dumps(r["meta"], ensure_ascii=False)} for r in rows]
        table = pa.Table.from_pylist(flat)
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, out)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, out)
    console.print(f"wrote {len(rows)} problems ({len({p.id for p in problems})} ids x "
                  f"{len({p.lang for p in problems})} languages) to {out}")


@app.command("languages")
def languages_cmd() -> None:
    """List the language registry: codes, scripts, native answer sentences, NLLB and language-ID codes."""
    from pivotrl.languages import LANGUAGES

    table = Table(title=f"{len(LANGUAGES)} languages")
    for column in ("code", "name", "script", "answer sentence", "NLLB", "LID", "reviewed"):
        table.add_column(column)
    for lang in LANGUAGES.values():
        table.add_row(lang.code, lang.name, lang.script, lang.answer_sentence(42), lang.nllb, lang.lid or "-",
                      "yes" if lang.reviewed else "no")
    console.print(table)


# ----------------------------------------------------------------------------------------------- models


@app.command("models")
def models_cmd(
    assemble: Annotated[bool, typer.Option("--assemble", help="Assemble every installed split model now "
                                           "(otherwise done on first use).")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash every ready GGUF file against its recorded "
                                         "sha256 (a few seconds per GB).")] = False,
) -> None:
    """The real models that install from the package registry: size, licence, whether their wheels are
    installed and whether the GGUF file is ready (split models are assembled into the cache folder,
    $PIVOTRL_CACHE_DIR/models, on first use). Use an alias anywhere a model is asked for: --model qwen0.5b.
    """
    from pivotrl.packaged import (PACKAGED_MODELS, PackagedModelError, cache_dir, file_sha256, gguf_path,
                                  model_status)

    models = list(dict.fromkeys(PACKAGED_MODELS.values()))
    if assemble:
        for model in models:
            if model.split and model_status(model).installed:
                try:
                    console.print(f"{model.key}: {gguf_path(model)}")
                except PackagedModelError as exc:
                    _fail(str(exc))
    table = Table(title=f"packaged models (cache: {cache_dir()})")
    for column in ("alias", "model", "size", "licence", "installed", "ready", "other aliases"):
        table.add_column(column)
    bad = []
    for model in models:
        status = model_status(model)
        installed = "yes" if status.installed else f"no ({status.parts_installed}/{len(model.parts)} parts)"
        ready = "yes" if status.path else ("on first use" if status.installed else "no")
        if verify and status.path is not None:
            ok = file_sha256(status.path) == model.sha256
            ready += ", sha256 ok" if ok else ", SHA256 MISMATCH"
            if not ok:
                bad.append(model)
        table.add_row(model.key, model.title, f"{model.size / 1e6:,.0f} MB", model.licence, installed, ready,
                      ", ".join(model.aliases))
    console.print(table)
    for model in models:
        if not model_status(model).installed:
            console.print(f"install {model.key}: {model.install_command()}", highlight=False, soft_wrap=True)
    if bad:
        _fail("damaged: " + ", ".join(f"{m.key} (delete {cache_dir() / m.file_name} to re-assemble, or "
                                      f"{m.install_command(force=True)})" if m.split else
                                      f"{m.key} ({m.install_command(force=True)})" for m in bad))


# ------------------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[str, typer.Option("-o", "--out", help="Run folder (re-running continues it).")] = "runs/demo",
    task: Annotated[str, typer.Option(help="Training problems (train split): synthetic (embedded), msvamp, mgsm, "
                                           "gsm8k, or a file.")] = "synthetic",
    eval_task: Annotated[Optional[str], typer.Option(help="Held-out evaluation set; default: --task.")] = None,
    model: Annotated[str, typer.Option(help="Policy: packaged alias (pivotrl models), folder, .gguf file or hub "
                                            "id.")] = "qwen0.5b",
    pivot: Annotated[str, typer.Option(help="English pivot: a model (alias, folder, hub id) or 'gold' "
                                            "(the set's worked solutions).")] = "qwen0.5b",
    langs: Annotated[str, typer.Option(help="Comma-separated target languages.")] = "de,fr,ja",
    levels: Annotated[str, typer.Option(help="Synthetic set only: difficulty levels, e.g. 1,2.")] = "1,2",
    reward: Annotated[str, typer.Option(help="Reward preset (hybrid, embedding, translate, answer) or a YAML "
                                             "file.")] = "hybrid",
    steps: Annotated[int, typer.Option(help="GRPO steps (two prompts, 4 sampled answers each).")] = 10,
    lora_r: Annotated[int, typer.Option(help="LoRA rank on every linear layer; 0 trains every weight.")] = 16,
    pivot_n: Annotated[int, typer.Option(help="English training problems given to the pivot.")] = 16,
    eval_n: Annotated[int, typer.Option(help="Held-out problems per language, before and after.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of sampling and training.")] = 0,
    device: Device = "auto",
    data_dir: DataDir = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bars.")] = False,
) -> None:
    """The main job end to end: pivot references, PB-RLSVR training, evaluation before and after, report.

    On the embedded default (the packaged Qwen2.5-Coder-0.5B-Instruct as English pivot and as multilingual
    policy with LoRA, the synthetic set's two easiest levels, German, French and Japanese) it takes about
    15 minutes on 2 CPU cores: 10 GRPO steps, enough to see every stage work and the answer format change,
    not to move the accuracy beyond noise. The pivot's English answers count as references only where their
    final answer matches the gold one; the set's gold worked solution fills in elsewhere, and the summary says how many.
    Re-running the command continues an interrupted run. With data or hub access: --task msvamp (or mgsm),
    --eval-task mgsm, --model <hub id>, --pivot qwen1.5b for the larger packaged pivot.
    """
    from pivotrl.data import DataError
    from pivotrl.evaluation.run import EvalError
    from pivotrl.languages import UnknownLanguageError, parse_langs
    from pivotrl.models import ModelLoadError
    from pivotrl.pipeline import PipelineConfig, run_pipeline
    from pivotrl.report import ReportError
    from pivotrl.train.config import TrainConfigError
    from pivotrl.train.run import TrainError

    try:
        target = [code for code in parse_langs(langs) if code != "en"]
        level_list = [int(x) for x in levels.split(",") if x.strip()] if task == "synthetic" else None
    except (UnknownLanguageError, ValueError) as exc:
        _fail(f"--langs/--levels: {exc}")
    if not target:
        _fail("--langs: name at least one target language other than English (e.g. de,zh)")
    if steps < 1 or pivot_n < 1 or eval_n < 1 or lora_r < 0:
        _fail("--steps, --pivot-n and --eval-n must be at least 1, --lora-r at least 0")
    from pivotrl.pipeline import DEMO_LORA

    config = PipelineConfig(out=out, model=model, pivot=pivot, task=task, langs=target, levels=level_list,
                            data_dir=data_dir, pivot_n=pivot_n, reward=reward, steps=steps, seed=seed,
                            eval_task=eval_task, eval_n=eval_n, device=device,
                            lora={**DEMO_LORA, "r": lora_r, "lora_alpha": 2 * lora_r} if lora_r else None)
    console.print(f"[bold]pivotrl demo[/]: pivot {pivot} -> policy {model} on {task} in {', '.join(target)}, "
                  f"reward {reward}, {steps} steps; run folder {out}")
    try:
        summary = run_pipeline(config, progress=not no_progress, console=console)
    except (DataError, EvalError, ModelLoadError, ReportError, TrainConfigError, TrainError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_write_failed(exc, "finished stages and answers are kept"))
    table = Table(title="held-out accuracy % (fidelity %): before -> after")
    table.add_column("language")
    table.add_column("before")
    table.add_column("after")
    before = json.loads((Path(out) / "eval" / "base" / "metrics.json").read_text(encoding="utf-8"))["languages"]
    after = json.loads((Path(out) / "eval" / "trained" / "metrics.json").read_text(encoding="utf-8"))["languages"]
    for code in after:
        cells = [f"{100 * m[code]['accuracy']:.0f} ({100 * (m[code]['fidelity'] or 0):.0f})" if code in m else "-"
                 for m in (before, after)]
        table.add_row(code, *cells)
    console.print(table)
    gap = summary["base"].get("english_gap_points"), summary["trained"].get("english_gap_points")
    console.print(f"English gap (points): {gap[0]} -> {gap[1]}; total {summary['seconds']['total'] / 60:.1f} min")
    console.print(f"[bold green]report:[/] {summary['report']}")


# ------------------------------------------------------------------------------------------------ pivot

pivot_app = typer.Typer(help="English pivot references: write, verify and store them (resumable), then pair "
                        "them with target-language questions.", invoke_without_command=True)
app.add_typer(pivot_app, name="pivot")


@pivot_app.callback()
def pivot_cmd(
    ctx: typer.Context,
    pivot: Annotated[str, typer.Option(help="Pivot: a model (packaged alias, folder, .gguf, hub id), 'gold' "
                                            "(the set's worked solutions) or 'endpoint' (see --base-url).")]
    = "smollm2",
    task: Annotated[str, typer.Option(help="Problem set (its English side is used).")] = "msvamp",
    split: Split = "train",
    n: Annotated[Optional[int], typer.Option("-n", help="First n problems.")] = None,
    subset: Annotated[Optional[str], typer.Option(help="GSM8K train|test.")] = None,
    k: Annotated[int, typer.Option(help="Samples per problem.")] = 4,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (k > 1).")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling (k > 1).")] = 0.95,
    max_new_tokens: Annotated[int, typer.Option(help="Budget per sample.")] = 384,
    batch_size: Annotated[int, typer.Option(help="Problems per batch (each expands to k rows).")] = 8,
    dtype: Dtype = "auto",
    device: Device = "auto",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    min_agreement: Annotated[float, typer.Option(help="Without a gold answer: majority share needed.")] = 0.5,
    fallback_gold: Annotated[bool, typer.Option(help="Use the gold worked solution where the pivot finds "
                                                "no reference (counted in the summary).")] = False,
    base_url: Annotated[Optional[str], typer.Option(help="Endpoint: OpenAI-compatible base URL, e.g. "
                                                    "http://127.0.0.1:8000/v1.")] = None,
    endpoint_model: Annotated[Optional[str], typer.Option(help="Endpoint: model name.")] = None,
    api_key_env: Annotated[str, typer.Option(help="Endpoint: env var with the API key.")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Endpoint: requests in flight.")] = 8,
    out: Annotated[Path, typer.Option("--out", "-o", help="Reference store folder (re-running resumes).")]
    = Path("runs/pivot"),
    data_dir: DataDir = None,
) -> None:
    """Write verified English references: k samples per problem, the final answer checked against the
    English gold answer (else a majority vote), appended to OUT/references.jsonl as soon as verified.

    Example: pivotrl pivot --pivot smollm2 --task msvamp --split train --k 4 --out runs/pivot
    """
    if ctx.invoked_subcommand is not None:
        return
    from pivotrl.data import DataError
    from pivotrl.models import ModelLoadError
    from pivotrl.pivot.run import PivotConfig, run_pivot

    endpoint = None
    if pivot == "endpoint":
        if not base_url or not endpoint_model:
            _fail("--pivot endpoint needs --base-url and --endpoint-model")
        endpoint = {"base_url": base_url, "model": endpoint_model, "api_key_env": api_key_env,
                    "concurrency": concurrency}
    config = PivotConfig(pivot=pivot, task=task, split=split, n=n, subset=subset, data_dir=data_dir, out=str(out),
                         k=k, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                         batch_size=batch_size, min_agreement=min_agreement, fallback_gold=fallback_gold,
                         endpoint=endpoint, dtype=dtype, device=device)
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
    console.print(f"store: {out / 'references.jsonl'}")


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


# ----------------------------------------------------------------------------------------------- reward

reward_app = typer.Typer(help="Semantically verifiable rewards: show a preset, score responses, serve them over "
                         "HTTP for trainers, audit how well they separate right from wrong and resist hacking.",
                         no_args_is_help=True)
app.add_typer(reward_app, name="reward")

RewardSpec = Annotated[str, typer.Option(
    "--reward", "-r", help="A preset (hybrid, embedding, translate, answer) or a YAML file with reward config fields.")]


def _build_reward(spec: str, **overrides):
    from pivotrl.rewards.compose import build_reward

    try:
        return build_reward(spec, **overrides)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))


@reward_app.command("show")
def reward_show(reward: RewardSpec = "hybrid") -> None:
    """Print a reward's configuration: components, weights, gate, thresholds, and its total range."""
    composed = _build_reward(reward)
    cfg = composed.config
    table = Table(title=f"reward {cfg.name!r}: total in [{cfg.total_range()[0]:g}, {cfg.total_range()[1]:g}]")
    for column in ("component", "role", "weight", "range", "gated", "threshold"):
        table.add_column(column)
    from pivotrl.rewards.registry import REGISTRY

    for name in cfg.components:
        spec = REGISTRY[name]
        lo, hi = spec.range
        gated = "gate" if name == cfg.gate else ("yes" if name in cfg.gated and cfg.gate else "no")
        table.add_row(name, spec.role, f"{cfg.weights.get(name, 0.0):g}", f"[{lo:g}, {hi:g}]", gated,
                      f"{cfg.thresholds[name]:g}" if name in cfg.thresholds else "")
    console.print(table)
    for name in cfg.components:
        console.print(f"  {name}: {REGISTRY[name].summary}", highlight=False, markup=False)
    import yaml

    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), highlight=False, markup=False)


@reward_app.command("score")
def reward_score(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="JSON Lines file: one object per line "
                     "with response, reference, lang and optionally reference_answer, answer_type.")] = None,
    response: Annotated[Optional[str], typer.Option(help="One response to score (instead of --input).")] = None,
    reference: Annotated[Optional[str], typer.Option(help="The English reference for --response.")] = None,
    lang: Annotated[str, typer.Option(help="The language --response was asked in.")] = "en",
    reference_answer: Annotated[Optional[str], typer.Option(help="The reference's final answer (default: read "
                                "from --reference).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write one JSON line of scores per input "
                   "line here (default: print a table).")] = None,
    reward: RewardSpec = "hybrid",
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
) -> None:
    """Score responses against English references: the total and every component, per response."""
    from pivotrl.data.errors import DataError
    from pivotrl.data.files import iter_json_lines
    from pivotrl.run_folder import OutputPathError, check_output_file

    if (input is None) == (response is None):
        _fail("give either --input FILE or --response TEXT (with --reference)")
    if out is not None:
        try:  # before any scoring: the scores are never computed only to be lost to a write error
            check_output_file(out, "--out file")
        except OutputPathError as exc:
            _fail(str(exc))
    from pivotrl.records import RewardInput
    from pivotrl.rewards.compose import score_inputs

    rows: list[dict] = []
    inputs: list[RewardInput] = []
    try:
        if input is not None:
            for line_no, row in iter_json_lines(input):
                inputs.append(RewardInput.from_mapping(row, f"{input}, line {line_no}"))
                rows.append(row)
        else:
            if reference is None:
                _fail("--response needs --reference (the English reference it is compared with)")
            rows = [{"response": response, "reference": reference, "lang": lang, "reference_answer": reference_answer}]
            inputs = [RewardInput.from_mapping(rows[0], "--response")]
    except (DataError, OSError, ValueError) as exc:
        _fail(str(exc))
    items = rows
    composed = _build_reward(reward, device=device)
    try:
        scored = score_inputs(composed, inputs)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))
    if out is not None:
        with out.open("w", encoding="utf-8") as f:
            for item, s in zip(items, scored):
                f.write(json.dumps({**item, **s.to_dict()}, ensure_ascii=False) + "\n")
        console.print(f"{len(scored)} scores written to {out}")
        return
    names = composed.config.components
    table = Table(title=f"reward {composed.config.name!r}")
    for column in ("#", "lang", "total", "gate", *names):
        table.add_column(column, justify="right")
    for i, (item, s) in enumerate(zip(items, scored), 1):
        table.add_row(str(i), item["lang"], f"{s.total:.3f}", f"{s.gate:.2f}",
                      *(f"{s.components[n]:.3f}" for n in names))
    console.print(table)


@reward_app.command("serve")
def reward_serve(
    reward: RewardSpec = "hybrid",
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for other machines).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most items scored in one batch.")] = 256,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests after the first.")]
    = 10.0,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above).")] = 8 * 1024 * 1024,
    max_items: Annotated[int, typer.Option(help="Most items in one request (413 above).")] = 4096,
    max_item_chars: Annotated[int, typer.Option(help="Longest response or reference accepted, in characters "
                              "(413 above): a huge text would hold the scoring thread for every client.")]
    = 100_000,
    cache_size: Annotated[int, typer.Option(help="Identical items remembered (0: no result cache).")] = 16384,
    api_key: Annotated[Optional[str], typer.Option(envvar="PIVOTRL_REWARD_API_KEY", show_envvar=True,
                       help="Key clients must send ('Authorization: Bearer KEY'); required when --host is not a "
                            "loopback address.")] = None,
) -> None:
    """Serve a reward over HTTP so trainers' workers share one loaded encoder per node.

    POST /score {"items": [{"response", "reference", "reference_answer", "lang", "answer_type"}]} returns
    {"scores": [{"score", "gate", "components"}]}; POST /get_reward is OpenRLHF's remote reward contract
    (labels are JSON strings with reference, reference_answer, lang); GET /health, GET /config. Requests are
    batched dynamically; malformed ones get a 4xx with a JSON {"error"} naming the field. The verl adapter
    (pivotrl.rewards.verl) calls this server when PIVOTRL_REWARD_URL is set. Ctrl-C stops it cleanly.
    """
    from pivotrl.rewards.compose import load_reward_config
    from pivotrl.rewards.server import serve

    try:
        config = load_reward_config(reward, device=device)
    except ValueError as exc:
        _fail(str(exc))
    try:
        serve(config, host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms,
              max_body_bytes=max_body_bytes, max_items=max_items, max_item_chars=max_item_chars,
              cache_size=cache_size, api_key=api_key)
    except (ValueError, OSError) as exc:  # no key beyond loopback; the port is taken
        _fail(str(exc))


@reward_app.command("audit")
def reward_audit(
    reward: RewardSpec = "hybrid",
    source: Annotated[Optional[list[str]], typer.Option("--source", help="exemplars (MGSM's human-translated "
                      "worked answers), synthetic (the embedded set's worked solutions), or a generations.jsonl / "
                      "eval run folder (needs --refs or --gold-task). Repeatable.")] = None,
    langs: Annotated[Optional[str], typer.Option(help="Comma-separated languages (default: every language of "
                     "each source).")] = None,
    n: Annotated[int, typer.Option("-n", help="Synthetic problems per language.")] = 40,
    refs: Annotated[Optional[str], typer.Option(help="A `pivotrl pivot` folder: references for generations.")]
    = None,
    gold_task: Annotated[Optional[str], typer.Option(help="A problem set whose English gold solutions serve as "
                         "references for generations.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for audit.md, audit.json, audit.png.")]
    = Path("runs/audit"),
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
    data_dir: DataDir = None,
) -> None:
    """How well a reward separates correct from incorrect answers (ROC-AUC and means per language and
    component) and whether honest answers outscore hacking probes built from them: an English copy of the
    reference, a changed final number, truncated reasoning, padding/repetition, an unrelated answer, a bare
    answer, an English answer sentence."""
    from pivotrl.data.errors import DataError
    from pivotrl.rewards.audit import audit_main
    from pivotrl.run_folder import claim

    try:
        with claim(out, "audit folder"):
            composed = _build_reward(reward, device=device)
            report = audit_main(composed, sources=source or ["exemplars", "synthetic"], langs=langs, out_dir=out,
                                n=n, data_dir=data_dir, refs_dir=refs, gold_task=gold_task,
                                echo=lambda text: console.print(text, highlight=False, markup=False))
    except (DataError, ValueError, KeyError, OSError) as exc:
        _fail(str(exc))
    verdict = "passes" if report.passes(0.99) else "does NOT pass"
    unprobed = [r.lang for r in report.langs.values() if r.min_required is None]
    console.print(f"audit written to {out}/audit.md; the reward {verdict} the 99% probe check in every language "
                  "with probes" + (f" (none in {', '.join(unprobed)}: no correct answer to build them from)"
                                   if unprobed else ""))


# ------------------------------------------------------------------------------------------------ export

export_app = typer.Typer(help="Export a training set for other trainers (verl on Ray).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("verl")
def export_verl_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A training recipe (see recipes/): "
                      "task, langs, refs, levels, n_train and reward are used.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field (key=value).")]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the parquet files, reward.py and scripts.")]
    = Path("runs/verl"),
    model: Annotated[str, typer.Option(help="The policy verl trains (hub id or path on the cluster).")]
    = "Qwen/Qwen2.5-7B-Instruct",
    n_gpus: Annotated[int, typer.Option(help="GPUs per node.")] = 8,
    nnodes: Annotated[int, typer.Option(help="Nodes.")] = 1,
    reward_url: Annotated[Optional[str], typer.Option(help="Score through `pivotrl reward serve` at this URL.")]
    = None,
) -> None:
    """Write verl's RL data (train.parquet, test.parquet from the held-out split), the reward module and
    GRPO / PPO launch scripts for Ray, from the same recipe `pivotrl train` uses."""
    from pivotrl.data import load_problems
    from pivotrl.data.errors import DataError
    from pivotrl.pivot.train_set import TrainExample
    from pivotrl.train.config import TrainConfigError, load_train_config
    from pivotrl.train.run import TrainError, build_rows
    from pivotrl.train.verl_export import export_verl

    try:
        recipe = load_train_config(config, list(set_ or []) + [f"output_dir={out}"])
        rows, _ = build_rows(recipe, progress=True)
        english = {p.id: p for p in load_problems(recipe.task, ["en"], data_dir=recipe.data_dir)}

        def example(pid: str, lang: str, question: str, reference: str, answer: str, kind: str) -> TrainExample:
            question_en = english[pid].question if pid in english else ""
            return TrainExample(pid, lang, question, question_en, reference, answer, kind,
                                f"parallel:{recipe.task}", "gold" if recipe.refs is None else str(recipe.refs),
                                "gold" if recipe.refs is None else "verified")

        train = [example(r["problem_id"], r["lang"], r["question"], r["reference"], r["reference_answer"],
                         r["answer_type"]) for r in rows]
        held = [example(p.id, p.lang, p.question, english[p.id].solution, p.answer, p.answer_type)
                for p in load_problems(recipe.task, recipe.langs, split="held-out", data_dir=recipe.data_dir)
                if p.id in english and english[p.id].solution]
        reward = recipe.reward if isinstance(recipe.reward, str) else "hybrid"
        summary = export_verl(train, out, held_out=held or None, reward=reward, reward_url=reward_url, model=model,
                              n_gpus=n_gpus, nnodes=nnodes)
    except (TrainConfigError, TrainError, DataError, ValueError) as exc:
        _fail(str(exc))
    console.print_json(json.dumps(summary, default=str))
    console.print(f"verl export written to {out}: see {out}/README.md")


# ------------------------------------------------------------------------------------------------ train


@app.command("train")
def train_cmd(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A YAML recipe (see recipes/).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a recipe field: key=value, "
                    "dotted for nested fields (trl.max_steps=30, reward.weights.answer_format=0.5, langs=de,zh). "
                    "Repeatable.")] = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Run folder (checkpoints, "
                          "log.jsonl, evals/, final/).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Policy: packaged alias, folder, GGUF or hub id.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Shortcut for --set trl.max_steps=N.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in the run folder "
                      "(same data order and step count).")] = False,
    device: Annotated[Optional[str], typer.Option(help="Where the reward's encoder and translator run (shortcut "
                      "for --set reward.device=...; default auto: this process's GPU when there is one). TRL and "
                      "accelerate place the policy itself.", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """RL-train the policy with TRL (GRPO by default, or RLOO) on target-language prompts, rewarded against
    English pivot references by a composed reward; evaluates a held-out slice during training, checkpoints,
    resumes, and saves a transformers folder that `pivotrl eval --model <run>/final` loads. Runs under
    `accelerate launch` unchanged."""
    from pivotrl.data.errors import DataError
    from pivotrl.models import ModelLoadError
    from pivotrl.train.config import TrainConfigError, load_train_config
    from pivotrl.train.run import TrainError, run_train

    overrides = list(set_ or [])
    if output_dir is not None:
        overrides.append(f"output_dir={output_dir}")
    if model is not None:
        overrides.append(f"model={model}")
    if max_steps is not None:
        overrides.append(f"trl.max_steps={max_steps}")
    if device is not None:
        overrides.append(f"reward.device={device}")
    try:
        recipe = load_train_config(config, overrides)
        summary = run_train(recipe, resume=resume, progress=progress)
    except (TrainConfigError, TrainError, DataError, ModelLoadError, ValueError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_write_failed(exc, "the last complete checkpoint is kept; continue with --resume"))
    last = summary["last_log"]
    console.print(f"trained {summary['steps']} steps in {summary['seconds']:.0f} s; final model: {summary['final']}")
    if last:
        console.print("last step: " + ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                                                if isinstance(v, float) and (k.startswith("reward") or k == "loss")))




if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
