"""An HTTP reward server: one loaded reward per node, shared by every trainer worker that calls it.

The composed reward (:mod:`pivotrl.rewards.compose`) loads an encoder and calibrates it once; a trainer with
many rollout workers should not do that in every worker. :class:`RewardServer` loads the reward once and
serves it over plain HTTP (stdlib ``http.server``: no extra dependency), batching the requests of all
callers dynamically so the encoder sees large batches. :class:`pivotrl.rewards.client.RewardClient` is the
matching client.

HTTP contract (JSON bodies, UTF-8; every error is ``{"error": "..."}`` with a 4xx/5xx status)::

    POST /score        {"items": [{"response": str, "reference": str, "reference_answer": str | null,
                                   "lang": str, "answer_type": "number" | "choice" | null,
                                   "question": str | null}, ...]}
                       (or one item object on its own, without "items")
                    -> {"scores": [{"score": float, "gate": float, "components": {name: float}}, ...]}
    POST /get_reward   OpenRLHF's remote reward contract (``--remote_rm_url http://host:port/get_reward``):
                       {"query": [prompt + response], "prompts": [prompt], "labels": [label]}
                    -> {"rewards": [float], "scores": [float], "extra_logs": {component: [float], "gate": [...]}}
    GET  /health    -> {"status": "ok", "reward": name, "components": [...], "queue": items waiting,
                        "served": items scored, "requests": n, "batches": n, "mean_batch": x, ...}
    GET  /config    -> the reward's RewardConfig as a dict

Items: ``response`` (the policy's answer, in language ``lang``), ``reference`` (the English pivot reference
text) and ``lang`` (an ISO code or any name :func:`pivotrl.languages.get_language` knows) are required;
``reference_answer`` (the reference's final answer, e.g. "18" or "B"; a number is accepted too) defaults to
reading the answer from ``reference`` when null, absent or empty (as the CLI's ``reward score`` does);
``answer_type`` defaults to "number"; ``question`` (the question in language ``lang``, optional) reaches the
components that read it (a reference judge). Other keys (``problem_id``, ...) are ignored.

OpenRLHF ``labels``: OpenRLHF passes the dataset's label column as strings, so each label is a JSON object
*string* with the item fields except the response, e.g.
``"{\"reference\": \"... The answer is 18.\", \"reference_answer\": \"18\", \"lang\": \"de\"}"`` (a label
that is already an object is accepted too). The response is ``query[i]`` with the ``prompts[i]`` prefix
removed (when ``query[i]`` starts with it; otherwise the whole query is scored). ``rewards`` and ``scores``
are both the composed totals; ``extra_logs`` holds every component and the gate, which OpenRLHF logs.

Dynamic batching: request handler threads validate their request, put its items on a queue with a future
and wait. One worker thread takes the first waiting request, then keeps collecting requests until it holds
``max_batch`` items or ``max_wait_ms`` have passed since the first one was queued (requests that queued up
while the previous batch was being scored are taken at once), and scores the whole batch in one
``reward.score(...)`` call. If that call raises (a set-up error that slipped past validation), each request
of the batch is scored on its own, so only the faulty request fails. Results of identical items are kept
in an LRU cache (``cache_size`` items; 0 disables it): the reward is deterministic per item, and identical
responses (degenerate outputs, client retries) are common in RL.

Validation happens before queueing: non-JSON body 400; body over ``max_body_bytes`` 413 (by
Content-Length; a missing Content-Length is 411); ``items`` missing, not a list or empty 400, more than
``max_items`` 413; a field of the wrong type 400 naming it (``items[3].lang: expected a string``); an
unknown language 400 naming it; unknown path 404; wrong method 405.

Start it with ``pivotrl reward serve`` (which calls :func:`serve`), or in Python::

    server = RewardServer("hybrid", port=0)
    port = server.start()                # loads and warms the reward, serves in background threads
    RewardClient(server.url).score(["Die Antwort lautet 18."], ["... The answer is 18."], langs="de")
    server.stop()                        # stops accepting, finishes queued work
"""

from __future__ import annotations

import hmac
import http
import json
import logging
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pivotrl.http_client import is_loopback
from pivotrl.records import RewardInput
from pivotrl.rewards.client import ENV_API_KEY
from pivotrl.rewards.batching import Batcher, RequestError, score_items
from pivotrl.rewards.compose import ComposedReward, RewardConfig, build_reward
from pivotrl.rewards.payloads import check_lengths, openrlhf_request, parse_item, score_request
from pivotrl.text_files import json_value

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_ITEM_CHARS",
    "DEFAULT_MAX_WAIT_MS",
    "RequestError",
    "RewardInput",
    "RewardServer",
    "parse_item",
    "serve",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_WAIT_MS = 10.0
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_ITEMS = 4096
# Scoring cost grows with the text (a 7 MB response took 14 s of the one scoring thread); a GRPO completion of
# 8k tokens is about 40k characters, so this only refuses text no trainer produces.
DEFAULT_MAX_ITEM_CHARS = 100_000
DEFAULT_CACHE_SIZE = 16384
DEFAULT_REQUEST_TIMEOUT = 600.0
PATHS = {"/score": ("POST",), "/get_reward": ("POST",), "/health": ("GET",), "/config": ("GET",)}

