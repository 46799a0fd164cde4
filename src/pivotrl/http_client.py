"""The one HTTP client of pivotrl: JSON over HTTP(S) with retries, an API key, and no surprises.

Every stage that talks to a server goes through :class:`JSONClient`: the pivot's OpenAI-compatible backend
(:mod:`pivotrl.pivot.endpoint`), evaluation through a server (:mod:`pivotrl.evaluation.endpoint`) and the reward
server's client (:class:`pivotrl.rewards.client.RewardClient`). This module imports nothing from the stages.

Only the standard library is used (``urllib``): ``httpx`` is not installed in the project's environment, and one
blocking request per worker thread needs nothing more. One client may be shared by many threads.

Retry policy
    Connection errors, timeouts, HTTP 429 and HTTP 5xx are retried up to ``max_retries`` times. The wait before
    retry k (k = 1, 2, ...) is ``backoff * 2**(k-1) * uniform(0.5, 1.5)``, capped at ``max_backoff``; a
    ``Retry-After`` header (seconds or an HTTP date) replaces it, capped at ``max_retry_after``. A connection
    *refused* by a loopback host waits at most :data:`REFUSED_LOOPBACK_WAIT` instead: nothing listens on that
    port, so a run fails in seconds rather than minutes (start the server first, or wait for its health check).
    Any other 4xx, a redirect (never followed: urllib would turn a POST into a body-less GET) or a 2xx body that is
    not JSON raises :class:`HTTPRequestError` at once: retrying a bad request only wastes time.

Timeouts
    ``connect_timeout`` bounds opening the connection (TCP and TLS); ``timeout`` bounds each request as a whole
    (waiting for the answer and reading it, however slowly the server trickles it). A host that drops packets
    therefore costs ``connect_timeout`` per attempt, not ``timeout``.

API key
    Sent as ``Authorization: Bearer <key>`` when given. The client never puts it in an exception or a log line, and a
    server message that echoes it (a key of 8 characters or more) has it replaced with ``***``.

Loopback
    :func:`is_loopback` is the one rule for "this machine": the name ``localhost`` (any case, with or without a
    trailing dot), IPv4 ``127.0.0.0/8``, IPv6 ``::1`` and IPv4-mapped ``::ffff:127.0.0.0/104``. Other names (also
    ``*.localhost``) are not trusted to resolve to loopback, and ``0.0.0.0`` / ``::`` mean every interface. Requests
    to a loopback host bypass any ``HTTP(S)_PROXY`` of the environment (a proxy can never reach our own loopback
    server); the reward server requires an API key whenever it listens beyond loopback.

The second half of the module speaks the OpenAI-compatible completions schema that vLLM, SGLang, llama.cpp's
``llama-server``, TGI and hosted APIs share: :class:`OpenAICompletions` sends ``/chat/completions`` (messages) or
``/completions`` (a raw prompt) and collects ``n`` choices, topping up from servers that ignore ``n``.
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import ipaddress
import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Completion",
    "HTTPRequestError",
    "JSONClient",
    "JSONResponse",
    "OpenAICompletions",
    "is_loopback",
    "server_message",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BACKOFF = 30.0  # seconds: cap of the exponential backoff
DEFAULT_MAX_RETRY_AFTER = 120.0  # seconds: cap of a Retry-After (a server asking for an hour must not hang a run)
REFUSED_LOOPBACK_WAIT = 0.5  # seconds: cap of the wait after a loopback host refused the connection
MAX_MESSAGE_CHARS = 500  # server messages quoted in exceptions are cut to this length
USER_AGENT = "pivotrl-http/1"
_READ_CHUNK = 64 * 1024
_jitter = random.Random()


# ------------------------------------------------------------------------------------------------ loopback


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) surely means this machine.

    True for ``localhost`` (any case, optional trailing dot), ``127.0.0.0/8``, ``::1`` and IPv4-mapped
    ``::ffff:127.x.y.z``. False for everything else, including ``""``, ``0.0.0.0``, ``::`` (every interface) and
    names such as ``app.localhost`` whose resolution depends on the resolver.
    """
    if not host:
        return False
    host = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone ("::1%lo") does not matter here
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


