"""`pivotrl pivot`: English references for a problem set, verified, stored, resumable."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pivotrl.data import load_problems
from pivotrl.pivot.backends import EndpointPivot, GoldPivot, LocalPivot, Sampling
from pivotrl.pivot.store import ReferenceStore
from pivotrl.pivot.verify import verify_samples
from pivotrl.prompts import native_prompt
from pivotrl.records import Problem, Reference


@dataclass
class PivotConfig:
    pivot: str = "smollm2"  # a model spec, "gold", or "endpoint" (with endpoint settings)
    task: str = "msvamp"
    split: str = "train"
    n: int | None = None
    subset: str | None = None
    levels: list[int] | None = None  # synthetic set only: keep these difficulty levels
    data_dir: str | None = None
    out: str = "runs/pivot"
    k: int = 4
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 384
    seed: int = 0
    batch_size: int = 8
    min_agreement: float = 0.5
    fallback_gold: bool = False  # use the gold worked solution where the pivot finds no reference
    endpoint: dict[str, Any] | None = None  # EndpointConfig fields when pivot == "endpoint"
    dtype: str = "auto"  # local pivot: auto (bfloat16 on a GPU, float32 on a CPU) | float32 | bfloat16
    device: str = "auto"  # local pivot: auto (this process's GPU when there is one, else the CPU) | cpu | cuda:N


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

    problems = english_problems(config)
    with claim(config.out, "reference store"):
        return _run_pivot(config, problems, loaded, progress)


def _run_pivot(config: PivotConfig, problems: list[Problem], loaded: Any, progress: bool) -> dict[str, Any]:
    backend = make_backend(config, loaded)
    store = ReferenceStore(config.out)
    settings = settings_key(config)
    (Path(config.out) / f"config-{settings}.json").write_text(
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
