"""Checkpoints and saved models of a training run: which checkpoint a resume continues from, the training log cut
back to it, and the model folders a run leaves (``final/``, an offline round's ``model/``) that
``pivotrl eval --model`` loads."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["checkpoint_step", "checkpoints", "cut_log", "last_checkpoint", "save_model_folder"]


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


def checkpoint_step(checkpoint: Path | None) -> int:
    """The training step a checkpoint was saved at (0 for None: a run starting over)."""
    return 0 if checkpoint is None else int(checkpoint.name.rpartition("-")[2])


def cut_log(path: Path, keep: Callable[[dict[str, Any]], bool]) -> int:
    """Rewrite the training log ``path`` with only the lines ``keep`` accepts (and without a line torn by a
    kill); returns how many lines were dropped. A resumed run calls it before training again, so that the
    steps logged after the checkpoint it resumes from, which it is about to repeat, are not counted twice.
    The new file replaces the old one in one rename: a kill meanwhile leaves one or the other whole."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:  # a line torn by a kill, or garbage: not a logged step
            dropped += 1
            continue
        if isinstance(entry, dict) and keep(entry):
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in kept))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        log.info("%s: dropped %d line(s) logged after the point this run resumes from", path, dropped)
    return dropped


def save_model_folder(model: Any, tokenizer: Any, folder: Path, info: dict[str, Any]) -> None:
    """A trained policy as a normal transformers folder: a PEFT model's adapter in ``folder/adapter`` and the
    merged weights in ``folder``; ``info`` (what trained it) in ``folder/pivotrl.json``."""
    if getattr(model, "peft_config", None) is not None and hasattr(model, "merge_and_unload"):
        model.save_pretrained(folder / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "pivotrl.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
