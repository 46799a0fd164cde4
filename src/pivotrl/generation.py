"""Batched generation for every stage that generates (evaluation, the local pivot, the LLM translator).

:func:`generate` takes prompts already rendered (:func:`pivotrl.models.build_prompt`) and returns each
prompt's samples in input order, with per-prompt stop strings, and can hand each prompt's answers to a
callback the moment they finish. Two engines: ``continuous`` (default for models whose cache it can manage):
prompts join a running batch as others finish, prefill in groups of similar length, and the KV cache grows in
place; ``hf``: transformers' ``generate`` in fixed batches. Both give the same greedy text (tested).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList, set_seed

from pivotrl.continuous_batching import can_batch_continuously, decode_continuous, left_pad
from pivotrl.models import LoadedModel, ModelAndTokenizer
from pivotrl.packed_linear import packed_linears
from pivotrl.prompts import cut_at_stop

__all__ = ["ENGINES", "GenerationConfig", "PromptTooLongError", "Sampled", "cut_at_stop", "end_token_ids", "generate",
           "generate_ids", "generate_with_stats"]


@dataclass
class GenerationConfig:
    """pivotrl's own generation settings (not transformers' GenerationConfig).

    Sampling uses only ``temperature`` and ``top_p``: top-k and other filters from the model's own
    generation_config are switched off, so samples come from the distribution the RL stage assumes.
    """

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_samples: int = 1  # completions per prompt
    seed: int | None = None
    batch_size: int = 8  # prompts decoded together; each prompt expands to num_samples rows
    stop: tuple[str, ...] = ()  # generation stops at these; returned text is cut before the first one
    # "continuous": pivotrl's decoder, where a finished row leaves the batch at once and the next prompt takes
    # its place (a prompt is prefilled once for all its samples); "hf": transformers' generate, where a batch
    # runs until its longest row ends. The same greedy answers (docs/BENCHMARKS.md); "continuous" falls back
    # to "hf" for models whose cache it cannot drive.
    engine: str = "continuous"
    # On a CPU, multiply by oneDNN-packed copies of the linear weights while generating (pivotrl.packed_linear:
    # float32 still, 1.2x faster decoding, greedy text identical on 60/60 MGSM answers); skipped for work too
    # small to repay the packing (about 2 s for a 0.5B model).
    packed_weights: bool = True


def _unpack(loaded: ModelAndTokenizer) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if isinstance(loaded, LoadedModel):
        model, tokenizer = loaded.model, loaded.tokenizer
    else:
        model, tokenizer = loaded
    return _without_peft_wrapper(model), tokenizer


def _without_peft_wrapper(model: Any) -> Any:
    """The transformers model inside a PEFT wrapper. PEFT injects its adapter layers into that model, so it
    computes with the current adapters; the wrapper's own ``forward`` hides the arguments the continuous
    decoder passes (a cache, position ids, ``logits_to_keep``), which would send it to the slower engine."""
    get_base_model = getattr(model, "get_base_model", None)
    if callable(get_base_model) and getattr(model, "peft_config", None) is not None:
        return get_base_model()
    return model


def _check_config(config: GenerationConfig) -> None:
    if config.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {config.max_new_tokens}")
    if config.num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {config.num_samples}")
    if config.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {config.batch_size}")
    if config.do_sample and config.temperature <= 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {config.temperature}")
    if not 0 < config.top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {config.top_p}")
    if isinstance(config.stop, str):
        raise TypeError("stop must be a tuple of strings, not a single string")
    if any(not s for s in config.stop):
        raise ValueError("stop strings must be non-empty")
    if config.engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {config.engine!r}")


ENGINES = ("continuous", "hf")
_PACK_FROM_TOKENS = 2048  # the most tokens a call may generate, below which packing weights does not pay


class _StopStrings(StoppingCriteria):
    """Stops each row at its own stop strings (rows of one batch may ask in different languages).

    Every step decodes only the last few new tokens of each unfinished row: enough to hold the longest stop
    string, since every token stands for at least one character.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_width: int, stops: list[tuple[str, ...]]):
        self.tokenizer, self.prompt_width, self.stops = tokenizer, prompt_width, stops
        self.window = max((len(s) for row in stops for s in row), default=0) + 2
        self.done = torch.zeros(len(stops), dtype=torch.bool)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_width:]
        for row, stops in enumerate(self.stops):
            if stops and not self.done[row]:
                tail = self.tokenizer.decode(new[row, -self.window:], skip_special_tokens=True)
                self.done[row] = any(s in tail for s in stops)
        return self.done.to(input_ids.device)


