"""`pivotrl pivot`: English references for a problem set, verified, stored, resumable."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.config_fields import DATA_DIR_HELP, SEED, check_fields, setting
from pivotrl.data import load_problems
from pivotrl.devices import DEVICE_HELP, DTYPE_HELP
from pivotrl.pivot.backends import EndpointPivot, GoldPivot, LocalPivot, Sampling
from pivotrl.pivot.store import ReferenceStore
from pivotrl.pivot.verify import verify_samples
from pivotrl.prompts import native_prompt
from pivotrl.records import Problem, Reference
from pivotrl.run_folder import write_output


@dataclass
class PivotConfig:
    """One pivot run; each field (but ``levels`` and ``endpoint``) is also a ``pivotrl pivot`` option."""

    pivot: str = setting("smollm2", help="Pivot: a model (packaged alias, folder, .gguf, hub id), 'gold' (the set's "
                                         "worked solutions) or 'endpoint' (the server of --endpoint).")
    task: str = setting("msvamp", help="Problem set (its English side is used).")
    split: str = setting("train", help="all | train | held-out (deterministic by problem id).")
    n: int | None = setting(None, flags=("-n",), at_least=1, help="First n problems.")
    subset: str | None = setting(None, help="GSM8K train|test.")
    levels: list[int] | None = setting(None, cli=False, help="Synthetic set only: keep these difficulty levels.")
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    out: str = setting("runs/pivot", flags=("--out", "-o"), help="Reference store folder (re-running resumes).")
    k: int = setting(4, at_least=1, help="Samples per problem.")
    temperature: float = setting(0.7, at_least=0, help="Sampling temperature (k > 1).")
    top_p: float = setting(0.95, above=0, at_most=1, help="Nucleus sampling (k > 1).")
    max_new_tokens: int = setting(384, at_least=1, help="Budget per sample.")
    seed: int = setting(0, bounds=SEED, help="Sampling seed.")
    batch_size: int = setting(8, at_least=1, help="Problems per batch (each expands to k rows).")
    # a share of the k samples: 2 (twice all of them) could never be reached, and nothing would be kept
    min_agreement: float = setting(0.5, at_least=0, at_most=1, expected="a share of the k samples, between 0 and 1",
                                   help="Without a gold answer: majority share needed.")
    fallback_gold: bool = setting(False, help="Use the gold worked solution where the pivot finds no reference "
                                              "(counted in the summary).")
    # `pivotrl pivot` fills it from its ServerFields options (pivotrl.config_fields: --endpoint, --endpoint-model, ...)
    endpoint: dict[str, Any] | None = setting(None, cli=False, help="EndpointConfig fields when pivot is 'endpoint'.")
    dtype: str = setting("auto", help="Local pivot's precision: " + DTYPE_HELP + ".")
    device: str = setting("auto", help="Where a local pivot runs: " + DEVICE_HELP + ".")


def settings_key(config: PivotConfig) -> str:
    """Hash of everything that changes what the pivot writes: prompt and sampling settings."""
    fields = {"prompt": native_prompt(Problem("x", "en", "{question}", "0", "x"), "instruction"), "k": config.k,
              "temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens,
              "seed": config.seed, "min_agreement": config.min_agreement, "fallback_gold": config.fallback_gold}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def make_backend(config: PivotConfig, loaded: Any = None):
    if config.pivot == "gold":
        return GoldPivot()
    if config.pivot == "endpoint":
        from pivotrl.pivot.endpoint import EndpointConfig

        return EndpointPivot(EndpointConfig(**(config.endpoint or {})))
    return LocalPivot(config.pivot, loaded, dtype=config.dtype, device=config.device)


def english_problems(config: PivotConfig) -> list[Problem]:
    return load_problems(config.task, ["en"], split=config.split, n=config.n, data_dir=config.data_dir,
                         subset=config.subset, levels=config.levels)


def _gold_reference(problem: Problem, pivot: str, settings: str, why: str) -> Reference:
    if not problem.solution:
        return Reference(problem.id, problem.question, "none", f"{why}; the set has no gold solution", None, None,
                         problem.answer, 0.0, (), (), (), pivot, settings)
    return Reference(problem.id, problem.question, "gold", why, problem.solution, problem.answer, problem.answer,
                     1.0, (problem.solution,), (problem.answer,), (0,), pivot, settings)


def run_pivot(config: PivotConfig, loaded: Any = None, progress: bool = True) -> dict[str, Any]:
    """Write references for every English problem of the task that has none yet; return the summary.

    The store folder is checked and locked first: a second writer gets an error naming the holder."""
    from pivotrl.run_folder import claim

    check_fields(config, "pivot")  # each setting within what it takes, before anything loads
    problems = english_problems(config)
    with claim(config.out, "reference store"):
        return _run_pivot(config, problems, loaded, progress)


def _run_pivot(config: PivotConfig, problems: list[Problem], loaded: Any, progress: bool) -> dict[str, Any]:
    backend = make_backend(config, loaded)
    store = ReferenceStore(config.out)
    settings = settings_key(config)
    write_output(Path(config.out) / f"config-{settings}.json",
                 json.dumps({"pivot": backend.name, "settings": settings, "config": asdict(config)}, indent=2) + "\n")
    done = store.done_ids(backend.name, settings)
    pending = [p for p in problems if p.id not in done]
    sampling = Sampling(k=config.k, temperature=config.temperature, top_p=config.top_p,
                        max_new_tokens=config.max_new_tokens, seed=config.seed, batch_size=config.batch_size)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(pending), disable=not progress, unit="problem", desc=f"pivot {backend.name}")
    started, tokens = time.perf_counter(), 0

    def reference(p: Problem, texts: list[str]) -> Reference:
        verdict = verify_samples(texts, p.answer, p.answer_type, config.min_agreement)
        if verdict.status == "none" and config.fallback_gold:
            ref = _gold_reference(p, backend.name, settings, f"fallback: {verdict.reason}")
            return Reference(**{**ref.to_dict(), "samples": tuple(texts), "sample_answers": verdict.answers,
                                "kept": ()})
        chosen = verdict.chosen
        return Reference(p.id, p.question, verdict.status, verdict.reason,
                         texts[chosen] if chosen is not None else None, verdict.answer, p.answer, verdict.agreement,
                         tuple(texts), verdict.answers, verdict.kept, backend.name, settings)

    chunk = max(1, config.batch_size) * getattr(backend, "problems_per_call", 1)
    for first in range(0, len(pending), chunk):
        batch = pending[first: first + chunk]
        if isinstance(backend, GoldPivot):
            store.append([_gold_reference(p, backend.name, settings, "gold worked solution of the data set")
                          for p in batch])
            bar.update(len(batch))
            continue

        def write(index: int, texts: list[str], batch: list[Problem] = batch) -> None:
            store.append([reference(batch[index], texts)])  # flushed and fsync'ed: a kill loses only unfinished ones
            bar.update(1)

        sampling.seed = config.seed + first  # a different random stream per chunk, fixed for a resume
        _, new_tokens = backend.sample([native_prompt(p, "instruction") for p in batch], sampling, on_result=write)
        tokens += new_tokens
    bar.close()
    seconds = time.perf_counter() - started
    return summarize(store.read(backend.name, settings), problems, seconds, tokens, len(pending))


def summarize(refs: list[Reference], problems: list[Problem], seconds: float = 0.0, tokens: int = 0,
              generated_now: int = 0) -> dict[str, Any]:
    wanted = {p.id for p in problems}
    refs = [r for r in refs if r.problem_id in wanted]
    by_status: dict[str, int] = {}
    for r in refs:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    with_ref = [r for r in refs if r.status != "none"]
    sampled = [r for r in refs if r.samples and r.status in ("verified", "majority", "none")]
    return {
        "problems": len(problems), "stored": len(refs), "missing": len(wanted) - len(refs), "by_status": by_status,
        "with_reference": len(with_ref), "reference_rate": len(with_ref) / len(refs) if refs else 0.0,
        "verified_rate": by_status.get("verified", 0) / len(refs) if refs else 0.0,
        "kept_per_problem": (sum(len(r.kept) for r in with_ref) / len(with_ref)) if with_ref else 0.0,
        "mean_agreement": (sum(r.agreement for r in sampled) / len(sampled)) if sampled else 0.0,
        "generated_now": generated_now, "seconds_now": round(seconds, 2), "new_tokens_now": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else 0.0,
    }
