"""The HTTP reward server and client: a real server on 127.0.0.1 (port 0), real HTTP, the real hybrid reward."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from pivotrl.data import load_problems
from pivotrl.rewards.compose import build_reward
from pivotrl.rewards.client import RewardClient, RewardClientError
from pivotrl.rewards.server import RewardServer

LANGS = ("de", "zh", "fr")


def _cases() -> list[dict]:
    """Real multilingual answers to synthetic problems, with their English pivot references."""
    problems = load_problems("synthetic", ["en", *LANGS], n=1)
    english = {p.id: p for p in problems if p.lang == "en"}
    items = []
    for p in problems:
        if p.lang == "en":
            continue
        ref = english[p.id]
        items.append({"response": p.solution, "reference": ref.solution, "reference_answer": ref.answer,
                      "lang": p.lang, "answer_type": "number"})
    for pid, ref in english.items():
        de = next(p for p in problems if p.id == pid and p.lang == "de")
        wrong = de.solution.replace(f"lautet {de.answer}.", f"lautet {int(de.answer) + 7}.")
        assert wrong != de.solution
        items.append({"response": wrong, "reference": ref.solution, "reference_answer": ref.answer, "lang": "de",
                      "answer_type": None})
        # The English reference copied as the "German" answer: the language gate must take its credit away.
        items.append({"response": ref.solution, "reference": ref.solution, "reference_answer": None, "lang": "de",
                      "answer_type": None})
    return items


CASES = _cases()


def _local_scores(reward, items) -> list[dict]:
    scored = reward.score([x["response"] for x in items], reference=[x["reference"] for x in items],
                          reference_answer=[x["reference_answer"] or x["reference"] for x in items],
                          lang=[x["lang"] for x in items], answer_type=[x["answer_type"] for x in items])
    return [s.to_dict() for s in scored]


@pytest.fixture(scope="module")
def local_reward():
    return build_reward("hybrid")


@pytest.fixture(scope="module")
def server():
    srv = RewardServer("hybrid", port=0)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def expected(local_reward, server) -> list[dict]:
    return _local_scores(local_reward, CASES)


def _request(url: str, method: str = "POST", body=None, raw: bytes | None = None, timeout: float = 120.0):
    """(status, decoded JSON body) with plain urllib."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode("utf-8"))
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


# ------------------------------------------------------------------------------------------ scoring


def test_score_equals_local_reward(server, expected):
    status, body = _request(server.url + "/score", body={"items": CASES})
    assert status == 200
    assert body["scores"] == expected
    langs = {x["lang"] for x in CASES}
    assert langs == set(LANGS)
    good = [s for s, x in zip(body["scores"], CASES) if x["answer_type"] == "number"]
    assert all(s["components"]["answer_agreement"] == 1.0 and s["gate"] == 1.0 for s in good)
    copies = [s for s, x in zip(body["scores"], CASES) if x["response"] == x["reference"]]
    assert copies and all(s["gate"] < 0.2 for s in copies)  # English copies are gated
    assert max(s["score"] for s in copies) < min(s["score"] for s in good)


def test_single_item_form_and_client(server, expected):
    status, body = _request(server.url + "/score", body=CASES[1])
    assert status == 200 and body["scores"] == [expected[1]]
    client = RewardClient(server.url)
    got = client.score([x["response"] for x in CASES], [x["reference"] for x in CASES],
                       reference_answers=[x["reference_answer"] for x in CASES], langs=[x["lang"] for x in CASES],
                       answer_types=[x["answer_type"] for x in CASES])
    assert got == expected


def test_1000_concurrent_requests_are_batched(server, expected):
    before = server.health()
    url = server.url + "/score"
    n = 1000

    def one(i: int):
        return i, _request(url, body={"items": [CASES[i % len(CASES)]]})

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=128) as pool:
        results = list(pool.map(one, range(n)))
    seconds = time.perf_counter() - t0
    after = server.health()
    for i, (status, body) in results:
        assert status == 200, body
        assert body["scores"] == [expected[i % len(CASES)]]
    batches = after["batches"] - before["batches"]
    items = after["batch_items"] - before["batch_items"]
    assert items == n
    mean = items / batches
    print(f"\n1000 concurrent requests: {seconds:.2f} s, {n / seconds:.0f} requests/s, {batches} batches, "
          f"mean batch {mean:.1f} items, max batch {after['max_batch_seen']}")
    assert mean > 1.0
    assert after["served"] - before["served"] == n
    assert after["queue"] == 0


