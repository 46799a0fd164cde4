"""Where models run and in what precision: one policy for every stage (evaluation, the local pivot, the demo,
translators and reward encoders).

``--device auto`` (the default everywhere) is the accelerator when there is one and the CPU otherwise; under a
distributed launch (``accelerate launch``, ``torchrun``) each process takes the GPU of its ``LOCAL_RANK``, so
reward encoders sit beside that process's policy. ``--dtype auto`` is bfloat16 on a GPU and float32 on a CPU:
on this project's AVX512-BF16 CPU (no AMX) bfloat16 generation was no faster at batch 32 (60.2 vs 59.9
tokens/s with Qwen2.5-0.5B) and changed 8 of 48 greedy final answers (docs/BENCHMARKS.md).

Training is the exception: TRL/accelerate place the policy themselves; ``pivotrl train``'s ``device`` only
moves the reward's encoders and translators.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a device is resolved: the CLI's --help stays fast
    import torch

__all__ = ["DEVICE_HELP", "DTYPE_HELP", "DeviceError", "generation_dtype", "parse_dtype", "resolve_device"]

DEVICE_HELP = "auto (the GPU of this process when there is one, else the CPU) | cpu | cuda | cuda:N"
DTYPE_HELP = "auto (bfloat16 on a GPU, float32 on a CPU) | float32 | bfloat16 | float16"

_DTYPES: dict[str, str] = {  # accepted name -> torch attribute
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


class DeviceError(ValueError):
    """A device that this machine does not have, or a spec that is not a device."""


def _local_rank() -> int | None:
    value = os.environ.get("LOCAL_RANK")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``device``: ``auto``/None, ``cpu``, ``cuda``, ``cuda:N`` (or a torch.device).

    ``auto`` and a bare ``cuda`` pick this process's GPU (``LOCAL_RANK`` under a distributed launch, else
    GPU 0). Asking for a GPU that is not there raises :class:`DeviceError` at once, naming what exists,
    instead of failing later inside a model.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    name = "auto" if device is None else str(device).strip().lower()
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        name = "cuda"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        index: int | None = None
        if name != "cuda":
            suffix = name.split(":", 1)[1]
            if not suffix.isdigit():
                raise DeviceError(f"device {device!r}: expected {DEVICE_HELP}")
            index = int(suffix)
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r}: this machine has no CUDA GPU that torch can use "
                              f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                              "use --device cpu or auto")
        count = torch.cuda.device_count()
        if index is None:
            rank = _local_rank()
            index = rank % count if rank is not None else 0
        elif index >= count:
            raise DeviceError(f"device {device!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    raise DeviceError(f"device {device!r}: expected {DEVICE_HELP}")


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype | str:
    """A torch dtype, or the string ``"auto"``; unknown names raise ValueError listing the known ones."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).strip().lower().removeprefix("torch.")
    if name == "auto":
        return "auto"
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of auto, {', '.join(_DTYPES)} or a torch.dtype")
    return getattr(torch, _DTYPES[name])


def generation_dtype(dtype: str | torch.dtype = "auto", device: str | torch.device = "cpu") -> torch.dtype:
    """The dtype for generation-only stages on ``device``: ``auto`` is bfloat16 on a GPU, float32 on a CPU."""
    import torch

    parsed = parse_dtype(dtype)
    if parsed != "auto":
        return parsed
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
