"""Stage 3 of the pipeline: semantically verifiable rewards (work in progress, issue 5).

    components.py   answer agreement, language fidelity, answer format, length and repetition guards:
                    TRL reward functions ``f(completions, **columns) -> list[float]`` with documented ranges
    embedding.py    cross-lingual embedding similarity to the English reference, rescaled per encoder,
                    with reference embeddings cached by content hash

Composition (weights, gates, presets), translate-then-compare, translation likelihood, the verl adapter,
the reward server and `pivotrl reward audit` are not written yet.
"""
