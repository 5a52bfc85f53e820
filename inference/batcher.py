"""An asyncio micro-batcher: gather scoring requests, run them as one batch off the loop.

Requests are ``(user_id, window)``. A batch closes when it holds ``max_batch`` distinct
users, when its first request has waited ``max_wait_s`` (so a lone request on an idle
batcher is scored after at most the max wait), or when the caller flushes. Several
requests for one user in the batch being gathered become one row: the latest window wins
and every waiter gets that row's result.

Closed batches are scored one at a time, in order, by a scoring thread that takes the next
one as soon as it is done with the last; results come back to the event loop. The thread
does not wait for the loop in between: a loop busy with a long handler would otherwise
hold the next batch back, and the model would sit idle exactly while the loop works (seen
in the worker: no overlap at all between handlers and inference). While batches are being
scored, a gathering batch only closes on size or flush, so under load batches grow by
themselves (up to ``max_batch``) instead of queueing up small.

Scoring can come in three steps: ``prepare`` when the batch closes and ``finish`` when its
output is back, both on the loop, and ``score_batch`` in the thread between them. The
worker keeps the thread to native code (the model), which runs without the GIL: Python in
a second thread competes with the loop for the GIL, and a thread that gives the GIL up for
a moment (a socket write, a numpy call) can then wait up to the switch interval to get it
back (Python's default is 5 ms; the worker sets ``gil_switch_ms``, see shopstream.worker).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

W = TypeVar("W")  # what a request carries (a window)
R = TypeVar("R")  # what a user gets back

Rows = Sequence[tuple[str, W]]


class _Ticket(Generic[R]):
    """One caller's wait: a future for one result (``submit``) or a list (``submit_many``)."""

    __slots__ = ("future", "results", "left", "single")

    def __init__(self, future: asyncio.Future[Any], size: int, single: bool) -> None:
        self.future = future
        self.results: list[R | None] = [None] * size
        self.left = size
        self.single = single

    def put(self, index: int, result: R) -> None:
        if self.future.done():  # the caller cancelled its wait, or a batch failed
            return
        self.results[index] = result
        self.left -= 1
        if not self.left:
            self.future.set_result(self.results[0] if self.single else self.results)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _Pending(Generic[W, R]):
    """A user's row in the batch being gathered: the latest window and everyone waiting."""

    __slots__ = ("window", "waiters")

    def __init__(self, window: W, waiters: list[tuple[_Ticket[R], int]]) -> None:
        self.window = window
        self.waiters = waiters


Batch = dict[str, _Pending[W, R]]


class _Failed(NamedTuple):
    """What the scoring thread hands back instead of an output when scoring raised."""

    error: Exception


