"""Stage 2 of the pipeline: English pivot references, verified and stored, and the training set built on them.

    backends.py   where references come from: a local model, an OpenAI-compatible endpoint, gold solutions
    endpoint.py   the chat-completions backend (over pivotrl.openai_api: concurrency, retries, timeouts)
    verify.py     keep samples that reach the English gold answer, else a clear majority
    store.py      append-only, kill-safe reference store keyed by (problem, pivot, settings)
    run.py        `pivotrl pivot`: sample, verify, store, summarise
    train_set.py  `pivotrl pivot build-train`: references x target-language questions

Translators for languages a parallel set lacks are a shared service: :mod:`pivotrl.translators`.
"""

from pivotrl.pivot.run import PivotConfig, run_pivot, settings_key, summarize
from pivotrl.pivot.store import ReferenceStore, StoreError
from pivotrl.pivot.train_set import TrainExample, build_train_set, write_examples
from pivotrl.pivot.verify import Verdict, verify_samples

__all__ = ["PivotConfig", "ReferenceStore", "StoreError", "TrainExample", "Verdict", "build_train_set",
           "run_pivot", "settings_key", "summarize", "verify_samples", "write_examples"]
