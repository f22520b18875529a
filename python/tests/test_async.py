# SPDX-License-Identifier: LGPL-2.1-or-later
"""wait_async(): the loop keeps running, timeouts, cancellation, and no thread left behind."""

from __future__ import annotations

import asyncio
import errno
import threading

import pytest
from conftest import PATIENCE, sleeping_on_segment, until

import wg


def wait_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "wg-wait"]


def no_wait_threads() -> bool:
    return not wait_threads()


def one_asleep() -> bool:
    """A wg-wait thread is asleep on a segment."""
    return any(t.native_id and sleeping_on_segment(t.native_id) for t in wait_threads())


async def until_async(predicate, what: str) -> None:
    """until(), without blocking the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def no_thread_left():
    until(no_wait_threads, "the wg-wait threads of an earlier test to end")
    yield
    until(no_wait_threads, "every wg-wait thread to end")


def test_zero_returns_without_a_thread() -> None:
    async def main() -> wg.Outcome:
        with wg.Group.new() as g:
            result = await g.wait_async()
            assert no_wait_threads()
            return result

    assert asyncio.run(main()).ok


def test_the_loop_runs_while_waiting() -> None:
    async def main() -> tuple[wg.Outcome, int]:
        with wg.Group.new() as g:
            g.add(1)
            task = asyncio.create_task(g.wait_async(timeout=PATIENCE))
            await until_async(one_asleep, "the wait to sleep")
            # The loop is free: other coroutines run meanwhile.
            ticks = 0
            for _ in range(5):
                await asyncio.sleep(0)
                ticks += 1
            assert not task.done()
            g.done()
            return await asyncio.wait_for(task, PATIENCE), ticks

    outcome, ticks = asyncio.run(main())
    assert outcome == wg.Outcome(0, 0, 0, 0)
    assert ticks == 5


def test_released_from_another_process_handle() -> None:
    async def main() -> list[wg.Outcome]:
        with wg.Group.new() as g, wg.Group.from_fd(g.fileno()) as other:
            g.add(2)
            tasks = [asyncio.create_task(g.wait_async()) for _ in range(3)]
            await until_async(lambda: len(wait_threads()) == 3, "three waits")
            other.done()
            other.done()
            return await asyncio.wait_for(asyncio.gather(*tasks), PATIENCE)

    assert all(o == wg.Outcome(0, 0, 0, 0) for o in asyncio.run(main()))


def test_timeout() -> None:
    async def main() -> None:
        with wg.Group.new() as g:
            g.add(1)
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(TimeoutError):
                await g.wait_async(timeout=0.05)
            assert loop.time() - start >= 0.05
            with pytest.raises(TimeoutError):
                await g.wait_async(timeout=0)
            assert g.count == 1

    asyncio.run(main())


def test_bad_timeouts() -> None:
    async def main() -> None:
        with wg.Group.new() as g:
            g.add(1)
            with pytest.raises(ValueError):
                await g.wait_async(timeout=-1)
            with pytest.raises(TypeError):
                await g.wait_async(timeout="1")  # type: ignore[arg-type]

    asyncio.run(main())


def test_cancel() -> None:
    async def main() -> None:
        with wg.Group.new() as g:
            g.add(1)
            task = asyncio.create_task(g.wait_async())
            await until_async(one_asleep, "the wait to sleep")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The coroutine is gone at once; its thread ends within a slice (the fixture
            # checks that it does). The group is untouched and usable.
            assert g.count == 1
            g.done()
            assert (await g.wait_async()).ok

    asyncio.run(main())


def test_wait_for_timeout_cancels() -> None:
    async def main() -> None:
        with wg.Group.new() as g:
            g.add(1)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(g.wait_async(), 0.05)

    asyncio.run(main())


def test_close_while_waiting() -> None:
    async def main() -> wg.Outcome:
        g = wg.Group.new()
        other = wg.Group.from_fd(g.fileno())
        g.add(1)
        task = asyncio.create_task(g.wait_async())
        await until_async(one_asleep, "the wait to sleep")
        g.close()  # the thread holds a reference of its own
        other.done()
        try:
            return await asyncio.wait_for(task, PATIENCE)
        finally:
            other.close()

    assert asyncio.run(main()).ok


def test_error_reaches_the_task(name: str) -> None:
    async def main() -> None:
        with wg.open(name, create=True) as g:
            g.add(1)
            task = asyncio.create_task(g.wait_async())
            await until_async(one_asleep, "the wait to sleep")
            wg.unlink(name)
            with pytest.raises(OSError) as e:
                await asyncio.wait_for(task, PATIENCE)
            assert e.value.errno == errno.EIDRM

    asyncio.run(main())


def test_loop_closed_before_the_thread_answers() -> None:
    # asyncio.run() cancels the pending wait when main() returns; the thread must not fail
    # when it finds the loop gone.
    async def main(g: wg.Group) -> None:
        asyncio.create_task(g.wait_async())
        await until_async(one_asleep, "the wait to sleep")

    with wg.Group.new() as g:
        g.add(1)
        asyncio.run(main(g))
        g.done()