# ------------------------------------------------------------------------------------------ HTTP server


def _authorized(headers: Any, key: str) -> bool:
    given = headers.get("Authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else headers.get("X-API-Key", "")
    return hmac.compare_digest(token.encode("utf-8", "surrogateescape"), key.encode("utf-8", "surrogateescape"))



class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 2048
    allow_reuse_address = True
    app: RewardServer


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections (requests.Session)
    server_version = "pivotrl-reward/1"
    timeout = 120  # seconds a connection may sit idle or stall mid-request
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    def _any_method(self) -> None:
        self._dispatch(self.command)  # the request line's method, as the stdlib parsed it

    # every method goes to one dispatcher, which answers 405 for the ones a route does not take
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _any_method  # noqa: N815

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors the stdlib raises itself (malformed request line, headers too long, ...): JSON bodies too."""
        logger.warning("%s -> %d: %s", (self.requestline or "?")[:200], code, message or explain or "")
        self.close_connection = True
        try:
            self._send(code, {"error": message or explain or http.HTTPStatus(code).phrase})
        except OSError:
            pass

    # -- plumbing

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        app._enter()
        self._body_done = method not in ("POST", "PUT", "PATCH")
        try:
            path = urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"
            allowed = PATHS.get(path)
            if allowed is None:
                raise RequestError(404, f"no such path {path!r}; paths: " + ", ".join(
                    f"{m} {p}" for p, ms in PATHS.items() for m in ms))
            if method not in allowed:
                raise RequestError(405, f"{method} is not allowed on {path}; use {' or '.join(allowed)}")
            if app.api_key is not None and not _authorized(self.headers, app.api_key):
                raise RequestError(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'")
            if path == "/health":
                self._send(200, app.health())
            elif path == "/config":
                self._send(200, app.reward.config.to_dict())
            elif path == "/score":
                items = score_request(self._read_json(), app.max_items)
                check_lengths(items, app.max_item_chars)
                self._send(200, {"scores": app._wait(items)})
            else:
                items = openrlhf_request(self._read_json(), app.max_items)
                check_lengths(items, app.max_item_chars)
                results = app._wait(items)
                totals = [r["score"] for r in results]
                logs: dict[str, list[float]] = {name: [r["components"][name] for r in results]
                                                for name in (results[0]["components"] if results else {})}
                logs["gate"] = [r["gate"] for r in results]
                self._send(200, {"rewards": totals, "scores": list(totals), "extra_logs": logs})
        except RequestError as exc:
            app._count_error()
            logger.warning("%s %s -> %d: %s", method, self.path[:200], exc.status, exc.message[:500])
            self._drain_body()
            self._send_quietly(exc.status, {"error": exc.message}, allow=PATHS.get(
                urllib.parse.urlsplit(self.path).path.rstrip("/")) if exc.status == 405 else None)
        except (ConnectionError, TimeoutError, socket.timeout) as exc:
            app._count_error()
            logger.warning("%s %s: connection lost (%s)", method, self.path[:200], type(exc).__name__)
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - never let a handler thread die silently
            app._count_error()
            logger.error("%s %s -> 500: %s: %s", method, self.path[:200], type(exc).__name__, exc)
            self._send_quietly(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})
        finally:
            app._leave()

    def _drain_body(self) -> None:
        """Before an error answer: read an unread request body, so the client is not reset mid-upload."""
        if getattr(self, "_body_done", False):
            return
        self._body_done = True
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if length > 0:
            self._discard(length)

    def _read_json(self) -> Any:
        app = self.server.app
        self._body_done = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "chunked request bodies are not supported: send a Content-Length")
        header = self.headers.get("Content-Length")
        if header is None:
            raise RequestError(411, "a Content-Length header is required")
        try:
            length = int(header)
        except ValueError:
            raise RequestError(400, f"bad Content-Length {header[:40]!r}") from None
        if length < 0:
            raise RequestError(400, f"bad Content-Length {header[:40]!r}")
        if length > app.max_body_bytes:
            self._discard(length)
            raise RequestError(413, f"request body of {length} bytes is larger than the limit of "
                                    f"{app.max_body_bytes} bytes; split it into smaller requests")
        raw = self.rfile.read(length)
        if len(raw) < length:
            raise RequestError(400, f"body ended after {len(raw)} of {length} bytes")
        try:
            return json_value(raw)  # a too-deeply nested body is a JSONDecodeError too
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RequestError(400, f"body is not valid JSON: {exc}") from None

    def _discard(self, length: int) -> None:
        """Read (and drop) a too-large body, so the client reads our 413 instead of a connection reset."""
        self.close_connection = True
        limit = 4 * self.server.app.max_body_bytes
        if length > limit:
            return
        try:
            self.connection.settimeout(2.0)
            left = length
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _send(self, status: int, body: Any, *, allow: Sequence[str] | None = None) -> None:
        data = json.dumps(body, allow_nan=False).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if allow:
            self.send_header("Allow", ", ".join(allow))
        if status >= 400:
            self.close_connection = True  # the body may be unread: do not reuse the connection
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_quietly(self, status: int, body: Any, allow: Sequence[str] | None = None) -> None:
        try:
            self._send(status, body, allow=allow)
        except OSError as exc:
            self.close_connection = True
            logger.warning("could not send the %d response: %s", status, exc)


class RewardServer:
    """A composed reward served over HTTP with dynamic batching (see the module docstring for the contract).

    ``config`` is a preset name, YAML path, mapping, :class:`RewardConfig` or an already built reward (any
    object with ``score(completions, **columns)`` and ``config``); ``overrides`` are reward config fields.
    ``port=0`` picks a free port (see :attr:`port` after :meth:`start`). ``warmup`` scores one item before
    serving, so the encoder is loaded and calibrated before the first caller waits on it.
    """

    def __init__(self, config: ComposedReward | RewardConfig | str | Path | Mapping[str, Any] | None = "hybrid",
                 host: str = "127.0.0.1", port: int = 8000, *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_items: int = DEFAULT_MAX_ITEMS, max_item_chars: int = DEFAULT_MAX_ITEM_CHARS,
                 cache_size: int = DEFAULT_CACHE_SIZE, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 warmup: bool = True, api_key: str | None = None, **overrides: Any) -> None:
        if not is_loopback(host) and not api_key:
            raise ValueError(f"refusing to serve on {host or 'every interface'} without an API key: anyone who can "
                             f"reach this machine could use the reward server. Set --api-key or ${ENV_API_KEY} "
                             "(clients send it as 'Authorization: Bearer KEY'), or listen on 127.0.0.1")
        self.api_key = api_key or None
        if hasattr(config, "score") and hasattr(config, "config"):
            if overrides:
                raise ValueError("reward config overrides need a config, not an already built reward")
            self.reward: Any = config
        else:
            self.reward = build_reward(config, **overrides)  # type: ignore[arg-type]
        if int(max_batch) < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if float(max_wait_ms) < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if int(max_items) < 1 or int(max_body_bytes) < 1 or int(max_item_chars) < 1:
            raise ValueError("max_items, max_item_chars and max_body_bytes must be positive")
        if not 0 <= int(port) <= 65535:  # a TCP port (0: a free one); socket's OverflowError says less
            raise ValueError(f"port must be between 0 and 65535, got {port}")
        self.host = host
        self.requested_port = int(port)
        self.max_items = int(max_items)
        self.max_item_chars = int(max_item_chars)
        self.max_body_bytes = int(max_body_bytes)
        self.request_timeout = float(request_timeout)
        self.warmup = warmup
        self._batcher = Batcher(self.reward, max_batch, max_wait_ms, cache_size)
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._state_lock = threading.Lock()
        self._idle = threading.Condition(self._state_lock)
        self._active = 0
        self._errors = 0
        self._started_at: float | None = None

    # -- properties

    @property
    def max_batch(self) -> int:
        return self._batcher.max_batch

    @property
    def max_wait_ms(self) -> float:
        return self._batcher.max_wait * 1000.0

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the reward server is not started")
        return int(self._httpd.server_address[1])

    @property
    def bound(self) -> str:
        """The address the server listens on, as bound (0.0.0.0: every IPv4 interface)."""
        host = self._httpd.server_address[0] if self._httpd is not None else self.host
        return f"http://[{host}]:{self.port}" if ":" in str(host) else f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- life cycle

    def start(self) -> int:
        """Bind, warm the reward up, serve in background threads; returns the bound port."""
        if self._httpd is not None:
            raise RuntimeError("the reward server is already started")
        server_class = _HTTPServer6 if ":" in self.host else _HTTPServer
        httpd = server_class((self.host, self.requested_port), _Handler)
        httpd.app = self
        self._httpd = httpd
        try:
            if self.warmup:
                t0 = time.monotonic()
                score_items(self.reward, [RewardInput("Die Antwort lautet 4.", "2 + 2 = 4. The answer is 4.", "de",
                                                      reference_answer="4", answer_type="number")])
                logger.info("reward %r warmed up in %.1f s", self.reward.config.name, time.monotonic() - t0)
            self._batcher.start()
        except BaseException:
            httpd.server_close()
            self._httpd = None
            raise
        self._serve_thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                              name="pivotrl-reward-http", daemon=True)
        self._serve_thread.start()
        self._started_at = time.monotonic()
        logger.info("reward server %r listening on %s", self.reward.config.name, self.url)
        return self.port

    def stop(self, timeout: float = 60.0) -> None:
        """Stop accepting connections, finish the requests in flight and the queued work, close."""
        httpd = self._httpd
        if httpd is None or self._stopped.is_set():
            self._stopped.set()
            return
        httpd.shutdown()  # no new connections from here on
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active > 0 and time.monotonic() < deadline:
                self._idle.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self._batcher.close(max(0.1, deadline - time.monotonic()))
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(5.0)
        self._stopped.set()
        logger.info("reward server stopped")

    def run(self) -> None:
        """Serve until :meth:`stop` is called from another thread or Ctrl-C (then stop cleanly)."""
        if self._httpd is None:
            self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            logger.info("interrupted: stopping the reward server")
        finally:
            self.stop()

    def __enter__(self) -> RewardServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- state

    def health(self) -> dict[str, Any]:
        s = self._batcher.snapshot()
        with self._state_lock:
            errors, active = self._errors, self._active
        return {
            "status": "ok",
            "reward": self.reward.config.name,
            "components": list(self.reward.config.components),
            "queue": s["queue"],
            "served": s["served"],
            "requests": s["requests"],
            "items": s["items"],
            "batches": s["batches"],
            "batch_items": s["batch_items"],
            "mean_batch": (s["batch_items"] / s["batches"]) if s["batches"] else 0.0,
            "max_batch_seen": s["max_batch_seen"],
            "cache_hits": s["cache_hits"],
            "fallbacks": s["fallbacks"],
            "failed_requests": s["failed_requests"],
            "errors": errors,
            "active": active,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_ms,
            "uptime_s": (time.monotonic() - self._started_at) if self._started_at else 0.0,
        }

    def _enter(self) -> None:
        with self._state_lock:
            self._active += 1

    def _leave(self) -> None:
        with self._idle:
            self._active -= 1
            if self._active == 0:
                self._idle.notify_all()

    def _count_error(self) -> None:
        with self._state_lock:
            self._errors += 1

    def _wait(self, items: list[RewardInput]) -> list[dict[str, Any]]:
        future = self._batcher.submit(items)
        try:
            return future.result(timeout=self.request_timeout)
        except FutureTimeout:
            raise RequestError(504, f"scoring took longer than {self.request_timeout:g} s") from None
        except RequestError:
            raise
        except (KeyError, ValueError) as exc:  # set-up errors: unknown language, bad column
            raise RequestError(400, str(exc)) from None
        except Exception as exc:  # noqa: BLE001
            raise RequestError(500, f"scoring failed: {type(exc).__name__}: {exc}") from None


def serve(config: ComposedReward | RewardConfig | str | Path | Mapping[str, Any] | None = "hybrid",
          host: str = "127.0.0.1", port: int = 8000, max_batch: int = DEFAULT_MAX_BATCH,
          max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
          max_items: int = DEFAULT_MAX_ITEMS, max_item_chars: int = DEFAULT_MAX_ITEM_CHARS,
          cache_size: int = DEFAULT_CACHE_SIZE, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
          api_key: str | None = None, **overrides: Any) -> None:
    """Run a reward server in the foreground (for ``pivotrl reward serve``): prints the URL; Ctrl-C or SIGTERM
    stops it cleanly (stops accepting, finishes queued work)."""
    server = RewardServer(config, host, port, max_batch=max_batch, max_wait_ms=max_wait_ms,
                          max_body_bytes=max_body_bytes, max_items=max_items, max_item_chars=max_item_chars,
                          cache_size=cache_size, request_timeout=request_timeout, api_key=api_key, **overrides)
    print(f"pivotrl reward server: loading reward {server.reward.config.name!r} ...", flush=True)
    server.start()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
    where = server.bound if server.bound == server.url else f"{server.bound} (from this machine: {server.url})"
    print(f"pivotrl reward server: reward {server.reward.config.name!r} at {where}"
          f"{', API key required' if server.api_key else ''} "
          f"(POST /score, POST /get_reward, GET /health, GET /config; max_batch={server.max_batch}, "
          f"max_wait_ms={server.max_wait_ms:g}); Ctrl-C stops", flush=True)
    try:
        server.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        h = server.health()
        print(f"pivotrl reward server: stopped after {h['requests']} requests, {h['served']} items, "
              f"{h['batches']} batches (mean {h['mean_batch']:.1f} items)", flush=True)
