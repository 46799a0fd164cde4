"""pivotrl's composed reward as a verl custom reward function.

Written against the reward-manager contract of verl 0.4-0.5 (``verl/workers/reward_manager/naive.py`` and
``batch.py``; verl itself is not a dependency of pivotrl and was not installed when this was written):

* ``NaiveRewardManager`` (the default) calls, once per response,
  ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)``;
* ``BatchRewardManager`` (``reward_model.reward_manager=batch``) calls, once per batch,
  ``compute_score(data_sources=[...], solution_strs=[...], ground_truths=[...], extra_infos=[...])``
  (numpy object arrays in practice) and expects one result per response;
* both also pass ``custom_reward_function.reward_kwargs`` as extra keyword arguments (ignored here), and
  accept a dict result: its ``"score"`` is the reward, every key is logged (``reward_extra_info``).

:func:`compute_score` supports both calling forms and returns ``{"score": total, <component>: value, ...,
"gate": gate}`` (flat floats, the same keys for every response). Use the batch manager: the embedding
similarity encodes a whole batch at once.

Dataset columns (verl's parquet rows): ``reward_model.ground_truth`` is the reference's final answer ("18",
"B"; when empty the answer is read from the reference), ``extra_info`` a dict with ``reference`` (the
English pivot reference text) and ``lang`` (the language the prompt asks for), optionally ``answer_type``
("number" or "choice"), ``question`` (the question in that language, for the components that read it, such as
a reference judge) and ``problem_id`` (ignored). ``data_source`` is not used.

Configuration by environment variable, so the verl config only needs ``custom_reward_function.path``
(this file, e.g. ``python -c "import pivotrl.rewards.verl as m; print(m.__file__)"``) and
``custom_reward_function.name=compute_score``:

* ``PIVOTRL_REWARD_URL``: score through a running reward server (``pivotrl reward serve``;
  :class:`~pivotrl.rewards.client.RewardClient`), so the encoder lives once per node in the server;
* otherwise ``PIVOTRL_REWARD_CONFIG`` (a preset name or a YAML path; default ``hybrid``) is built in this
  process on first use and kept (one reward per process and setting; :func:`reset_cache` forgets them).
"""

from __future__ import annotations

import numbers
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pivotrl.languages import get_language

__all__ = ["ENV_CONFIG", "ENV_URL", "compute_score", "reset_cache"]

ENV_URL = "PIVOTRL_REWARD_URL"
ENV_CONFIG = "PIVOTRL_REWARD_CONFIG"
DEFAULT_CONFIG = "hybrid"

_BACKENDS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def reset_cache() -> None:
    """Forget the rewards and clients built so far (the next call reads the environment again)."""
    with _LOCK:
        _BACKENDS.clear()


