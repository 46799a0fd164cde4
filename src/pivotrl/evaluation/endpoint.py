"""Evaluation through an OpenAI-compatible server instead of a locally loaded model.

``pivotrl eval --endpoint http://127.0.0.1:8000/v1 --endpoint-model NAME`` takes its answers from ``vllm serve``,
SGLang, llama.cpp's ``llama-server`` or any OpenAI-compatible API. Everything else is local evaluation's: the same
prompts (:func:`pivotrl.prompts.native_prompt`), stop strings, answer extraction, fidelity, metrics and run folder
(each answer appended and fsync'ed as it arrives, a killed run resumes, a folder never mixes models: its identity
records the endpoint model name and ``backend: endpoint``).

Requests
    With chat (the default) each problem is one ``POST {endpoint}/chat/completions`` with
    ``messages=[{"role": "user", "content": <native prompt>}]``: the *server* applies its own chat template, so
    answers equal a local run's only when that template is the same. With ``--no-chat`` it is
    ``POST {endpoint}/completions`` with the raw prompt text, the very text local ``--no-chat`` generates from.
    Decoding maps one to one: ``max_new_tokens`` -> ``max_tokens``, the resolved temperature -> ``temperature``
    (greedy is 0), ``top_p``, ``seed``, the language's stop strings -> ``stop``. Greedy asks for one choice and
    repeats it for ``--samples`` (as the local greedy decoder does); sampling asks for ``n = samples`` choices
    (topped up from servers that ignore ``n``). ``concurrency`` requests are in flight at a time.

Records
    ``prompt`` is the text sent (the user message for chat: the server's template around it is not known here).
    ``n_tokens`` is the server's ``usage.completion_tokens``: exact with one choice per request (greedy, or
    ``--samples 1``); with several choices in one request the request's total is split over them by length in
    characters; a server that reports no usage gets an estimate of characters / 4 (a warning says so). Servers
    count the tokens they generated, stop string included, so counts can differ by a token or two from local runs.
    ``cut`` is true when the choice's ``finish_reason`` is ``"length"`` (and no stop string ended the text first),
    None when the server gave no finish reason.

URL
    ``--endpoint`` is the API root or a full endpoint URL; a URL without a path gets ``/v1``
    (:func:`pivotrl.openai_api.api_root`, the rule of every OpenAI-compatible request in pivotrl).

Failures
    Requests go through :mod:`pivotrl.openai_api` on :mod:`pivotrl.http_client`: connection errors, timeouts, 429
    and 5xx are retried with exponential backoff (a loopback server that refuses the connection fails within
    seconds); other 4xx stop the run at once with the server's message. Answers already written are kept; running
    the command again continues. The API key is read from the environment variable ``api_key_env``
    (``OPENAI_API_KEY`` by default) and sent as a Bearer token; it never appears in messages.

Waiting
    ``request_timeout`` (default 300 s: a long answer from a busy server that queues requests first) bounds each
    attempt; a server that accepts the connection and never answers is retried like any timeout, so it costs up to
    6 attempts of it. ``deadline`` (default none: a large evaluation may rightly take hours) bounds the whole
    generation: when it passes the run stops with an error naming the endpoint and the answers written (kept;
    running again continues). The progress bar shows the requests in flight, the retries and how long no answer
    has come.

Empty answers
    A choice with no text (``content: null`` or blank) is asked for again, at most :data:`EMPTY_RETRIES` more
    requests per problem. What is still empty is *not stored*: an empty answer is a server's failure to answer as
    often as a model's (a reasoning model that spent ``max_tokens`` on hidden reasoning, a refusal, an overloaded
    server), and stored it would be scored wrong for good, since a re-run only asks for problems without answers.
    Left out, the problem stays pending: a warning names the problems (and the likely cause when the server said
    ``finish_reason: "length"``), the metrics count only answered problems (``run.no_text_now`` says how many were
    left out) and running the command again asks for them again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pivotrl.evaluation.folder import EvalError, append_answers
from pivotrl.http_client import HTTPRequestError
from pivotrl.openai_api import Completion, api_root, complete_all, connect
from pivotrl.prompts import cut_at_stop
from pivotrl.records import Generation, Problem

__all__ = ["check_settings", "generate_answers"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds to open a connection: a host that drops packets fails fast
MAX_RETRIES = 5
BACKOFF = 1.0  # seconds before the first retry, doubled each time (with jitter, at most 30 s)
EMPTY_RETRIES = 2  # more requests for a problem whose answer came back without text


def check_settings(config: Any) -> None:
    """Raise EvalError for endpoint settings that cannot work, before anything is written."""
    endpoint = (config.endpoint or "").strip()
    model = (config.endpoint_model or "").strip()
    if model and not endpoint:
        raise EvalError("--endpoint-model needs --endpoint: the server's API root, e.g. http://127.0.0.1:8000/v1")
    if endpoint and not model:
        raise EvalError(f"--endpoint {endpoint} needs --endpoint-model: the model name the server serves (the name "
                        f"given to `vllm serve`; GET {_models_url(endpoint)} lists them)")
    try:
        api_root(endpoint)
    except ValueError:
        raise EvalError(f"--endpoint must be an http(s) URL like http://127.0.0.1:8000/v1, got {endpoint!r}") from None
    if config.concurrency < 1:
        raise EvalError(f"--concurrency must be at least 1, got {config.concurrency}")


def generate_answers(config: Any, pending: list[Problem], prompts: list[str], stops: list[tuple[str, ...]],
                     done: dict[tuple[str, str], list[Generation]], path: Any, progress: bool,
                     desc: str) -> tuple[int, list[str]]:
    """Ask the server for every pending problem's answers (``prompts[i]``, the native prompt of ``pending[i]``,
    ended by ``stops[i]``), write each problem's answers to ``path`` (appended, fsync'ed) as they arrive, add them
    to ``done``; returns the number of new tokens and the problems ("id (lang)") left without an answer because the
    server's came back empty (not stored; a warning names them). EvalError when the server fails for good, or the
    deadline passes (answers written until then are kept)."""
    key = os.environ.get(config.api_key_env) if config.api_key_env else None
    chat = config.chat is not False
    api = connect(config.endpoint, config.endpoint_model, chat=chat, api_key=key, timeout=config.request_timeout,
                  connect_timeout=CONNECT_TIMEOUT, max_retries=MAX_RETRIES, backoff=BACKOFF,
                  deadline=config.deadline, user_agent="pivotrl-eval/1")
    temperature = config.resolved_temperature()
    choices = config.samples if temperature > 0 else 1  # greedy: one answer, repeated for every sample
    new_tokens = 0
    estimated = 0
    written = 0
    no_text: list[str] = []  # "id (lang)" of problems left with fewer answers than asked: the server's were empty
    no_text_reasons: set[str | None] = set()

    with open(path, "a", encoding="utf-8") as f:
        def write(index: int, got: Completion) -> None:
            nonlocal new_tokens, estimated, written
            p, stop = pending[index], stops[index]
            texts = [cut_at_stop(t, stop) for t in got.texts]  # a server that keeps the stop string
            # Cut by the budget: the server says "length" and no stop string ended the text before it.
            cut = [None if r is None else (r == "length" and k == t)
                   for r, k, t in zip(got.finish_reasons, texts, got.texts, strict=True)]
            tokens = got.tokens
            answered = [i for i, t in enumerate(got.texts) if t.strip()]  # empty ones stay unanswered
            if len(answered) < len(texts):
                no_text.append(f"{p.id} ({p.lang})")
                no_text_reasons.update(r for i, r in enumerate(got.finish_reasons) if i not in answered)
                texts, tokens, cut = ([x[i] for i in answered] for x in (texts, tokens, cut))
            if choices == 1:
                texts, tokens, cut = texts * config.samples, tokens * config.samples, cut * config.samples
            have = len(done.get((p.id, p.lang), []))
            estimated += sum(count is None for count in tokens[have:])
            written += max(0, len(texts) - have)
            counts = [_estimate_tokens(r) if c is None else c for r, c in zip(texts, tokens, strict=True)]
            new_tokens += append_answers(f, p, prompts[index], texts, done, token_counts=counts, cut=cut)

        try:
            complete_all(api, [[{"role": "user", "content": t}] if chat else t for t in prompts], stops=stops,
                         concurrency=config.concurrency, on_result=write, progress=desc if progress else None,
                         n=choices, temperature=temperature, top_p=config.top_p, max_tokens=config.max_new_tokens,
                         seed=config.seed, empty_retries=EMPTY_RETRIES)
        except HTTPRequestError as error:
            raise EvalError(_explain(error, config, written)) from None
    if estimated:
        logger.warning("the server at %s reported no token usage: n_tokens of %d answers are estimated as "
                       "characters / 4", config.endpoint, estimated)
    if no_text:
        logger.warning("%s", _no_text_warning(config, no_text, no_text_reasons))
    return new_tokens, no_text


def _no_text_warning(config: Any, no_text: list[str], reasons: set[str | None]) -> str:
    shown = ", ".join(no_text[:5]) + (f" and {len(no_text) - 5} more" if len(no_text) > 5 else "")
    text = (f"warning: the server at {config.endpoint} answered no text (content null or blank) for "
            f"{len(no_text)} problem{'s' if len(no_text) != 1 else ''}, {1 + EMPTY_RETRIES} requests each: {shown}. "
            "Those answers are not stored (the metrics leave them out); run the same command again to ask again")
    if "length" in reasons:
        text += (f". The server said finish_reason 'length': the answer hit --max-new-tokens "
                 f"({config.max_new_tokens}) before any text (a reasoning model's hidden reasoning?); a larger "
                 "--max-new-tokens may help")
    return text


def _models_url(endpoint: str) -> str:
    """Where the server lists the model names it serves (a URL that is not http(s) is reported as given)."""
    try:
        return api_root(endpoint) + "/models"
    except ValueError:
        return endpoint.rstrip("/") + "/models"


def _explain(error: HTTPRequestError, config: Any, written: int = 0) -> str:
    """A message that says which URL failed, what was tried, what was kept and what to do."""
    kept = (f"the {written} answer{'s' if written != 1 else ''} written in this run (and any before it) are kept; run "
            "the same command again to continue")
    if error.kind == "deadline":
        return (f"the deadline (--deadline {config.deadline:g} s) passed before the server at {error.url} answered "
                f"every request: {error.reason}; {kept} (with a larger --deadline, or none)")
    if error.status in (401, 403):
        env = config.api_key_env
        where = (f"${env} is {'set' if os.environ.get(env) else 'not set'}" if env else "no API key variable is set")
        return (f"the server refused the request (HTTP {error.status}) at {error.url}: "
                f"{error.server_message or error.reason}. The API key is read from the environment ({where}); "
                f"set it to the key the server was started with (vllm serve --api-key, llama-server --api-key), or "
                f"name another variable with --api-key-env")
    if error.status == 404:
        return (f"{error.url} answered HTTP 404: {error.server_message or error.reason}. Check --endpoint (the API "
                f"root, e.g. http://127.0.0.1:8000/v1) and --endpoint-model {config.endpoint_model!r} "
                f"(GET {_models_url(config.endpoint)} lists the names the server serves); {kept}")
    if error.status is None and error.kind == "exhausted" and error.reason.startswith("timed out"):
        return (f"the server at {error.url} did not answer within --request-timeout {config.request_timeout:g} s "
                f"(tried {error.attempts} times in {error.seconds:.1f} s): it accepts connections but sends no "
                f"answer: is it stuck, or overloaded (then lower --concurrency or raise --request-timeout)? {kept}")
    if error.status is None and error.kind in ("exhausted", "unreachable"):  # no answer at all
        tries = f"{error.attempts} times" if error.attempts != 1 else "once"
        return (f"cannot reach the server at {error.url}: {error.reason}; tried {tries} in "
                f"{error.seconds:.1f} s. Start the server first (e.g. `vllm serve MODEL --port 8000` or "
                f"`llama-server -m model.gguf --port 8080`) and pass its API root as --endpoint; {kept}")
    return f"{error}; {kept}"


def _estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4
