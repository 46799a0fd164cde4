"""Where pivot references come from: a local model, an OpenAI-compatible endpoint, or gold solutions.

Each backend has a ``name`` (its identity in the store key) and ``sample(prompts, sampling, on_result)``
returning k texts per prompt (and calling ``on_result(index, texts)`` as each prompt's samples finish).
Prompts are English: the question followed by the registry's step-by-step instruction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivotrl.records import Problem

logger = logging.getLogger(__name__)


@dataclass
class Sampling:
    k: int = 4
    temperature: float = 0.7  # used when k > 1; one sample is greedy
    top_p: float = 0.95
    max_new_tokens: int = 384
    seed: int = 0
    batch_size: int = 8


class LocalPivot:
    """A transformers model (packaged alias, folder, .gguf, hub id), batched on this machine."""

    def __init__(self, spec: str, loaded: Any = None, dtype: str = "auto", device: str = "auto"):
        self.name = f"local:{spec}"
        self.spec = spec
        self.dtype = dtype  # "auto": bfloat16 on a GPU, float32 on a CPU (devices.generation_dtype)
        self.device = device  # "auto": this process's GPU when there is one, else the CPU
        self._loaded = loaded

    @property
    def loaded(self):
        if self._loaded is None:
            from pivotrl.devices import generation_dtype, resolve_device
            from pivotrl.models import load_model

            device = resolve_device(self.device)
            self._loaded = load_model(self.spec, dtype=generation_dtype(self.dtype, device), device=device)
        return self._loaded

    # Problems per generate call: several flights' worth, so that the decoder refills the places of finished
    # samples instead of draining at the end of every batch (each problem is still written as it finishes).
    problems_per_call = 8

    def sample(self, prompts: list[str], s: Sampling,
               on_result: Callable[[int, list[str]], None] | None = None) -> tuple[list[list[str]], int]:
        """``k`` samples per prompt; ``on_result(index, samples)`` as soon as a prompt's samples are done."""
        from pivotrl.generation import GenerationConfig, generate_with_stats
        from pivotrl.models import build_prompt

        texts = [build_prompt(self.loaded.tokenizer, p) for p in prompts]
        sampled = s.k > 1
        config = GenerationConfig(max_new_tokens=s.max_new_tokens, do_sample=sampled,
                                  temperature=s.temperature if sampled else 1.0, top_p=s.top_p if sampled else 1.0,
                                  num_samples=s.k, seed=s.seed, batch_size=s.batch_size)
        def done(index: int, samples: list[str], cut: list[bool]) -> None:
            on_result(index, samples)  # a cut sample is still verified by its final answer

        out, stats = generate_with_stats(self.loaded, texts, config, on_result=done if on_result else None)
        return out, stats["new_tokens"]


class EndpointPivot:
    """Any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp server, hosted APIs."""

    def __init__(self, config: Any):
        self.config = config
        self.name = f"endpoint:{config.base_url}#{config.model}"

    problems_per_call = 1  # a chunk is one batch of concurrent requests

    def sample(self, prompts: list[str], s: Sampling,
               on_result: Callable[[int, list[str]], None] | None = None) -> tuple[list[list[str]], int]:
        from pivotrl.pivot.endpoint import chat_complete_with_usage

        messages = [[{"role": "user", "content": p}] for p in prompts]
        texts, usage = chat_complete_with_usage(self.config, messages, n=s.k,
                                                temperature=s.temperature if s.k > 1 else 0.0,
                                                top_p=s.top_p if s.k > 1 else 1.0, max_tokens=s.max_new_tokens,
                                                seed=s.seed)
        unanswered = [i for i, samples in enumerate(texts) if not any(t.strip() for t in samples)]
        for i, samples in enumerate(texts) if on_result is not None else ():
            if i not in unanswered:  # a problem the server gave no text for is left for the next run to ask again
                on_result(i, samples)
        if unanswered:
            logger.warning("warning: the server at %s answered no text (content null or blank) for any sample of %d "
                           "problem(s), %d requests each; they are not stored: run the pivot again to ask again",
                           self.config.base_url, len(unanswered), 1 + self.config.empty_retries)
        return texts, int(usage.get("completion_tokens", 0))


class GoldPivot:
    """Gold worked solutions of the data set (GSM8K rationales, synthetic English solutions) as the pivot."""

    name = "gold"

    def solution(self, problem: Problem) -> str | None:
        return problem.solution