class PromptTooLongError(ValueError):
    """A prompt that, with the new tokens, does not fit the model's context; ``index`` is its position."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


# No tokenizer here writes more characters than this into one token: a prompt longer than this many characters
# per context position is refused before tokenizing it (tokenizing tens of MB takes minutes).
_MAX_CHARS_PER_TOKEN = 64


def _encode_within_context(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                           max_new_tokens: int) -> list[list[int]]:
    """Token ids of every prompt; PromptTooLongError for the first prompt that cannot fit the model's context
    (``max_position_embeddings``) with ``max_new_tokens`` more, before any work is done on the others."""
    context = getattr(model.config, "max_position_embeddings", None)
    if not isinstance(context, int) or context <= 0:  # a model that does not say: nothing to check against
        return [_encode(tokenizer, p) for p in prompts]
    for i, prompt in enumerate(prompts):
        if len(prompt) > _MAX_CHARS_PER_TOKEN * context:
            raise PromptTooLongError(i, f"prompt {i} has {len(prompt):,} characters, far beyond the model's "
                                     f"context of {context:,} tokens")
    encoded = [_encode(tokenizer, p) for p in prompts]
    for i, ids in enumerate(encoded):
        if len(ids) + max_new_tokens > context:
            raise PromptTooLongError(i, f"prompt {i} has {len(ids):,} tokens; with {max_new_tokens} new tokens "
                                     f"it does not fit the model's context of {context:,}")
    return encoded


def _encode(tokenizer: PreTrainedTokenizerBase, prompt: str) -> list[int]:
    # Chat templates usually write the BOS token themselves; letting the tokenizer add another one would
    # give a double BOS, a sequence the model never saw in training.
    bos = tokenizer.bos_token
    add_special = not (bos and prompt.startswith(bos))
    return tokenizer(prompt, add_special_tokens=add_special)["input_ids"]


def _count_new_tokens(new_tokens: torch.Tensor, end_ids: set[int]) -> list[int]:
    """Per row: generated tokens before the first eos/pad (the eos itself is not counted)."""
    counts = []
    for row in new_tokens.tolist():
        n = len(row)
        for i, token in enumerate(row):
            if token in end_ids:
                n = i
                break
        counts.append(n)
    return counts


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id rows are padded with: the pad token, else the eos token."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; load the model with load_model()")
    return pad_id


def end_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The tokens that end a completion: the model's eos tokens and the pad token."""
    return _eos_ids(_without_peft_wrapper(model), tokenizer) | {_pad_id(tokenizer)}


def _eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}


@contextlib.contextmanager
def _decoding(model: PreTrainedModel, config: GenerationConfig, prompts: int, rows_per_prompt: int) -> Any:
    """The state every decode runs in: eval mode (a model handed over mid-training must not generate with
    dropout; its mode is restored after), no autograd, the call's seed, and on a CPU packed weights when the
    work repays packing them."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    flight_rows = min(config.batch_size, prompts) * rows_per_prompt
    pack = config.packed_weights and device.type == "cpu" and flight_rows >= 4 \
        and prompts * rows_per_prompt * config.max_new_tokens >= _PACK_FROM_TOKENS
    try:
        if config.seed is not None:
            set_seed(config.seed)  # once per call: the same call with the same seed gives the same samples
        with torch.inference_mode(), packed_linears(model, flight_rows) if pack else contextlib.nullcontext():
            yield
    finally:
        if was_training:
            model.train()


@dataclass
class Sampled:
    """One sampled completion as token ids, for a trainer's loss."""

    ids: list[int]  # the new tokens, ending with the end token when the model ended the answer itself
    logprobs: list[float]  # per id: its log-probability under the temperature-scaled distribution it came from
    cut: bool  # stopped by max_new_tokens, not by an end token or a stop string


