"""The OpenAI-compatible completions API, spoken once for every part of pivotrl that asks a server for text.

vLLM, SGLang, llama.cpp's ``llama-server``, TGI and hosted APIs all accept ``POST {root}/chat/completions``
(``messages``: the server applies its own chat template) and ``POST {root}/completions`` (a raw ``prompt``) and
answer ``{"choices": [...], "usage": {...}}``. Users of this module: the pivot's endpoint backend
(:mod:`pivotrl.pivot.endpoint`), evaluation through a server (:mod:`pivotrl.evaluation.endpoint`), and an LLM judge.
It imports no pipeline stage.

Public API
    :func:`api_root` (the URL rule), :func:`connect` (an :class:`OpenAICompletions` for a URL),
    :class:`OpenAICompletions` (one prompt's ``n`` choices), :func:`complete_all` (many prompts, a bounded number
    in flight), :class:`Completion` and :class:`TokenLogprob` (what comes back).

The URL rule (:func:`api_root`)
    A URL is the API root (``http://host:8000/v1``) or a full endpoint URL (``.../v1/chat/completions``,
    ``.../v1/completions``): a trailing endpoint path and trailing slashes are removed. A URL without any path
    (``http://host:8000``) means ``http://host:8000/v1``, the root every OpenAI-compatible server serves;
    any other path is kept as it is (hosted APIs have roots such as ``/api/v1`` or ``/v1beta/openai``). To reach a
    server that serves ``/chat/completions`` at the very root, give that full URL (``http://host/chat/completions``).

Retries, timeouts, the deadline, the API key and the loopback proxy bypass are
:class:`pivotrl.http_client.JSONClient`'s (connection errors, timeouts, 429 and 5xx are retried with backoff; any
other 4xx, a redirect or a malformed body fails at once with :class:`~pivotrl.http_client.HTTPRequestError`).

Empty answers
    A choice whose text is null or blank (``content: null``: a reasoning model that spent ``max_tokens`` on hidden
    reasoning, a refusal, a server glitch) is no answer. With ``empty_retries=k`` it is asked for again, at most k
    more requests per prompt (each with the next seed); what is still empty then comes back as ``""`` and is
    counted in :attr:`Completion.empty`, for the caller to leave unstored or to report. With ``k=0`` (the default
    of :meth:`OpenAICompletions.complete`) it is an empty answer at once.

Waiting
    :func:`complete_all` shows, on its progress bar, the requests in flight, the attempts retried (and why) and how
    long no answer has arrived, refreshed while it waits; when the client's deadline passes it stops at once
    (``kind="deadline"``), the requests in flight abandoned.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pivotrl.http_client import MAX_MESSAGE_CHARS, HTTPRequestError, JSONClient, JSONResponse, server_message

__all__ = ["Completion", "OpenAICompletions", "TokenLogprob", "api_root", "complete_all", "connect"]

_ENDPOINT_PATHS = ("/chat/completions", "/completions")


def api_root(url: str) -> str:
    """The API root of ``url`` by the module's URL rule; ValueError for a URL that is not http(s)."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL like 'http://127.0.0.1:8000/v1', got {url!r}")
    root = url.rstrip("/")
    for suffix in _ENDPOINT_PATHS:
        if root.endswith(suffix):
            return root[: -len(suffix)].rstrip("/")  # explicit: whatever precedes the endpoint path is the root
    if not urllib.parse.urlsplit(root).path:
        root += "/v1"
    return root


def connect(url: str, model: str, *, chat: bool = True, api_key: str | None = None,
            **client_options: Any) -> OpenAICompletions:
    """An :class:`OpenAICompletions` for the server at ``url`` (see :func:`api_root`) serving ``model``.

    ``client_options`` go to :class:`~pivotrl.http_client.JSONClient` (``timeout``, ``connect_timeout``,
    ``max_retries``, ``backoff``, ``deadline``, ``user_agent``, ...)."""
    return OpenAICompletions(JSONClient(api_root(url), api_key=api_key, **client_options), model, chat=chat)