# ------------------------------------------------------------------------------------------------ errors


class HTTPRequestError(RuntimeError):
    """A request failed for good: at once (4xx, redirect, a body that is not JSON) or after its retries.

    Attributes: ``url``, ``method``, ``reason`` (what went wrong, e.g. ``"HTTP 400 Bad Request"`` or
    ``"connection error: ..."``), ``status`` (the HTTP status when there was a response), ``attempts``,
    ``server_message`` (the server's own words, cut to 500 characters, an echoed API key removed), ``kind``
    (``"status"``: an error status not retried; ``"exhausted"``: retryable failures until the retries ran out;
    ``"unreachable"``: the host name does not resolve; ``"redirect"``; ``"malformed"``: a 2xx body that is not what
    was expected; ``"cancelled"``: :attr:`JSONClient.cancel` was set)
    and ``seconds`` (from the first attempt to the failure).
    """

    def __init__(self, url: str, reason: str, *, method: str = "POST", status: int | None = None,
                 attempts: int = 1, server_message: str | None = None, kind: str = "status",
                 seconds: float = 0.0, subject: str | None = None) -> None:
        self.url = url
        self.method = method
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.server_message = server_message
        self.kind = kind
        self.seconds = seconds
        text = f"{subject or f'{method} {url}'} failed"  # subject: what the caller calls the request
        if status is not None:
            text += f" (HTTP {status})"
        text += f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if kind == "exhausted" and attempts > 1:
            text += f" in {seconds:.1f} s"
        text += f": {reason}"
        if server_message:
            text += f"; server said: {server_message}"
        super().__init__(text)


