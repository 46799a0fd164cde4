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
from transformers.cache_utils import DynamicLayer

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


def _can_batch_continuously(model: PreTrainedModel) -> bool:
    """The continuous decoder drives decoder-only models whose forward takes a cache, position ids and
    logits_to_keep, and whose cache is made of plain (full-attention) layers it can pad, cut and join."""
    import inspect

    from transformers import DynamicCache

    if model.config.is_encoder_decoder:
        return False
    params = inspect.signature(model.forward).parameters
    if not all(name in params for name in ("past_key_values", "position_ids", "logits_to_keep")):
        return False
    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:  # a model family with a cache of its own
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _growing_cache(model: PreTrainedModel) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    cache.layers = [_GrowingLayer() for _ in cache.layers]  # _can_batch_continuously: all plain DynamicLayers
    return cache


class _GrowingLayer(DynamicLayer):
    """A DynamicLayer that writes new keys and values into spare columns instead of concatenating.

    ``DynamicLayer.update`` copies the whole cache with ``torch.cat`` at every decoded token: with Qwen2.5-0.5B,
    32 rows and 400 columns that was 17% of a decode step on this CPU (the profile is in
    docs/BENCHMARKS.md). Here ``keys``/``values`` are views of buffers with ``room`` spare columns; a copy
    happens only when the room runs out or when ``keys`` was replaced from outside (the flight pads and
    stacks caches when prompts join). Dropping rows or leading columns works on the buffers directly.
    """

    room = 128

    def _views(self) -> None:
        self.keys = self._key_buffer[:, :, self._start:self._end]
        self.values = self._value_buffer[:, :, self._start:self._end]
        self._exposed = self.keys

    def _ours(self) -> bool:
        return getattr(self, "_exposed", None) is self.keys

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[2]
        if not self._ours() or self._end + new > self._key_buffer.shape[2]:
            keys, values = self.keys, self.values
            if keys.dim() != 4:  # still the empty placeholder of lazy_initialization
                keys = key_states[:, :, :0]
                values = value_states[:, :, :0]
            batch, heads, width, dim = keys.shape
            self._key_buffer = keys.new_empty((batch, heads, width + new + self.room, dim))
            self._value_buffer = values.new_empty((batch, heads, width + new + self.room, values.shape[3]))
            self._key_buffer[:, :, :width] = keys
            self._value_buffer[:, :, :width] = values
            self._start, self._end = 0, width
        self._key_buffer[:, :, self._end:self._end + new] = key_states
        self._value_buffer[:, :, self._end:self._end + new] = value_states
        self._end += new
        self._views()
        return self.keys, self.values

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if not self._ours():
            super().reorder_cache(beam_idx)
            return
        index = beam_idx.to(self._key_buffer.device)
        self._key_buffer = self._key_buffer.index_select(0, index)
        self._value_buffer = self._value_buffer.index_select(0, index)
        self._views()

    def drop_leading(self, columns: int) -> None:
        if self._ours():
            self._start += columns
            self._views()
        else:
            self.keys, self.values = self.keys[:, :, columns:], self.values[:, :, columns:]