# ------------------------------------------------------------------------------------------------ results


@dataclass
class TokenLogprob:
    """One generated token's log-probability, and the most likely tokens at its position (``top``: token ->
    log-probability; empty unless ``top_logprobs`` were asked for)."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass
class Completion:
    """The ``n`` choice texts of one prompt, with what it cost.

    ``tokens[i]`` is the completion-token count of ``texts[i]`` from the server's ``usage``: exact when its request
    returned one choice; when a request returned several, the request's ``completion_tokens`` split over its
    choices in proportion to their lengths in characters (the counts still add up); None when the server reported
    no usage. ``finish_reasons[i]`` is the choice's ``finish_reason`` (``"stop"``, ``"length"``: cut at
    ``max_tokens``, ...), None when the server gave none. ``logprobs[i]`` is the choice's tokens with their
    log-probabilities when they were asked for and the server returned them, else None. ``prompt_tokens`` /
    ``completion_tokens`` sum the reported usage; ``requests`` counts HTTP attempts (failed ones included),
    ``retries`` the retried ones, ``topup_requests`` the extra requests made because the server returned fewer
    than ``n`` choices, ``empty_requests`` those made again because choices came back empty, and ``empty`` the
    texts still empty (``""``) after them.
    """

    texts: list[str] = field(default_factory=list)
    tokens: list[int | None] = field(default_factory=list)
    finish_reasons: list[str | None] = field(default_factory=list)
    logprobs: list[list[TokenLogprob] | None] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    retries: int = 0
    topup_requests: int = 0
    empty_requests: int = 0
    empty: int = 0


@dataclass
class _Choice:
    text: str
    finish_reason: str | None
    logprobs: list[TokenLogprob] | None


# ------------------------------------------------------------------------------------------------ one prompt


class OpenAICompletions:
    """Completions from an OpenAI-compatible server through a :class:`JSONClient` whose ``base_url`` is the API
    root (``http://host:port/v1``; :func:`connect` applies the URL rule).

    ``chat=True`` posts ``{root}/chat/completions`` with ``messages``; ``chat=False`` posts ``{root}/completions``
    with the raw ``prompt`` text. Malformed answers raise :class:`HTTPRequestError` with ``kind="malformed"`` and
    say what is wrong. Thread-safe, as its client is.
    """

    def __init__(self, client: JSONClient, model: str, *, chat: bool = True) -> None:
        self.client = client
        self.model = model
        self.chat = chat
        self.path = "/chat/completions" if chat else "/completions"

    @property
    def url(self) -> str:
        return self.client.url(self.path)

    def complete(self, prompt: list[dict] | str, *, n: int = 1, temperature: float = 0.0, top_p: float = 1.0,
                 max_tokens: int = 512, seed: int | None = None, stop: Sequence[str] | None = None,
                 logprobs: int | None = None, empty_retries: int = 0) -> Completion:
        """``n`` choice texts for one prompt (messages for chat, text otherwise).

        Body: ``model, messages|prompt, n, temperature, top_p, max_tokens`` and ``seed`` / ``stop`` when given.
        ``logprobs=k`` also asks for each generated token's log-probability and the ``k`` most likely
        alternatives (``k=0``: none; chat sends ``logprobs: true, top_logprobs: k``, plain completions
        ``logprobs: k``). Some servers (llama.cpp's server, several hosted APIs) ignore ``n > 1`` and return one
        choice: the missing ones are asked for again, each follow-up with the next seed (``seed + k``), or a
        sampling server with a fixed seed would return the very same text. ``empty_retries``: how many more
        requests choices that come back null or blank may take (see the module docstring); the texts still empty
        after them are ``""``, counted in ``empty``.
        """
        if empty_retries < 0:
            raise ValueError(f"empty_retries must be >= 0, got {empty_retries}")
        result = Completion()
        request_number = 0
        again_for_empty = False
        while len(result.texts) < n:
            body: dict[str, Any] = {"model": self.model, ("messages" if self.chat else "prompt"): prompt,
                                    "n": n - len(result.texts), "temperature": temperature, "top_p": top_p,
                                    "max_tokens": max_tokens}
            if seed is not None:
                body["seed"] = seed + request_number
            if stop:
                body["stop"] = list(stop)
            if logprobs is not None:
                body.update({"logprobs": True, "top_logprobs": logprobs} if self.chat else {"logprobs": logprobs})
            if again_for_empty:
                result.empty_requests += 1
            elif request_number > 0:
                result.topup_requests += 1
            response = self.client.post(self.path, body)
            result.requests += response.attempts
            result.retries += response.attempts - 1
            choices, usage = self._parse(response)
            if not choices:
                raise HTTPRequestError(response.url, "the response has an empty 'choices' list", status=response.status,
                                       attempts=response.attempts, kind="malformed")
            kept = choices[: n - len(result.texts)]
            counts = _split_tokens([c.text for c in kept], [c.text for c in choices], usage.get("completion_tokens"))
            pairs = list(zip(kept, counts, strict=True))
            again_for_empty = result.empty_requests < empty_retries and any(not c.text.strip() for c in kept)
            if again_for_empty:  # ask again for the empty ones
                pairs = [(c, count) for c, count in pairs if c.text.strip()]
            for choice, count in pairs:
                result.texts.append(choice.text)
                result.finish_reasons.append(choice.finish_reason)
                result.logprobs.append(choice.logprobs)
                result.tokens.append(count)
                result.empty += not choice.text.strip()
            result.prompt_tokens += usage.get("prompt_tokens", 0)
            result.completion_tokens += usage.get("completion_tokens", 0)
            request_number += 1
        return result

    def _parse(self, response: JSONResponse) -> tuple[list[_Choice], dict[str, int]]:
        """The choices (in choice-index order) and token usage of a 2xx answer."""
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
            indexed.append((index if isinstance(index, int) else position, position,
                            _Choice(content, reason if isinstance(reason, str) else None,
                                    _logprobs(choice.get("logprobs"), self.chat))))
        indexed.sort(key=lambda item: item[:2])
        usage: dict[str, int] = {}
        reported = payload.get("usage")
        if isinstance(reported, dict):  # optional in several servers; ignored when absent or odd
            for key in ("prompt_tokens", "completion_tokens"):
                value = reported.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    usage[key] = value
        return [choice for *_, choice in indexed], usage


def _logprobs(raw: Any, chat: bool) -> list[TokenLogprob] | None:
    """A choice's token log-probabilities in either schema; None when absent or not in a shape we know (they are
    optional: a judge that needs them checks for None)."""
    try:
        if chat:  # {"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}
            return [TokenLogprob(t["token"], float(t["logprob"]),
                                 {a["token"]: float(a["logprob"]) for a in t.get("top_logprobs") or ()})
                    for t in raw["content"]]
        # plain completions: {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token: logprob} | null]}
        tops = raw.get("top_logprobs") or [None] * len(raw["tokens"])
        return [TokenLogprob(token, float(logprob), {k: float(v) for k, v in (top or {}).items()})
                for token, logprob, top in zip(raw["tokens"], raw["token_logprobs"], tops, strict=True)]
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


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


# ------------------------------------------------------------------------------------------------ many prompts


def complete_all(api: OpenAICompletions, prompts: Sequence[list[dict] | str], *, concurrency: int = 8,
                 stops: Sequence[Sequence[str] | None] | None = None,
                 on_result: Callable[[int, Completion], None] | None = None, progress: str | None = None,
                 **decoding: Any) -> list[Completion]:
    """Complete every prompt with ``api.complete(prompt, stop=stops[i], **decoding)``, at most ``concurrency``
    requests in flight; the :class:`Completion` of each prompt, in input order.

    ``stops`` gives each prompt its own stop strings (None: none). ``on_result(index, completion)`` is called in
    the calling thread as each prompt's answer arrives (in arrival order): the hook for writing answers as they
    come. ``progress``: a progress bar with this description (None: no bar).

    The first failure (an :class:`HTTPRequestError` of a request, or an exception of ``on_result``, or Ctrl-C)
    is raised at once and abandons the rest: no further prompt is started, and ``api.client.cancel`` is set so
    that requests waiting to retry give up (a client cancelled so stays cancelled: use a new one). The workers are
    daemon threads, so a command ends without waiting for the requests still in flight; their answers are dropped.
    When the client's deadline passes first, an :class:`HTTPRequestError` with ``kind="deadline"`` is raised the
    same way, saying how many prompts were answered. While it waits, the bar shows the requests in flight, the
    attempts retried (the last one's reason) and how long no answer has come.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if stops is not None and len(stops) != len(prompts):
        raise ValueError(f"stops has {len(stops)} entries for {len(prompts)} prompts")
    results: list[Completion | None] = [None] * len(prompts)
    if not prompts:
        return []
    pending = iter(range(len(prompts)))
    taking = threading.Lock()  # next() on a shared iterator is not thread-safe
    stopped = threading.Event()  # this call's own flag: the client may outlive it
    # (prompt index, its completion, the error that stopped a worker)
    arrived: queue.SimpleQueue[tuple[int, Completion | None, BaseException | None]] = queue.SimpleQueue()

    def work() -> None:
        while not stopped.is_set():
            with taking:
                index = next(pending, None)
            if index is None:
                return
            try:
                got = api.complete(prompts[index], stop=stops[index] if stops is not None else None, **decoding)
            except BaseException as error:  # noqa: BLE001 - handed to the calling thread, which raises it
                arrived.put((index, None, error))
                return
            arrived.put((index, got, None))

    for number in range(min(concurrency, len(prompts))):
        threading.Thread(target=work, name=f"pivotrl-openai-{number}", daemon=True).start()
    bar = _progress_bar(len(prompts), progress) if progress else None
    client = api.client
    last_answer = time.monotonic()
    shown = None
    try:
        for answered in range(len(prompts)):
            while True:
                remaining = client.remaining()
                try:
                    index, got, error = arrived.get(timeout=_POLL if remaining is None else min(_POLL, remaining))
                    break
                except queue.Empty:
                    pass
                if client.remaining() == 0:
                    activity = client.activity()
                    raise HTTPRequestError(api.url, f"the deadline of {client.deadline:g} s passed with {answered} of "
                                           f"{len(prompts)} prompts answered ({activity.in_flight} requests in "
                                           f"flight abandoned, {activity.retried} attempts retried)",
                                           kind="deadline", attempts=0, seconds=client.deadline or 0.0)
                if bar is not None:  # something to look at while nothing arrives
                    shown = _show_waiting(bar, client.activity(), time.monotonic() - last_answer, shown)
            last_answer = time.monotonic()
            if error is not None:
                raise error
            results[index] = got
            if on_result is not None:
                on_result(index, got)  # type: ignore[arg-type]
            if bar is not None:
                bar.update(1)
    except BaseException:
        stopped.set()
        api.client.cancel.set()
        raise
    finally:
        if bar is not None:
            bar.close()
    return results  # type: ignore[return-value]


_POLL = 1.0  # seconds between looks at the clock (deadline, progress) while no answer arrives


def _show_waiting(bar: Any, activity: Any, idle: float, shown: str | None) -> str:
    """Put the client's activity on the bar (redrawn only when the text changes: logs that are not terminals get
    one line per redraw)."""
    text = f"{activity.in_flight} in flight"
    if activity.retried:
        reason = (activity.last_retry or "").split(": ", 1)[0]  # "timed out (...)", "HTTP 503 ...", "connection error"
        text += f", {activity.retried} retried (last: {reason[:70]}{'…' if len(reason) > 70 else ''})"
    if idle >= 5:
        text += f", no answer for {int(idle) // 5 * 5} s"
    if text != shown:
        bar.set_postfix_str(text, refresh=True)
    return text


def _progress_bar(total: int, desc: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is a nicety: no tqdm, no bar
        return None
    return tqdm(total=total, desc=desc, unit="prompt", dynamic_ncols=True)