class _Retryable(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, *, status: int | None = None, server_message: str | None = None,
                 retry_after: float | None = None, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.server_message = server_message
        self.retry_after = retry_after
        self.refused = refused


# ------------------------------------------------------------------------------------------------ the client


@dataclass
class JSONResponse:
    """A 2xx answer: its decoded JSON ``data``, the ``raw`` body, and how many ``attempts`` it took."""

    url: str
    status: int
    data: Any
    raw: bytes
    attempts: int


class JSONClient:
    """JSON requests to one server (``base_url``; a request's ``path`` is appended to it), retried as the module
    docstring says. Thread-safe: share one client between worker threads. Setting :attr:`cancel` (a
    ``threading.Event``) makes every request give up before its next attempt, and cuts a retry wait short.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 connect_timeout: float = 10.0, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = DEFAULT_MAX_BACKOFF, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
                 user_agent: str = USER_AGENT, retry_log_level: int = logging.INFO) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL like 'http://127.0.0.1:8000/v1', got {base_url!r}")
        if not timeout > 0 or not connect_timeout > 0:
            raise ValueError(f"timeouts must be > 0 seconds, got timeout={timeout}, connect_timeout={connect_timeout}")
        if max_retries < 0 or backoff < 0:
            raise ValueError(f"max_retries and backoff must be >= 0, got {max_retries} and {backoff}")
        self.base_url = base_url
        self.host = parts.hostname or ""
        self.loopback = is_loopback(self.host)
        self.timeout = float(timeout)
        self.connect_timeout = min(float(connect_timeout), self.timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self.cancel = threading.Event()
        self.retry_log_level = retry_log_level  # each retry is logged at this level (the final error says it all)
        self._api_key = api_key or None
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": user_agent}
        if self._api_key:
            self._headers["Authorization"] = f"Bearer {self._api_key}"
        handlers: list[urllib.request.BaseHandler] = [
            _NoRedirect(),
            _QuickConnectHTTP(self.connect_timeout),
            _QuickConnectHTTPS(self.connect_timeout),
        ]
        if self.loopback:
            handlers.append(urllib.request.ProxyHandler({}))  # no proxy can reach this machine's loopback
        self._opener = urllib.request.build_opener(*handlers)

    def url(self, path: str = "") -> str:
        return self.base_url.rstrip("/") + path if path else self.base_url

    def post(self, path: str, body: Any) -> JSONResponse:
        """POST ``body`` as JSON to ``base_url + path``; the decoded 2xx answer."""
        return self.request("POST", path, body)

    def get(self, path: str = "") -> JSONResponse:
        return self.request("GET", path)

    def request(self, method: str, path: str = "", body: Any = None) -> JSONResponse:
        url = self.url(path)
        data = None if body is None else _encode(body)
        started = time.monotonic()
        attempts = 0
        while True:
            if self.cancel.is_set():
                raise HTTPRequestError(url, "cancelled before the request could complete", method=method,
                                       attempts=attempts, kind="cancelled", seconds=time.monotonic() - started)
            attempts += 1
            try:
                return self._once(method, url, data, attempts)
            except _Retryable as failure:
                if attempts > self.max_retries:
                    raise HTTPRequestError(url, failure.reason, method=method, status=failure.status,
                                           attempts=attempts, server_message=failure.server_message,
                                           kind="exhausted", seconds=time.monotonic() - started) from failure
                delay = self._delay(attempts, failure)
                logger.log(self.retry_log_level, "%s %s: %s (attempt %d of %d); retrying in %.2f s", method, url,
                           failure.reason, attempts, self.max_retries + 1, delay)
                if self.cancel.wait(delay):
                    raise HTTPRequestError(url, "cancelled while waiting to retry", method=method, attempts=attempts,
                                           kind="cancelled", seconds=time.monotonic() - started) from failure

    def _delay(self, attempts: int, failure: _Retryable) -> float:
        if failure.retry_after is not None:
            return min(failure.retry_after, self.max_retry_after)
        delay = min(self.backoff * 2 ** (attempts - 1) * _jitter.uniform(0.5, 1.5), self.max_backoff)
        if failure.refused and self.loopback:
            delay = min(delay, REFUSED_LOOPBACK_WAIT)
        return delay

    def _once(self, method: str, url: str, data: bytes | None, attempts: int) -> JSONResponse:
        request = urllib.request.Request(url, data=data, headers=self._headers, method=method)
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
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
            message = self._scrub(server_message(raw))
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status} {error.reason}", status=status, server_message=message,
                                 retry_after=_retry_after(error.headers.get("Retry-After"))) from None
            if 300 <= status < 400:
                location = error.headers.get("Location")
                raise HTTPRequestError(url, f"redirected to {location!r} (redirects are not followed; use the "
                                       "final address)", method=method, status=status, attempts=attempts,
                                       kind="redirect") from None
            raise HTTPRequestError(url, f"HTTP {status} {error.reason}", method=method, status=status,
                                   attempts=attempts, server_message=message) from None
        except urllib.error.URLError as error:
            raise self._no_answer(error.reason, method, url, attempts) from error
        except (OSError, http.client.HTTPException) as error:
            raise self._no_answer(error, method, url, attempts) from error
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            snippet = self._scrub(raw[:MAX_MESSAGE_CHARS].decode("utf-8", "replace")) or "<empty body>"
            raise HTTPRequestError(url, f"malformed response body (not JSON: {error})", method=method, status=status,
                                   attempts=attempts, server_message=snippet, kind="malformed") from None
        return JSONResponse(url=url, status=status, data=payload, raw=raw, attempts=attempts)

    def _no_answer(self, cause: Any, method: str, url: str, attempts: int) -> Exception:
        """The retryable failure of an attempt that got no answer; final for a host name that does not resolve."""
        if isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN:
            return HTTPRequestError(url, f"cannot resolve host {self.host!r}: {cause}", method=method,
                                    attempts=attempts, kind="unreachable")  # asking again gives the same answer
        if isinstance(cause, TimeoutError):
            return _Retryable(f"timed out (connect timeout {self.connect_timeout:g} s, request timeout "
                              f"{self.timeout:g} s): {cause!r}")
        refused = isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED
        reason = f"connection error: {cause!r}"
        if refused:
            reason += " (nothing listens there: is the server running?)"
        return _Retryable(reason, refused=refused)

    def _scrub(self, text: str | None) -> str | None:
        # A key short enough to be an ordinary word ("wrong" in a test) is left alone: it would mangle messages.
        if text and self._api_key and len(self._api_key) >= 8 and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib calls this; None = do not follow
        return None


def _quick_connect(base: type[http.client.HTTPConnection], connect_timeout: float) -> Any:
    """A connection class whose connect (TCP, proxy tunnel, TLS handshake) is bounded by ``connect_timeout``;
    reads keep the request's own timeout."""

    class Connection(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            request_timeout = self.timeout
            if isinstance(request_timeout, (int, float)):
                self.timeout = min(connect_timeout, request_timeout)
            try:
                super().connect()
            finally:
                self.timeout = request_timeout
            if self.sock is not None and isinstance(request_timeout, (int, float)):
                self.sock.settimeout(request_timeout)

    return Connection


class _QuickConnectHTTP(urllib.request.HTTPHandler):
    def __init__(self, connect_timeout: float) -> None:
        super().__init__()
        self._connection = _quick_connect(http.client.HTTPConnection, connect_timeout)

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)


class _QuickConnectHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, connect_timeout: float) -> None:
        super().__init__()
        self._connection = _quick_connect(http.client.HTTPSConnection, connect_timeout)

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req, context=self._context)


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: send them escaped instead
        return json.dumps(body).encode("ascii")


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


