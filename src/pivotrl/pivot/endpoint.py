"""Pivot backend for any server that speaks the OpenAI chat-completions HTTP schema.

vLLM, SGLang, the llama.cpp server, TGI and hosted APIs all accept ``POST {base_url}/chat/completions`` with
``{"model", "messages", "n", "temperature", ...}`` and answer
``{"choices": [{"message": {"content": ...}}], "usage": ...}``.
This module sends one such request per conversation, concurrently, with retries, and returns the choice texts in input
order.

Only the standard library is used (``urllib``): ``httpx`` is not installed in the project's environment (recent
``huggingface_hub`` depends on the ``httpx2`` fork instead), and one blocking request per worker thread needs nothing
more.

Retry policy: connection errors, timeouts, HTTP 429 and HTTP 5xx are retried up to ``max_retries`` times with
exponential backoff and jitter (``backoff * 2**attempt * uniform(0.5, 1.5)``, capped at 30 s), or after the delay a
``Retry-After`` header asks for (capped at 120 s). Any other 4xx, a redirect, or a malformed 2xx body raises
:class:`EndpointError` at once: retrying a bad request only wastes time.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

__all__ = ["EndpointConfig", "EndpointError", "chat_complete", "chat_complete_with_usage"]

MAX_BACKOFF = 30.0  # seconds: cap of the exponential backoff
MAX_RETRY_AFTER = 120.0  # seconds: cap of a server's Retry-After (a server asking for an hour should not hang a run)
_READ_CHUNK = 64 * 1024
_MAX_MESSAGE_CHARS = 500  # server messages quoted in exceptions are cut to this length
_USER_AGENT = "pivotrl-endpoint/0.1"
_jitter = random.Random()


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


class EndpointError(RuntimeError):
    """A chat-completions request failed for good (after retries when the failure was retryable).

    The message names the URL, the HTTP status (when there was a response), the server's message or the underlying
    cause, and the number of attempts made; the same facts are available as attributes.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        server_message: str | None = None,
    ) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.server_message = server_message
        text = f"chat-completions request to {url} failed"
        if status is not None:
            text += f" (HTTP {status})"
        text += f" after {attempts} attempt{'s' if attempts != 1 else ''}: {reason}"
        if server_message:
            text += f"; server said: {server_message}"
        super().__init__(text)


# ------------------------------------------------------------------------------------------------ public functions


def chat_complete(
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
) -> list[list[str]]:
    """Complete every conversation in ``messages_list``; return, in input order, the ``n`` choice texts of each.

    One request is sent per conversation (body: ``model, messages, n, temperature, top_p, max_tokens`` and ``seed`` /
    ``stop`` when given), at most ``config.concurrency`` at a time. Raises :class:`EndpointError` when a request fails
    for good; the remaining requests are then abandoned.
    """
    texts, _ = chat_complete_with_usage(
        config,
        messages_list,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=stop,
        progress=progress,
    )
    return texts


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


