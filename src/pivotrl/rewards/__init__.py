"""Stage 3 of the pipeline: semantically verifiable rewards.

    components.py   answer agreement, language fidelity, answer format, length and repetition guards:
                    TRL reward functions ``f(completions, **columns) -> list[float]`` with documented ranges
    embedding.py    cross-lingual embedding similarity to the English reference, rescaled per encoder,
                    with reference embeddings cached by content hash
    e5_torch.py     the packaged multilingual e5 encoder in plain PyTorch
    translation.py  translate-then-compare and translation-likelihood components
    compose.py      weights, the language-fidelity gate, thresholds and the presets (hybrid, embedding,
                    translate, answer): one ``ComposedReward`` whose parts TRL logs one by one
    server.py       ``pivotrl reward serve``: the reward over HTTP with dynamic, fair batching, and its client
    verl.py         verl's ``compute_score`` adapter (in-process or through the server)
    audit.py        ``pivotrl reward audit``: ROC-AUC of each component on labelled answers, hacking probes

See docs/REWARDS.md for the ranges, the presets and the measured separation.
"""
