"""Checkpoints and saved models of a training run: which checkpoint a resume continues from, and the model
folders a run leaves (``final/``, an offline round's ``model/``) that ``pivotrl eval --model`` loads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["checkpoints", "last_checkpoint", "save_model_folder"]


def checkpoints(output_dir: Path) -> list[Path]:
    """TRL/transformers checkpoint folders (``checkpoint-N``), newest first."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        step = path.name.rpartition("-")[2]
        if path.is_dir() and step.isdigit():
            found.append((int(step), path))
    return [path for _, path in sorted(found, reverse=True)]


def _is_complete(checkpoint: Path) -> bool:
    # transformers writes trainer_state.json after the model, optimizer, scheduler and RNG state, and removes
    # the older checkpoint only after that; a kill while saving leaves a folder without it (or with a torn one)
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint that was saved whole; incomplete newer ones (a kill while saving) are skipped."""
    for checkpoint in checkpoints(output_dir):
        if _is_complete(checkpoint):
            return checkpoint
        log.warning("%s was not saved completely (killed while saving?); resuming from an older checkpoint",
                    checkpoint)
    return None


def save_model_folder(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> None:
    """A trained policy as a normal transformers folder: a PEFT model's adapter in ``folder/adapter`` and the
    merged weights in ``folder``; ``info`` (what trained it) in ``folder/pivotrl.json``."""
    if getattr(model, "peft_config", None) is not None and hasattr(model, "merge_and_unload"):
        model.save_pretrained(folder / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "pivotrl.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