class _Retryable(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, *, status: int | None = None, server_message: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.server_message = server_message
        self.retry_after = retry_after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a body-less GET; refuse redirects so the user fixes base_url instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib calls this; None = do not follow
        return None


class _Client:
    def __init__(self, config: EndpointConfig, usage: _Usage) -> None:
        self.config = config
        self.url = config.url
        self.usage = usage
        self.stop = threading.Event()
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": _USER_AGENT}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urllib.parse.urlsplit(self.url).hostname or ""):
            # An HTTP(S)_PROXY from the environment can never reach our own loopback server: bypass it.
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    # one conversation -> n texts
    def complete(self, messages: list[dict], *, n: int, temperature: float, top_p: float, max_tokens: int,
                 seed: int | None, stop: list[str] | None) -> list[str]:
        texts: list[str] = []
        request_number = 0
        # Some servers (llama.cpp server, several hosted APIs) ignore n > 1 and return a single choice: keep asking
        # for the missing ones until n texts are collected. Each follow-up request gets a different seed (seed + k),
        # or with a fixed seed a sampling server would return the very same text again.
        while len(texts) < n:
            body: dict[str, Any] = {
                "model": self.config.model,
                "messages": messages,
                "n": n - len(texts),
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
            }
            if seed is not None:
                body["seed"] = seed + request_number
            if stop:
                body["stop"] = list(stop)
            if request_number > 0:
                self.usage.add(topup_requests=1)
            got = self._post_with_retries(body)
            if not got:
                raise EndpointError(self.url, "the response has an empty 'choices' list", status=200)
            texts.extend(got[: n - len(texts)])
            request_number += 1
        return texts

    def _post_with_retries(self, body: dict[str, Any]) -> list[str]:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempts = 0
        while True:
            if self.stop.is_set():
                raise EndpointError(self.url, "abandoned because another request failed", attempts=attempts)
            attempts += 1
            self.usage.add(requests=1)
            try:
                return self._post_once(data, attempts)
            except _Retryable as failure:
                if attempts > self.config.max_retries:
                    raise EndpointError(self.url, failure.reason, status=failure.status, attempts=attempts,
                                        server_message=failure.server_message) from failure
                self.usage.add(retries=1)
                if failure.retry_after is not None:
                    delay = min(failure.retry_after, MAX_RETRY_AFTER)
                else:
                    delay = min(self.config.backoff * 2 ** (attempts - 1) * _jitter.uniform(0.5, 1.5), MAX_BACKOFF)
                if self.stop.wait(delay):
                    raise EndpointError(self.url, "abandoned because another request failed", attempts=attempts) \
                        from failure

    def _post_once(self, data: bytes, attempts: int) -> list[str]:
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        deadline = time.monotonic() + self.config.timeout
        try:
            with self.opener.open(request, timeout=self.config.timeout) as response:
                status = response.status
                raw = _read_until(response, deadline)
        except urllib.error.HTTPError as error:
            status = error.code
            try:
                raw = _read_until(error, deadline)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                error.close()
            message = _server_message(raw)
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status} {error.reason}", status=status, server_message=message,
                                 retry_after=_retry_after(error.headers.get("Retry-After"))) from None
            if 300 <= status < 400:
                location = error.headers.get("Location")
                raise EndpointError(self.url, f"redirected to {location!r}; set base_url to the final address",
                                    status=status, attempts=attempts) from None
            raise EndpointError(self.url, f"HTTP {status} {error.reason}", status=status, attempts=attempts,
                                server_message=message) from None
        except urllib.error.URLError as error:
            cause = error.reason
            kind = "timed out" if isinstance(cause, TimeoutError) else "connection error"
            raise _Retryable(f"{kind}: {cause!r}") from error
        except TimeoutError as error:
            raise _Retryable(f"timed out after {self.config.timeout} s: {error!r}") from error
        except (OSError, http.client.HTTPException) as error:
            raise _Retryable(f"connection error: {error!r}") from error
        texts, usage = _parse_response(raw, self.url, status, attempts)
        self.usage.add(**usage)
        return texts


def _read_until(response: Any, deadline: float) -> bytes:
    """Read the whole body; the socket timeout bounds each read, the deadline bounds the total (a trickling server)."""
    chunks = []
    while True:
        chunk = response.read(_READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("reading the response took longer than the timeout")


def _parse_response(raw: bytes, url: str, status: int, attempts: int) -> tuple[list[str], dict[str, int]]:
    """The choice texts (in choice-index order) and token usage of a 2xx body; EndpointError when malformed."""
    def malformed(what: str) -> EndpointError:
        snippet = raw[:_MAX_MESSAGE_CHARS].decode("utf-8", "replace")
        return EndpointError(url, f"malformed response body ({what})", status=status, attempts=attempts,
                             server_message=snippet or "<empty body>")

    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise malformed(f"not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise malformed("not a JSON object")
    if "choices" not in payload:
        if "error" in payload:  # some servers report errors with HTTP 200
            raise EndpointError(url, "the server returned an error object instead of choices", status=status,
                                attempts=attempts, server_message=_server_message(raw))
        raise malformed("missing 'choices'")
    choices = payload["choices"]
    if not isinstance(choices, list):
        raise malformed("'choices' is not a list")
    indexed = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise malformed(f"choices[{position}] has no 'message' object")
        message = choice["message"]
        if "content" not in message:
            raise malformed(f"choices[{position}].message has no 'content'")
        content = message["content"]
        if content is None:
            # The schema allows null content (e.g. a reasoning model that spent all max_tokens on its hidden reasoning,
            # or a refusal): count it as an empty answer rather than failing the whole batch.
            content = ""
        if not isinstance(content, str):
            raise malformed(f"choices[{position}].message.content is {type(content).__name__}, not a string")
        index = choice.get("index", position)
        indexed.append((index if isinstance(index, int) else position, position, content))
    indexed.sort()
    usage = {}
    reported = payload.get("usage")
    if isinstance(reported, dict):  # optional in several servers; ignore it when absent or odd
        for key in ("prompt_tokens", "completion_tokens"):
            value = reported.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                usage[key] = value
    return [content for _, _, content in indexed], usage


def _server_message(raw: bytes) -> str | None:
    """The human-readable error message in an error body (OpenAI, vLLM, FastAPI and llama.cpp shapes), else the text."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text[:_MAX_MESSAGE_CHARS]
    message: Any = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or payload.get("message") or payload.get("detail")
    if not isinstance(message, str):
        message = text if message is None else json.dumps(message, ensure_ascii=False)
    return message[:_MAX_MESSAGE_CHARS]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _progress_bar(total: int, config: EndpointConfig) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety: no tqdm, no bar
        return None
    return tqdm(total=total, desc=f"pivot {config.model}", unit="prompt")