# ------------------------------------------------------------------------------------------ OpenRLHF


def test_get_reward_openrlhf_contract(server, expected):
    prompts = [f"Question {i}: ...\nAnswer: " for i in range(len(CASES))]
    labels = [json.dumps({k: x[k] for k in ("reference", "reference_answer", "lang", "answer_type")})
              for x in CASES]
    body = {"query": [p + x["response"] for p, x in zip(prompts, CASES)], "prompts": prompts, "labels": labels}
    status, answer = _request(server.url + "/get_reward", body=body)
    assert status == 200
    assert answer["rewards"] == [e["score"] for e in expected]
    assert answer["scores"] == answer["rewards"]
    logs = answer["extra_logs"]
    assert set(logs) == set(server.reward.config.components) | {"gate"}
    assert logs["gate"] == [e["gate"] for e in expected]
    assert logs["embedding_similarity"] == [e["components"]["embedding_similarity"] for e in expected]

    # A prompt that is not a prefix of the query: the whole query is the response.
    status, answer = _request(server.url + "/get_reward", body={
        "query": [CASES[0]["response"]], "prompts": ["unrelated prompt"], "labels": [labels[0]]})
    assert status == 200 and answer["rewards"] == [expected[0]["score"]]

    status, answer = _request(server.url + "/get_reward", body={
        "query": ["a", "b"], "prompts": ["", ""], "labels": [labels[0], "not json"]})
    assert status == 400 and "labels[1]" in answer["error"]
    status, answer = _request(server.url + "/get_reward", body={
        "query": ["a"], "prompts": [""], "labels": [json.dumps({"reference": "r"})]})
    assert status == 400 and "labels[0].lang" in answer["error"]


# ------------------------------------------------------------------------------------------ the question


def test_the_question_reaches_the_reward_over_http():
    """A question in a /score item, an OpenRLHF label or the client's call reaches every component; items that
    differ only in their question are not answered from the result cache; a question counts against
    --max-item-chars; items without one still get None."""
    from question_recorder import recording_questions

    with recording_questions() as rec:
        srv = RewardServer(rec.config(answer_agreement=1.0), port=0, warmup=False, max_item_chars=50)
        srv.start()
        try:
            status, body = _request(srv.url + "/score", body={"items": [
                {**GOOD, "question": "Was ist 2 + 2?"}, {**GOOD, "response": "Die Antwort lautet 5."}]})
            assert status == 200 and [s["components"]["answer_agreement"] for s in body["scores"]] == [1.0, 0.0]
            assert rec.questions == ["Was ist 2 + 2?", None]
            status, _ = _request(srv.url + "/score", body={**GOOD, "question": "Wie viel ist 2 + 2?"})
            assert status == 200 and rec.seen[-1] == ["Wie viel ist 2 + 2?"]  # scored again: not the cached item
            labels = [json.dumps({"reference": GOOD["reference"], "lang": "de", "question": "Frage vier?"})]
            status, body = _request(srv.url + "/get_reward", body={
                "query": ["P: " + GOOD["response"]], "prompts": ["P: "], "labels": labels})
            assert status == 200 and body["rewards"] == [1.0] and rec.seen[-1] == ["Frage vier?"]
            RewardClient(srv.url).score([GOOD["response"]], GOOD["reference"], langs="de", questions="Vier?")
            assert rec.seen[-1] == ["Vier?"]
            calls = len(rec.seen)
            status, body = _request(srv.url + "/score", body={"items": [GOOD, {**GOOD, "question": "?" * 51}]})
            assert status == 413 and "item 1: question has 51 characters" in body["error"]
            assert len(rec.seen) == calls  # refused before scoring
        finally:
            srv.stop()


# ------------------------------------------------------------------------------------------ health, errors


def test_health_and_config(server):
    status, health = _request(server.url + "/health", method="GET")
    assert status == 200
    assert health["status"] == "ok" and health["reward"] == "hybrid"
    assert health["components"] == server.reward.config.components
    for key in ("queue", "served", "batches", "mean_batch"):
        assert key in health
    status, config = _request(server.url + "/config", method="GET")
    assert status == 200 and config == server.reward.config.to_dict()
    assert RewardClient(server.url).health()["reward"] == "hybrid"


GOOD = {"response": "Die Antwort lautet 4.", "reference": "2 + 2 = 4. The answer is 4.", "lang": "de"}