def generate_ids(loaded_or_model_and_tokenizer: ModelAndTokenizer, prompt_ids: list[list[int]],
                 config: GenerationConfig) -> list[list[Sampled]]:
    """Complete prompts given as token ids with the continuous engine: per prompt, ``config.num_samples``
    :class:`Sampled` completions with their log-probabilities (what an RL trainer needs from a rollout).

    Unlike :func:`generate` it never falls back to transformers' ``generate`` (which gives no
    log-probabilities): a model the continuous decoder cannot drive raises ``ValueError``.
    """
    _check_config(config)
    model, tokenizer = _unpack(loaded_or_model_and_tokenizer)
    if not can_batch_continuously(model):
        raise ValueError(f"the continuous engine cannot drive {type(model).__name__} (its cache or forward "
                         "differs); sample with transformers' generate instead")
    if not prompt_ids:
        return []
    pad_id = _pad_id(tokenizer)
    end_ids = end_token_ids(model, tokenizer)
    rows_per_prompt = config.num_samples if config.do_sample else 1
    encoded = [list(ids) for ids in prompt_ids]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    stops = [tuple(config.stop)] * len(encoded)
    cuts: dict[int, list[bool]] = {}
    logprobs: list[list[float]] = []
    with _decoding(model, config, len(encoded), rows_per_prompt):
        rows = decode_continuous(model, tokenizer, encoded, order, config, rows_per_prompt, stops, end_ids, pad_id,
                                 on_prompt_done=lambda prompt, _rows, cut: cuts.__setitem__(prompt, list(cut)),
                                 logprobs=logprobs, keep_end=True)
    repeats = config.num_samples // rows_per_prompt
    return [[Sampled(ids, logprobs[i * rows_per_prompt + j], cuts[i][j])
             for j, ids in enumerate(per_prompt)] * repeats for i, per_prompt in enumerate(rows)]


