"""An asyncio micro-batcher: gather scoring requests, run them as one batch off the loop.

Requests are ``(user_id, window)``. A batch is flushed when it holds ``max_batch`` distinct
users or when its first request has waited ``max_wait_s``, whichever comes first, so a
lone request is scored after at most the max wait. Several requests for one user in the
same batch become one row: the latest window wins and every waiter gets that row's result.
The scoring function runs in a thread executor; batches are scored one after another, in
the order they were closed.
"""

from __future__ import annotations

import asyncio
import logging
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
    result per row, in order. It runs in ``executor`` (a one-thread pool by default).
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
        self._pending: dict[str, _Pending[W, R]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
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
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

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
        """Score whatever is queued now and wait for every batch in flight."""
        self._flush()
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._own_executor:
            self._executor.shutdown(wait=True)
