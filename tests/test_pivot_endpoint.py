"""The OpenAI-compatible pivot backend against a real HTTP server on loopback (standard-library http.server)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pivotrl.pivot.endpoint import EndpointConfig, EndpointError, chat_complete, chat_complete_with_usage


def answer(prompt: str, index: int, seed: object = None) -> str:
    """What the fake server says: the last user message reversed, the choice index, and the seed it was given."""
    return f"{prompt[::-1]}#{index}|seed={seed}"


class FakeServer:
    """A deterministic chat-completions server that records what it got and injects faults on demand.

    Faults are keyed by prompt (the content of the last user message) and apply to that prompt's first requests:
    ``fail_500[p] = k`` (HTTP 500 for the first k), ``rate_limit[p] = k`` (HTTP 429 with Retry-After: 0),
    ``sleep_first[p] = s`` (the first request sleeps s seconds before answering), ``bad_request[p] = msg`` (always 400),
    ``malformed[p] = body`` (always 200 with that raw body), ``redirect[p] = url`` (always 307).
    Server-wide: ``single_choice`` (ignore n > 1), ``delay`` (a (low, high) random sleep per request),
    ``reverse_choices`` (list choices in reverse index order).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"path", "headers", "body"}
        self.seen: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self.fail_500: dict[str, int] = {}
        self.rate_limit: dict[str, int] = {}
        self.sleep_first: dict[str, float] = {}
        self.bad_request: dict[str, str] = {}
        self.malformed: dict[str, bytes] = {}
        self.redirect: dict[str, str] = {}
        self.single_choice = False
        self.reverse_choices = False
        self.delay: tuple[float, float] | None = None
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def bodies(self, prompt: str | None = None) -> list[dict]:
        with self.lock:
            return [r["body"] for r in self.requests if prompt is None or last_user(r["body"]) == prompt]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # keep pytest output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length).decode("utf-8"))
                prompt = last_user(body)
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                    server.seen[prompt] += 1
                    nth = server.seen[prompt]  # 1 for this prompt's first request
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, headers, payload = server._respond(body, prompt, nth)
                finally:
                    # Leave the in-flight count before answering: once the client has the answer it may send its next
                    # request, and that must not overlap this one in the count.
                    with server.lock:
                        server.in_flight -= 1
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass
                self.close_connection = True

        return Handler

    def _respond(self, body: dict, prompt: str, nth: int) -> tuple[int, dict[str, str], bytes]:
        json_type = {"Content-Type": "application/json"}
        if self.delay is not None:
            time.sleep(random.uniform(*self.delay))
        if nth == 1 and prompt in self.sleep_first:
            self.stopping.wait(self.sleep_first[prompt])
        if prompt in self.redirect:
            return 307, {"Location": self.redirect[prompt]}, b""
        if prompt in self.bad_request:
            error = {"error": {"message": self.bad_request[prompt], "type": "invalid_request_error", "code": 400}}
            return 400, json_type, json.dumps(error).encode()
        if nth <= self.fail_500.get(prompt, 0):
            return 500, json_type, json.dumps({"error": {"message": "engine overloaded", "code": 500}}).encode()
        if nth <= self.rate_limit.get(prompt, 0):
            return 429, {**json_type, "Retry-After": "0"}, json.dumps({"error": {"message": "slow down"}}).encode()
        if prompt in self.malformed:
            return 200, json_type, self.malformed[prompt]
        n = 1 if self.single_choice else int(body.get("n", 1))
        choices = [
            {"index": i, "message": {"role": "assistant", "content": answer(prompt, i, body.get("seed"))},
             "finish_reason": "stop"}
            for i in range(n)
        ]
        if self.reverse_choices:
            choices.reverse()
        usage = {"prompt_tokens": len(prompt), "completion_tokens": 10 * n, "total_tokens": len(prompt) + 10 * n}
        payload = {"id": "cmpl-test", "object": "chat.completion", "model": body["model"], "choices": choices,
                   "usage": usage}
        return 200, json_type, json.dumps(payload, ensure_ascii=False).encode("utf-8")


def last_user(body: dict) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def convo(prompt: str) -> list[dict]:
    return [{"role": "system", "content": "You are a pivot."}, {"role": "user", "content": prompt}]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        fake.httpd.shutdown()
        fake.httpd.server_close()
        fake.thread.join(timeout=5)


def config_for(server: FakeServer, **overrides: object) -> EndpointConfig:
    settings: dict = {"model": "pivot-70b", "api_key_env": None, "concurrency": 4, "max_retries": 3, "timeout": 5.0,
                      "backoff": 0.01}
    settings.update(overrides)
    return EndpointConfig(base_url=server.base_url, **settings)


# ------------------------------------------------------------------------------------------------ round trip


