"""Evaluation runs: generate answers per language, check them, write everything, resume after a kill.

A run folder holds ``config.json`` (what was asked), ``generations.jsonl`` (one :class:`Generation` per
line, appended and flushed batch by batch, so a killed run loses at most the batch in flight),
``metrics.json`` and ``metrics.md``. Running the same command again skips the problems already answered;
asking for more problems or languages extends the run; changing anything that changes the answers
(model, prompt, decoding) is refused, so results never mix.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.config_fields import DATA_DIR_HELP, SEED, ServerFields, SettingError, check_fields, setting
from pivotrl.data import load_problems, resolve_data_dir
from pivotrl.devices import DEVICE_HELP, DTYPE_HELP
from pivotrl.evaluation.endpoint import check_settings, generate_answers
from pivotrl.evaluation.folder import GENERATIONS, EvalError, append_answers, read_done
from pivotrl.evaluation.metrics import compute_metrics, metrics_markdown
from pivotrl.languages import get_language
from pivotrl.prompts import STYLES, native_prompt
from pivotrl.records import Generation, Problem
from pivotrl.run_folder import write_output

__all__ = ["EvalConfig", "EvalError", "evaluate_loaded", "run_eval"]
# Settings that change the answers: a run folder only ever holds generations made with one value of each.
IDENTITY = ("model", "task", "subset", "split", "shots", "prompt", "chat", "max_new_tokens", "samples",
            "temperature", "top_p", "seed", "stop", "dtype", "backend")
MGSM_EXEMPLARS = 8  # MGSM's hand-translated few-shot exemplars per language (pivotrl.data.mgsm.load_exemplars)


def _comma_langs(value: str) -> list[str] | None:
    from pivotrl.languages import parse_langs

    return parse_langs(value) or None


@dataclass
class EvalConfig(ServerFields):
    """One evaluation run; each field is also a ``pivotrl eval`` option with this help.

    With ``endpoint`` (:class:`~pivotrl.config_fields.ServerFields`: ``endpoint``, ``endpoint_model``,
    ``api_key_env``, ``concurrency``) the answers come from an OpenAI-compatible server (evaluation/endpoint.py);
    ``model``, ``dtype``, ``device`` and ``batch_size`` are then unused, and the run folder's identity records
    ``endpoint_model``.
    """

    model: str = setting("smollm2", help="Model: packaged alias (smollm2), folder, .gguf file or hub id.")
    task: str = setting("mgsm", help="mgsm | msvamp | mmlu_prox | mmlu_prox_lite | synthetic | gsm8k | "
                                     "a .jsonl/.csv/.parquet file.")
    langs: list[str] | None = setting(None, flags=("--langs", "--lang", "-l"), parse=_comma_langs, cli_type=str,
                                      help="Comma-separated codes; default: all of the task.")
    split: str = setting("all", help="all | train | held-out (deterministic by problem id).")
    n: int | None = setting(None, flags=("-n",), at_least=1, help="First n problems per language.")
    subset: str | None = setting(None, help="GSM8K train|test; MMLU-ProX test|validation.")
    levels: list[int] | None = setting(None, cli=False, help="Synthetic set only: keep these difficulty levels.")
    shots: int = setting(0, at_least=0, at_most=MGSM_EXEMPLARS,
                         expected=f"between 0 and {MGSM_EXEMPLARS} (MGSM has {MGSM_EXEMPLARS} few-shot exemplars in "
                         "each language)", help="Few-shot MGSM exemplars in the question's language.")
    prompt: str = setting("instruction", help="instruction: question + native step-by-step instruction; "
                                              "mgsm: lm-evaluation-harness native CoT ('Frage: ...').")
    chat: bool | None = setting(None, flags=("--chat/--no-chat",), help="Apply the chat template (default: when "
                                "the tokenizer has one; with --endpoint: yes, sending /chat/completions, the server "
                                "applying its own template; --no-chat sends /completions with the raw prompt).")
    max_new_tokens: int = setting(256, at_least=1, help="Generation budget per answer.")
    # Qwen2.5-0.5B on 2 cores: 43 tokens/s at 16 prompts, 60 at 32 (docs/BENCHMARKS.md).
    batch_size: int = setting(32, at_least=1, help="Prompts decoded together (continuous batching: a finished "
                                                   "answer's place goes to the next prompt).")
    dtype: str = setting("auto", help="Generation precision: " + DTYPE_HELP + ".")
    device: str = setting("auto", help="Where the models run: " + DEVICE_HELP + ".")
    samples: int = setting(1, at_least=1, help="Samples per problem (>1: pass@k and majority vote).")
    temperature: float | None = setting(None, at_least=0, expected="at least 0 (0: greedy)",
                                        help="Sampling temperature; default greedy for one sample, 0.7 for several.")
    top_p: float = setting(1.0, above=0, at_most=1, help="Nucleus sampling.")
    seed: int = setting(0, bounds=SEED, help="Sampling seed.")
    stop: list[str] | None = setting(None, help="Stop string (repeatable); default: the question label of the "
                                     "language for --prompt mgsm.")
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    out: str = setting("runs/eval", flags=("--out", "-o"), cli_default=None,
                       help="Run folder (default on the command line: runs/eval/TASK-MODEL). Re-running resumes it.")
    extra: dict[str, Any] = setting(default_factory=dict, cli=False, help="Free-form notes kept in config.json.")

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


def _dtype_name(config: EvalConfig, loaded=None) -> str:
    """The dtype the answers are computed in: the given model's own (evaluation during training), else the
    resolved ``config.dtype``."""
    if loaded is not None:
        return str(next(loaded.model.parameters()).dtype).removeprefix("torch.")
    from pivotrl.devices import generation_dtype, resolve_device

    return str(generation_dtype(config.dtype, resolve_device(config.device))).removeprefix("torch.")


def _saved_config(path: Path) -> dict[str, Any]:
    """A run folder's config.json; an EvalError naming the file when it is not what this module writes."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    except (UnicodeDecodeError, RecursionError):
        problem = "not UTF-8 JSON text"
    else:
        if isinstance(saved, dict) and isinstance(saved.get("identity", {}), dict):
            return saved
        problem = "not a run's settings (expected an object with 'identity')"
    raise EvalError(f"{path}: {problem}. It records the settings of the answers in this run folder: restore it, or "
                    "use another --out folder")


