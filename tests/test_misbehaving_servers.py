"""Servers that misbehave, for evaluation through a server (`pivotrl eval --endpoint`) and the pivot's endpoint
backend, against real loopback sockets: one that accepts connections and never answers (the per-request timeout, the
deadline, progress while waiting), and one that answers ``content: null`` (asked again, then left unstored so that a
re-run asks again). Every case ends in a clear error, or a warning, within seconds."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai_server import ScriptedServer

import pivotrl.models  # noqa: F401 - run_eval imports it (transformers): loaded here, the timings measure waiting
from pivotrl.data import load_problems
from pivotrl.evaluation import EvalConfig, EvalError, run_eval
from pivotrl.http_client import HTTPRequestError, JSONClient
from pivotrl.openai_api import complete_all, connect
from pivotrl.pivot import PivotConfig, run_pivot
from pivotrl.pivot.endpoint import EndpointConfig, EndpointError, chat_complete_with_usage

PROBLEMS = load_problems("synthetic", ["en"], n=3)  # what the evaluations below ask


class SilentServer:
    """Accepts every connection and never answers (a stuck server, or a proxy in front of a dead one)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class ChatScript(ScriptedServer):
    """Chat completions whose content is ``content(prompt, nth request of that prompt)``: a string, or None
    (``content: null`` with ``finish_reason: "length"``); ``hang(prompt)`` True: that request never gets an answer."""

    def __init__(self) -> None:
        self.content: Callable[[str, int], str | None] = lambda prompt, nth: "The answer is 7."
        self.hang: Callable[[str], bool] = lambda prompt: False
        super().__init__(self._chat)

    def prompts(self) -> list[str]:
        with self.lock:
            return [r["body"]["messages"][-1]["content"] for r in self.requests]

    def _chat(self, path: str, body: dict) -> tuple[int, dict] | None:
        prompt = body["messages"][-1]["content"]
        nth = self.prompts().count(prompt)  # this request is recorded already
        if self.hang(prompt):
            return None
        choices = []
        for i in range(int(body.get("n", 1))):
            text = self.content(prompt, nth)
            choices.append({"index": i, "message": {"role": "assistant", "content": text},
                            "finish_reason": "length" if text is None else "stop"})
        return 200, {"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 4}}


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def scripted() -> Iterator[ChatScript]:
    server = ChatScript()
    yield server
    server.close()


def _eval(url: str, out: Path, **settings) -> EvalConfig:
    base = dict(task="synthetic", langs=["en"], n=3, max_new_tokens=16, endpoint=url, endpoint_model="m",
                api_key_env=None, concurrency=3, out=str(out))
    return EvalConfig(**{**base, **settings})


def _stored(out: Path) -> list[dict]:
    path = out / "generations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------------------------ a silent server


def test_the_client_deadline_ends_a_request_to_a_silent_server(silent):
    client = JSONClient(silent.base_url, timeout=0.3, max_retries=50, backoff=0.01, deadline=1.0)
    start = time.monotonic()
    with pytest.raises(HTTPRequestError) as caught:
        client.post("/chat/completions", {"x": 1})
    assert time.monotonic() - start < 3
    error = caught.value
    assert error.kind == "deadline" and "the deadline of 1 s passed" in str(error) and "timed out" in str(error)
    activity = client.activity()
    assert activity.in_flight == 0 and activity.retried >= 2 and activity.last_retry.startswith("timed out")
    with pytest.raises(ValueError, match="deadline"):
        JSONClient(silent.base_url, deadline=0)


def test_complete_all_shows_what_it_waits_for_and_stops_at_the_deadline(silent, capsys):
    api = connect(silent.base_url, "m", timeout=60, deadline=2.5)
    start = time.monotonic()
    with pytest.raises(HTTPRequestError) as caught:
        complete_all(api, [[{"role": "user", "content": f"q{i}"}] for i in range(3)], progress="waiting test")
    assert time.monotonic() - start < 5
    assert caught.value.kind == "deadline"
    assert "0 of 3 prompts answered (3 requests in flight abandoned" in str(caught.value)
    assert "3 in flight" in capsys.readouterr().err  # the bar said so while nothing came


def test_eval_against_a_silent_server_ends_at_its_deadline(silent, tmp_path):
    start = time.monotonic()
    with pytest.raises(EvalError) as caught:
        run_eval(_eval(silent.base_url, tmp_path, request_timeout=0.5, deadline=2), progress=False)
    assert time.monotonic() - start < 8
    message = str(caught.value)
    assert f"the deadline (--deadline 2 s) passed before the server at {silent.base_url}/chat/completions" in message
    assert "the 0 answers written in this run (and any before it) are kept" in message


def test_eval_against_a_silent_server_names_the_request_timeout(silent, tmp_path, monkeypatch):
    monkeypatch.setattr("pivotrl.evaluation.endpoint.BACKOFF", 0.01)
    monkeypatch.setattr("pivotrl.evaluation.endpoint.MAX_RETRIES", 2)
    start = time.monotonic()
    with pytest.raises(EvalError) as caught:
        run_eval(_eval(silent.base_url, tmp_path, request_timeout=0.3), progress=False)
    assert time.monotonic() - start < 8
    message = str(caught.value)
    assert "did not answer within --request-timeout 0.3 s (tried 3 times" in message
    assert "it accepts connections but sends no answer" in message


def test_answers_before_the_deadline_are_kept_and_a_rerun_continues(scripted, tmp_path):
    stuck = PROBLEMS[1].question
    scripted.hang = lambda prompt: stuck in prompt
    with pytest.raises(EvalError, match=r"the 2 answers written in this run .* are kept"):
        run_eval(_eval(scripted.base_url, tmp_path, request_timeout=30, deadline=2), progress=False)
    assert sorted(r["id"] for r in _stored(tmp_path)) == sorted([PROBLEMS[0].id, PROBLEMS[2].id])
    scripted.hang = lambda prompt: False
    asked = len(scripted.requests)
    metrics = run_eval(_eval(scripted.base_url, tmp_path), progress=False)
    assert metrics["languages"]["en"]["problems"] == 3 and metrics["run"]["generated_now"] == 1
    assert scripted.prompts()[asked:] == [p for p in scripted.prompts()[asked:] if stuck in p]  # only the missing one


def test_cli_options_reach_the_client(silent, tmp_path):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    start = time.monotonic()
    result = CliRunner().invoke(app, ["eval", "--endpoint", silent.base_url, "--endpoint-model", "m", "--task",
                                      "synthetic", "-l", "en", "-n", "2", "--request-timeout", "0.4", "--deadline",
                                      "1.5", "--out", str(tmp_path / "o")])
    assert time.monotonic() - start < 8
    assert result.exit_code == 1 and "the deadline (--deadline 1.5 s) passed" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["eval", "--endpoint", silent.base_url, "--endpoint-model", "m", "--task",
                                      "synthetic", "-n", "1", "--deadline", "0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--deadline" in result.output and "above 0" in result.output


# ------------------------------------------------------------------------------------------------ empty answers


def test_an_empty_choice_is_asked_for_again_with_the_next_seed(scripted):
    scripted.content = lambda prompt, nth: None if nth == 1 else f"text {nth}"
    api = connect(scripted.base_url, "m", max_retries=0)
    got = api.complete([{"role": "user", "content": "q"}], seed=5, empty_retries=2)
    assert got.texts == ["text 2"] and got.empty_requests == 1 and got.empty == 0 and got.requests == 2
    assert [r["body"]["seed"] for r in scripted.requests] == [5, 6]

    scripted.content = lambda prompt, nth: None
    got = api.complete([{"role": "user", "content": "never"}], n=2, temperature=0.7, empty_retries=2)
    assert got.texts == ["", ""] and got.empty == 2 and got.empty_requests == 2
    assert len([p for p in scripted.prompts() if p == "never"]) == 3  # bounded: 1 + 2 requests
    got = api.complete([{"role": "user", "content": "at once"}])  # without retries: an empty answer at once
    assert got.texts == [""] and got.empty == 1 and got.requests == 1


def test_a_sampled_request_asks_again_only_for_its_empty_choices(scripted):
    answers = iter(["first", None, "third", "again"])
    scripted.content = lambda prompt, nth: next(answers)
    got = connect(scripted.base_url, "m").complete([{"role": "user", "content": "q"}], n=3, temperature=0.7,
                                                   empty_retries=1)
    assert got.texts == ["first", "third", "again"] and got.empty_requests == 1
    assert [r["body"]["n"] for r in scripted.requests] == [3, 1]


def test_eval_leaves_empty_answers_unstored_warns_and_a_rerun_asks_again(scripted, tmp_path, caplog):
    empty = PROBLEMS[0].question
    scripted.content = lambda prompt, nth: None if empty in prompt else "The answer is 7."
    with caplog.at_level(logging.WARNING, logger="pivotrl.evaluation.endpoint"):
        metrics = run_eval(_eval(scripted.base_url, tmp_path), progress=False)
    assert sorted(r["id"] for r in _stored(tmp_path)) == sorted([PROBLEMS[1].id, PROBLEMS[2].id])
    assert all(r["response"] for r in _stored(tmp_path))
    assert len([p for p in scripted.prompts() if empty in p]) == 3  # asked, then twice again
    assert metrics["run"]["no_text_now"] == 1 and metrics["languages"]["en"]["problems"] == 2
    warning = " ".join(caplog.messages)
    assert f"answered no text (content null or blank) for 1 problem, 3 requests each: {PROBLEMS[0].id} (en)" in warning
    assert "finish_reason 'length'" in warning and "run the same command again" in warning

    scripted.content = lambda prompt, nth: "The answer is 7."  # the server recovered
    asked = len(scripted.requests)
    metrics = run_eval(_eval(scripted.base_url, tmp_path), progress=False)
    assert len(scripted.requests) == asked + 1 and empty in scripted.prompts()[-1]
    assert metrics["languages"]["en"]["problems"] == 3 and "no_text_now" not in metrics["run"]


def test_the_cli_says_how_many_problems_got_no_text(scripted, tmp_path):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    scripted.content = lambda prompt, nth: None
    result = CliRunner().invoke(app, ["eval", "--endpoint", scripted.base_url, "--endpoint-model", "m", "--task",
                                      "synthetic", "-l", "en", "-n", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "2 problems got no text from the server and are not in these metrics" in " ".join(result.output.split())
    assert not _stored(tmp_path / "o")


# ------------------------------------------------------------------------------------------------ the pivot


def test_pivot_deadline_spans_every_call_of_a_config(silent):
    config = EndpointConfig(base_url=silent.base_url, model="m", api_key_env=None, timeout=30, deadline=1.5)
    start = time.monotonic()
    with pytest.raises(EndpointError) as caught:
        chat_complete_with_usage(config, [[{"role": "user", "content": "q"}]])
    assert time.monotonic() - start < 4
    assert caught.value.kind == "deadline" and "the deadline of 1.5 s passed" in str(caught.value)
    with pytest.raises(EndpointError, match="the deadline of 1.5 s passed"):  # a later call: at once
        chat_complete_with_usage(config, [[{"role": "user", "content": "q"}]])
    with pytest.raises(ValueError, match="deadline"):
        EndpointConfig(base_url=silent.base_url, model="m", deadline=-1)


def test_pivot_cli_deadline_says_what_is_stored(silent, tmp_path):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    result = CliRunner().invoke(app, ["pivot", "--pivot", "endpoint", "--endpoint", silent.base_url,
                                      "--endpoint-model", "m", "--task", "synthetic", "-n", "2", "--k", "1",
                                      "--request-timeout", "0.5", "--deadline", "1.5", "--out", str(tmp_path)])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "the deadline of 1.5 s passed" in text
    assert f"0 references of this pivot are stored in {tmp_path / 'references.jsonl'}" in text


def test_pivot_does_not_store_a_problem_whose_samples_are_all_empty(scripted, tmp_path):
    empty = PROBLEMS[0].question
    scripted.content = lambda prompt, nth: None if empty in prompt else "2 + 5 = 7. The answer is 7."
    endpoint = {"base_url": scripted.base_url, "model": "m", "api_key_env": None, "backoff": 0.01}
    config = PivotConfig(pivot="endpoint", task="synthetic", split="all", n=3, k=2, out=str(tmp_path),
                         endpoint=endpoint)
    summary = run_pivot(config, progress=False)
    assert summary["stored"] == 2 and summary["missing"] == 1
    scripted.content = lambda prompt, nth: "The answer is 7."
    asked = len(scripted.requests)
    assert run_pivot(config, progress=False)["stored"] == 3
    assert len(scripted.requests) == asked + 1 and empty in scripted.prompts()[-1]  # only the unstored one again


# ------------------------------------------------------------------------------------------------ the run folder


@pytest.mark.parametrize("content, problem", [
    ('{"identity": {"model": "m",\n', r"not valid JSON \(Expecting property name enclosed in double quotes at line 2"),
    ("[1, 2]\n", r"not a run's settings \(expected an object with 'identity'\)"),
    (b"\xff\xfe\x00", "not UTF-8 JSON text"),
])
def test_a_broken_config_json_is_named(scripted, tmp_path, content, problem):
    run_eval(_eval(scripted.base_url, tmp_path, n=1), progress=False)
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(EvalError, match=rf"{path}: {problem}.*restore it, or use another --out folder"):
        run_eval(_eval(scripted.base_url, tmp_path, n=2), progress=False)
