"""Pivot backend for any server that speaks the OpenAI chat-completions HTTP schema.

vLLM, SGLang, the llama.cpp server, TGI and hosted APIs all accept ``POST {base_url}/chat/completions`` with
``{"model", "messages", "n", "temperature", ...}`` and answer
``{"choices": [{"message": {"content": ...}}], "usage": ...}``.
This module sends one such request per conversation, concurrently, with retries, and returns the choice texts in input
order.

HTTP goes through pivotrl's one client, :mod:`pivotrl.http_client` (standard library only). Its retry policy:
connection errors, timeouts, HTTP 429 and HTTP 5xx are retried up to ``max_retries`` times with exponential backoff
and jitter (``backoff * 2**attempt * uniform(0.5, 1.5)``, capped at 30 s), or after the delay a ``Retry-After``
header asks for (capped at 120 s); a connection refused by a loopback host is retried after at most 0.5 s. Any other
4xx, a redirect, or a malformed 2xx body raises :class:`EndpointError` at once: retrying a bad request only wastes
time.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from pivotrl.http_client import HTTPRequestError, JSONClient, OpenAICompletions

__all__ = ["EndpointConfig", "EndpointError", "chat_complete", "chat_complete_with_usage"]

_USER_AGENT = "pivotrl-endpoint/0.1"


@dataclass
class EndpointConfig:
    """Where and how to reach an OpenAI-compatible chat-completions server.

    ``base_url`` is the API root, e.g. ``"http://127.0.0.1:8000/v1"``; ``/chat/completions`` is appended (unless the URL
    already ends with it). The API key is read from the environment variable named ``api_key_env`` at call time and sent
    as ``Authorization: Bearer <key>`` when that variable is set and non-empty; it never appears in error messages.
    ``timeout`` bounds each request (connection, waiting for the answer and reading it); ``concurrency`` bounds the
    number of requests in flight.
    """

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 5
    timeout: float = 120.0
    backoff: float = 1.0

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL like 'http://127.0.0.1:8000/v1', got {self.base_url!r}")
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

    @property
    def url(self) -> str:
        """The full chat-completions URL requests are posted to."""
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"


class EndpointError(HTTPRequestError):
    """A chat-completions request failed for good (after retries when the failure was retryable).

    The message names the URL, the HTTP status (when there was a response), the server's message or the underlying
    cause, and the number of attempts made; the same facts are available as attributes.
    """

    def __init__(self, url: str, reason: str, *, status: int | None = None, attempts: int = 1,
                 server_message: str | None = None) -> None:
        super().__init__(url, reason, status=status, attempts=attempts, server_message=server_message,
                         subject=f"chat-completions request to {url}")


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
    ``n`` choices).
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

    usage = _Usage()
    results: list[list[str] | None] = [None] * len(messages_list)
    if not messages_list:
        return [], usage.as_dict()

    client = _Client(config, usage)
    bar = _progress_bar(len(messages_list), config) if progress else None

    def run(index: int) -> None:
        results[index] = client.complete(
            messages_list[index],
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_tokens,
            seed=seed,
            stop=stop,
        )
        if bar is not None:
            bar.update(1)

    executor = ThreadPoolExecutor(max_workers=min(config.concurrency, len(messages_list)), thread_name_prefix="pivot")
    try:
        futures: list[Future[None]] = [executor.submit(run, i) for i in range(len(messages_list))]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:  # in input order, so the first failing input is the one reported
            error = future.exception() if future in done else None
            if error is not None:
                raise error
    except BaseException:
        # Fail fast (also on Ctrl-C): queued inputs are cancelled, running workers give up before their next attempt
        # and are not waited for (a request in flight may take up to config.timeout to notice).
        client.stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        executor.shutdown(wait=True)
    finally:
        if bar is not None:
            bar.close()
    assert all(r is not None for r in results)
    return results, usage.as_dict()  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------------ internals


class _Usage:
    """Thread-safe counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0, "topup_requests": 0}

    def add(self, **amounts: int) -> None:
        with self._lock:
            for key, value in amounts.items():
                self.counts[key] += value

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


class _Client:
    """One JSONClient (retries, API key, proxy bypass on loopback) and the chat-completions schema on top."""

    def __init__(self, config: EndpointConfig, usage: _Usage) -> None:
        self.config = config
        self.url = config.url
        self.usage = usage
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        # config.url is the full chat-completions URL already: the path appended to it is empty.
        self.http = JSONClient(self.url, api_key=key, timeout=config.timeout, max_retries=config.max_retries,
                               backoff=config.backoff, user_agent=_USER_AGENT)
        self.completions = OpenAICompletions(self.http, config.model, chat=True, path="")
        self.stop = self.http.cancel  # set: every worker gives up before its next attempt

    def complete(self, messages: list[dict], *, n: int, temperature: float, top_p: float, max_tokens: int,
                 seed: int | None, stop: list[str] | None) -> list[str]:
        try:
            got = self.completions.complete(messages, n=n, temperature=temperature, top_p=top_p,
                                            max_tokens=max_tokens, seed=seed, stop=stop)
        except HTTPRequestError as error:
            self.usage.add(requests=error.attempts, retries=max(0, error.attempts - 1))
            if error.kind == "cancelled":
                raise EndpointError(self.url, "abandoned because another request failed",
                                    attempts=error.attempts) from None
            raise EndpointError(self.url, error.reason, status=error.status, attempts=error.attempts,
                                server_message=error.server_message) from None
        self.usage.add(prompt_tokens=got.prompt_tokens, completion_tokens=got.completion_tokens,
                       requests=got.requests, retries=got.retries, topup_requests=got.topup_requests)
        return got.texts


def _progress_bar(total: int, config: EndpointConfig) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety: no tqdm, no bar
        return None
    return tqdm(total=total, desc=f"pivot {config.model}", unit="prompt")
