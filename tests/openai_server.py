"""A small OpenAI-compatible server around a locally loaded pivotrl model, for tests (standard library only).

It serves ``POST /v1/chat/completions`` (the chat template applied with :func:`pivotrl.models.build_prompt`, or
``apply_chat_template`` for several messages), ``POST /v1/completions`` (the raw prompt) and ``GET /v1/models``,
with ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``stop`` and ``usage``. Requests are generated
one at a time (a lock around :func:`pivotrl.generation.generate`, batch size 1), so a greedy answer is computed exactly
as local evaluation computes it with ``batch_size=1``. ``usage.completion_tokens`` counts the answer's tokens as
local evaluation does (the returned text re-tokenized).

Test knobs: ``api_key`` (then requests need ``Authorization: Bearer KEY``, else HTTP 401), ``fail_next`` (the next
k generation requests get HTTP 503 with ``Retry-After: 0``), and ``requests`` (every request's path, headers and
body, in arrival order).

    with OpenAIServer(load_model("smollm2"), model_name="smol") as server:
        run_eval(EvalConfig(endpoint=server.base_url, endpoint_model="smol", ...))
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pivotrl.generation import GenerationConfig, generate
from pivotrl.models import LoadedModel, build_prompt


class OpenAIServer:
    def __init__(self, loaded: LoadedModel, *, model_name: str = "served-model", host: str = "127.0.0.1",
                 port: int = 0, api_key: str | None = None) -> None:
        self.loaded = loaded
        self.model_name = model_name
        self.api_key = api_key
        self.fail_next = 0
        self.finish_reasons = True  # False: choices without "finish_reason", as some servers send them
        self.logprobs = True  # False: "logprobs" in a request is ignored, as some servers do
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the request log and fail_next
        self._generating = threading.Lock()  # one generation at a time
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def generation_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("completions")]

    # -- the work

    def complete(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        chat = path.endswith("/chat/completions")
        tokenizer = self.loaded.tokenizer
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise _BadRequest("'messages' must be a non-empty list")
            if len(messages) == 1 and messages[0].get("role") == "user":
                prompt = build_prompt(tokenizer, messages[0]["content"], chat=True)
            else:
                prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise _BadRequest("'prompt' must be a string")
        n = int(body.get("n", 1))
        temperature = float(body.get("temperature", 1.0))
        if chat and body.get("logprobs") and self.logprobs:
            return self._scored(body, prompt, int(body.get("top_logprobs") or 0))
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        max_tokens = int(body.get("max_tokens", 16))
        config = GenerationConfig(max_new_tokens=max_tokens, do_sample=temperature > 0,
                                  temperature=temperature if temperature > 0 else 1.0,
                                  top_p=float(body.get("top_p", 1.0)), num_samples=n, seed=body.get("seed"),
                                  batch_size=1, stop=stop)
        ended: list[list[bool]] = []
        with self._generating:
            texts = generate(self.loaded, [prompt], config, on_result=lambda i, t, cut: ended.append(cut))[0]
        reasons = ["length" if cut else "stop" for cut in ended[0]]  # what the decoder did, as vLLM reports it
        if not self.finish_reasons:
            reasons = [None] * len(reasons)
        counts = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
        prompt_tokens = len(tokenizer(prompt, add_special_tokens=False).input_ids)
        if chat:
            choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": r}
                       for i, (t, r) in enumerate(zip(texts, reasons))]
        else:
            choices = [{"index": i, "text": t, "finish_reason": r} for i, (t, r) in enumerate(zip(texts, reasons))]
        return {"id": f"cmpl-{time.monotonic_ns()}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": body.get("model", self.model_name), "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": sum(counts),
                          "total_tokens": prompt_tokens + sum(counts)}}


    def _scored(self, body: dict[str, Any], prompt: str, k: int) -> dict[str, Any]:
        """A greedy one-token chat answer with its real log-probability and the ``k`` most likely tokens at that
        position, from one forward pass of the served model (what vLLM returns for ``logprobs: true``)."""
        import torch

        if int(body.get("n", 1)) != 1 or float(body.get("temperature", 1.0)) != 0.0:
            raise _BadRequest("this test server gives logprobs for n=1 at temperature 0 only")
        tokenizer, model = self.loaded.tokenizer, self.loaded.model
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        with self._generating, torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), logits_to_keep=1).logits[0, -1].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        top = torch.topk(log_probs, max(1, k))
        tokens = [tokenizer.decode([int(i)]) for i in top.indices]
        text = tokens[0]
        content = [{"token": text, "logprob": float(top.values[0]),
                    "top_logprobs": [{"token": t, "logprob": float(v)} for t, v in zip(tokens, top.values)][:k]}]
        return {"id": f"cmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", self.model_name),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "logprobs": {"content": content}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": int(ids.shape[1]), "completion_tokens": 1,
                          "total_tokens": int(ids.shape[1]) + 1}}


class _BadRequest(Exception):
    pass


def _handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            self._record(None)
            if not self._authorized():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
            else:
                self._error(404, f"no such path {self.path!r}")

        def do_POST(self) -> None:  # noqa: N802
            try:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                self._record(None)
                self._error(400, f"the body is not JSON: {exc}")
                return
            self._record(body)
            if not self._authorized():
                return
            path = self.path.rstrip("/")
            if path not in ("/v1/chat/completions", "/v1/completions"):
                self._error(404, f"no such path {self.path!r}")
                return
            if body.get("model") != server.model_name:
                self._error(404, f"The model `{body.get('model')}` does not exist.")
                return
            with server._lock:
                fail = server.fail_next > 0
                server.fail_next -= fail
            if fail:
                self._error(503, "the engine is busy", {"Retry-After": "0"})
                return
            try:
                self._send(200, server.complete(path, body))
            except (_BadRequest, ValueError, TypeError, KeyError) as exc:
                self._error(400, str(exc))

        def _record(self, body: Any) -> None:
            with server._lock:
                server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})

        def _authorized(self) -> bool:
            if server.api_key is None or self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._error(401, "Incorrect API key provided")
            return False

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}},
                       headers)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


class ScriptedServer:
    """A loopback server that answers every POST with ``respond(path, body) -> (status, payload)``, or never
    answers it when ``respond`` returns None (a stuck server: the client's timeout must end the wait); records
    the requests (``{"path", "body"}``) and the most that were in flight at once; ``delay`` (low, high) seconds
    before each answer. The shape of a server's answer is the test's: no model behind it."""

    def __init__(self, respond: Any) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay: tuple[float, float] | None = None
        self.respond = respond
        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _scripted_handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return self.host + "/v1"

    def close(self) -> None:
        self.closing.set()  # requests left unanswered end now
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _scripted_handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8"))
            with server.lock:
                server.requests.append({"path": self.path, "body": body})
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                if server.delay is not None:
                    time.sleep(random.uniform(*server.delay))
                answer = server.respond(self.path, body)
                if answer is None:
                    server.closing.wait(30)
                    return
            finally:
                with server.lock:
                    server.in_flight -= 1
            status, payload = answer
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