def _check_config(out: Path, config: EvalConfig, chat: bool, dtype: str | None) -> None:
    # An endpoint run records the served model's name as its model, and no dtype (the server's own business).
    backend = {"backend": "endpoint", "model": config.endpoint_model} if config.endpoint else {"backend": "local"}
    identity = {k: getattr(config, k, None) for k in IDENTITY} | backend | {
        "chat": chat, "dtype": dtype, "temperature": config.resolved_temperature()}
    path = out / "config.json"
    if path.exists():
        saved = _saved_config(path)
        saved.setdefault("identity", {}).setdefault("dtype", "float32")  # folders from before dtype was recorded
        saved["identity"].setdefault("backend", "local")  # folders from before endpoint runs
        changed = [k for k in IDENTITY if saved["identity"].get(k) != identity[k]]
        if changed:
            details = ", ".join(f"{k}: {saved['identity'].get(k)!r} -> {identity[k]!r}" for k in changed)
            mixed = " (answers of a local model and of a server never share a folder)" if "backend" in changed else ""
            raise EvalError(f"{out} holds a run with other settings ({details}){mixed}; use another --out folder")
    record = {"identity": identity, "config": asdict(config)}
    write_output(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")


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

    try:  # each setting within what it takes (the command line has named its option already)
        check_fields(config, "evaluation")
    except SettingError as exc:
        raise EvalError(str(exc)) from None
    if config.endpoint is not None or config.endpoint_model is not None:
        check_settings(config)  # before the run folder is made
    with claim(config.out, "evaluation run folder"):
        return _run_eval(config, loaded, progress)


def _run_eval(config: EvalConfig, loaded, progress: bool) -> dict[str, Any]:
    from pivotrl.models import load_model

    if config.prompt not in STYLES:
        raise EvalError(f"unknown prompt style {config.prompt!r}; expected one of {', '.join(STYLES)}")
    if config.samples < 1 or config.batch_size < 1 or config.max_new_tokens < 1:
        raise EvalError("samples, batch size and max new tokens must be at least 1")
    problems, exemplars = _load_problems(config)
    langs = list(dict.fromkeys(p.lang for p in problems))
    out = Path(config.out)
    done = read_done(out / GENERATIONS)
    pending = [p for p in problems if len(done.get((p.id, p.lang), [])) < config.samples]

    if loaded is None and pending and not config.endpoint:
        loaded = load_model(config.model, dtype=_dtype_name(config), device=config.device)
    chat = _resolve_chat(config, loaded, out)
    dtype = None if config.endpoint else _dtype_name(config, loaded)
    _check_config(out, config, chat, dtype)

    # The same native prompts and stop strings whoever answers (a local model wraps its chat template around them).
    prompts = [native_prompt(p, config.prompt, exemplars.get(p.lang)) for p in pending]
    stops = [_stops(config, p.lang) for p in pending]
    desc = f"eval {config.task} ({', '.join(langs)})"
    started = time.perf_counter()
    new_tokens = 0
    no_text: list[str] = []  # problems whose server answers came back empty: not stored, asked again next run
    if pending and config.endpoint:
        new_tokens, no_text = generate_answers(config, pending, prompts, stops, done, out / GENERATIONS, progress,
                                               f"{desc} via {config.endpoint}")
    elif pending:
        new_tokens = _generate_locally(config, loaded, chat, pending, prompts, stops, done, out / GENERATIONS,
                                       _progress_bar(len(pending), progress, desc))
    seconds = time.perf_counter() - started

    wanted = [g for p in problems for g in done.get((p.id, p.lang), [])[: config.samples]]
    return _write_metrics(out, config, compute_metrics(wanted, langs), chat, dtype, run={
        "generated_now": len(pending) - len(no_text), "seconds_now": round(seconds, 2), "new_tokens_now": new_tokens,
        **({"no_text_now": len(no_text)} if no_text else {})})


def _load_problems(config: EvalConfig) -> tuple[list[Problem], dict[str, list[tuple[str, str]]]]:
    """The problems asked for, and the few-shot exemplars of each of their languages (none for 0 shots)."""
    problems = load_problems(config.task, config.langs, split=config.split, n=config.n,
                             data_dir=config.data_dir, subset=config.subset, levels=config.levels)
    exemplars: dict[str, list[tuple[str, str]]] = {}
    if config.shots:
        from pivotrl.data.mgsm import load_exemplars

        folder = resolve_data_dir(config.data_dir)
        for lang in dict.fromkeys(p.lang for p in problems):
            exemplars[lang] = load_exemplars(lang, folder)[: config.shots]
            if len(exemplars[lang]) < config.shots:  # a data folder's exemplars.json may hold fewer
                raise EvalError(f"shots {config.shots}: only {len(exemplars[lang])} MGSM exemplars exist in "
                                f"{lang}; ask for at most that many")
    return problems, exemplars


def _resolve_chat(config: EvalConfig, loaded: Any, out: Path) -> bool:
    """Whether prompts go through a chat template: as asked; else yes for a server (it applies its own; --no-chat
    sends /completions) or when the model has a template; with nothing to generate, what the folder says."""
    from pivotrl.models import has_chat_template

    chat = config.chat
    if config.endpoint and chat is None:
        chat = True
    if loaded is not None and chat is None:
        chat = has_chat_template(loaded.tokenizer)
    if chat is None:  # nothing to generate and no model: keep what the folder says
        saved = _saved_config(out / "config.json") if (out / "config.json").exists() else {}
        chat = saved.get("identity", {}).get("chat", False)
    return bool(chat)


def _generate_locally(config: EvalConfig, loaded: Any, chat: bool, pending: list[Problem], prompts: list[str],
                      stops: list[tuple[str, ...]], done: dict[tuple[str, str], list[Generation]], path: Path,
                      bar: Any) -> int:
    """Answer every pending problem with the loaded model, writing each problem's answers as they finish; returns
    the number of new tokens."""
    from pivotrl.generation import GenerationConfig, PromptTooLongError, generate
    from pivotrl.models import build_prompt

    texts = [build_prompt(loaded.tokenizer, prompt, chat=chat) for prompt in prompts]
    temperature = config.resolved_temperature()
    # One call for every pending prompt, languages mixed: generate() orders them by length in tokens
    # (longest first) and keeps each prompt's own language's stop strings.
    gen_config = GenerationConfig(
        max_new_tokens=config.max_new_tokens, do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else 1.0, top_p=config.top_p,
        num_samples=config.samples, seed=config.seed, batch_size=config.batch_size)
    new_tokens = 0
    with open(path, "a", encoding="utf-8") as f:
        def write(index: int, responses: list[str], cut: list[bool]) -> None:
            # Called as each problem's answers finish: a kill loses only the answers still being written.
            nonlocal new_tokens
            new_tokens += append_answers(f, pending[index], texts[index], responses, done, loaded.tokenizer, cut=cut)
            bar.update(1)

        try:
            generate(loaded, texts, gen_config, stops=stops, on_result=write)
        except PromptTooLongError as exc:
            bad = pending[exc.index]
            raise EvalError(f"{config.task}: problem {bad.id} ({bad.lang}): {exc}; shorten or drop it "
                            "(nothing was generated)") from None
    bar.close()
    return new_tokens


def _write_metrics(out: Path, config: EvalConfig, metrics: dict[str, Any], chat: bool, dtype: str | None,
                   run: dict[str, Any]) -> dict[str, Any]:
    """Add what the run was (and ``run``: what this call did) to ``metrics``; write metrics.json and metrics.md."""
    temperature = config.resolved_temperature()
    metrics["run"] = {"model": config.model, "task": config.task, "prompt": config.prompt, "chat": chat,
                      "dtype": dtype,
                      "shots": config.shots, "samples": config.samples, "temperature": temperature, **run}
    if config.endpoint:  # the served model's name, and where it was served
        metrics["run"].update(model=config.endpoint_model, endpoint=config.endpoint)
    write_output(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    title = f"{config.task}: {metrics['run']['model']} ({config.prompt} prompt, {config.shots}-shot, " \
            f"{'chat' if chat else 'no chat'}, {'greedy' if temperature == 0 else f'T={temperature}'})"
    write_output(out / "metrics.md", metrics_markdown(metrics, title))
    return metrics


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    # tqdm shows items/s and the estimated time left
    return tqdm(total=total, disable=not enabled, desc=desc, unit="item", dynamic_ncols=True)
