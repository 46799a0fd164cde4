"""Shortcuts in GRPO's policy update that leave its gradient exactly as it was.

A group whose answers all got the same reward has advantage 0 in every row. Under DAPO's token-level loss (and
CISPO's), a row's loss is its advantage times a ratio, divided by the token count of the whole generation batch
(``num_items_in_batch``, fixed when the batch was scored); with no KL term (``beta: 0``) and no entropy mask,
such a row adds exactly 0 to the loss and to the gradient, yet its forward and backward pass cost as much as any
other. In the Qwen study 72% of gold-reward groups had no spread. Those rows are dropped before the update;
the normaliser stays the whole batch's, so the update is the same up to float rounding.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["skip_groups_without_spread", "skipping_is_exact"]

_EXACT_LOSSES = ("dapo", "cispo")  # normalised by the generation batch's token count, not by the rows present


def skipping_is_exact(args: Any) -> bool:
    """Whether dropping zero-advantage rows leaves the gradient unchanged under these GRPO settings."""
    return (getattr(args, "loss_type", None) in _EXACT_LOSSES and not getattr(args, "beta", 0.0)
            and getattr(args, "top_entropy_quantile", 1.0) >= 1.0
            and getattr(args, "off_policy_mask_threshold", None) is None)


def keep_rows(advantages: torch.Tensor, group: int, chunks: int) -> torch.Tensor | None:
    """Indices of the rows to keep: every row of each group with a non-zero advantage, topped up with dropped
    rows so that the count splits evenly into the ``chunks`` accumulation steps TRL cuts the batch into (at
    least one row each). None when nothing would be dropped."""
    rows = advantages.shape[0]
    if group < 1 or rows % group:
        return None
    spread = (advantages.reshape(rows // group, group, -1) != 0).flatten(1).any(dim=1)
    kept = spread.repeat_interleave(group)
    count = int(kept.sum())
    target = max(chunks, -(-count // chunks) * chunks)
    if target >= rows:
        return None
    dropped = torch.nonzero(~kept).flatten()
    index = torch.cat([torch.nonzero(kept).flatten(), dropped[: target - count]])
    return index.sort().values


def skip_groups_without_spread(trainer: Any) -> bool:
    """Make a TRL ``GRPOTrainer`` leave zero-advantage groups out of its training batches where that is exact
    (:func:`skipping_is_exact`); returns whether it does. Logs ``update/rows_skipped``, the share of rows left
    out at each generation."""
    if not skipping_is_exact(trainer.args):
        return False
    score = trainer._generate_and_score_completions  # TRL's: sample, score, advantages; the update follows

    def generate_and_score(inputs: Any) -> dict[str, Any]:
        batch = score(inputs)
        if not trainer.model.training:
            return batch
        advantages = batch["advantages"]
        index = keep_rows(advantages, int(trainer.num_generations), int(trainer.args.steps_per_generation))
        rows = advantages.shape[0]
        skipped = 0.0 if index is None else 1 - len(index) / rows
        trainer._metrics["train"]["update/rows_skipped"].append(skipped)
        if index is None:
            return batch
        index = index.to(advantages.device)
        return {key: value[index] if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == rows
                else ([value[i] for i in index.tolist()] if isinstance(value, list) and len(value) == rows else value)
                for key, value in batch.items()}

    trainer._generate_and_score_completions = generate_and_score
    return True