class MicroBatcher(Generic[W, R]):
    """``await batcher.submit(user_id, window)`` returns that user's result;
    ``await batcher.submit_many(rows)`` the results of several, in order, with one wait.

    ``score_batch`` runs in ``executor`` (a one-thread pool by default), one batch at a
    time. It receives what ``prepare`` made of the rows ``[(user_id, window), ...]``
    (distinct users; without ``prepare``, the rows), and ``finish`` makes one result per
    row, in order, of what it returns (without ``finish``, it returns the results).
    """

    def __init__(self, score_batch: Callable[[Any], Any], max_batch: int = 256,
                 max_wait_s: float = 0.005, executor: Executor | None = None, *,
                 prepare: Callable[[Rows[W]], Any] | None = None,
                 finish: Callable[[Any], Sequence[R]] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._score = score_batch
        self._prepare = prepare
        self._finish = finish
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._pending: Batch[W, R] = {}  # the batch being gathered
        self._timer: asyncio.TimerHandle | None = None
        self._due = False
        # Closed batches, handed to the scoring thread: both sides take the lock to look
        # at them and at whether the thread is running.
        self._lock = threading.Lock()
        self._closed: deque[tuple[Batch[W, R], Any]] = deque()  # with what prepare made
        self._scoring = False
        self._in_flight = 0  # closed batches whose results have not reached the loop yet
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0  # batches scored (for metrics and tests)
        self.rows = 0  # rows scored after coalescing

    def submit(self, user_id: str, window: W) -> asyncio.Future[R]:
        """Queue a request; the returned future resolves with the user's result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._add(user_id, window, _Ticket(future, 1, single=True), 0)
        self._kick()
        return future

    def submit_many(self, rows: Sequence[tuple[str, W]]) -> asyncio.Future[list[R]]:
        """Queue several requests; the future resolves with their results, in order."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        if not rows:
            future.set_result([])
            return future
        ticket: _Ticket[R] = _Ticket(future, len(rows), single=False)
        for index, (user_id, window) in enumerate(rows):
            self._add(user_id, window, ticket, index)
        self._kick()
        return future

    def _add(self, user_id: str, window: W, ticket: _Ticket[R], index: int) -> None:
        pending = self._pending.get(user_id)
        if pending is None:
            self._pending[user_id] = _Pending(window, [(ticket, index)])
        else:
            pending.window = window  # the latest window wins
            pending.waiters.append((ticket, index))
        if len(self._pending) >= self.max_batch:
            self._close()
        elif self._timer is None and not self._due:
            self._timer = asyncio.get_running_loop().call_later(self.max_wait_s, self._expire)

    def flush(self) -> None:
        """Close the batch being gathered now and score it as soon as the scorer is free.

        For callers that already gathered a batch themselves (a Faust ``stream.take`` with
        ``within``): submit every event of it, then flush, so no second wait is added.
        """
        self._close()
        self._kick()

    def _expire(self) -> None:
        self._timer = None
        self._due = True  # the oldest request has waited long enough
        self._kick()

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due = False
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        rows = [(user, p.window) for user, p in batch.items()]
        try:
            work = rows if self._prepare is None else self._prepare(rows)
        except Exception as exc:
            log.exception("preparing a batch of %d users failed", len(rows))
            self._fail(batch, exc)
            return
        self._in_flight += 1
        self._idle.clear()
        with self._lock:
            self._closed.append((batch, work))

    def _kick(self) -> None:
        """Start the scoring thread if it is not running and a batch is ready for it."""
        with self._lock:
            if self._scoring:
                return
            due_and_idle = not self._closed and self._pending and self._due
        if due_and_idle:
            self._close()
        with self._lock:
            if self._scoring or not self._closed:
                return
            self._scoring = True  # only the loop sets it, only the thread clears it
        self._executor.submit(self._score_closed, asyncio.get_running_loop())

    def _score_closed(self, loop: asyncio.AbstractEventLoop) -> None:
        """In the scoring thread: score closed batches until there are none."""
        while True:
            with self._lock:
                if not self._closed:
                    self._scoring = False
                    break
                batch, work = self._closed.popleft()
            try:
                output = self._score(work)
            except Exception as exc:
                log.exception("scoring a batch of %d users failed", len(batch))
                output = _Failed(exc)
            loop.call_soon_threadsafe(self._deliver, batch, output)
        # a due batch may have been left for the thread to find free
        loop.call_soon_threadsafe(self._kick)

    def _deliver(self, batch: Batch[W, R], output: Any) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()
        if isinstance(output, _Failed):
            self._fail(batch, output.error)
            return
        try:
            results = output if self._finish is None else self._finish(output)
            if len(results) != len(batch):
                raise RuntimeError(f"scorer returned {len(results)} results for {len(batch)}")
        except Exception as exc:
            log.exception("finishing a batch of %d users failed", len(batch))
            self._fail(batch, exc)
            return
        self.batches += 1
        self.rows += len(batch)
        for p, result in zip(batch.values(), results, strict=True):
            for ticket, index in p.waiters:
                ticket.put(index, result)

    @staticmethod
    def _fail(batch: Batch[W, R], exc: BaseException) -> None:
        for p in batch.values():
            for ticket, _ in p.waiters:
                ticket.fail(exc)

    async def drain(self) -> None:
        """Score everything queued now and wait until its results are delivered."""
        self.flush()
        await self._idle.wait()

    async def aclose(self) -> None:
        await self.drain()
        if self._own_executor:
            self._executor.shutdown(wait=True)
