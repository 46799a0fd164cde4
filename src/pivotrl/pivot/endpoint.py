"""Pivot backend for any server that speaks the OpenAI chat-completions HTTP schema.

vLLM, SGLang, the llama.cpp server, TGI and hosted APIs all accept ``POST {base_url}/chat/completions`` with
``{"model", "messages", "n", "temperature", ...}`` and answer
``{"choices": [{"message": {"content": ...}}], "usage": ...}``.
This module sends one such request per conversation, concurrently, with retries, and returns the choice texts in input
order.

The requests go through :mod:`pivotrl.openai_api` (its URL rule, bounded concurrency, ``n`` topped up from servers
that ignore it) on pivotrl's one HTTP client, :mod:`pivotrl.http_client` (standard library only). Its retry policy:
connection errors, timeouts, HTTP 429 and HTTP 5xx are retried up to ``max_retries`` times with exponential backoff
and jitter (``backoff * 2**attempt * uniform(0.5, 1.5)``, capped at 30 s), or after the delay a ``Retry-After``
header asks for (capped at 120 s); a connection refused by a loopback host is retried after at most 0.5 s. Any other
4xx, a redirect, or a malformed 2xx body raises :class:`EndpointError` at once: retrying a bad request only wastes
time. ``timeout`` bounds each attempt (a server that accepts the connection and never answers is retried like any
timeout); ``deadline`` bounds all the requests made with one :class:`EndpointConfig` (a whole ``pivotrl pivot`` run),
counted from its first request: past it, :class:`EndpointError` with ``kind == "deadline"``.

A sample that comes back without text (``content: null`` or blank) is asked for again, ``empty_retries`` more
requests per conversation at most; what is still empty is returned as ``""`` (a failed sample: verification finds
no answer in it). The pivot backend does not store a problem all of whose
samples are empty, so that running the pivot again asks for it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pivotrl.http_client import HTTPRequestError
from pivotrl.openai_api import api_root, complete_all, connect

__all__ = ["EndpointConfig", "EndpointError", "chat_complete", "chat_complete_with_usage"]

_USER_AGENT = "pivotrl-endpoint/0.1"


@dataclass
class EndpointConfig:
    """Where and how to reach an OpenAI-compatible chat-completions server.

    ``base_url`` is the API root, e.g. ``"http://127.0.0.1:8000/v1"``, or the full chat-completions URL; a URL
    without a path gets ``/v1`` (:func:`pivotrl.openai_api.api_root` is the rule). The API key is read from the
    environment variable named ``api_key_env`` at call time and sent as ``Authorization: Bearer <key>`` when that
    variable is set and non-empty; it never appears in error messages.
    ``timeout`` bounds each request (connection, waiting for the answer and reading it); ``concurrency`` bounds the
    number of requests in flight; ``deadline`` (seconds, None: none) bounds everything asked with this config,
    from its first request; ``empty_retries`` is how many more requests a conversation whose samples came back
    empty may take.
    """

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 300.0
    backoff: float = 1.0
    deadline: float | None = None
    empty_retries: int = 2
    _started: float | None = field(default=None, init=False, repr=False, compare=False)  # time.monotonic()

    def __post_init__(self) -> None:
        try:
            api_root(self.base_url)
        except ValueError:
            raise ValueError(f"base_url must be an http(s) URL like 'http://127.0.0.1:8000/v1', got "
                             f"{self.base_url!r}") from None
        if not self.model:
            raise ValueError("model must be a non-empty model name")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {self.backoff}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds (or None: no deadline), got {self.deadline}")
        if self.empty_retries < 0:
            raise ValueError(f"empty_retries must be >= 0, got {self.empty_retries}")

    @property
    def url(self) -> str:
        """The full chat-completions URL requests are posted to."""
        return api_root(self.base_url) + "/chat/completions"


class EndpointError(HTTPRequestError):
    """A chat-completions request failed for good (after retries when the failure was retryable).

    The message names the URL, the HTTP status (when there was a response), the server's message or the underlying
    cause, and the number of attempts made; the same facts are available as attributes.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None, attempts: int = 1,
                 server_message: str | None = None, kind: str = "status") -> None:
        super().__init__(url, reason, status=status, attempts=attempts, server_message=server_message,
                         subject=f"chat-completions request to {url}", kind=kind)


