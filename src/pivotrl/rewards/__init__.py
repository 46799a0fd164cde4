"""Stage 3 of the pipeline: semantically verifiable rewards.

    registry.py     every component described once: function or factory, score range, role (credit, penalty,
                    gate), config fields; ``register_component`` for your own
    components.py   answer agreement, language fidelity, answer format, length, brevity and repetition guards:
                    TRL reward functions ``f(completions, **columns) -> list[float]`` with documented ranges
    embedding.py    cross-lingual embedding similarity to the English reference, rescaled per encoder,
                    with reference embeddings cached by content hash
    e5_torch.py     the packaged multilingual e5 encoder in plain PyTorch
    translation.py  translate-then-compare and translation-likelihood components
    compose.py      weights, the language-fidelity gate, thresholds and the presets (hybrid, hybrid-judge,
                    embedding, translate, answer): one ``ComposedReward`` whose parts TRL logs one by one, and
                    ``score_inputs``, the one scoring path of the adapters below
    server.py       ``pivotrl reward serve``: the reward over HTTP (the contract, the handler, the OpenRLHF form)
    batching.py     its dynamic, fair batching of many callers' items, with a result cache
    client.py       its client (retries, chunks, API key)
    verl.py         verl's ``compute_score`` adapter (in-process or through the server)
    audit/          ``pivotrl reward audit``: cases, hacking probes, scoring (ROC-AUC per component and
                    language), report

See docs/REWARDS.md for the ranges, the presets, adding a component, and the measured separation. The names
below import lazily (``from pivotrl.rewards import build_reward`` does not load an encoder).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ComposedReward": "pivotrl.rewards.compose", "RewardConfig": "pivotrl.rewards.compose",
    "PRESETS": "pivotrl.rewards.compose", "build_reward": "pivotrl.rewards.compose",
    "load_reward_config": "pivotrl.rewards.compose", "score_inputs": "pivotrl.rewards.compose",
    "register_component": "pivotrl.rewards.registry", "REGISTRY": "pivotrl.rewards.registry",
    "RewardClient": "pivotrl.rewards.client", "RewardServer": "pivotrl.rewards.server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pivotrl.rewards' has no attribute {name!r}")
