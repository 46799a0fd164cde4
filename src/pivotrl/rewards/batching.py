"""The reward server's batching: requests wait in one line, and a scoring thread takes the items of several
requests into one batch (up to ``max_batch`` items, waiting up to ``max_wait_ms`` for more), with fresh
requests first in their own batch so that a small request is not stuck behind a large one; results are cached
by item. A batch that fails is scored again request by request, so one bad request fails alone."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from pivotrl.lru import LRUCache
from pivotrl.records import RewardInput
from pivotrl.rewards.compose import score_inputs

__all__ = ["Batcher", "RequestError", "score_items"]

logger = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def score_items(reward: Any, items: Sequence[RewardInput]) -> list[dict[str, Any]]:
    """Score items in one batch; JSON-ready dicts {"score", "gate", "components"}."""
    return [{"score": float(s.total), "gate": float(s.gate),
             "components": {k: float(v) for k, v in s.components.items()}} for s in score_inputs(reward, items)]


class _Job:
    __slots__ = ("done", "enqueued", "future", "items", "offset", "results")

    def __init__(self, items: list[RewardInput]) -> None:
        self.items = items
        self.future: Future[list[dict[str, Any]]] = Future()
        self.enqueued = time.monotonic()
        self.offset = 0  # items handed to a batch so far
        self.done = 0  # items scored so far
        self.results: list[dict[str, Any] | None] = [None] * len(items)


_STOP = object()


class Batcher:
    """The single scoring thread: fills batches of at most ``max_batch`` items from the queued requests and
    resolves their futures.

    Fairness: a request larger than a batch is scored a batch at a time, and after each batch a request that
    is not finished goes to the back of the line; requests not served yet go first, in a batch of their own.
    A small request that arrives while a 4096-item one is being scored waits for the batch in progress, not for
    all 4096 items.
    """

    def __init__(self, reward: Any, max_batch: int, max_wait_ms: float, cache_size: int) -> None:
        self.reward = reward
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._cache = LRUCache(cache_size)  # results by item
        self._queue: queue.Queue[Any] = queue.Queue()
        self._line: collections.deque[_Job] = collections.deque()  # requests with items still to score
        self._lock = threading.Lock()
        self._open = True
        self._thread: threading.Thread | None = None
        self.stats = {"requests": 0, "items": 0, "served": 0, "batches": 0, "batch_items": 0, "max_batch_seen": 0,
                      "cache_hits": 0, "failed_requests": 0, "fallbacks": 0, "queue": 0}

    # -- callers (handler threads)

    def submit(self, items: list[RewardInput]) -> Future[list[dict[str, Any]]]:
        job = _Job(items)
        with self._lock:
            if not self._open:
                raise RequestError(503, "the reward server is shutting down")
            self.stats["requests"] += 1
            self.stats["items"] += len(items)
            self.stats["queue"] += len(items)
            self._queue.put(job)
        return job.future

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.stats)

    # -- life cycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pivotrl-reward-batcher", daemon=True)
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting jobs, score everything already queued, end the thread."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the worker

    def _take(self, timeout: float | None) -> bool:
        """Move one queued request (waiting up to ``timeout``; None: forever) into the line; False on stop or
        when nothing came."""
        try:
            job = self._queue.get() if timeout is None else (
                self._queue.get_nowait() if timeout <= 0 else self._queue.get(timeout=timeout))
        except queue.Empty:
            return True
        if job is _STOP:
            return False
        if job.items:
            self._line.append(job)
        elif not job.future.done():
            job.future.set_result([])
        return True

    def _pending(self) -> int:
        return sum(len(job.items) - job.offset for job in self._line)

    def _run(self) -> None:
        stopping = False
        while True:
            if not self._line:
                if stopping or not self._take(None):
                    self._drain_after_stop()
                    return
                if not self._line:
                    continue
            while not stopping and not self._queue.empty():  # every request that arrived joins the line now
                stopping = not self._take(0)
            # a batch that is not full waits up to max_wait after its oldest request for more
            deadline = self._line[0].enqueued + self.max_wait
            while not stopping and self._pending() < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0 and self._queue.empty():
                    break
                stopping = not self._take(max(0.0, left))
            # Requests not served yet come first and, when there are any, make a batch of their own: a small
            # request is then answered as soon as the batch in progress ends, without waiting for another
            # full batch of a large request's items. Otherwise the unfinished requests take turns (each went
            # to the back of the line after its last batch).
            order = sorted(self._line, key=lambda job: job.offset > 0)
            fresh = any(job.offset == 0 for job in order)
            pieces, n = [], 0
            for job in order:
                if n == self.max_batch or (fresh and job.offset > 0):
                    break
                k = min(len(job.items) - job.offset, self.max_batch - n)
                pieces.append((job, job.offset, job.offset + k))
                job.offset += k
                n += k
            # finished requests leave the line; a request with items left goes to the back of it
            served = {id(job) for job, _, _ in pieces}
            unfinished = [job for job, _, end in pieces if end < len(job.items)]
            self._line = collections.deque([j for j in order if id(j) not in served] + unfinished)
            with self._lock:
                self.stats["queue"] -= n
                self.stats["batches"] += 1
                self.stats["batch_items"] += n
                self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], n)
            try:
                self._process(pieces)
            except BaseException as exc:  # noqa: BLE001 - the worker must never die; its callers get the error
                logger.error("reward batch of %d items failed: %s: %s", n, type(exc).__name__, exc)
                for job, _, _ in pieces:
                    self._fail(job, exc)

    def _drain_after_stop(self) -> None:
        # Anything a handler queued after the stop marker would wait forever: fail it.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP and not job.future.done():
                job.future.set_exception(RequestError(503, "the reward server is shutting down"))

    def _process(self, pieces: list[tuple[_Job, int, int]]) -> None:
        items = [it for job, start, end in pieces for it in job.items[start:end]]
        results: list[dict[str, Any] | None] = [None] * len(items)
        todo: list[int] = []
        for i, item in enumerate(items):
            hit = self._cache.get(item)
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        if todo:
            try:
                fresh = score_items(self.reward, [items[i] for i in todo])
            except Exception as exc:  # noqa: BLE001 - isolate the faulty request below
                if len(pieces) == 1:
                    self._fail(pieces[0][0], exc)
                    return
                logger.warning("scoring a batch of %d requests failed (%s: %s); scoring them one by one",
                               len(pieces), type(exc).__name__, exc)
                with self._lock:
                    self.stats["fallbacks"] += 1
                for piece in pieces:
                    self._process([piece])
                return
            for i, res in zip(todo, fresh, strict=True):
                results[i] = res
                self._cache.put(items[i], res)
        at = 0
        for job, start, end in pieces:
            job.results[start:end] = results[at:at + end - start]
            at += end - start
            job.done += end - start
            if job.done == len(job.items) and not job.future.done():
                job.future.set_result([dict(r, components=dict(r["components"])) for r in job.results])  # type: ignore
        with self._lock:
            self.stats["cache_hits"] += len(items) - len(todo)
            self.stats["served"] += len(items)

    def _fail(self, job: _Job, exc: BaseException) -> None:
        self._line = collections.deque(j for j in self._line if j is not job)  # none of its other items either
        with self._lock:
            self.stats["failed_requests"] += 1
        if not job.future.done():
            job.future.set_exception(exc)


