"""The one HTTP client of pivotrl: JSON over HTTP(S) with retries, an API key, and no surprises.

Every stage that talks to a server goes through :class:`JSONClient`: the OpenAI-compatible API
(:mod:`pivotrl.openai_api`, under the pivot's endpoint backend and evaluation through a server) and the reward
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
    therefore costs ``connect_timeout`` per attempt, not ``timeout``. ``deadline`` (seconds from the client's
    creation, default none) bounds everything the client does: no attempt runs and no retry waits past it, and a
    request then fails with ``kind="deadline"``; a server that accepts connections and never answers costs at most
    ``min(deadline, (max_retries + 1) * timeout + the waits)``.

Activity
    :meth:`JSONClient.activity` says how many requests are in flight, how many attempts were retried and why the
    last one was: what a progress display shows while no answer arrives.

API key
    Sent as ``Authorization: Bearer <key>`` when given. The client never puts it in an exception or a log line, and a
    server message that echoes it (a key of 8 characters or more) has it replaced with ``***``.

Loopback
    :func:`is_loopback` is the one rule for "this machine": the name ``localhost`` (any case, with or without a
    trailing dot), IPv4 ``127.0.0.0/8``, IPv6 ``::1`` and IPv4-mapped ``::ffff:127.0.0.0/104``. Other names (also
    ``*.localhost``) are not trusted to resolve to loopback, and ``0.0.0.0`` / ``::`` mean every interface. Requests
    to a loopback host bypass any ``HTTP(S)_PROXY`` of the environment (a proxy can never reach our own loopback
    server); the reward server requires an API key whenever it listens beyond loopback.
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
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Activity",
    "HTTPRequestError",
    "JSONClient",
    "JSONResponse",
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
    was expected; ``"cancelled"``: :attr:`JSONClient.cancel` was set; ``"deadline"``: the client's deadline passed)
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
        if attempts:
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


@dataclass(frozen=True)
class Activity:
    """What a client is doing: requests ``in_flight`` (in an attempt or waiting to retry), attempts ``retried`` so
    far, and the reason of the last retry (None before the first)."""

    in_flight: int = 0
    retried: int = 0
    last_retry: str | None = None


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
                 user_agent: str = USER_AGENT, retry_log_level: int = logging.INFO,
                 deadline: float | None = None) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL like 'http://127.0.0.1:8000/v1', got {base_url!r}")
        if not timeout > 0 or not connect_timeout > 0:
            raise ValueError(f"timeouts must be > 0 seconds, got timeout={timeout}, connect_timeout={connect_timeout}")
        if max_retries < 0 or backoff < 0:
            raise ValueError(f"max_retries and backoff must be >= 0, got {max_retries} and {backoff}")
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be > 0 seconds (or None: no deadline), got {deadline}")
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
        self.deadline = None if deadline is None else float(deadline)  # seconds, as given
        self.deadline_at = None if deadline is None else time.monotonic() + float(deadline)  # time.monotonic()
        self._activity = Activity()
        self._activity_lock = threading.Lock()
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

    def activity(self) -> Activity:
        """Requests in flight, attempts retried and the last retry's reason, across every thread."""
        with self._activity_lock:
            return self._activity

    def _note(self, in_flight: int = 0, retry: str | None = None) -> None:
        with self._activity_lock:
            a = self._activity
            self._activity = Activity(a.in_flight + in_flight, a.retried + (retry is not None),
                                      retry if retry is not None else a.last_retry)

    def remaining(self) -> float | None:
        """Seconds left before the deadline (0 when it passed); None without one."""
        return None if self.deadline_at is None else max(0.0, self.deadline_at - time.monotonic())

    def request(self, method: str, path: str = "", body: Any = None) -> JSONResponse:
        self._note(in_flight=1)
        try:
            return self._request(method, path, body)
        finally:
            self._note(in_flight=-1)

    def _request(self, method: str, path: str, body: Any) -> JSONResponse:
        url = self.url(path)
        data = None if body is None else _encode(body)
        started = time.monotonic()
        attempts = 0
        failure: _Retryable | None = None
        while True:
            if self.cancel.is_set():
                raise HTTPRequestError(url, "cancelled before the request could complete", method=method,
                                       attempts=attempts, kind="cancelled", seconds=time.monotonic() - started)
            if self.remaining() == 0:
                last = f" (the last attempt: {failure.reason})" if failure is not None else ""
                raise HTTPRequestError(url, f"the deadline of {self.deadline:g} s passed{last}", method=method,
                                       status=failure.status if failure else None, attempts=attempts,
                                       server_message=failure.server_message if failure else None, kind="deadline",
                                       seconds=time.monotonic() - started)
            attempts += 1
            try:
                return self._once(method, url, data, attempts)
            except _Retryable as caught:
                failure = caught
                if attempts > self.max_retries:
                    raise HTTPRequestError(url, failure.reason, method=method, status=failure.status,
                                           attempts=attempts, server_message=failure.server_message,
                                           kind="exhausted", seconds=time.monotonic() - started) from failure
                delay = self._delay(attempts, failure)
                remaining = self.remaining()
                if remaining is not None:
                    delay = min(delay, remaining)
                self._note(retry=failure.reason)
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
        remaining = self.remaining()
        timeout = self.timeout if remaining is None else max(0.01, min(self.timeout, remaining))
        deadline = time.monotonic() + timeout
        try:
            with self._opener.open(request, timeout=timeout) as response:
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