def test_round_trip_keeps_input_order_under_concurrency(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOT_TEST_KEY", "sk-test-123")
    server.delay = (0.0, 0.03)  # answers come back out of order
    prompts = [f"problem {i}: what is {i} + {i}? ünïcödé" for i in range(20)]
    config = config_for(server, api_key_env="PIVOT_TEST_KEY", concurrency=4)

    texts, usage = chat_complete_with_usage(
        config, [convo(p) for p in prompts], temperature=0.7, top_p=0.9, max_tokens=64, seed=11, stop=["\n\n"]
    )

    assert texts == [[answer(p, 0, 11)] for p in prompts]
    assert usage == {"prompt_tokens": sum(len(p) for p in prompts), "completion_tokens": 200, "requests": 20,
                     "retries": 0, "topup_requests": 0}
    assert len(server.requests) == 20
    for request in server.requests:
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == "Bearer sk-test-123"
        assert request["headers"]["Content-Type"] == "application/json"
        body = request["body"]
        assert set(body) == {"model", "messages", "n", "temperature", "top_p", "max_tokens", "seed", "stop"}
        assert body["model"] == "pivot-70b"
        assert body["messages"] == convo(last_user(body))
        assert (body["n"], body["temperature"], body["top_p"], body["max_tokens"]) == (1, 0.7, 0.9, 64)
        assert (body["seed"], body["stop"]) == (11, ["\n\n"])
    assert 2 <= server.max_in_flight <= 4


def test_optional_fields_and_auth_header_absent(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIVOT_TEST_KEY", raising=False)
    config = config_for(server, api_key_env="PIVOT_TEST_KEY")
    assert chat_complete(config, [convo("hello")]) == [[answer("hello", 0)]]
    monkeypatch.setenv("PIVOT_TEST_KEY", "")  # set but empty: no header either
    assert chat_complete(config, [convo("hello")]) == [[answer("hello", 0)]]
    monkeypatch.setenv("PIVOT_TEST_KEY", "sk-ignored")
    assert chat_complete(config_for(server, api_key_env=None), [convo("hello")]) == [[answer("hello", 0)]]

    assert len(server.requests) == 3
    for request in server.requests:
        assert "Authorization" not in request["headers"]
        assert set(request["body"]) == {"model", "messages", "n", "temperature", "top_p", "max_tokens"}
        assert (request["body"]["temperature"], request["body"]["top_p"], request["body"]["max_tokens"]) == (0.0, 1.0,
                                                                                                             512)


def test_empty_input_sends_nothing(server: FakeServer) -> None:
    assert chat_complete_with_usage(config_for(server), []) == (
        [], {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0, "topup_requests": 0})
    assert server.requests == []


def test_base_url_with_endpoint_path_and_progress_bar(server: FakeServer) -> None:
    config = EndpointConfig(base_url=server.base_url + "/chat/completions/", model="m", api_key_env=None, backoff=0.01)
    assert chat_complete(config, [convo("a"), convo("b")], progress=True) == [[answer("a", 0)], [answer("b", 0)]]
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 2


# ------------------------------------------------------------------------------------------------ n choices


def test_n_choices_in_one_request(server: FakeServer) -> None:
    server.reverse_choices = True  # the client orders choices by their "index"
    texts, usage = chat_complete_with_usage(config_for(server), [convo("abc"), convo("xyz")], n=3, temperature=1.0)
    assert texts == [[answer("abc", i) for i in range(3)], [answer("xyz", i) for i in range(3)]]
    assert usage["requests"] == 2 and usage["topup_requests"] == 0 and usage["completion_tokens"] == 60


def test_n_choices_from_a_server_that_ignores_n(server: FakeServer) -> None:
    server.single_choice = True
    texts, usage = chat_complete_with_usage(config_for(server), [convo("abc"), convo("xyz")], n=3, temperature=1.0,
                                            seed=7)
    # Each follow-up asks for the missing choices with the next seed, so a sampling server gives new texts.
    assert texts == [[answer("abc", 0, s) for s in (7, 8, 9)], [answer("xyz", 0, s) for s in (7, 8, 9)]]
    assert [(b["n"], b["seed"]) for b in server.bodies("abc")] == [(3, 7), (2, 8), (1, 9)]
    assert usage["requests"] == 6 and usage["topup_requests"] == 4


# ------------------------------------------------------------------------------------------------ retries and errors


def test_retries_after_500(server: FakeServer) -> None:
    server.fail_500["flaky"] = 2
    texts, usage = chat_complete_with_usage(config_for(server, max_retries=3), [convo("steady"), convo("flaky")])
    assert texts == [[answer("steady", 0)], [answer("flaky", 0)]]
    assert len(server.bodies("flaky")) == 3
    assert usage["retries"] == 2 and usage["requests"] == 4


def test_gives_up_after_max_retries(server: FakeServer) -> None:
    server.fail_500["doomed"] = 100
    with pytest.raises(EndpointError) as caught:
        chat_complete(config_for(server, max_retries=2), [convo("doomed")])
    error = caught.value
    assert len(server.bodies("doomed")) == 3
    assert (error.status, error.attempts) == (500, 3)
    assert "HTTP 500" in str(error) and "3 attempts" in str(error) and server.base_url in str(error)
    assert "engine overloaded" in str(error)


def test_retries_after_timeout(server: FakeServer) -> None:
    server.sleep_first["slow"] = 1.5
    start = time.monotonic()
    texts, usage = chat_complete_with_usage(config_for(server, timeout=0.5), [convo("slow")])
    elapsed = time.monotonic() - start
    assert texts == [[answer("slow", 0)]]
    assert usage["retries"] == 1 and len(server.bodies("slow")) == 2
    assert elapsed < 1.4  # gave up on the first attempt at the timeout instead of waiting for the slow answer


def test_429_honours_retry_after(server: FakeServer) -> None:
    server.rate_limit["busy"] = 2
    start = time.monotonic()
    # With backoff=10 s the exponential delay would take >10 s; Retry-After: 0 lets the client retry at once.
    texts, usage = chat_complete_with_usage(config_for(server, backoff=10.0), [convo("busy")])
    assert time.monotonic() - start < 2.0
    assert texts == [[answer("busy", 0)]]
    assert usage["retries"] == 2 and len(server.bodies("busy")) == 3


def test_400_raises_at_once_with_the_server_message(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOT_TEST_KEY", "sk-secret-999")
    server.bad_request["bad"] = "This model's maximum context length is 4096 tokens"
    with pytest.raises(EndpointError) as caught:
        chat_complete(config_for(server, api_key_env="PIVOT_TEST_KEY", concurrency=1), [convo("bad")])
    assert len(server.requests) == 1
    message = str(caught.value)
    assert "maximum context length is 4096 tokens" in message and "HTTP 400" in message and "1 attempt" in message
    assert "sk-secret-999" not in message
    assert (caught.value.status, caught.value.attempts) == (400, 1)


def test_a_failure_abandons_the_rest(server: FakeServer) -> None:
    server.bad_request["bad"] = "nope"
    server.delay = (0.02, 0.02)
    prompts = ["bad"] + [f"fine {i}" for i in range(30)]
    with pytest.raises(EndpointError, match="nope"):
        chat_complete(config_for(server, concurrency=2), [convo(p) for p in prompts])
    time.sleep(0.1)  # let the workers that were mid-request finish
    assert len(server.requests) < 10  # queued inputs were cancelled


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "x", "object": "chat.completion"}', "missing 'choices'"),
        (b"<html>gateway</html>", "not JSON"),
        (b'{"choices": [{"index": 0, "text": "legacy completions shape"}]}', "no 'message'"),
        (b'{"choices": [{"message": {"content": 42}}]}', "not a string"),
        (b'{"choices": []}', "empty 'choices'"),
        (b'{"error": {"message": "model is loading"}}', "model is loading"),
    ],
)
def test_malformed_body_raises(server: FakeServer, body: bytes, expected: str) -> None:
    server.malformed["odd"] = body
    with pytest.raises(EndpointError, match=expected):
        chat_complete(config_for(server), [convo("odd")])
    assert len(server.requests) == 1


