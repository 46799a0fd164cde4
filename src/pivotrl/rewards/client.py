"""The client of `pivotrl reward serve` (:class:`pivotrl.rewards.server.RewardServer`): ``POST /score`` with
retries and chunking, on the shared :mod:`pivotrl.http_client`. verl's reward function uses it when
``PIVOTRL_REWARD_URL`` is set; any trainer can.

    RewardClient("http://127.0.0.1:8000").score(["Die Antwort lautet 18."], ["... The answer is 18."], langs="de")
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from pivotrl.http_client import HTTPRequestError, JSONClient

__all__ = ["ENV_API_KEY", "RewardClient", "RewardClientError"]

ENV_API_KEY = "PIVOTRL_REWARD_API_KEY"  # the key servers require and clients send


class RewardClientError(RuntimeError):
    """A reward server refused a request (``status`` 4xx, with its message) or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _column(values: Any, n: int, name: str) -> list[Any]:
    if values is None or isinstance(values, (str, int, float)):
        return [values] * n
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values for {n} responses")
    return values


class RewardClient:
    """A client of :class:`RewardServer` (``POST /score``) with retries, on :mod:`pivotrl.http_client`.

    Connection errors, timeouts and 5xx/429 answers are retried ``retries`` times with exponential backoff
    (``backoff`` seconds, doubled each time, with jitter, at most 10 s; a ``Retry-After`` is honoured); a 4xx
    answer raises :class:`RewardClientError` at once with the server's message. Requests larger than
    ``chunk_size`` items are sent in chunks. Loopback servers are reached directly, whatever proxy the
    environment sets.
    """

    def __init__(self, url: str, timeout: float = 600.0, retries: int = 3, backoff: float = 0.5,
                 chunk_size: int = 1024, api_key: str | None = None) -> None:
        url = url.strip().rstrip("/")
        for suffix in ("/score", "/get_reward", "/health"):
            if url.endswith(suffix):
                url = url[: -len(suffix)]
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"reward server URL must look like http://host:port, got {url!r}")
        self.url = url
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.chunk_size = max(1, int(chunk_size))
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY) or None
        self._http = JSONClient(url, api_key=self.api_key, timeout=self.timeout, max_retries=self.retries,
                                backoff=self.backoff, max_backoff=10.0, user_agent="pivotrl-reward-client/1",
                                retry_log_level=logging.WARNING)  # a trainer's log shows a struggling server

    def score(self, responses: Sequence[str], references: Sequence[str] | str,
              reference_answers: Sequence[str | None] | str | None = None, langs: Sequence[str] | str | None = None,
              answer_types: Sequence[str | None] | str | None = None,
              questions: Sequence[str | None] | str | None = None) -> list[dict[str, Any]]:
        """One ``{"score", "gate", "components"}`` dict per response. Scalars are broadcast. ``questions``: the
        questions in the asked languages (optional; sent only when given)."""
        if isinstance(responses, str):
            raise TypeError("responses must be a list of strings, not one string")
        responses = list(responses)
        if langs is None:
            raise ValueError("langs is required: the language each response was asked in")
        n = len(responses)
        refs = _column(references, n, "references")
        answers = _column(reference_answers, n, "reference_answers")
        codes = _column(langs, n, "langs")
        types = _column(answer_types, n, "answer_types")
        items = [{"response": r, "reference": ref, "reference_answer": a, "lang": g, "answer_type": t}
                 for r, ref, a, g, t in zip(responses, refs, answers, codes, types, strict=True)]
        if questions is not None:
            for item, question in zip(items, _column(questions, n, "questions"), strict=True):
                item["question"] = question
        return self.score_items(items)

    def score_items(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Score item objects (the ``/score`` item fields, ``question`` included) in order."""
        items = [dict(x) for x in items]
        out: list[dict[str, Any]] = []
        for start in range(0, len(items), self.chunk_size):
            chunk = items[start:start + self.chunk_size]
            answer = self._request("POST", "/score", {"items": chunk})
            scores = answer.get("scores") if isinstance(answer, dict) else None
            if not isinstance(scores, list) or len(scores) != len(chunk):
                raise RewardClientError(f"reward server {self.url}: unexpected answer to /score: {str(answer)[:200]}")
            out.extend(scores)
        return out

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def config(self) -> dict[str, Any]:
        return self._request("GET", "/config")

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            return self._http.request(method, path, body).data
        except HTTPRequestError as error:
            said = error.server_message or error.reason
            if error.kind == "exhausted":
                message = f"reward server {error.url} failed after {error.attempts} attempts: {error.reason}"
                if error.server_message:
                    message += f": {error.server_message}"
            elif error.kind == "malformed":
                message = f"reward server {error.url} sent a body that is not JSON: {error.server_message}"
            elif error.status is not None and error.kind == "status":
                message = f"reward server {error.url} refused the request (HTTP {error.status}): {said}"
            else:
                message = f"reward server {error.url}: {error.reason}"
            raise RewardClientError(message, status=error.status) from None