# ------------------------------------------------------------------------------------------------ public functions


def chat_complete(config: EndpointConfig, messages_list: Sequence[list[dict]], **options: Any) -> list[list[str]]:
    """Complete every conversation in ``messages_list``; return, in input order, the ``n`` choice texts of each.

    ``options`` are :func:`chat_complete_with_usage`'s (``n``, ``temperature``, ``top_p``, ``max_tokens``,
    ``seed``, ``stop``, ``progress``). One request is sent per conversation (body: ``model, messages, n,
    temperature, top_p, max_tokens`` and ``seed`` / ``stop`` when given), at most ``config.concurrency`` at a time.
    Raises :class:`EndpointError` when a request fails for good; the remaining requests are then abandoned.
    """
    return chat_complete_with_usage(config, messages_list, **options)[0]


def chat_complete_with_usage(
    config: EndpointConfig,
    messages_list: Sequence[list[dict]],
    *,
    n: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_tokens: int = 512,
    seed: int | None = None,
    stop: list[str] | None = None,
    progress: bool = False,
) -> tuple[list[list[str]], dict[str, int]]:
    """Like :func:`chat_complete`, and also return usage totals.

    The usage dict has ``prompt_tokens`` and ``completion_tokens`` (summed over the ``usage`` objects the server
    reported; 0 when it reports none), ``requests`` (HTTP requests sent, failed attempts included), ``retries``
    (attempts that were retried) and ``topup_requests`` (extra requests made because the server returned fewer than
    ``n`` choices). Requests made again for samples that came back empty are counted in ``requests``; samples still
    empty after them are returned as ``""``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if isinstance(stop, str):
        stop = [stop]
    for i, messages in enumerate(messages_list):
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ValueError(f"messages_list[{i}] must be a non-empty list of message dicts, got {messages!r:.200}")

    usage = dict.fromkeys(("prompt_tokens", "completion_tokens", "requests", "retries", "topup_requests"), 0)
    if not messages_list:
        return [], usage
    key = os.environ.get(config.api_key_env) if config.api_key_env else None
    remaining = None
    if config.deadline is not None:  # one deadline for every call made with this config: a whole pivot run
        if config._started is None:
            config._started = time.monotonic()
        remaining = config.deadline - (time.monotonic() - config._started)
        if remaining <= 0:
            raise EndpointError(api_root(config.base_url) + "/chat/completions",
                                f"the deadline of {config.deadline:g} s passed", attempts=0, kind="deadline")
    api = connect(config.base_url, config.model, chat=True, api_key=key, timeout=config.timeout,
                  max_retries=config.max_retries, backoff=config.backoff, user_agent=_USER_AGENT,
                  deadline=remaining)
    try:
        got = complete_all(api, messages_list, concurrency=config.concurrency, stops=[stop] * len(messages_list),
                           progress=f"pivot {config.model}" if progress else None, n=n, temperature=temperature,
                           top_p=top_p, max_tokens=max_tokens, seed=seed, empty_retries=config.empty_retries)
    except HTTPRequestError as error:
        reason = error.reason
        if error.kind == "deadline":
            reason = reason.replace(f"deadline of {api.client.deadline:g} s", f"deadline of {config.deadline:g} s")
        raise EndpointError(api.url, reason, status=error.status, attempts=error.attempts,
                            server_message=error.server_message, kind=error.kind) from None
    for completion in got:
        for name in usage:
            usage[name] += getattr(completion, name)
    return [completion.texts for completion in got], usage