def test_null_content_is_an_empty_answer(server: FakeServer) -> None:
    server.malformed["think"] = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": null}}]}'
    assert chat_complete(config_for(server), [convo("think")]) == [[""]]


def test_redirect_is_not_followed(server: FakeServer) -> None:
    server.redirect["moved"] = "https://example.invalid/v1/chat/completions"
    with pytest.raises(EndpointError, match="redirected to 'https://example.invalid"):
        chat_complete(config_for(server), [convo("moved")])
    assert len(server.requests) == 1


def test_connection_refused_is_retried_then_raises() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = EndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key_env=None, max_retries=2,
                            backoff=0.01, timeout=1.0)
    with pytest.raises(EndpointError, match="connection error.*") as caught:
        chat_complete_with_usage(config, [convo("anyone?")])
    assert caught.value.attempts == 3 and caught.value.status is None


# ------------------------------------------------------------------------------------------------ concurrency


def test_concurrency_limit_respected(server: FakeServer) -> None:
    server.delay = (0.03, 0.06)
    prompts = [f"p{i}" for i in range(12)]
    texts = chat_complete(config_for(server, concurrency=3), [convo(p) for p in prompts])
    assert texts == [[answer(p, 0)] for p in prompts]
    assert 2 <= server.max_in_flight <= 3
    server.max_in_flight = 0
    chat_complete(config_for(server, concurrency=1), [convo(p) for p in prompts[:4]])
    assert server.max_in_flight == 1


# ------------------------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "overrides",
    [{"base_url": "127.0.0.1:8000/v1"}, {"model": ""}, {"concurrency": 0}, {"max_retries": -1}, {"timeout": 0},
     {"backoff": -1.0}],
)
def test_config_validation(overrides: dict) -> None:
    settings = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", **overrides}
    with pytest.raises(ValueError):
        EndpointConfig(**settings)


def test_argument_validation() -> None:
    config = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(ValueError, match="n must be"):
        chat_complete(config, [convo("x")], n=0)
    with pytest.raises(ValueError, match=r"messages_list\[1\]"):
        chat_complete(config, [convo("x"), "not a conversation"])  # type: ignore[list-item]