def server_message(raw: bytes) -> str | None:
    """The human-readable message of an error body (OpenAI, vLLM, FastAPI, llama.cpp and pivotrl's own
    ``{"error": "..."}`` shapes), else the body's text; cut to 500 characters; None for an empty body."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text[:MAX_MESSAGE_CHARS]
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
    return message[:MAX_MESSAGE_CHARS]


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


# ------------------------------------------------------------------------------------------------ OpenAI schema


@dataclass
class Completion:
    """The ``n`` choice texts of one prompt, with what it cost.

    ``tokens[i]`` is the completion-token count of ``texts[i]`` from the server's ``usage``: exact when its request
    returned one choice; when a request returned several, the request's ``completion_tokens`` split over its
    choices in proportion to their lengths in characters (the counts still add up); None when the server reported
    no usage. ``finish_reasons[i]`` is the choice's ``finish_reason`` (``"stop"``, ``"length"``: cut at
    ``max_tokens``, ...), None when the server gave none. ``prompt_tokens`` / ``completion_tokens`` sum the
    reported usage; ``requests`` counts HTTP attempts (failed ones included), ``retries`` the retried ones,
    ``topup_requests`` the extra requests made because the server returned fewer than ``n`` choices.
    """

    texts: list[str] = field(default_factory=list)
    tokens: list[int | None] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0
    topup_requests: int = 0


class OpenAICompletions:
    """Completions from an OpenAI-compatible server through a :class:`JSONClient` whose ``base_url`` is the API
    root (``http://host:port/v1``).

    ``chat=True`` posts ``{base}/chat/completions`` with ``messages`` (the server applies its own chat template);
    ``chat=False`` posts ``{base}/completions`` with the raw ``prompt`` text. ``path`` overrides the path
    (``""``: the base URL is already the full endpoint URL). Malformed answers raise :class:`HTTPRequestError`
    with ``kind="malformed"`` and say what is wrong.
    """

    def __init__(self, client: JSONClient, model: str, *, chat: bool = True, path: str | None = None) -> None:
        self.client = client
        self.model = model
        self.chat = chat
        self.path = ("/chat/completions" if chat else "/completions") if path is None else path

    @property
    def url(self) -> str:
        return self.client.url(self.path)

    def complete(self, prompt: list[dict] | str, *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                 max_tokens: int = 512, seed: int | None = None, stop: Sequence[str] | None = None) -> Completion:
        """``n`` choice texts for one prompt (messages for chat, text otherwise).

        Body: ``model, messages|prompt, n, temperature, top_p, max_tokens`` and ``seed`` / ``stop`` when given.
        Some servers (llama.cpp's server, several hosted APIs) ignore ``n > 1`` and return one choice: the missing
        ones are asked for again, each follow-up with the next seed (``seed + k``), or a sampling server with a
        fixed seed would return the very same text.
        """
        result = Completion()
        request_number = 0
        while len(result.texts) < n:
            body: dict[str, Any] = {"model": self.model, ("messages" if self.chat else "prompt"): prompt,
                                    "n": n - len(result.texts), "temperature": temperature, "top_p": top_p,
                                    "max_tokens": max_tokens}
            if seed is not None:
                body["seed"] = seed + request_number
            if stop:
                body["stop"] = list(stop)
            if request_number > 0:
                result.topup_requests += 1
            response = self.client.post(self.path, body)
            result.requests += response.attempts
            result.retries += response.attempts - 1
            texts, reasons, usage = self._parse(response)
            if not texts:
                raise HTTPRequestError(response.url, "the response has an empty 'choices' list", status=response.status,
                                       attempts=response.attempts, kind="malformed")
            kept = texts[: n - len(result.texts)]
            result.texts.extend(kept)
            result.finish_reasons.extend(reasons[: len(kept)])
            result.tokens.extend(_split_tokens(kept, texts, usage.get("completion_tokens")))
            result.prompt_tokens += usage.get("prompt_tokens", 0)
            result.completion_tokens += usage.get("completion_tokens", 0)
            request_number += 1
        return result

    def _parse(self, response: JSONResponse) -> tuple[list[str], list[str | None], dict[str, int]]:
        """The choice texts and finish reasons (in choice-index order) and token usage of a 2xx answer."""
        payload = response.data

        def malformed(what: str) -> HTTPRequestError:
            snippet = response.raw[:MAX_MESSAGE_CHARS].decode("utf-8", "replace")
            return HTTPRequestError(response.url, f"malformed response body ({what})", status=response.status,
                                    attempts=response.attempts, server_message=snippet or "<empty body>",
                                    kind="malformed")

        if not isinstance(payload, dict):
            raise malformed("not a JSON object")
        if "choices" not in payload:
            if "error" in payload:  # some servers report errors with HTTP 200
                raise HTTPRequestError(response.url, "the server returned an error object instead of choices",
                                       status=response.status, attempts=response.attempts,
                                       server_message=server_message(response.raw), kind="malformed")
            raise malformed("missing 'choices'")
        choices = payload["choices"]
        if not isinstance(choices, list):
            raise malformed("'choices' is not a list")
        indexed = []
        for position, choice in enumerate(choices):
            if self.chat:
                if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
                    raise malformed(f"choices[{position}] has no 'message' object")
                holder, key, where = choice["message"], "content", f"choices[{position}].message"
            else:
                if not isinstance(choice, dict):
                    raise malformed(f"choices[{position}] is not an object")
                holder, key, where = choice, "text", f"choices[{position}]"
            if key not in holder:
                raise malformed(f"{where} has no '{key}'")
            content = holder[key]
            if content is None:
                # The schema allows null content (e.g. a reasoning model that spent all max_tokens on its hidden
                # reasoning, or a refusal): an empty answer, not a failed batch.
                content = ""
            if not isinstance(content, str):
                raise malformed(f"{where}.{key} is {type(content).__name__}, not a string")
            index = choice.get("index", position)
            reason = choice.get("finish_reason")
            indexed.append((index if isinstance(index, int) else position, position, content,
                            reason if isinstance(reason, str) else None))
        indexed.sort()
        usage: dict[str, int] = {}
        reported = payload.get("usage")
        if isinstance(reported, dict):  # optional in several servers; ignored when absent or odd
            for key in ("prompt_tokens", "completion_tokens"):
                value = reported.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    usage[key] = value
        return [content for _, _, content, _ in indexed], [reason for *_, reason in indexed], usage


def _split_tokens(kept: list[str], returned: list[str], total: int | None) -> list[int | None]:
    """Per kept text, its share of the request's completion tokens (see :class:`Completion`)."""
    if total is None:
        return [None] * len(kept)
    if len(returned) == 1:
        return [total] * len(kept)
    chars = [max(1, len(text)) for text in returned]
    shares = [total * c / sum(chars) for c in chars]
    counts = [int(s) for s in shares]
    # Largest remainders get the tokens left over, so the counts add up to the reported total.
    for i in sorted(range(len(shares)), key=lambda i: counts[i] - shares[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts[: len(kept)]
