"""Linear layers that multiply by oneDNN-packed weights while a model generates on a CPU.

Why: a decode step multiplies a few rows (the sequences in flight) by every weight matrix, and there
``nn.Linear``'s float32 GEMM (MKL, the weight as stored) leaves speed on the table. The same product with the
weight reordered once into oneDNN's blocked layout ran 1.3-1.9x faster on this machine's 2 cores at 4-64
rows (and 0.86x at one row), and decoding Qwen2.5-0.5B in batches of 32 went 1.22x faster with identical
greedy text on 60 of 60 MGSM answers (docs/BENCHMARKS.md). It stays float32 throughout; only the order of
the additions inside each dot product changes, so a logit moves in its last bits and an argmax can flip
only on a near tie.

The packed copies live for one ``with`` block: training changes weights between evaluations, and a copy of
every weight matrix kept beside the model would double its memory for good. Even for one block the copy is as
large as the weights (2 GB more for the 0.5B model in float32), so nothing is packed when it would take more
than half of the memory available. Packing costs about 2 s for the 0.5B model (most of it the 151,936-row
output layer), repaid within the first seconds of a long generation.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import partial, wraps
from typing import Any, Iterator

import psutil
import torch

__all__ = ["can_pack", "pack_while_generating", "packed_linears"]

logger = logging.getLogger(__name__)


def can_pack() -> bool:
    """Whether this torch build has oneDNN's packed linear (CPU builds for x86 and ARM do)."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight") and hasattr(
        ops, "_linear_pointwise")


def _packable(module: torch.nn.Module) -> bool:
    weight = getattr(module, "weight", None)
    return type(module) is torch.nn.Linear and weight is not None and weight.device.type == "cpu" \
        and weight.dtype == torch.float32 and "forward" not in vars(module)


def _packed_forward(weight: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor, *_: Any,
                    **__: Any) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def _lora_merged_weight(module: torch.nn.Module) -> torch.Tensor | None:
    """For a PEFT LoRA layer around a packable ``nn.Linear`` with one active adapter and nothing a merged weight
    cannot express (no dropout, DoRA or adapter bias): ``W + scaling * B @ A``, the weight its forward applies.
    None for anything else (those layers are left to their own forward)."""
    base = getattr(module, "base_layer", None)
    if base is None or not hasattr(module, "lora_A") or not _packable(base) or "forward" in vars(module):
        return None
    if getattr(module, "merged", False) or getattr(module, "disable_adapters", False):
        return base.weight.detach() if not getattr(module, "merged", False) else None
    active = list(getattr(module, "active_adapters", []))
    if len(active) != 1 or active[0] not in module.lora_A:
        return None
    name = active[0]
    dropout = module.lora_dropout[name]
    if getattr(module, "use_dora", {}).get(name) or getattr(module, "lora_bias", {}).get(name) \
            or getattr(module, "fan_in_fan_out", False) or not (isinstance(dropout, torch.nn.Identity)
                                                              or getattr(dropout, "p", 1.0) == 0):
        return None
    a, b = module.lora_A[name].weight, module.lora_B[name].weight
    if a.dtype != torch.float32 or b.dtype != torch.float32:
        return None
    return torch.addmm(base.weight.detach(), b.detach(), a.detach(), alpha=module.scaling[name])


@contextmanager
def packed_linears(model: torch.nn.Module, rows: int = 32) -> Iterator[int]:
    """Within the block, every plain float32 CPU ``nn.Linear`` of ``model`` multiplies by a packed copy of its
    weight; yields how many layers were packed (0 where nothing applies: a GPU, another dtype, no oneDNN).

    ``rows`` tells oneDNN the usual number of rows to pack for. Subclasses of ``nn.Linear`` (quantized layers)
    are left alone. A PEFT LoRA layer multiplies by one packed copy of its merged weight ``W + scaling * B @ A``
    (the same product as its forward, up to float rounding): its two small adapter products and PEFT's Python
    around them were a quarter of a GRPO step's sampling time with Qwen2.5-0.5B and rank-16 adapters on every
    linear layer. Weights must not change inside the block (they are read once, at entry); every layer gets
    its own forward back at exit, also on an error. Nothing is packed when the copies would need more than
    half of the memory available now.
    """
    layers: list[tuple[torch.nn.Module, torch.nn.Module]] = []  # (module whose forward goes, its nn.Linear)
    if can_pack():
        inside_lora: set[int] = set()
        for module in model.modules():
            if id(module) in inside_lora:
                continue
            if _lora_merged_weight(module) is not None:  # checked again (and computed) when packing
                layers.append((module, module.base_layer))
                inside_lora.update(id(m) for m in module.modules())
            elif _packable(module):
                layers.append((module, module))
    needed = sum(linear.weight.numel() * linear.weight.element_size() for _, linear in layers)
    available = psutil.virtual_memory().available
    if needed > available / 2:
        logger.info("not packing linear weights: %.1f GB needed, %.1f GB available", needed / 2**30,
                    available / 2**30)
        layers = []
    patched: list[torch.nn.Module] = []
    try:
        for module, linear in layers:
            weight = _lora_merged_weight(module) if module is not linear else linear.weight.detach()
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
            bias = None if linear.bias is None else linear.bias.detach()
            module.forward = partial(_packed_forward, packed, bias)  # an instance attribute shadows the method
            patched.append(module)
        yield len(patched)
    finally:
        for module in patched:
            del module.forward


def pack_while_generating(model: torch.nn.Module, rows: int = 8) -> None:
    """From now on, every ``model.generate(...)`` call runs inside :func:`packed_linears`.

    For callers that generate through ``model.generate`` themselves: TRL's trainers sample each step's rollouts
    that way. The weights are packed again at every call, since training changes them between calls (the LoRA
    adapters; the frozen base too under full fine-tuning). On a GPU, or where nothing is packable, the calls
    run as before.
    """
    original = model.generate

    @wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        with packed_linears(model, rows):
            return original(*args, **kwargs)

    model.generate = generate  # an instance attribute shadows the method
