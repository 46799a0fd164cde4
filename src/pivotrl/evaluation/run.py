"""Evaluation runs: generate answers per language, check them, write everything, resume after a kill.

A run folder holds ``config.json`` (what was asked), ``generations.jsonl`` (one :class:`Generation` per
line, appended and flushed batch by batch, so a killed run loses at most the batch in flight),
``metrics.json`` and ``metrics.md``. Running the same command again skips the problems already answered;
asking for more problems or languages extends the run; changing anything that changes the answers
(model, prompt, decoding) is refused, so results never mix.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.answers import answers_match, extract_answer
from pivotrl.config_fields import setting
from pivotrl.data import load_problems, resolve_data_dir
from pivotrl.devices import DEVICE_HELP, DTYPE_HELP
from pivotrl.evaluation.metrics import compute_metrics, metrics_markdown
from pivotrl.fidelity import detect_language
from pivotrl.languages import LANGUAGES, get_language
from pivotrl.prompts import STYLES, native_prompt
from pivotrl.records import Generation, Problem

GENERATIONS = "generations.jsonl"
# Settings that change the answers: a run folder only ever holds generations made with one value of each.
IDENTITY = ("model", "task", "subset", "split", "shots", "prompt", "chat", "max_new_tokens", "samples",
            "temperature", "top_p", "seed", "stop", "dtype", "backend")


class EvalError(Exception):
    """An evaluation cannot run as asked (bad settings, a run folder made with other settings)."""


_SERVER = "Evaluating through a server"


def _comma_langs(value: str) -> list[str] | None:
    from pivotrl.languages import parse_langs

    return parse_langs(value) or None


@dataclass
class EvalConfig:
    """One evaluation run; each field is also a ``pivotrl eval`` option with this help."""

    model: str = setting("smollm2", help="Model: packaged alias (smollm2), folder, .gguf file or hub id.")
    task: str = setting("mgsm", help="mgsm | msvamp | mmlu_prox | mmlu_prox_lite | synthetic | gsm8k | "
                                     "a .jsonl/.csv/.parquet file.")
    langs: list[str] | None = setting(None, flags=("--langs", "--lang", "-l"), parse=_comma_langs, cli_type=str,
                                      help="Comma-separated codes; default: all of the task.")
    split: str = setting("all", help="all | train | held-out (deterministic by problem id).")
    n: int | None = setting(None, flags=("-n",), help="First n problems per language.")
    subset: str | None = setting(None, help="GSM8K train|test; MMLU-ProX test|validation.")
    levels: list[int] | None = setting(None, cli=False, help="Synthetic set only: keep these difficulty levels.")
    shots: int = setting(0, help="Few-shot MGSM exemplars in the question's language.")
    prompt: str = setting("instruction", help="instruction: question + native step-by-step instruction; "
                                              "mgsm: lm-evaluation-harness native CoT ('Frage: ...').")
    chat: bool | None = setting(None, flags=("--chat/--no-chat",), help="Apply the chat template (default: when "
                                "the tokenizer has one; with --endpoint: yes).")
    max_new_tokens: int = setting(256, help="Generation budget per answer.")
    # Qwen2.5-0.5B on 2 cores: 43 tokens/s at 16 prompts, 60 at 32 (docs/BENCHMARKS.md).
    batch_size: int = setting(32, help="Prompts decoded together (continuous batching: a finished answer's place "
                                       "goes to the next prompt).")
    dtype: str = setting("auto", help="Generation precision: " + DTYPE_HELP + ".")
    device: str = setting("auto", help="Where the models run: " + DEVICE_HELP + ".")
    samples: int = setting(1, help="Samples per problem (>1: pass@k and majority vote).")
    temperature: float | None = setting(None, help="Sampling temperature; default greedy for one sample, 0.7 for "
                                        "several.")
    top_p: float = setting(1.0, help="Nucleus sampling.")
    seed: int = setting(0, help="Sampling seed.")
    stop: list[str] | None = setting(None, help="Stop string (repeatable); default: the question label of the "
                                     "language for --prompt mgsm.")
    data_dir: str | None = setting(None, help="Folder with the benchmark files (mgsm/, msvamp/, gsm8k/, "
                                   "mmlu_prox/); default: $PIVOTRL_DATA_DIR, else the Hugging Face hub.")
    out: str = setting("runs/eval", help="Run folder. Re-running resumes it.")
    extra: dict[str, Any] = setting(default_factory=dict, cli=False, help="Free-form notes kept in config.json.")
    # Answers from an OpenAI-compatible server instead of a local model (evaluation/endpoint.py); `model`, `dtype`,
    # `device` and `batch_size` are then unused, and the run folder's identity records `endpoint_model`.
    endpoint: str | None = setting(
        None, panel=_SERVER,
        help="Take the answers from an OpenAI-compatible server (vllm serve, SGLang, llama-server, a hosted API) "
        "instead of loading --model: its API root, e.g. http://127.0.0.1:8000/v1. Chat sends /chat/completions "
        "(the server applies its own chat template); --no-chat sends /completions with the raw prompt.")
    endpoint_model: str | None = setting(
        None, panel=_SERVER, help="With --endpoint: the model name the server serves (as given to `vllm serve`; "
        "GET URL/models lists them); recorded as the run's model.")
    api_key_env: str | None = setting("OPENAI_API_KEY", panel=_SERVER, help="With --endpoint: environment variable "
                                      "holding the server's API key (sent as a Bearer token).")
    concurrency: int = setting(8, panel=_SERVER, help="With --endpoint: requests in flight at a time.")

    def resolved_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.7 if self.samples > 1 else 0.0


def _stops(config: EvalConfig, lang: str) -> tuple[str, ...]:
    if config.stop is not None:
        return tuple(config.stop)
    if config.prompt == "mgsm":
        # As lm-evaluation-harness: a new "Question:" in the question's language ends the answer
        return (get_language(lang).question_label,)
    return ()


def _read_done(path: Path) -> dict[tuple[str, str], list[Generation]]:
    """Generations already in the run folder, by (problem id, language). A line cut by a kill is dropped
    (and cut from the file, so appending continues on a clean line)."""
    done: dict[tuple[str, str], list[Generation]] = {}
    if not path.exists():
        return done
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        keep = raw[: raw.rfind(b"\n") + 1]
        with open(path, "wb") as f:
            f.write(keep)
        raw = keep
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            g = Generation.from_dict(json.loads(line))
        except (json.JSONDecodeError, TypeError) as exc:
            raise EvalError(f"{path}, line {lineno}: not a generation record ({exc})") from None
        done.setdefault((g.id, g.lang), []).append(g)
    return done


def _dtype_name(config: EvalConfig, loaded=None) -> str:
    """The dtype the answers are computed in: the given model's own (evaluation during training), else the
    resolved ``config.dtype``."""
    if loaded is not None:
        return str(next(loaded.model.parameters()).dtype).removeprefix("torch.")
    from pivotrl.devices import generation_dtype, resolve_device

    return str(generation_dtype(config.dtype, resolve_device(config.device))).removeprefix("torch.")


def _check_config(out: Path, config: EvalConfig, chat: bool, dtype: str | None) -> None:
    # An endpoint run records the served model's name as its model, and no dtype (the server's own business).
    backend = {"backend": "endpoint", "model": config.endpoint_model} if config.endpoint else {"backend": "local"}
    identity = {k: getattr(config, k, None) for k in IDENTITY} | backend | {
        "chat": chat, "dtype": dtype, "temperature": config.resolved_temperature()}
    path = out / "config.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved.setdefault("identity", {}).setdefault("dtype", "float32")  # folders from before dtype was recorded
        saved["identity"].setdefault("backend", "local")  # folders from before endpoint runs
        changed = [k for k in IDENTITY if saved["identity"].get(k) != identity[k]]
        if changed:
            details = ", ".join(f"{k}: {saved['identity'].get(k)!r} -> {identity[k]!r}" for k in changed)
            mixed = " (answers of a local model and of a server never share a folder)" if "backend" in changed else ""
            raise EvalError(f"{out} holds a run with other settings ({details}){mixed}; use another --out folder")
    record = {"identity": identity, "config": asdict(config)}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def append_answers(f: Any, problem: Problem, prompt: str, responses: list[str],
                   done: dict[tuple[str, str], list[Generation]], tokenizer: Any = None,
                   token_counts: list[int] | None = None, cut: list[bool | None] | None = None) -> int:
    """Check and append the answers of one problem that the run folder does not hold yet (samples written
    before an interruption are skipped), fsync'ed: a finished answer survives even a power cut. Token counts
    are given (a server's) or counted with ``tokenizer``; ``cut[i]``: answer ``i`` was stopped by the
    new-token budget. Returns the new tokens written."""
    have = len(done.get((problem.id, problem.lang), []))
    added = 0
    for sample, response in enumerate(responses):
        if sample < have:
            continue
        count = token_counts[sample] if token_counts is not None else None
        g = _evaluate(problem, prompt, response, sample, tokenizer, n_tokens=count,
                      cut=cut[sample] if cut is not None else None)
        added += g.n_tokens
        done.setdefault((problem.id, problem.lang), []).append(g)
        f.write(json.dumps(g.to_dict(), ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())
    return added


def _evaluate(problem: Problem, prompt: str, response: str, sample: int, tokenizer,
              n_tokens: int | None = None, cut: bool | None = None) -> Generation:
    """Check one response; ``n_tokens`` given (an endpoint's count) or counted with ``tokenizer``."""
    ex = extract_answer(response, problem.lang, problem.answer_type, len(problem.choices or ()) or 10)
    detection = detect_language(response)
    known = LANGUAGES[problem.lang].lid is not None and detection.lang is not None
    return Generation(
        id=problem.id, lang=problem.lang, sample=sample, prompt=prompt, response=response, gold=problem.answer,
        answer_type=problem.answer_type, strict=ex.strict, flexible=ex.flexible,
        correct_strict=answers_match(ex.strict, problem.answer, problem.answer_type),
        correct_flexible=answers_match(ex.flexible, problem.answer, problem.answer_type),
        correct=answers_match(ex.best, problem.answer, problem.answer_type),
        detected_lang=detection.lang, in_language=(detection.lang == problem.lang) if known else None,
        n_tokens=len(tokenizer(response, add_special_tokens=False).input_ids) if n_tokens is None else n_tokens,
        cut=cut,
    )


def evaluate_loaded(settings: dict[str, Any], loaded: Any) -> dict[str, Any]:
    """Evaluate a model already in memory (``settings``: :class:`EvalConfig` fields), quietly.

    What ``pivotrl train`` is handed for its held-out evaluations during training: the training stage comes
    before this one, so it receives this function instead of importing it."""
    return run_eval(EvalConfig(**settings), loaded=loaded, progress=False)


def run_eval(config: EvalConfig, loaded=None, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``config.model`` on ``config.task``; returns the metrics (also written to the run folder).

    ``loaded`` may be an already loaded :class:`~pivotrl.models.LoadedModel` (evaluation during training).
    The run folder is checked and locked first: a second writer gets an error naming the holder.
    """
    from pivotrl.run_folder import claim

    if config.endpoint is not None or config.endpoint_model is not None:
        from pivotrl.evaluation.endpoint import check_settings

        check_settings(config)  # before the run folder is made
    with claim(config.out, "evaluation run folder"):
        return _run_eval(config, loaded, progress)


def _run_eval(config: EvalConfig, loaded, progress: bool) -> dict[str, Any]:
    from pivotrl.generation import GenerationConfig, PromptTooLongError, generate
    from pivotrl.models import build_prompt, has_chat_template, load_model

    if config.prompt not in STYLES:
        raise EvalError(f"unknown prompt style {config.prompt!r}; expected one of {', '.join(STYLES)}")
    if config.samples < 1 or config.batch_size < 1 or config.max_new_tokens < 1:
        raise EvalError("samples, batch size and max new tokens must be at least 1")
    problems = load_problems(config.task, config.langs, split=config.split, n=config.n,
                             data_dir=config.data_dir, subset=config.subset, levels=config.levels)
    langs = list(dict.fromkeys(p.lang for p in problems))
    exemplars: dict[str, list[tuple[str, str]]] = {}
    if config.shots:
        from pivotrl.data.mgsm import load_exemplars

        folder = resolve_data_dir(config.data_dir)
        exemplars = {lang: load_exemplars(lang, folder)[: config.shots] for lang in langs}

    out = Path(config.out)
    done = _read_done(out / GENERATIONS)
    pending = [p for p in problems if len(done.get((p.id, p.lang), [])) < config.samples]

    if loaded is None and pending and not config.endpoint:
        loaded = load_model(config.model, dtype=_dtype_name(config), device=config.device)
    chat = config.chat
    if config.endpoint and chat is None:
        chat = True  # the server applies its own chat template; --no-chat sends /completions
    if loaded is not None and chat is None:
        chat = has_chat_template(loaded.tokenizer)
    if chat is None:  # nothing to generate and no model: keep what the folder says
        saved = json.loads((out / "config.json").read_text(encoding="utf-8")) if (out / "config.json").exists() else {}
        chat = saved.get("identity", {}).get("chat", False)
    dtype = None if config.endpoint else _dtype_name(config, loaded)
    _check_config(out, config, bool(chat), dtype)

    temperature = config.resolved_temperature()
    started = time.perf_counter()
    new_tokens = 0
    if pending and config.endpoint:
        from pivotrl.evaluation.endpoint import generate_answers

        new_tokens = generate_answers(config, pending, done, exemplars, out / GENERATIONS, progress,
                                      f"eval {config.task} ({', '.join(langs)}) via {config.endpoint}")
    elif pending:
        prompts = {(p.id, p.lang): build_prompt(loaded.tokenizer, native_prompt(p, config.prompt,
                                                                                 exemplars.get(p.lang)),
                                                 chat=chat) for p in pending}
        # One call for every pending prompt, languages mixed: generate() orders them by length in tokens
        # (longest first) and keeps each prompt's own language's stop strings.
        bar = _progress_bar(len(pending), progress, f"eval {config.task} ({', '.join(langs)})")
        gen_config = GenerationConfig(
            max_new_tokens=config.max_new_tokens, do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else 1.0, top_p=config.top_p,
            num_samples=config.samples, seed=config.seed, batch_size=config.batch_size)
        with open(out / GENERATIONS, "a", encoding="utf-8") as f:
            def write(index: int, responses: list[str], cut: list[bool]) -> None:
                # Called as each problem's answers finish: a kill loses only the answers still being written.
                nonlocal new_tokens
                p = pending[index]
                new_tokens += append_answers(f, p, prompts[(p.id, p.lang)], responses, done, loaded.tokenizer,
                                             cut=cut)
                bar.update(1)

            try:
                generate(loaded, [prompts[(p.id, p.lang)] for p in pending], gen_config,
                         stops=[_stops(config, p.lang) for p in pending], on_result=write)
            except PromptTooLongError as exc:
                bad = pending[exc.index]
                raise EvalError(f"{config.task}: problem {bad.id} ({bad.lang}): {exc}; shorten or drop it "
                                "(nothing was generated)") from None
        bar.close()
    seconds = time.perf_counter() - started

    wanted = [g for p in problems for g in done.get((p.id, p.lang), [])[: config.samples]]
    metrics = compute_metrics(wanted, langs)
    metrics["run"] = {"model": config.model, "task": config.task, "prompt": config.prompt, "chat": chat,
                      "dtype": dtype,
                      "shots": config.shots, "samples": config.samples, "temperature": temperature,
                      "generated_now": len(pending), "seconds_now": round(seconds, 2),
                      "new_tokens_now": new_tokens}
    if config.endpoint:  # the served model's name, and where it was served
        metrics["run"].update(model=config.endpoint_model, endpoint=config.endpoint)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    title = f"{config.task}: {metrics['run']['model']} ({config.prompt} prompt, {config.shots}-shot, " \
            f"{'chat' if chat else 'no chat'}, {'greedy' if temperature == 0 else f'T={temperature}'})"
    (out / "metrics.md").write_text(metrics_markdown(metrics, title), encoding="utf-8")
    return metrics


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    # tqdm shows items/s and the estimated time left
    return tqdm(total=total, disable=not enabled, desc=desc, unit="item", dynamic_ncols=True)
