"""Evaluation through an OpenAI-compatible server: a real HTTP server on 127.0.0.1 serving a loaded pivotrl model
(tests/openai_server.py), compared item by item with local evaluation of the same model; resume, identity, API key,
retries, clear errors; and the shared HTTP client's loopback rule."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from openai_server import OpenAIServer

from pivotrl.evaluation import EvalConfig, EvalError, run_eval
from pivotrl.http_client import HTTPRequestError, JSONClient, is_loopback
from pivotrl.openai_api import OpenAICompletions, _split_tokens

SERVED = "tiny-served"
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<|assistant|>{% endif %}")


@pytest.fixture(scope="module")
def chat_folder(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight model with a chat template (plumbing only: its answers are noise)."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny-chat")
    shutil.copytree(tiny_folder, folder, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def loaded(chat_folder: Path):
    from pivotrl.models import load_model

    return load_model(str(chat_folder))


@pytest.fixture
def server(loaded):
    with OpenAIServer(loaded, model_name=SERVED) as srv:
        yield srv


def _rows(folder: Path) -> dict[tuple, dict]:
    lines = (folder / "generations.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    keyed = {(r["id"], r["lang"], r["sample"]): r for r in rows}
    assert len(keyed) == len(rows)  # nothing written twice
    return keyed


def _endpoint(server: OpenAIServer, out: Path, **settings) -> EvalConfig:
    base = dict(task="synthetic", langs=["en"], n=2, max_new_tokens=8, endpoint=server.base_url,
                endpoint_model=SERVED, api_key_env=None, concurrency=2, out=str(out))
    return EvalConfig(**{**base, **settings})


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------------------------ same answers


@pytest.mark.parametrize("chat", [True, False])
def test_served_answers_equal_local_ones(chat, chat_folder, loaded, server, tmp_path):
    common = dict(task="synthetic", langs=["en", "de"], n=3, max_new_tokens=12, chat=chat)
    local = run_eval(EvalConfig(model=str(chat_folder), batch_size=1, out=str(tmp_path / "local"), **common),
                     loaded=loaded, progress=False)
    served = run_eval(EvalConfig(endpoint=server.base_url, endpoint_model=SERVED, api_key_env=None, concurrency=3,
                                 out=str(tmp_path / "served"), **common), progress=False)

    mine, theirs = _rows(tmp_path / "local"), _rows(tmp_path / "served")
    assert mine.keys() == theirs.keys() and len(mine) == 6
    assert any(r["response"] for r in mine.values())
    # random weights never end an answer: every one reached the budget, locally and by the server's "length"
    assert all(r["cut"] is True for r in mine.values())
    for key, row in mine.items():
        other = theirs[key]
        for field in ("response", "n_tokens", "strict", "flexible", "correct", "detected_lang", "in_language", "cut"):
            assert other[field] == row[field], (key, field)
        # The endpoint records the text it sent; locally the chat template is around it.
        expected = f"<|user|>{other['prompt']}\n<|assistant|>" if chat else other["prompt"]
        assert row["prompt"] == expected
    assert served["languages"] == local["languages"] and served["summary"] == local["summary"]
    assert served["run"]["model"] == SERVED and served["run"]["endpoint"] == server.base_url
    assert served["run"]["new_tokens_now"] == local["run"]["new_tokens_now"]

    requests = server.generation_requests()
    assert len(requests) == 6
    for request in requests:
        body = request["body"]
        if chat:
            assert request["path"] == "/v1/chat/completions"
            assert body["messages"] == [{"role": "user", "content": body["messages"][0]["content"]}]
        else:
            assert request["path"] == "/v1/completions" and isinstance(body["prompt"], str)
        assert (body["model"], body["n"], body["temperature"], body["max_tokens"]) == (SERVED, 1, 0.0, 12)
        assert "Authorization" not in request["headers"]
    identity = json.loads((tmp_path / "served" / "config.json").read_text())["identity"]
    assert (identity["backend"], identity["model"], identity["dtype"], identity["chat"]) == ("endpoint", SERVED,
                                                                                              None, chat)
    assert f"synthetic: {SERVED} (" in (tmp_path / "served" / "metrics.md").read_text()


def test_samples_map_to_n_and_greedy_is_asked_once(server, tmp_path):
    m = run_eval(_endpoint(server, tmp_path / "sampled", samples=3, temperature=0.7, seed=5), progress=False)
    assert m["languages"]["en"]["samples"] == 3 and "pass_at_k" in m["languages"]["en"]
    bodies = [r["body"] for r in server.generation_requests()]
    assert [(b["n"], b["temperature"], b["seed"]) for b in bodies] == [(3, 0.7, 5)] * 2
    rows = _rows(tmp_path / "sampled")
    assert sorted(k[2] for k in rows) == [0, 0, 1, 1, 2, 2]

    server.requests.clear()
    run_eval(_endpoint(server, tmp_path / "greedy", samples=2, temperature=0.0), progress=False)  # greedy: asked once
    assert [r["body"]["n"] for r in server.generation_requests()] == [1, 1]
    rows = _rows(tmp_path / "greedy")
    assert sorted(k[2] for k in rows) == [0, 0, 1, 1]
    for (pid, lang, _), row in rows.items():
        assert row["response"] == rows[(pid, lang, 0)]["response"]


# ------------------------------------------------------------------------------------------------ run folder


def test_resume_skips_finished_items(server, tmp_path):
    first = run_eval(_endpoint(server, tmp_path, n=2), progress=False)
    assert first["run"]["generated_now"] == 2 and len(server.generation_requests()) == 2
    more = run_eval(_endpoint(server, tmp_path, n=4), progress=False)  # extends the run: only the new problems
    assert more["run"]["generated_now"] == 2 and len(server.generation_requests()) == 4
    again = run_eval(_endpoint(server, tmp_path, n=4), progress=False)
    assert again["run"]["generated_now"] == 0 and len(server.generation_requests()) == 4
    assert len(_rows(tmp_path)) == 4 and again["languages"]["en"]["problems"] == 4


def test_a_local_folder_refuses_an_endpoint_run(chat_folder, loaded, tmp_path):
    run_eval(EvalConfig(model=str(chat_folder), task="synthetic", langs=["en"], n=1, max_new_tokens=4,
                        out=str(tmp_path)), loaded=loaded, progress=False)
    # Nothing listens at this URL: the folder is refused before any request is sent.
    endpoint = EvalConfig(task="synthetic", langs=["en"], n=1, max_new_tokens=4, endpoint=f"http://127.0.0.1:"
                          f"{_closed_port()}/v1", endpoint_model=SERVED, api_key_env=None, out=str(tmp_path))
    with pytest.raises(EvalError) as caught:
        run_eval(endpoint, progress=False)
    message = str(caught.value)
    assert "other settings" in message and f"model: {str(chat_folder)!r} -> {SERVED!r}" in message
    assert "backend: 'local' -> 'endpoint'" in message and "never share a folder" in message
    assert "--out" in message


def test_an_endpoint_folder_refuses_another_served_model(server, tmp_path):
    run_eval(_endpoint(server, tmp_path, n=1), progress=False)
    with pytest.raises(EvalError, match="model: 'tiny-served' -> 'other-model'"):
        run_eval(_endpoint(server, tmp_path, n=1, endpoint_model="other-model"), progress=False)


# ------------------------------------------------------------------------------------------------ HTTP behaviour


def test_api_key_from_the_environment(loaded, tmp_path, monkeypatch):
    secret = "sk-eval-test-0123456789"
    monkeypatch.delenv("EVAL_TEST_KEY", raising=False)
    with OpenAIServer(loaded, model_name=SERVED, api_key=secret) as server:
        config = _endpoint(server, tmp_path, n=1, api_key_env="EVAL_TEST_KEY")
        with pytest.raises(EvalError) as caught:
            run_eval(config, progress=False)
        message = str(caught.value)
        assert "HTTP 401" in message and "Incorrect API key" in message and "$EVAL_TEST_KEY is not set" in message
        assert len(server.generation_requests()) == 1  # a 401 is not retried

        monkeypatch.setenv("EVAL_TEST_KEY", "sk-wrong-key-0000")
        with pytest.raises(EvalError, match="HTTP 401") as caught:
            run_eval(config, progress=False)
        assert "sk-wrong-key-0000" not in str(caught.value) and secret not in str(caught.value)

        monkeypatch.setenv("EVAL_TEST_KEY", secret)
        m = run_eval(config, progress=False)
        assert m["run"]["generated_now"] == 1
        assert server.generation_requests()[-1]["headers"]["Authorization"] == f"Bearer {secret}"


def test_retries_after_503_then_succeeds(server, tmp_path):
    server.fail_next = 2  # HTTP 503 with Retry-After: 0, twice
    start = time.monotonic()
    m = run_eval(_endpoint(server, tmp_path, n=1), progress=False)
    assert m["run"]["generated_now"] == 1 and len(_rows(tmp_path)) == 1
    assert len(server.generation_requests()) == 3 and time.monotonic() - start < 10


def test_a_server_without_finish_reasons_leaves_the_cut_unknown(server, tmp_path):
    server.finish_reasons = False
    try:
        m = run_eval(_endpoint(server, tmp_path, n=2), progress=False)
    finally:
        server.finish_reasons = True
    assert [r["cut"] for r in _rows(tmp_path).values()] == [None] * 2  # unknown, not "finished"
    assert all(lang["cut"] is None for lang in m["languages"].values())
    assert "answers cut at the new-token budget" not in (tmp_path / "metrics.md").read_text()


def test_shared_client_retries_then_reports_what_it_tried(server):
    client = JSONClient(server.base_url, max_retries=3, backoff=0.01)
    api = OpenAICompletions(client, SERVED, chat=False)
    server.fail_next = 3
    got = api.complete("2 + 2 =", max_tokens=3)
    assert len(got.texts) == 1 and got.requests == 4 and got.retries == 3
    assert got.tokens == [got.completion_tokens] and got.finish_reasons == ["length"]  # 3 tokens: the budget
    server.fail_next = 10
    with pytest.raises(HTTPRequestError) as caught:
        api.complete("2 + 2 =", max_tokens=3)
    error = caught.value
    assert (error.status, error.attempts, error.kind) == (503, 4, "exhausted")
    assert "the engine is busy" in str(error) and f"{server.base_url}/completions" in str(error)
    with pytest.raises(HTTPRequestError, match="does not exist") as caught:  # a 404 is not retried
        OpenAICompletions(client, "nope").complete([{"role": "user", "content": "hi"}])
    assert caught.value.attempts == 1


def test_unreachable_loopback_server_fails_in_seconds(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    start = time.monotonic()
    with pytest.raises(EvalError) as caught:
        run_eval(EvalConfig(task="synthetic", langs=["en"], n=1, endpoint=url, endpoint_model=SERVED,
                            api_key_env=None, out=str(tmp_path)), progress=False)
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert f"cannot reach the server at {url}/chat/completions" in message and "tried 6 times" in message
    assert "Connection refused" in message and "is the server running?" in message


@pytest.mark.parametrize("args, needle", [
    (["--endpoint", "http://127.0.0.1:8000/v1"], "--endpoint http://127.0.0.1:8000/v1 needs --endpoint-model"),
    (["--endpoint-model", "m"], "--endpoint-model needs --endpoint"),
    (["--endpoint", "127.0.0.1:8000/v1", "--endpoint-model", "m"], "--endpoint must be an http(s) URL"),
    (["--endpoint", "http://127.0.0.1:8000/v1", "--endpoint-model", "m", "--concurrency", "0"],
     "--concurrency must be at least 1"),
])
def test_clear_errors_for_bad_endpoint_settings(args, needle, tmp_path):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    result = CliRunner().invoke(app, ["eval", "--task", "synthetic", "-n", "1", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 1 and needle in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o").exists()  # refused before the run folder was made


def test_cli_through_a_server(server, tmp_path):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    result = CliRunner().invoke(app, ["eval", "--endpoint", server.base_url + "/chat/completions", "--endpoint-model",
                                      SERVED, "--task", "synthetic", "-l", "en,de", "-n", "2", "--max-new-tokens",
                                      "6", "--concurrency", "4", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "generated 4 answers" in result.output and f"synthetic: {SERVED}" in result.output
    assert {r["path"] for r in server.generation_requests()} == {"/v1/chat/completions"}


# ------------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize("host, expected", [
    ("localhost", True), ("LOCALHOST", True), ("localhost.", True), ("127.0.0.1", True), ("127.3.2.1", True),
    ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
    ("", False), (None, False), ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("app.localhost", False),
    ("localhost.example.com", False), ("128.0.0.1", False),
])
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_token_split_over_several_choices():
    assert _split_tokens(["abc"], ["abc"], 7) == [7]
    assert _split_tokens(["a", "bbb"], ["a", "bbb"], 10) == [3, 7]  # by length, adding up to the total
    assert sum(_split_tokens(["x", "yy", "zzz"], ["x", "yy", "zzz"], 11)) == 11
    assert _split_tokens(["a", "b"], ["a", "b"], None) == [None, None]


# ------------------------------------------------------------------------------------------------ a real model


@pytest.mark.model
def test_packaged_model_served_equals_local(tmp_path):
    """SmolLM2 with its own chat template: served through the loopback server and locally, the same answers."""
    from pivotrl.models import load_model

    smol = load_model("smollm2")
    common = dict(task="synthetic", langs=["en", "de"], n=2, max_new_tokens=24)
    local = run_eval(EvalConfig(model="smollm2", batch_size=1, out=str(tmp_path / "local"), **common), loaded=smol,
                     progress=False)
    with OpenAIServer(smol, model_name="smollm2-served") as server:
        served = run_eval(EvalConfig(endpoint=server.base_url, endpoint_model="smollm2-served", api_key_env=None,
                                     out=str(tmp_path / "served"), **common), progress=False)
    mine, theirs = _rows(tmp_path / "local"), _rows(tmp_path / "served")
    assert mine.keys() == theirs.keys() and len(mine) == 4
    assert [theirs[k]["response"] for k in mine] == [mine[k]["response"] for k in mine]
    assert all(r["response"].strip() for r in mine.values())
    assert served["languages"] == local["languages"]
