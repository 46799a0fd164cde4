"""The shared OpenAI-compatible layer (pivotrl.openai_api) against a real HTTP server on loopback: the URL rule,
bounded concurrency with answers in input order, failing fast, and token log-probabilities."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from openai_server import ScriptedServer

from pivotrl.http_client import HTTPRequestError
from pivotrl.openai_api import Completion, TokenLogprob, api_root, complete_all, connect


def prompt_of(body: dict) -> str:
    return body["messages"][-1]["content"] if "messages" in body else body["prompt"]


def echo(path: str, body: dict) -> tuple[int, dict]:
    text = f"{prompt_of(body)}|stop={body.get('stop')}"
    if path.endswith("/chat/completions"):
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    else:
        choice = {"index": 0, "text": text, "finish_reason": "stop"}
    return 200, {"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer(echo)  # by default an echo of the prompt
    try:
        yield srv
    finally:
        srv.close()


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------------------------------------ the URL rule


@pytest.mark.parametrize("url, root", [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
    (" http://127.0.0.1:8000/v1 ", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),  # no path: the root every server serves
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/chat/completions/", "http://127.0.0.1:8000/v1"),
    ("http://127.0.0.1:8000/v1/completions", "http://127.0.0.1:8000/v1"),
    ("https://api.example.com/api/v1", "https://api.example.com/api/v1"),  # another path is kept
    ("https://host.example/v1beta/openai/", "https://host.example/v1beta/openai"),
    ("http://host.example/chat/completions", "http://host.example"),  # a full URL says where the root is
])
def test_api_root(url, root):
    assert api_root(url) == root


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://host/v1", "", "http://"])
def test_api_root_refuses_what_is_not_http(url):
    with pytest.raises(ValueError, match="http"):
        api_root(url)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/chat/completions"])
def test_every_spelling_reaches_the_same_endpoint(server, suffix):
    api = connect(server.host + suffix, "m", max_retries=0)
    assert api.complete(user("hi")).texts == ["hi|stop=None"]
    assert server.requests[-1]["path"] == "/v1/chat/completions"
    assert api.url == server.host + "/v1/chat/completions"


# ------------------------------------------------------------------------------------------------ many prompts


def test_complete_all_keeps_input_order_bounds_concurrency_and_reports_in_the_calling_thread(server):
    server.delay = (0.0, 0.03)  # answers arrive out of order
    api = connect(server.host, "m", chat=False, max_retries=0)
    prompts = [f"p{i}" for i in range(16)]
    stops = [[f"s{i}"] if i % 2 else None for i in range(16)]
    seen: list[tuple[int, int]] = []

    got = complete_all(api, prompts, concurrency=3, stops=stops, max_tokens=5, progress="test",
                       on_result=lambda index, completion: seen.append((index, threading.get_ident())))

    assert [c.texts for c in got] == [[f"p{i}|stop={stops[i]}"] for i in range(16)]
    assert all(isinstance(c, Completion) and c.tokens == [2] for c in got)
    assert sorted(i for i, _ in seen) == list(range(16))
    assert {thread for _, thread in seen} == {threading.get_ident()}  # the hook runs in the caller's thread
    assert 2 <= server.max_in_flight <= 3
    assert all(r["path"] == "/v1/completions" and r["body"]["max_tokens"] == 5 for r in server.requests)
    assert not api.client.cancel.is_set()  # a batch that succeeded leaves the client usable
    assert complete_all(api, ["again"])[0].texts == ["again|stop=None"]


def test_complete_all_of_nothing_sends_nothing(server):
    assert complete_all(connect(server.host, "m"), []) == []
    assert server.requests == []


def test_a_failure_stops_the_batch(server):
    def respond(path: str, body: dict) -> tuple[int, dict]:
        if prompt_of(body) == "bad":
            return 400, {"error": {"message": "context too long"}}
        return echo(path, body)

    server.respond = respond
    server.delay = (0.02, 0.02)
    api = connect(server.host, "m", max_retries=0)
    with pytest.raises(HTTPRequestError, match="context too long") as caught:
        complete_all(api, [user("bad")] + [user(f"fine {i}") for i in range(30)], concurrency=2)
    assert caught.value.status == 400
    assert api.client.cancel.is_set()
    time.sleep(0.1)  # requests in flight end; none is started after the failure
    assert len(server.requests) < 8


def test_an_error_of_the_hook_stops_the_batch(server):
    server.delay = (0.02, 0.02)
    api = connect(server.host, "m")

    def hook(index: int, completion: Completion) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        complete_all(api, [user(f"p{i}") for i in range(30)], concurrency=2, on_result=hook)
    time.sleep(0.1)
    assert len(server.requests) < 8


def test_complete_all_checks_its_arguments(server):
    api = connect(server.host, "m")
    with pytest.raises(ValueError, match="concurrency"):
        complete_all(api, [user("x")], concurrency=0)
    with pytest.raises(ValueError, match="stops"):
        complete_all(api, [user("x")], stops=[None, None])


# ------------------------------------------------------------------------------------------------ log-probabilities


def test_logprobs_of_chat_completions(server):
    def respond(path: str, body: dict) -> tuple[int, dict]:
        top = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
        content = [{"token": "Yes", "logprob": -0.1, "bytes": [89, 101, 115], "top_logprobs": top}]
        return 200, {"choices": [{"index": 0, "message": {"content": "Yes"}, "finish_reason": "stop",
                                  "logprobs": {"content": content}}]}

    server.respond = respond
    got = connect(server.host, "judge").complete(user("Same meaning?"), max_tokens=1, logprobs=2)
    assert got.logprobs == [[TokenLogprob("Yes", -0.1, {"Yes": -0.1, "No": -2.4})]]
    body = server.requests[0]["body"]
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)


def test_logprobs_of_plain_completions(server):
    def respond(path: str, body: dict) -> tuple[int, dict]:
        logprobs = {"tokens": ["4", "."], "token_logprobs": [-0.5, -1.0], "top_logprobs": [{"4": -0.5, "5": -1.5},
                                                                                           None]}
        return 200, {"choices": [{"index": 0, "text": "4.", "logprobs": logprobs}]}

    server.respond = respond
    got = connect(server.host, "m", chat=False).complete("2 + 2 =", logprobs=2)
    assert got.logprobs == [[TokenLogprob("4", -0.5, {"4": -0.5, "5": -1.5}), TokenLogprob(".", -1.0, {})]]
    assert server.requests[0]["body"]["logprobs"] == 2


def test_logprobs_absent_or_odd_are_none(server):
    api = connect(server.host, "m")
    got = api.complete(user("hi"))
    assert got.logprobs == [None] and "logprobs" not in server.requests[0]["body"]  # not asked: not sent
    server.respond = lambda path, body: (200, {"choices": [{"message": {"content": "x"}, "logprobs": {"odd": 1}}]})
    assert api.complete(user("hi"), logprobs=0).logprobs == [None]
