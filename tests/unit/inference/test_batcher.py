import asyncio
import threading
import time

import pytest

from inference.batcher import MicroBatcher


class Recorder:
    """A scorer that remembers each batch and the thread it ran on."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[tuple[str, str]]] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self, rows):
        self.threads.add(threading.get_ident())
        self.batches.append(list(rows))
        if self.fail:
            raise RuntimeError("model broke")
        return [f"{user}:{window}" for user, window in rows]


def test_a_full_batch_is_scored_without_waiting():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=4, max_wait_s=30.0)
        futures = [batcher.submit(f"u{i}", "w") for i in range(4)]
        results = await asyncio.wait_for(asyncio.gather(*futures), timeout=5)
        await batcher.aclose()
        return scorer, results

    scorer, results = asyncio.run(main())
    assert results == ["u0:w", "u1:w", "u2:w", "u3:w"]
    assert [len(b) for b in scorer.batches] == [4]


def test_batches_never_exceed_the_max_size():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=3, max_wait_s=0.01)
        await asyncio.gather(*(batcher.submit(f"u{i}", "w") for i in range(10)))
        await batcher.aclose()
        return scorer

    scorer = asyncio.run(main())
    assert [len(b) for b in scorer.batches] == [3, 3, 3, 1]


def test_a_lone_request_is_scored_after_the_max_wait():
    async def main():
        batcher = MicroBatcher(Recorder(), max_batch=256, max_wait_s=0.05)
        start = time.monotonic()
        result = await asyncio.wait_for(batcher.submit("u1", "w"), timeout=5)
        elapsed = time.monotonic() - start
        await batcher.aclose()
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert result == "u1:w"
    assert 0.04 <= elapsed < 2.0  # waited for company, then went alone


def test_requests_for_one_user_coalesce_and_the_latest_window_wins():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=256, max_wait_s=0.01)
        futures = [batcher.submit("u1", "old"), batcher.submit("u2", "x"),
                   batcher.submit("u1", "newer"), batcher.submit("u1", "newest")]
        results = await asyncio.gather(*futures)
        await batcher.aclose()
        return scorer, batcher, results

    scorer, batcher, results = asyncio.run(main())
    assert scorer.batches == [[("u1", "newest"), ("u2", "x")]]
    assert results == ["u1:newest", "u2:x", "u1:newest", "u1:newest"]
    assert (batcher.batches, batcher.rows) == (1, 2)


def test_scoring_runs_off_the_event_loop_thread():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=2, max_wait_s=0.01)
        await asyncio.gather(batcher.submit("a", "w"), batcher.submit("b", "w"))
        await batcher.aclose()
        return scorer, threading.get_ident()

    scorer, loop_thread = asyncio.run(main())
    assert scorer.threads and loop_thread not in scorer.threads


def test_a_failing_batch_fails_every_waiter_and_the_next_batch_still_runs():
    async def main():
        scorer = Recorder(fail=True)
        batcher = MicroBatcher(scorer, max_batch=2, max_wait_s=0.01)
        failed = await asyncio.gather(batcher.submit("a", "w"), batcher.submit("a", "v"),
                                      return_exceptions=True)
        scorer.fail = False
        ok = await batcher.submit("b", "w")
        await batcher.aclose()
        return failed, ok

    failed, ok = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) for e in failed)
    assert ok == "b:w"


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        MicroBatcher(Recorder(), max_batch=0)


def test_flush_scores_a_gathered_batch_without_the_max_wait():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=256, max_wait_s=30.0)
        futures = [batcher.submit(u, "w") for u in ("a", "b", "a")]
        batcher.flush()
        results = await asyncio.wait_for(asyncio.gather(*futures), timeout=5)
        await batcher.aclose()
        return scorer, results

    scorer, results = asyncio.run(main())
    assert results == ["a:w", "b:w", "a:w"]
    assert [len(b) for b in scorer.batches] == [2]


def test_requests_gather_while_a_batch_is_scored_instead_of_queueing_small():
    release = threading.Event()

    class Slow(Recorder):
        def __call__(self, rows):
            result = super().__call__(rows)
            release.wait(5)
            return result

    async def main():
        scorer = Slow()
        batcher = MicroBatcher(scorer, max_batch=256, max_wait_s=0.005)
        first = batcher.submit("u0", "w")
        await asyncio.sleep(0.05)  # u0's batch is being scored (and blocked)
        later = []
        for i in range(1, 6):
            later.append(batcher.submit(f"u{i}", "w"))
            await asyncio.sleep(0.02)  # each waits longer than max_wait
        release.set()
        await asyncio.gather(first, *later)
        await batcher.aclose()
        return scorer

    scorer = asyncio.run(main())
    assert [len(b) for b in scorer.batches] == [1, 5]


def test_submit_many_resolves_once_with_every_result_in_order():
    async def main():
        scorer = Recorder()
        batcher = MicroBatcher(scorer, max_batch=3, max_wait_s=30.0)
        many = batcher.submit_many([("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("d", "1")])
        batcher.flush()
        results = await asyncio.wait_for(many, timeout=5)
        empty = await batcher.submit_many([])
        await batcher.aclose()
        return scorer, results, empty

    scorer, results, empty = asyncio.run(main())
    # a, b, c filled the first batch (a's window was replaced before it closed)
    assert scorer.batches == [[("a", "2"), ("b", "1"), ("c", "1")], [("d", "1")]]
    assert results == ["a:2", "b:1", "a:2", "c:1", "d:1"]
    assert empty == []


def test_the_scoring_thread_takes_the_next_batch_while_the_loop_is_busy():
    # the loop closes two batches and then runs a long handler without awaiting: both are
    # scored meanwhile, not the second only once the loop comes back
    class Clocked(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.started: list[float] = []

        def __call__(self, rows):
            self.started.append(time.monotonic())
            time.sleep(0.05)
            return super().__call__(rows)

    async def main():
        scorer = Clocked()
        batcher = MicroBatcher(scorer, max_batch=256, max_wait_s=30.0)
        first = batcher.submit("a", "w")
        batcher.flush()
        second = batcher.submit("b", "w")
        batcher.flush()
        time.sleep(0.4)  # the loop is busy: nothing gets delivered or started by it
        busy_until = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
        await batcher.aclose()
        return scorer, busy_until, results

    scorer, busy_until, results = asyncio.run(main())
    assert results == ["a:w", "b:w"]
    assert len(scorer.started) == 2 and scorer.started[1] < busy_until
