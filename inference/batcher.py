"""An asyncio micro-batcher: gather scoring requests, run them as one batch off the loop.

Requests are ``(user_id, window)``. A batch closes when it holds ``max_batch`` distinct
users or when its first request has waited ``max_wait_s``, so a lone request on an idle
batcher is scored after at most the max wait. One batch is scored at a time, in a thread
executor; while it runs, new requests keep gathering, so under load batches grow by
themselves (up to ``max_batch``) instead of queueing up small. Several requests for one
user in the batch being gathered become one row: the latest window wins and every waiter
gets that row's result.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

W = TypeVar("W")  # what a request carries (a window)
R = TypeVar("R")  # what a user gets back

ScoreBatch = Callable[[Sequence[tuple[str, W]]], Sequence[R]]


@dataclass
class _Pending(Generic[W, R]):
    window: W
    waiters: list[asyncio.Future[R]] = field(default_factory=list)


class MicroBatcher(Generic[W, R]):
    """``await batcher.submit(user_id, window)`` returns that user's result.

    ``score_batch`` receives ``[(user_id, window), ...]`` (distinct users) and returns one
    result per row, in order. It runs in ``executor`` (a one-thread pool by default), one
    batch at a time.
    """

    def __init__(self, score_batch: ScoreBatch[W, R], max_batch: int = 256,
                 max_wait_s: float = 0.005, executor: Executor | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._score = score_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._pending: dict[str, _Pending[W, R]] = {}  # the batch being gathered
        self._closed: deque[dict[str, _Pending[W, R]]] = deque()  # full ones, waiting
        self._timer: asyncio.TimerHandle | None = None
        self._due = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches scored (for metrics and tests)
        self.rows = 0  # rows scored after coalescing

    def submit(self, user_id: str, window: W) -> asyncio.Future[R]:
        """Queue a request; the returned future resolves with the user's result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        pending = self._pending.get(user_id)
        if pending is None:
            self._pending[user_id] = _Pending(window, [future])
        else:
            pending.window = window  # the latest window wins
            pending.waiters.append(future)
        if len(self._pending) >= self.max_batch:
            self._close()
        elif self._timer is None and not self._due:
            self._timer = loop.call_later(self.max_wait_s, self._expire)
        self._kick()
        return future

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
        if self._pending:
            self._closed.append(self._pending)
            self._pending = {}

    def _kick(self) -> None:
        """Start the next batch if the scorer is free and a batch is ready."""
        if self._task is not None:
            return
        if not self._closed and self._pending and self._due:
            self._close()
        if not self._closed:
            return
        batch = self._closed.popleft()
        self._task = asyncio.get_running_loop().create_task(self._run(batch))
        self._task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._task = None
        self._kick()

    async def _run(self, batch: dict[str, _Pending[W, R]]) -> None:
        rows = [(user, p.window) for user, p in batch.items()]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._score, rows)
            if len(results) != len(rows):
                raise RuntimeError(f"scorer returned {len(results)} results for {len(rows)}")
        except Exception as exc:
            log.exception("scoring a batch of %d users failed", len(rows))
            for p in batch.values():
                for waiter in p.waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(rows)
        for p, result in zip(batch.values(), results, strict=True):
            for waiter in p.waiters:
                if not waiter.done():  # a caller may have cancelled its wait
                    waiter.set_result(result)

    async def drain(self) -> None:
        """Score everything queued now and wait until the scorer is idle."""
        self.flush()
        while self._task is not None or self._closed:
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
            else:
                self._kick()
            await asyncio.sleep(0)

    async def aclose(self) -> None:
        await self.drain()
        if self._own_executor:
            self._executor.shutdown(wait=True)