class _Flight:
    """The rows being decoded together: one KV cache, left-padded, every row ending at the same column."""

    def __init__(self, model: PreTrainedModel):
        self.model = model
        self.cache: Any = None
        self.mask: torch.Tensor | None = None  # [rows, columns]: 1 = a real token, 0 = padding
        self.logits: torch.Tensor | None = None  # [rows, vocab]: the next-token logits of every row
        self.rows: list[int] = []  # row ids, in batch order

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor, cache: Any) -> torch.Tensor:
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
        return self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                          use_cache=True, logits_to_keep=1).logits[:, -1, :]

    def join(self, input_ids: torch.Tensor, mask: torch.Tensor, rows: list[int], copies: int) -> None:
        """Prefill new prompts (once each, then ``copies`` rows per prompt) and add them to the flight."""
        cache = _growing_cache(self.model)
        logits = self.forward(input_ids, mask, cache)
        if copies > 1:
            expand = torch.arange(input_ids.shape[0], device=input_ids.device).repeat_interleave(copies)
            cache.reorder_cache(expand)
            logits, mask = logits[expand], mask[expand]
        if self.cache is None or not self.rows:
            self.cache, self.mask, self.logits, self.rows = cache, mask, logits, list(rows)
            return
        # Pad the shorter side on the left so both end at the same column, then stack the rows.
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers):
            old.keys = torch.cat([_pad_left(old.keys, width, dim=2), _pad_left(new.keys, width, dim=2)])
            old.values = torch.cat([_pad_left(old.values, width, dim=2), _pad_left(new.values, width, dim=2)])
        self.mask = torch.cat([_pad_left(self.mask, width, dim=1), _pad_left(mask, width, dim=1)])
        self.logits = torch.cat([self.logits, logits])
        self.rows += rows

    def keep(self, positions: list[int]) -> None:
        """Keep only these batch positions, and drop the leading columns that are padding in every row left."""
        if len(positions) < len(self.rows):
            index = torch.tensor(positions, dtype=torch.long, device=self.mask.device)
            self.cache.reorder_cache(index)
            self.mask = self.mask[index]
            self.rows = [self.rows[i] for i in positions]
        if self.rows:
            first = int(torch.nonzero(self.mask.sum(0))[0])
            if first:
                self.mask = self.mask[:, first:]
                for layer in self.cache.layers:
                    layer.drop_leading(first)

    def step(self, tokens: torch.Tensor) -> None:
        """Feed each row its chosen token; the logits for the next one replace ``self.logits``."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        self.logits = self.forward(tokens[:, None], self.mask, self.cache)


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - tensor.shape[dim]
    if missing <= 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


_JOIN_WHEN_FREE = 0.25  # new prompts join once this share of the flight's places is free (see _decode_continuous)


def _decode_continuous(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoded: list[list[int]],
                       order: list[int], config: GenerationConfig, rows_per_prompt: int,
                       stops: list[tuple[str, ...]], end_ids: set[int], pad_id: int,
                       on_prompt_done: Any = None, logprobs: list[list[float]] | None = None,
                       keep_end: bool = False) -> list[list[list[int]]]:
    """Generate for every prompt with continuous batching; returns, per prompt, its rows' new token ids, and
    calls ``on_prompt_done(prompt, rows, cut)`` the moment the last row of a prompt ends (``cut[i]``: row ``i``
    reached ``max_new_tokens`` without an end token or a stop string).

    Why not ``model.generate``: there a batch runs until its longest row ends, and on a CPU the finished rows
    still cost their share of every matrix product, so most of the work of a batch of answers of mixed
    lengths is wasted. Here a row leaves the flight as soon as it ends (eos, pad or a stop string), and new
    prompts (in ``order``) join it whenever a quarter of its ``batch_size * rows_per_prompt`` places are free,
    so the matrix products stay full. A prompt is prefilled once and its cache copied for its samples. Tokens
    are chosen as ``generate`` chooses them with pivotrl's settings: argmax, or temperature then top-p
    sampling, on float32 logits.

    ``logprobs``, when given (empty), receives per row the log-probability of each chosen token under the
    temperature-scaled distribution before top-p: the quantity an RL loss computes from the policy's logits.
    ``keep_end`` keeps the end token that finished a row in its ids (a trainer's loss needs it).
    """
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    device = next(model.parameters()).device
    warpers = []
    if config.do_sample and config.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(config.temperature))
    if config.do_sample and config.top_p < 1.0:
        warpers.append(TopPLogitsWarper(config.top_p))
    window = max((len(s) for row in stops for s in row), default=0) + 2
    places = config.batch_size * rows_per_prompt
    pending = list(reversed(order))  # popped from the end: longest prompts first
    new: list[list[int]] = [[] for _ in range(len(encoded) * rows_per_prompt)]  # row = prompt * copies + sample
    if logprobs is not None:
        logprobs[:] = [[] for _ in new]
    left = [rows_per_prompt] * len(encoded)  # rows of each prompt still in flight
    cut = [False] * len(new)  # rows stopped by the budget, not by the model
    flight = _Flight(model)
    while pending or flight.rows:
        free = places - len(flight.rows)
        if pending and (not flight.rows or free >= max(rows_per_prompt, int(places * _JOIN_WHEN_FREE))):
            joining = []
            while pending and (len(joining) + 1) * rows_per_prompt <= max(free, rows_per_prompt):
                joining.append(pending.pop())
            for group in _prefill_groups([len(encoded[i]) for i in joining]):
                prompts = [joining[g] for g in group]
                input_ids, mask = _left_pad([encoded[i] for i in prompts], pad_id)
                rows = [i * rows_per_prompt + j for i in prompts for j in range(rows_per_prompt)]
                flight.join(input_ids.to(device), mask.to(device), rows, rows_per_prompt)
        scores = flight.logits.float()
        for warp in warpers:
            scores = warp(None, scores)
        if config.do_sample:
            chosen = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            chosen = scores.argmax(dim=-1)
        chosen_logprobs = None
        if logprobs is not None:
            tempered = flight.logits.float() / (config.temperature if config.do_sample else 1.0)
            chosen_logprobs = (tempered.gather(1, chosen[:, None]).squeeze(1)
                               - torch.logsumexp(tempered, dim=-1)).tolist()
        keep = []
        for position, token in enumerate(chosen.tolist()):
            row = flight.rows[position]
            prompt = row // rows_per_prompt
            if chosen_logprobs is not None and (keep_end or token not in end_ids):
                logprobs[row].append(chosen_logprobs[position])
            if token in end_ids and keep_end:
                new[row].append(token)
            if token not in end_ids:
                new[row].append(token)
                tail = tokenizer.decode(new[row][-window:], skip_special_tokens=True) if stops[prompt] else ""
                stopped = any(s in tail for s in stops[prompt])
                if len(new[row]) < config.max_new_tokens and not stopped:
                    keep.append(position)
                    continue
                cut[row] = not stopped
            left[prompt] -= 1
            if left[prompt] == 0 and on_prompt_done is not None:
                rows = slice(prompt * rows_per_prompt, (prompt + 1) * rows_per_prompt)
                on_prompt_done(prompt, new[rows], cut[rows])
        flight.keep(keep)
        if flight.rows:
            flight.step(chosen[torch.tensor(keep, dtype=torch.long, device=chosen.device)])
    return [new[i * rows_per_prompt:(i + 1) * rows_per_prompt] for i in range(len(encoded))]


def _prefill_groups(lengths: list[int], waste: float = 1.15, max_tokens: int = 8192) -> list[list[int]]:
    """Split prompts (indices into ``lengths``) into prefill batches that are mostly real tokens.

    Prefill is compute-bound, so every padding token costs as much as a real one: prompts of 85 and 786
    tokens (MGSM's Chinese and Telugu) prefilled together cost 9x the shorter one's work. A batch grows while
    its padded area stays within ``waste`` times its real tokens and under ``max_tokens`` (which also bounds
    the attention scores' memory); a long prompt is prefilled on its own, where its matrix products are
    already large enough to run at full speed.
    """
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        group = groups[-1] if groups else None
        if group:
            width = lengths[group[0]]  # the longest: groups are filled in decreasing length
            real = sum(lengths[i] for i in group) + lengths[index]
            if width * (len(group) + 1) <= min(waste * real, max_tokens):
                group.append(index)
                continue
        groups.append([index])
    return groups


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


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, width - len(row) :] = 1
    return input_ids, attention_mask


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


def end_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The tokens that end a completion: the model's eos tokens and the tokenizer's pad token."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return _eos_ids(_without_peft_wrapper(model), tokenizer) | ({pad_id} if pad_id is not None else set())


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
    cut: bool  # stopped by max_new_tokens (or a stop string) rather than by an end token


def generate_ids(loaded_or_model_and_tokenizer: ModelAndTokenizer, prompt_ids: list[list[int]],
                 config: GenerationConfig) -> list[list[Sampled]]:
    """Complete prompts given as token ids with the continuous engine: per prompt, ``config.num_samples``
    :class:`Sampled` completions with their log-probabilities (what an RL trainer needs from a rollout).

    Unlike :func:`generate` it never falls back to transformers' ``generate`` (which gives no
    log-probabilities): a model the continuous decoder cannot drive raises ``ValueError``.
    """
    _check_config(config)
    model, tokenizer = _unpack(loaded_or_model_and_tokenizer)
    if not _can_batch_continuously(model):
        raise ValueError(f"the continuous engine cannot drive {type(model).__name__} (its cache or forward "
                         "differs); sample with transformers' generate instead")
    if not prompt_ids:
        return []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; load the model with load_model()")
    end_ids = end_token_ids(model, tokenizer)
    rows_per_prompt = config.num_samples if config.do_sample else 1
    encoded = [list(ids) for ids in prompt_ids]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    stops = [tuple(config.stop)] * len(encoded)
    cuts: dict[int, list[bool]] = {}
    logprobs: list[list[float]] = []
    with _decoding(model, config, len(encoded), rows_per_prompt):
        rows = _decode_continuous(model, tokenizer, encoded, order, config, rows_per_prompt, stops, end_ids, pad_id,
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

    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token; load the model with load_model()")
    eos_ids = _eos_ids(model, tokenizer)
    end_ids = eos_ids | {pad_id}

    encoded = _encode_within_context(model, tokenizer, prompts, config.max_new_tokens)
    # Longest first: similar lengths share a batch (little padding), and a batch too big for memory fails at
    # once rather than at the end.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))

    # Greedy decoding gives the same text every time, so one row per prompt is enough; transformers also
    # rejects num_return_sequences > 1 without sampling.
    rows_per_prompt = config.num_samples if config.do_sample else 1
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
    if stops is None:
        stops = [tuple(config.stop)] * len(prompts)
    elif len(stops) != len(prompts):
        raise ValueError(f"got {len(stops)} stop lists for {len(prompts)} prompts")

    results: list[list[str]] = [[] for _ in prompts]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompts), unit="prompt", desc="generating")

    continuous = config.engine == "continuous" and _can_batch_continuously(model)
    repeats = config.num_samples // rows_per_prompt  # greedy: one row per prompt stands for every sample
    device = next(model.parameters()).device
    start = time.perf_counter()
    try:
        with _decoding(model, config, len(prompts), rows_per_prompt):
            if continuous:
                def done(prompt: int, rows: list[list[int]], cut: list[bool]) -> None:
                    stats["new_tokens"] += sum(len(r) for r in rows)
                    stats["cut"] += sum(cut) * repeats
                    # The token that completes a stop string may carry text past it.
                    results[prompt] = [cut_at_stop(tokenizer.decode(r, skip_special_tokens=True), stops[prompt])
                                       for r in rows]
                    if on_result is not None:
                        on_result(prompt, results[prompt] * repeats, cut * repeats)
                    if bar is not None:
                        bar.update(1)

                _decode_continuous(model, tokenizer, encoded, order, config, rows_per_prompt, stops, end_ids, pad_id,
                                   on_prompt_done=done)
                stats["batches"] = -(-len(prompts) // config.batch_size)
            else:
                for first in range(0, len(order), config.batch_size):
                    batch = order[first : first + config.batch_size]
                    input_ids, attention_mask = _left_pad([encoded[i] for i in batch], pad_id)
                    row_stops = [stops[i] for i in batch for _ in range(rows_per_prompt)]
                    criteria = StoppingCriteriaList()
                    if any(row_stops):
                        criteria.append(_StopStrings(tokenizer, input_ids.shape[1], row_stops))
                    output = model.generate(
                        input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                        stopping_criteria=criteria, **kwargs
                    )
                    new_tokens = output[:, input_ids.shape[1] :].cpu()
                    counts = _count_new_tokens(new_tokens, end_ids)
                    stats["new_tokens"] += sum(counts)
                    stats["batches"] += 1
                    # Rows come back grouped by prompt: prompt 0's samples, then prompt 1's, ...
                    cut: dict[int, list[bool]] = {}
                    for row, (tokens, n) in enumerate(zip(new_tokens, counts)):
                        text = tokenizer.decode(tokens[:n], skip_special_tokens=True)
                        # Rows of a batch run until the last one stops, so the text may go past a stop string.
                        kept = cut_at_stop(text, row_stops[row])
                        results[batch[row // rows_per_prompt]].append(kept)
                        budget = n >= config.max_new_tokens and kept == text
                        cut.setdefault(batch[row // rows_per_prompt], []).append(budget)
                        stats["cut"] += budget * repeats
                    if on_result is not None:
                        for i in dict.fromkeys(batch):
                            on_result(i, results[i] * repeats, cut[i] * repeats)
                    if bar is not None:
                        bar.update(len(batch))
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


def generate(
    loaded_or_model_and_tokenizer: ModelAndTokenizer,
    prompts: list[str],
    config: GenerationConfig,
    *,
    progress: bool = False,
    stops: list[tuple[str, ...]] | None = None,
    on_result: Callable[[int, list[str], list[bool]], None] | None = None,
) -> list[list[str]]:
    """Complete each prompt: per prompt, in input order, ``config.num_samples`` completion strings.

    A completion is the decoded new tokens only (special tokens skipped), cut before the first stop string.
    Prompts are decoded with continuous batching (``config.engine``), longest first, under
    ``torch.inference_mode()``. Greedy unless ``config.do_sample``; with ``config.seed`` the same call gives
    the same samples (a sample can still change if the other prompts change, since they share the random
    stream).
    """
    texts, _ = generate_with_stats(loaded_or_model_and_tokenizer, prompts, config, progress=progress, stops=stops,
                                   on_result=on_result)
    return texts
