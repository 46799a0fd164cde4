"""The continuous-batching decoder under :mod:`pivotrl.generation`: rows leave the batch the step they end,
new prompts join it (prefilled once for all their samples, in groups of similar length), and the KV cache grows
in place. :func:`pivotrl.generation.generate` and :func:`pivotrl.generation.generate_ids` drive it; the measured
speed against transformers' ``generate`` is in docs/BENCHMARKS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.cache_utils import DynamicLayer

if TYPE_CHECKING:
    from pivotrl.generation import GenerationConfig

__all__ = ["can_batch_continuously", "decode_continuous", "left_pad", "prefill_groups"]


def can_batch_continuously(model: PreTrainedModel) -> bool:
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
    cache.layers = [_GrowingLayer() for _ in cache.layers]  # can_batch_continuously: all plain DynamicLayers
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


_JOIN_WHEN_FREE = 0.25  # new prompts join once this share of the flight's places is free (see decode_continuous)


def decode_continuous(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, encoded: list[list[int]],
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
            for group in prefill_groups([len(encoded[i]) for i in joining]):
                prompts = [joining[g] for g in group]
                input_ids, mask = left_pad([encoded[i] for i in prompts], pad_id)
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


def prefill_groups(lengths: list[int], waste: float = 1.15, max_tokens: int = 8192) -> list[list[int]]:
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


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, width - len(row) :] = 1
    return input_ids, attention_mask