@pytest.mark.parametrize(("body", "raw", "status", "needle"), [
    (None, b"{not json", 400, "not valid JSON"),
    (None, b"\xff\xfe\xfa", 400, "not valid JSON"),
    ({"stuff": []}, None, 400, "missing 'items'"),
    ([GOOD], None, 400, "expected a JSON object"),
    ({"items": []}, None, 400, "non-empty"),
    ({"items": "x"}, None, 400, "items: expected a list"),
    ({"items": [GOOD, GOOD, GOOD, {**GOOD, "lang": 7}]}, None, 400, "items[3].lang: expected a string"),
    ({"items": [{**GOOD, "response": None}]}, None, 400, "items[0].response"),
    ({"items": [{**GOOD, "reference": ["x"]}]}, None, 400, "items[0].reference: expected a string"),
    ({"items": [{**GOOD, "answer_type": "essay"}]}, None, 400, "items[0].answer_type"),
    ({"items": [{**GOOD, "reference_answer": {"a": 1}}]}, None, 400, "items[0].reference_answer"),
    ({"items": [GOOD, {**GOOD, "question": 5}]}, None, 400, "items[1].question: expected a string or null"),
    ({"items": [GOOD, "oops"]}, None, 400, "items[1]: expected an object"),
    ({"items": [GOOD, {**GOOD, "lang": "klingon"}]}, None, 400, "unknown language 'klingon'"),
    ({"items": [GOOD] * 4097}, None, 413, "limit of 4096"),
])
def test_malformed_requests(server, body, raw, status, needle):
    got, answer = _request(server.url + "/score", body=body, raw=raw)
    assert got == status
    assert needle in answer["error"]


def test_too_large_body_is_413(server):
    raw = b'{"items": [' + b" " * (server.max_body_bytes + 10) + b"]}"
    status, answer = _request(server.url + "/score", raw=raw)
    assert status == 413 and "larger than the limit" in answer["error"]


def test_missing_content_length_is_411(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/score")
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 411
        assert "Content-Length" in json.loads(resp.read())["error"]
    finally:
        conn.close()


def test_unknown_path_and_wrong_method(server):
    status, answer = _request(server.url + "/nowhere", body={"items": [GOOD]})
    assert status == 404 and "/nowhere" in answer["error"]
    status, answer = _request(server.url + "/score", method="GET")
    assert status == 405 and "GET" in answer["error"]
    status, answer = _request(server.url + "/health", body={})
    assert status == 405


def test_client_errors(server):
    client = RewardClient(server.url, retries=0)
    with pytest.raises(RewardClientError, match="unknown language 'xx'") as info:
        client.score(["Antwort"], "reference", langs="xx")
    assert info.value.status == 400
    with pytest.raises(ValueError, match="langs"):
        client.score(["Antwort"], "reference")
    # Nothing listens on a closed port: retried, then a clear error.
    dead = RewardServer(server.reward, port=0, warmup=False)
    dead.start()
    dead_url = dead.url
    dead.stop()
    t0 = time.perf_counter()
    with pytest.raises(RewardClientError, match="failed after 3 attempts"):
        RewardClient(dead_url, retries=2, backoff=0.01, timeout=5).health()
    assert time.perf_counter() - t0 < 5


def test_keeps_serving_after_errors(server, expected):
    for _ in range(3):
        _request(server.url + "/score", raw=b"garbage")
        _request(server.url + "/score", body={"items": [{**GOOD, "lang": "xx"}]})
    status, body = _request(server.url + "/score", body={"items": CASES[:3]})
    assert status == 200 and body["scores"] == expected[:3]
    health = server.health()
    assert health["status"] == "ok" and health["errors"] >= 6


# ------------------------------------------------------------------------------------------ batching failures


class _Wrapped:
    """The real reward behind a switch: a batch containing "BOOM" raises (a set-up error that slipped past
    validation); ``delay`` slows every scoring call down."""

    def __init__(self, inner, delay: float = 0.0):
        self.inner = inner
        self.config = inner.config
        self.delay = delay
        self.calls = 0

    def score(self, completions, **columns):
        self.calls += 1
        if "BOOM" in completions:
            raise ValueError("column 'reference' is broken for BOOM")
        time.sleep(self.delay)
        return self.inner.score(completions, **columns)


def _copies() -> list[dict]:
    """Items whose response is the (already encoded) reference: cheap to score again and again."""
    return [{**x, "response": x["reference"]} for x in CASES]


def test_one_bad_request_does_not_fail_its_batch(local_reward):
    copies = _copies()
    expected = _local_scores(local_reward, copies)
    wrapped = _Wrapped(local_reward)
    srv = RewardServer(wrapped, port=0, max_wait_ms=400, warmup=False)
    srv.start()
    try:
        bodies = [{"items": [copies[i]]} for i in range(4)] + [{"items": [{**GOOD, "response": "BOOM"}]}]
        barrier = threading.Barrier(len(bodies))

        def call(body):
            barrier.wait()
            return _request(srv.url + "/score", body=body)

        with ThreadPoolExecutor(len(bodies)) as pool:
            results = list(pool.map(call, bodies))
        for i, (status, body) in enumerate(results[:4]):
            assert status == 200 and body["scores"] == [expected[i]]
        status, body = results[4]
        assert status == 400 and "BOOM" in body["error"]
        health = srv.health()
        assert health["fallbacks"] >= 1 and health["failed_requests"] == 1
    finally:
        srv.stop()


def test_graceful_stop_finishes_queued_work(local_reward):
    copies = [_copies()[i % len(CASES)] for i in range(8)]
    expected = _local_scores(local_reward, copies)
    srv = RewardServer(_Wrapped(local_reward, delay=0.3), port=0, max_batch=2, max_wait_ms=0, warmup=False,
                       cache_size=0)
    srv.start()
    url = srv.url + "/score"
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_request, url, "POST", {"items": [copies[i]]}) for i in range(8)]
        deadline = time.monotonic() + 10
        while srv.health()["requests"] < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.stop()  # while most requests still wait in the queue
        results = [f.result() for f in futures]
    for i, (status, body) in enumerate(results):
        assert status == 200 and body["scores"] == [expected[i]]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(srv.url + "/health", timeout=5)


