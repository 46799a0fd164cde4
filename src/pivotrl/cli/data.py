"""`pivotrl data`, `pivotrl languages`, `pivotrl models`: the problem sets, the languages, the packaged models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pivotrl.cli.common import DataDir, Split, app, console, fail, write_failed

data_app = typer.Typer(help="List, show and export problem sets (MGSM, MSVAMP, GSM8K, MMLU-ProX, synthetic, files).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

# ------------------------------------------------------------------------------------------------- data


@data_app.command("list")
def data_list(data_dir: DataDir = None) -> None:
    """Show every problem set, its languages, and where it would be read from here."""
    from pivotrl.data import PROBLEM_SETS, DataError, load_problems, local_source, resolve_data_dir

    try:
        folder = resolve_data_dir(data_dir)
    except DataError as exc:
        fail(str(exc))
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
        fail(str(exc))


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
    from pivotrl.run_folder import OutputPathError, check_output_file, open_output, writing

    suffix = out.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".parquet"):
        fail(f"unsupported output type {suffix!r} for {out}: use .jsonl, .csv or .parquet")
    try:
        check_output_file(out, "--out file")
    except OutputPathError as exc:
        fail(str(exc))
    problems = _load(name, langs, split, n, data_dir, subset, seed)
    rows = [p.to_dict() for p in problems]
    try:
        if suffix == ".jsonl":
            with open_output(out) as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif suffix in (".csv", ".parquet"):
            import pyarrow as pa

            flat = [{**r, "choices": json.dumps(r["choices"], ensure_ascii=False) if r["choices"] else None,
                     "meta": json.dumps(r["meta"], ensure_ascii=False)} for r in rows]
            table = pa.Table.from_pylist(flat)
            with writing(out):
                if suffix == ".csv":
                    import pyarrow.csv as pcsv

                    pcsv.write_csv(table, out)
                else:
                    import pyarrow.parquet as pq

                    pq.write_table(table, out)
    except OSError as exc:
        fail(write_failed(exc))
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
    from pivotrl.packaged import PACKAGED_MODELS, PackagedModelError, cache_dir, file_sha256, gguf_path, model_status

    models = list(dict.fromkeys(PACKAGED_MODELS.values()))
    if assemble:
        for model in models:
            if model.split and model_status(model).installed:
                try:
                    console.print(f"{model.key}: {gguf_path(model)}")
                except PackagedModelError as exc:
                    fail(str(exc))
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
        fail("damaged: " + ", ".join(f"{m.key} (delete {cache_dir() / m.file_name} to re-assemble, or "
                                      f"{m.install_command(force=True)})" if m.split else
                                      f"{m.key} ({m.install_command(force=True)})" for m in bad))