class _LocalBackend:
    def __init__(self, spec: str) -> None:
        from pivotrl.rewards.compose import build_reward

        self.reward = build_reward(spec)
        self._lock = threading.Lock()  # a ComposedReward is not meant to be scored from two threads at once

    def score(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from pivotrl.records import RewardInput
        from pivotrl.rewards.compose import score_inputs

        inputs = [RewardInput(x["response"], x["reference"], x["lang"], x["reference_answer"], x["answer_type"],
                              x.get("question")) for x in items]  # checked by _item
        with self._lock:
            scored = score_inputs(self.reward, inputs)
        return [s.to_dict() for s in scored]


class _RemoteBackend:
    def __init__(self, url: str) -> None:
        from pivotrl.rewards.client import RewardClient

        self.client = RewardClient(url)

    def score(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.client.score_items(items)


def _backend() -> Any:
    url = os.environ.get(ENV_URL, "").strip()
    key = ("url", url) if url else ("config", os.environ.get(ENV_CONFIG, "").strip() or DEFAULT_CONFIG)
    with _LOCK:
        backend = _BACKENDS.get(key)
        if backend is None:
            backend = _RemoteBackend(url) if url else _LocalBackend(key[1])
            _BACKENDS[key] = backend
    return backend


def _item(solution: Any, ground_truth: Any, extra_info: Any, where: str) -> dict[str, Any]:
    hint = ("pivotrl's verl reward needs extra_info={'reference': <English pivot reference text>, 'lang': "
            "<language code>, 'answer_type': 'number'|'choice' (optional), 'question': <the question in that "
            "language> (optional)} in every dataset row")
    if not isinstance(extra_info, Mapping):
        got = "nothing" if extra_info is None else type(extra_info).__name__
        raise ValueError(f"{where}: expected a dict, got {got}; {hint}")
    reference = extra_info.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError(f"{where} has no 'reference' (a non-empty string); {hint}")
    lang = extra_info.get("lang")
    if not isinstance(lang, str) or not lang.strip():
        raise ValueError(f"{where} has no 'lang' (a language code string); {hint}")
    try:
        get_language(lang)
    except KeyError as exc:
        raise ValueError(f"{where}['lang']: {exc}") from None
    answer_type = extra_info.get("answer_type")
    if answer_type is not None and answer_type not in ("number", "choice"):
        raise ValueError(f"{where}['answer_type'] must be 'number', 'choice' or None, got {answer_type!r}")
    question = extra_info.get("question")
    if question is not None and not isinstance(question, str):
        raise ValueError(f"{where}['question'] must be a string (the question in the asked language) or None, got "
                         f"{type(question).__name__}")
    if ground_truth is None or (isinstance(ground_truth, str) and not ground_truth.strip()):
        ground_truth = extra_info.get("reference_answer")
    if isinstance(ground_truth, numbers.Number) and not isinstance(ground_truth, bool):
        ground_truth = str(ground_truth)
    if ground_truth is not None and not isinstance(ground_truth, str):
        raise ValueError(f"ground_truth for {where} must be the reference's final answer as a string, got "
                         f"{type(ground_truth).__name__}")
    response = solution if isinstance(solution, str) else ("" if solution is None else str(solution))
    # no final answer given: RewardInput.answer reads it from the reference, as everywhere else
    item = {"response": response, "reference": reference, "reference_answer": ground_truth or None, "lang": lang,
            "answer_type": answer_type}
    if question is not None:  # only when given: the same request as before for rows without one
        item["question"] = question
    return item


def _flat(result: Mapping[str, Any]) -> dict[str, float]:
    out = {"score": float(result["score"])}
    out.update({name: float(value) for name, value in result["components"].items()})
    out["gate"] = float(result["gate"])
    return out


def compute_score(data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                  extra_info: Any = None, *, data_sources: Sequence[Any] | None = None,
                  solution_strs: Sequence[Any] | None = None, ground_truths: Sequence[Any] | None = None,
                  extra_infos: Sequence[Any] | None = None, **kwargs: Any) -> dict[str, float] | list[dict[str, float]]:
    """verl custom reward: one response (keyword ``solution_str``) -> a dict; a batch (``solution_strs``) -> a list.

    Every dict is ``{"score": total, <component>: score, ..., "gate": gate}``. Raises ValueError naming the
    row when ``extra_info`` lacks ``reference`` or ``lang`` (or names an unknown language).
    """
    del data_source, data_sources, kwargs  # the reward does not depend on the data source
    if solution_strs is not None:
        solutions = list(solution_strs)
        n = len(solutions)
        truths = [None] * n if ground_truths is None else list(ground_truths)
        extras = [None] * n if extra_infos is None else list(extra_infos)
        for name, column in (("ground_truths", truths), ("extra_infos", extras)):
            if len(column) != n:
                raise ValueError(f"{name} has {len(column)} values for {n} solution_strs")
        items = [_item(s, g, e, f"extra_infos[{i}]")
                 for i, (s, g, e) in enumerate(zip(solutions, truths, extras, strict=True))]
        if not items:
            return []
        return [_flat(r) for r in _backend().score(items)]
    if solution_str is None:
        raise TypeError("compute_score needs solution_str (one response) or solution_strs (a batch)")
    return _flat(_backend().score([_item(solution_str, ground_truth, extra_info, "extra_info")])[0])
