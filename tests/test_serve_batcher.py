"""The micro-batcher on its own: requests coalesced up to the batch size, each answered with its
own rows, a full queue refused at once, a cancelled request skipped, a stop that finishes first."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from cgan_serve.batcher import BatchLimits, MicroBatcher, QueueFull, Stopping


class RecordingModel:
    """Stands in for the generator: each output row is its input row's first value and label, so a
    row that went to the wrong request shows; every call's size is recorded; calls can be held."""

    def __init__(self):
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        self.release.wait(10)
        self.calls.append(len(labels))
        return np.stack([noise[:, 0], labels.astype(np.float32)], axis=1)


def inputs(first: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    noise = np.full((count, 4), first, dtype=np.float32)
    return noise + np.arange(count, dtype=np.float32)[:, None], np.arange(count) % 10


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows():
    async def scenario():
        model = RecordingModel()
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=64, max_wait_s=0.05, max_queue=100))
        batcher.start()
        sizes = [1, 5, 16, 3, 9, 2, 16, 7]
        answers = await asyncio.gather(*(batcher.submit(*inputs(100.0 * i, n)) for i, n in enumerate(sizes)))
        await batcher.stop()
        return model, sizes, answers

    model, sizes, answers = run(scenario())
    for index, (size, answer) in enumerate(zip(sizes, answers, strict=True)):
        noise, labels = inputs(100.0 * index, size)
        assert np.array_equal(answer, np.stack([noise[:, 0], labels.astype(np.float32)], axis=1))
    assert sum(model.calls) == sum(sizes) and len(model.calls) < len(sizes)
    assert max(model.calls) <= 64


def test_no_call_exceeds_the_batch_size_and_a_larger_request_runs_alone():
    async def scenario():
        model = RecordingModel()
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=10, max_wait_s=0.05, max_queue=100))
        batcher.start()
        await asyncio.gather(*(batcher.submit(*inputs(0, n)) for n in (4, 4, 4, 25, 4, 6)))
        await batcher.stop()
        return model.calls

    calls = run(scenario())
    assert 25 in calls and sum(calls) == 47
    assert all(call <= 10 for call in calls if call != 25)


def test_batch_size_one_runs_every_request_alone():
    async def scenario():
        model = RecordingModel()
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=1, max_wait_s=0.05, max_queue=100))
        batcher.start()
        await asyncio.gather(*(batcher.submit(*inputs(0, n)) for n in (3, 1, 16, 2)))
        await batcher.stop()
        return model.calls

    assert sorted(run(scenario())) == [1, 2, 3, 16]


def test_a_full_queue_refuses_at_once():
    async def scenario():
        model = RecordingModel()
        model.release.clear()  # the first call holds the worker
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=1, max_wait_s=0, max_queue=2))
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(*inputs(0, 1)))
        await asyncio.sleep(0.05)  # taken by the worker: the queue is empty again
        waiting = [asyncio.ensure_future(batcher.submit(*inputs(0, 1))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="2 requests waiting"):
            await batcher.submit(*inputs(0, 1))
        model.release.set()
        await asyncio.gather(running, *waiting)
        await batcher.stop()

    run(scenario())


def test_a_cancelled_request_is_skipped_and_the_others_are_answered():
    async def scenario():
        model = RecordingModel()
        model.release.clear()
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=100, max_wait_s=0, max_queue=10))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(*inputs(0, 1)))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(batcher.submit(*inputs(0, 30)))
        kept = asyncio.ensure_future(batcher.submit(*inputs(5, 2)))
        await asyncio.sleep(0)
        gone.cancel()  # a client that timed out while its request waited
        model.release.set()
        await asyncio.gather(first, kept)
        await batcher.stop()
        return model.calls, kept.result()

    calls, kept = run(scenario())
    assert calls == [1, 2]
    assert np.array_equal(kept[:, 0], [5.0, 6.0])


def test_a_model_failure_reaches_every_request_of_its_batch_and_the_batcher_goes_on():
    class Failing(RecordingModel):
        def __call__(self, noise, labels):
            if len(self.calls) == 0:
                self.calls.append(len(labels))
                raise RuntimeError("broken")
            return super().__call__(noise, labels)

    async def scenario():
        batcher = MicroBatcher(Failing(), BatchLimits(max_batch_size=100, max_wait_s=0.05, max_queue=10))
        batcher.start()
        failed = await asyncio.gather(
            *(batcher.submit(*inputs(0, 2)) for _ in range(3)), return_exceptions=True
        )
        after = await batcher.submit(*inputs(0, 2))
        await batcher.stop()
        return failed, after

    failed, after = run(scenario())
    assert all(isinstance(answer, RuntimeError) for answer in failed)
    assert after.shape == (2, 2)


def test_stop_finishes_what_is_queued_then_refuses_new_work():
    async def scenario():
        model = RecordingModel()
        model.release.clear()
        batcher = MicroBatcher(model, BatchLimits(max_batch_size=1, max_wait_s=0, max_queue=10))
        batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(*inputs(i, 1))) for i in range(4)]
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0.05)
        with pytest.raises(Stopping):
            await batcher.submit(*inputs(0, 1))
        model.release.set()
        await stopping
        return [task.result()[0, 0] for task in pending]

    assert run(scenario()) == [0.0, 1.0, 2.0, 3.0]