# ------------------------------------------------------------------------------------ exposure and fairness


def test_beyond_loopback_needs_an_api_key_and_checks_it():
    with pytest.raises(ValueError, match="refusing to serve on 0.0.0.0 without an API key"):
        RewardServer("answer", "0.0.0.0", 0, warmup=False)
    with RewardServer("answer", "0.0.0.0", 0, warmup=False, api_key="s3cret") as server:
        assert server.bound == f"http://0.0.0.0:{server.port}" and server.url == f"http://127.0.0.1:{server.port}"
        item = {"response": "Die Antwort lautet 4.", "reference": "The answer is 4.", "reference_answer": "4",
                "lang": "de"}
        for key in (None, "wrong"):
            with pytest.raises(RewardClientError, match="missing or wrong API key") as info:
                RewardClient(server.url, api_key=key or "", retries=0).score_items([item])
            assert info.value.status == 401
        assert RewardClient(server.url, api_key="s3cret").score_items([item])[0]["score"] > 0


def test_cli_refuses_an_exposed_server_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "PIVOTRL_REWARD_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "pivotrl.cli", "reward", "serve", "--reward", "answer",
                             "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=120, env=env)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "without an API key" in output and "Traceback" not in output


class _MeteredReward:
    """Plumbing for the scheduler: the real `answer` reward, plus a fixed cost per item (so a batch takes a
    known time) and a log of batch sizes."""

    def __init__(self, seconds_per_item: float):
        self.inner = build_reward("answer")
        self.config = self.inner.config
        self.seconds_per_item = seconds_per_item
        self.batches: list[int] = []

    def score(self, completions, **columns):
        self.batches.append(len(completions))
        time.sleep(self.seconds_per_item * len(completions))
        return self.inner.score(completions, **columns)


def test_a_small_request_waits_about_one_batch_behind_a_huge_one():
    reward = _MeteredReward(seconds_per_item=0.0005)  # a 256-item batch takes ~0.13 s, 4096 items ~2 s
    item = {"response": "Die Antwort lautet 4.", "reference": "The answer is 4.", "reference_answer": "4",
            "lang": "de"}
    huge = [dict(item, response=f"Die Antwort lautet {i}.") for i in range(4096)]
    with RewardServer(reward, "127.0.0.1", 0, warmup=False, max_batch=256, cache_size=0) as server:
        client = RewardClient(server.url, chunk_size=4096)
        with ThreadPoolExecutor(1) as pool:
            big = pool.submit(client.score_items, huge)
            time.sleep(0.3)  # the huge request is being scored
            started = time.perf_counter()
            small = client.score_items([item])
            waited = time.perf_counter() - started
            assert len(big.result()) == 4096 and small[0]["components"]["answer_agreement"] == 1.0
        health = server.health()
    assert max(reward.batches) <= 256 and health["max_batch_seen"] <= 256
    assert waited < 3 * 256 * reward.seconds_per_item + 0.2, waited  # about one batch, not the 4096 items
