"""Shortcuts in GRPO's policy update that leave its gradient exactly as it was.

Under DAPO's token-level loss (and CISPO's), a row's loss is its advantage times a ratio, summed over its
unmasked completion tokens and divided by the token count of the whole generation batch (``num_items_in_batch``,
fixed when the batch was scored). With no KL term (``beta: 0``) and no entropy mask, two kinds of rows add
exactly 0 to the loss and to the gradient, yet cost a full forward and backward pass:

* rows with advantage 0: every row of a group whose answers all got the same reward (72% of gold-reward
  groups in the Qwen study), and any row scored exactly at its group's mean;
* rows with no loss tokens: answers cut at the budget when ``mask_truncated_completions`` masks them.

They are dropped before the update, and the batch's padding is trimmed to the longest row kept: TRL pads every
row to the batch's longest answer, often one cut at the budget. The normaliser stays the whole batch's, so the
update is the same up to float rounding (``tests/test_rollouts.py`` compares one SGD step both ways).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["keep_rows", "score_only_completion_tokens", "skip_rows_without_gradient", "skipping_is_exact"]

_EXACT_LOSSES = ("dapo", "cispo")  # normalised by the generation batch's token count, not by the rows present
# [rows, completion tokens] tensors of TRL's scored batch; [rows, prompt tokens] ones (left-padded)
_COMPLETION_KEYS = ("completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
                    "sampling_per_token_logps", "tool_mask", "importance_sampling_ratio")
_PROMPT_KEYS = ("prompt_ids", "prompt_mask")


def skipping_is_exact(args: Any) -> bool:
    """Whether dropping rows without gradient leaves the update unchanged under these GRPO settings."""
    return (getattr(args, "loss_type", None) in _EXACT_LOSSES and not getattr(args, "beta", 0.0)
            and getattr(args, "top_entropy_quantile", 1.0) >= 1.0
            and getattr(args, "off_policy_mask_threshold", None) is None)


def keep_rows(advantages: torch.Tensor, loss_tokens: torch.Tensor, chunks: int) -> torch.Tensor | None:
    """Indices of the rows to keep: those with a non-zero advantage and at least one loss token, topped up with
    dropped rows so that the count splits evenly into the ``chunks`` accumulation steps TRL cuts the batch into
    (at least one row each). None when nothing would be dropped."""
    rows = advantages.shape[0]
    useful = (advantages.reshape(rows, -1) != 0).any(dim=1) & (loss_tokens > 0)
    count = int(useful.sum())
    target = max(chunks, -(-count // chunks) * chunks)
    if target >= rows:
        return None
    dropped = torch.nonzero(~useful).flatten()
    index = torch.cat([torch.nonzero(useful).flatten(), dropped[: target - count]])
    return index.sort().values


def _trimmed(batch: dict[str, Any], index: torch.Tensor | None) -> dict[str, Any]:
    """The batch with only the rows in ``index`` (all when None) and its padding cut to the rows kept."""
    rows = batch["advantages"].shape[0]
    if index is not None:
        batch = {key: value[index] if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == rows
                 else ([value[i] for i in index.tolist()] if isinstance(value, list) and len(value) == rows
                       else value)
                 for key, value in batch.items()}
    mask, prompt_mask = batch["completion_mask"], batch["prompt_mask"]
    width = mask.shape[1]
    used = torch.nonzero(mask.any(dim=0)).flatten()
    keep_width = int(used[-1]) + 1 if len(used) else 1
    first = torch.nonzero(prompt_mask.any(dim=0)).flatten()
    start = int(first[0]) if len(first) else 0
    out = dict(batch)
    for key in _COMPLETION_KEYS:
        value = out.get(key)
        if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == width:
            out[key] = value[:, :keep_width]
    for key in _PROMPT_KEYS:
        value = out.get(key)
        if isinstance(value, torch.Tensor) and value.dim() == 2:
            out[key] = value[:, start:]
    return out


def skip_rows_without_gradient(trainer: Any) -> bool:
    """Make a TRL ``GRPOTrainer`` leave rows without gradient out of its update, and trim the padding, where that
    is exact (:func:`skipping_is_exact`; text prompts only); returns whether it does. Logs
    ``update/rows_skipped`` (the share of rows left out) and ``update/tokens_kept`` (the share of the padded
    batch's positions the update still computes)."""
    if not skipping_is_exact(trainer.args):
        return False
    score = trainer._generate_and_score_completions  # TRL's: sample, score, advantages; the update follows

    def generate_and_score(inputs: Any) -> dict[str, Any]:
        batch = score(inputs)
        if not trainer.model.training or "pixel_values" in batch or not all(k in batch for k in _PROMPT_KEYS):
            return batch
        rows = batch["advantages"].shape[0]
        before = rows * (batch["prompt_ids"].shape[1] + batch["completion_ids"].shape[1])
        index = keep_rows(batch["advantages"], batch["completion_mask"].sum(dim=1),
                          int(trainer.args.steps_per_generation))
        batch = _trimmed(batch, None if index is None else index.to(batch["advantages"].device))
        kept = batch["advantages"].shape[0]
        metrics = trainer._metrics["train"]
        metrics["update/rows_skipped"].append(1 - kept / rows)
        metrics["update/tokens_kept"].append(kept * (batch["prompt_ids"].shape[1] + batch["completion_ids"].shape[1])
                                             / before)
        return batch

    trainer._generate_and_score_completions = generate_and_score
    return True


def score_only_completion_tokens() -> None:
    """Make TRL's fused LM head score only the tokens the loss uses (the completions) on a CPU, as it does on a
    GPU.

    TRL 1.16 computes the loss's log-probabilities with a chunked LM head that never holds the full logits. Where
    Triton runs it projects only the positions with a label; elsewhere it projects every position of the batch,
    prompt and padding included, so that compilers which recompile on a new shape (Neuron) see fixed tiles. A
    CPU has no such compiler, and a demo step's batch is mostly prompt and padding: the 151,936-row projection
    and its backward were about a third of a GRPO update with Qwen2.5-0.5B. The positions left out have no
    label, so the log-probabilities and gradients are the same (tests/test_rollouts.py). The switch is TRL's
    own (its ``compact`` flag, read from one function in ``trl.trainer.utils``); process-wide, idempotent.
    """
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    if getattr(original, "pivotrl_compact_on_cpu", False):
        return

    def compact(device: torch.device) -> bool:
        return device.type == "cpu" or original(device)

    compact.pivotrl_compact_on_cpu = True  # type: ignore[attr-defined]
    trl_utils._use_triton = compact