def generate_with_stats(
    loaded_or_model_and_tokenizer: ModelAndTokenizer,
    prompts: list[str],
    config: GenerationConfig,
    *,
    progress: bool = False,
    stops: list[tuple[str, ...]] | None = None,
    on_result: Callable[[int, list[str], list[bool]], None] | None = None,
) -> tuple[list[list[str]], dict[str, Any]]:
    """Like :func:`generate`, plus stats: prompts, completions, batches, new_tokens, cut, seconds,
    tokens_per_second (``cut``: completions that reached ``max_new_tokens`` before the model ended them).

    ``stops`` gives each prompt its own stop strings (instead of ``config.stop`` for all), so prompts in
    different languages can share a batch. ``on_result(index, completions, cut)`` is called as soon as a
    prompt's completions are all finished, so a caller can write them before the rest are done; ``cut[i]`` says
    whether completion ``i`` was stopped by the budget rather than by an end token or a stop string.

    ``new_tokens`` counts generated tokens before each completion's eos/padding, i.e. useful output (with
    ``engine="hf"`` the work done is larger, because a batch runs until its longest row finishes).
    """
    _check_config(config)
    model, tokenizer = _unpack(loaded_or_model_and_tokenizer)
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not a single string")
    prompts = list(prompts)
    stats: dict[str, Any] = {
        "prompts": len(prompts),
        "completions": 0,
        "batches": 0,
        "new_tokens": 0,
        "cut": 0,
        "seconds": 0.0,
        "tokens_per_second": 0.0,
    }
    if not prompts:
        return [], stats

    pad_id = _pad_id(tokenizer)
    eos_ids = _eos_ids(model, tokenizer)
    end_ids = eos_ids | {pad_id}

    encoded = _encode_within_context(model, tokenizer, prompts, config.max_new_tokens)
    # Longest first: similar lengths share a batch (little padding), and a batch too big for memory fails at
    # once rather than at the end.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    # Greedy decoding gives the same text every time, so one row per prompt is enough; transformers also
    # rejects num_return_sequences > 1 without sampling.
    rows_per_prompt = config.num_samples if config.do_sample else 1
    repeats = config.num_samples // rows_per_prompt  # greedy: one row per prompt stands for every sample
    if stops is None:
        stops = [tuple(config.stop)] * len(prompts)
    elif len(stops) != len(prompts):
        raise ValueError(f"got {len(stops)} stop lists for {len(prompts)} prompts")

    results: list[list[str]] = [[] for _ in prompts]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), unit="prompt", desc="generating")

    def finished(prompt: int, texts: list[str], cut: list[bool], new_tokens: int) -> None:
        """One prompt's rows are done (either engine): keep them, count them, hand them on."""
        results[prompt] = texts
        stats["new_tokens"] += new_tokens
        stats["cut"] += sum(cut) * repeats
        if on_result is not None:
            on_result(prompt, texts * repeats, cut * repeats)
        if bar is not None:
            bar.update(1)

    start = time.perf_counter()
    try:
        with _decoding(model, config, len(prompts), rows_per_prompt):
            if config.engine == "continuous" and can_batch_continuously(model):
                def decoded(prompt: int, rows: list[list[int]], cut: list[bool]) -> None:
                    # the token that completes a stop string may carry text past it
                    finished(prompt, [cut_at_stop(tokenizer.decode(r, skip_special_tokens=True), stops[prompt])
                                      for r in rows], cut, sum(len(r) for r in rows))

                decode_continuous(model, tokenizer, encoded, order, config, rows_per_prompt, stops, end_ids, pad_id,
                                  on_prompt_done=decoded)
                stats["batches"] = -(-len(prompts) // config.batch_size)
            else:
                stats["batches"] = _decode_with_generate(model, tokenizer, encoded, order, config, rows_per_prompt,
                                                         stops, eos_ids, pad_id, finished)
    finally:
        if bar is not None:
            bar.close()

    if repeats != 1:
        results = [texts * repeats for texts in results]
    seconds = time.perf_counter() - start
    stats["completions"] = sum(len(texts) for texts in results)
    stats["seconds"] = seconds
    stats["tokens_per_second"] = stats["new_tokens"] / seconds if seconds > 0 else 0.0
    return results, stats


def _decode_with_generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoded: list[list[int]],
                          order: list[int], config: GenerationConfig, rows_per_prompt: int,
                          stops: list[tuple[str, ...]], eos_ids: set[int], pad_id: int,
                          finished: Callable[[int, list[str], list[bool], int], None]) -> int:
    """transformers' ``generate``, a batch of prompts at a time (each batch runs until its longest row ends);
    ``finished(prompt, texts, cut, new_tokens)`` after each batch for each of its prompts. Returns the number
    of batches."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": config.max_new_tokens,
        "do_sample": config.do_sample,
        "num_return_sequences": rows_per_prompt,
        "pad_token_id": pad_id,
        # Explicit values override whatever the model's own generation_config asks for, so every model is
        # decoded the same way.
        "repetition_penalty": 1.0,
    }
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_p=config.top_p, top_k=0, min_p=None)
    if eos_ids:
        kwargs["eos_token_id"] = sorted(eos_ids)
    end_ids = eos_ids | {pad_id}
    device = next(model.parameters()).device
    batches = 0
    for first in range(0, len(order), config.batch_size):
        batch = order[first : first + config.batch_size]
        input_ids, attention_mask = left_pad([encoded[i] for i in batch], pad_id)
        row_stops = [stops[i] for i in batch for _ in range(rows_per_prompt)]
        criteria = StoppingCriteriaList()
        if any(row_stops):
            criteria.append(_StopStrings(tokenizer, input_ids.shape[1], row_stops))
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                stopping_criteria=criteria, **kwargs)
        new_tokens = output[:, input_ids.shape[1] :].cpu()
        counts = _count_new_tokens(new_tokens, end_ids)
        batches += 1
        # Rows come back grouped by prompt: prompt 0's samples, then prompt 1's, ...
        texts: dict[int, list[str]] = {}
        cut: dict[int, list[bool]] = {}
        tokens_of: dict[int, int] = {}
        for row, (tokens, n) in enumerate(zip(new_tokens, counts)):
            prompt = batch[row // rows_per_prompt]
            text = tokenizer.decode(tokens[:n], skip_special_tokens=True)
            # Rows of a batch run until the last one stops, so the text may go past a stop string.
            kept = cut_at_stop(text, row_stops[row])
            texts.setdefault(prompt, []).append(kept)
            cut.setdefault(prompt, []).append(n >= config.max_new_tokens and kept == text)
            tokens_of[prompt] = tokens_of.get(prompt, 0) + n
        for prompt in dict.fromkeys(batch):
            finished(prompt, texts[prompt], cut[prompt], tokens_of[prompt])
    return batches


def generate(loaded_or_model_and_tokenizer: ModelAndTokenizer, prompts: list[str], config: GenerationConfig,
             **options: Any) -> list[list[str]]:
    """Complete each prompt: per prompt, in input order, ``config.num_samples`` completion strings.

    A completion is the decoded new tokens only (special tokens skipped), cut before the first stop string.
    Prompts are decoded with continuous batching (``config.engine``), longest first, under
    ``torch.inference_mode()``. Greedy unless ``config.do_sample``; with ``config.seed`` the same call gives
    the same samples (a sample can still change if the other prompts change, since they share the random
    stream). ``options`` (``progress``, ``stops``, ``on_result``) are :func:`generate_with_stats`'s.
    """
    return generate_with_stats(loaded_or_model_and_tokenizer, prompts, config, **options)[0]
