# SPDX-License-Identifier: LGPL-2.1-or-later
"""Anonymous groups (no daemon): the API, its errors, bad arguments, close, fork and signals."""

from __future__ import annotations

import errno
import os
import pickle
import signal
import sys
import threading
import time

import pytest
from conftest import PATIENCE, sleeping_on_segment, until

import wg


@pytest.fixture
def g():
    with wg.Group.new() as group:
        yield group


def test_new_group_starts_at_zero(g: wg.Group) -> None:
    assert (g.count, g.generation) == (0, 0)
    assert g.fileno() >= 0
    assert not g.closed


def test_add_done_wait(g: wg.Group) -> None:
    g.add(3)
    g.done()
    assert g.count == 2
    g.add(-2)
    assert (g.count, g.generation) == (0, 1)
    # Zero at once: the outcome of the generation that ended last, without members.
    outcome = g.wait()
    assert outcome == wg.Outcome(0, 0, 0, 0)
    assert outcome.ok


def test_wait_released_by_another_thread(g: wg.Group) -> None:
    g.add(1)
    result: list[wg.Outcome] = []
    waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
    waiter.start()
    until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
    g.done()
    waiter.join(PATIENCE)
    assert result == [wg.Outcome(0, 0, 0, 0)]


def test_wait_timeout(g: wg.Group) -> None:
    g.add(1)
    with pytest.raises(TimeoutError) as e:
        g.wait(timeout=0)
    assert e.value.errno == errno.ETIMEDOUT
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        g.wait(timeout=0.05)
    assert time.monotonic() - start >= 0.05
    assert g.count == 1


def test_wait_returns_even_if_the_group_is_reused(g: wg.Group) -> None:
    g.add(1)
    result: list[wg.Outcome] = []
    waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
    waiter.start()
    until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
    g.done()
    g.add(1)  # the next generation, before the waiter has run
    waiter.join(PATIENCE)
    assert result == [wg.Outcome(0, 0, 0, 0)]
    assert (g.count, g.generation) == (1, 1)


def test_done_below_zero_is_erange(g: wg.Group) -> None:
    with pytest.raises(OSError) as e:
        g.done()
    assert e.value.errno == errno.ERANGE
    with pytest.raises(OSError) as e:
        g.add(-1)
    assert e.value.errno == errno.ERANGE
    assert (g.count, g.generation) == (0, 0)


@pytest.mark.parametrize(
    "start, delta, code",
    [
        (0, wg.COUNT_MAX + 1, errno.EOVERFLOW),
        (wg.COUNT_MAX, 1, errno.EOVERFLOW),
        # Beyond int64: ctypes would wrap these (2**64 + 1 would arrive as 1).
        (0, 2**64 + 1, errno.EOVERFLOW),
        (0, 2**200, errno.EOVERFLOW),
        (1, -(2**64) - 1, errno.ERANGE),
        (1, -(2**63), errno.ERANGE),
        (5, -6, errno.ERANGE),
    ],
)
def test_add_out_of_range(g: wg.Group, start: int, delta: int, code: int) -> None:
    g.add(start)
    with pytest.raises(OSError) as e:
        g.add(delta)
    assert e.value.errno == code
    assert g.count == start


def test_add_up_to_the_maximum(g: wg.Group) -> None:
    g.add(wg.COUNT_MAX)
    assert g.count == wg.COUNT_MAX
    g.add(-wg.COUNT_MAX)
    assert (g.count, g.generation) == (0, 1)


@pytest.mark.parametrize("delta", [True, 1.0, "1", None, 2j])
def test_add_wants_an_int(g: wg.Group, delta: object) -> None:
    with pytest.raises(TypeError):
        g.add(delta)  # type: ignore[arg-type]
    assert g.count == 0


@pytest.mark.parametrize("timeout", [-1, -0.001, float("-inf"), float("nan")])
def test_bad_timeout_values(g: wg.Group, timeout: float) -> None:
    g.add(1)
    with pytest.raises(ValueError):
        g.wait(timeout=timeout)


@pytest.mark.parametrize("timeout", ["1", True, b"", [1]])
def test_bad_timeout_types(g: wg.Group, timeout: object) -> None:
    with pytest.raises(TypeError):
        g.wait(timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, 2**70])
def test_huge_timeouts_mean_forever(g: wg.Group, timeout: float) -> None:
    assert g.wait(timeout=timeout).ok


def test_use_after_close(g: wg.Group) -> None:
    g.close()
    g.close()  # idempotent
    assert g.closed
    assert "closed" in repr(g)
    for use in (
        lambda: g.add(1),
        g.done,
        g.wait,
        lambda: g.count,
        lambda: g.generation,
        g.fileno,
        lambda: g.outcome(0),
    ):
        with pytest.raises(ValueError, match="closed"):
            use()


async def _wait_async_after_close() -> None:
    g = wg.Group.new()
    g.close()
    with pytest.raises(ValueError, match="closed"):
        await g.wait_async()


def test_wait_async_after_close() -> None:
    import asyncio

    asyncio.run(_wait_async_after_close())


def test_context_manager_closes() -> None:
    with wg.Group.new() as g:
        g.add(1)
    assert g.closed
    with pytest.raises(ValueError):
        with g:
            pass


def test_close_while_another_thread_waits() -> None:
    g = wg.Group.new()
    g.add(1)
    other = wg.Group.from_fd(g.fileno())
    result: list[wg.Outcome] = []
    waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
    waiter.start()
    until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
    g.close()  # the waiter keeps its own reference: its mapping stays
    other.done()
    waiter.join(PATIENCE)
    assert result == [wg.Outcome(0, 0, 0, 0)]
    other.close()


def test_constructor_is_private() -> None:
    with pytest.raises(TypeError):
        wg.Group()


def test_not_picklable(g: wg.Group) -> None:
    with pytest.raises(TypeError, match="fileno"):
        pickle.dumps(g)


def test_from_fd_duplicates(g: wg.Group) -> None:
    fd = os.dup(g.fileno())
    other = wg.Group.from_fd(fd)
    assert other.fileno() != fd
    os.close(fd)  # the caller's fd was not taken over
    g.add(2)
    assert other.count == 2
    g.close()  # nor is other tied to g
    other.done()
    other.done()
    assert (other.count, other.generation) == (0, 1)
    other.close()


def test_from_fd_takes_a_fileno_object(g: wg.Group) -> None:
    class Holder:
        def fileno(self) -> int:
            return g.fileno()

    with wg.Group.from_fd(Holder()) as other:
        g.add(1)
        assert other.count == 1


def test_from_fd_refuses_what_is_not_a_segment(tmp_path) -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as e:
            wg.Group.from_fd(r)
        assert e.value.errno == errno.EMEDIUMTYPE
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "file", "wb+") as f:
        f.write(b"\0" * 4096)
        with pytest.raises(OSError) as e:
            wg.Group.from_fd(f)
        assert e.value.errno == errno.EMEDIUMTYPE


def test_from_fd_read_only_is_permission_error(g: wg.Group) -> None:
    fd = os.open(f"/proc/self/fd/{g.fileno()}", os.O_RDONLY)
    try:
        with pytest.raises(PermissionError):
            wg.Group.from_fd(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("fd", [-1, 2**31, 2**64 + 3, 999_999])
def test_from_fd_bad_numbers_are_ebadf(fd: int) -> None:
    with pytest.raises(OSError) as e:
        wg.Group.from_fd(fd)
    assert e.value.errno == errno.EBADF


@pytest.mark.parametrize("fd", ["3", 3.0, None, True])
def test_from_fd_wants_an_int(fd: object) -> None:
    with pytest.raises(TypeError):
        wg.Group.from_fd(fd)  # type: ignore[arg-type]


def test_outcome_argument_checks(g: wg.Group) -> None:
    # Anonymous groups have no members, so no records. (A fresh segment's zeroed slots read
    # as an empty record of generation 0.)
    assert g.outcome(1) is None
    with pytest.raises(ValueError):
        g.outcome(-1)
    with pytest.raises(ValueError):
        g.outcome(2**29)
    with pytest.raises(TypeError):
        g.outcome("0")  # type: ignore[arg-type]


def test_exec_child_with_pass_fds(g: wg.Group, helpers) -> None:
    g.add(1)
    child = helpers("wait-fd", str(g.fileno()), pass_fds=[g.fileno()])
    child.expect("waiting")
    g.done()
    assert child.expect("outcome") == "0 0 0 0"
    assert child.finish() == 0


def _reap(pid: int) -> int:
    """The exit status of child *pid*, within the patience; SIGKILL and fail if it hangs."""
    deadline = time.monotonic() + PATIENCE
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)


def test_fork_child_uses_the_inherited_group(g: wg.Group) -> None:
    g.add(2)
    # A thread of the parent sleeps in a wait, with a reference of its own, across the fork.
    result: list[wg.Outcome] = []
    waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
    waiter.start()
    until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            g.done()
            g.done()
            g.close()
            os._exit(0)
        except BaseException:
            os._exit(1)
    assert _reap(pid) == 0
    waiter.join(PATIENCE)
    assert result == [wg.Outcome(0, 0, 0, 0)]
    assert (g.count, g.generation) == (0, 1)


def test_close_races_with_use_in_other_threads() -> None:
    """close() while other threads add, done and read: ValueError for them, never a crash."""
    for _ in range(50):
        g = wg.Group.new()
        g.add(1)
        closed = threading.Barrier(4)
        failures: list[BaseException] = []

        def hammer() -> None:
            closed.wait()
            try:
                while True:
                    g.add(1)
                    g.done()
                    g.count
                    g.fileno()
            except ValueError:
                pass
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        closed.wait()
        g.close()
        for t in threads:
            t.join(PATIENCE)
        assert failures == []


def test_signal_handler_runs_and_the_wait_goes_on(g: wg.Group) -> None:
    """PEP 475: a handler that returns does not end the wait; no InterruptedError."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    g.add(1)
    main = threading.get_native_id()
    handled: list[int] = []

    def poke() -> None:
        until(lambda: sleeping_on_segment(main), "the wait to sleep")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
        # Asleep again once the handler has run: the same wait, not a new one after it.
        until(lambda: bool(handled) and sleeping_on_segment(main), "the wait to sleep again")
        g.done()

    old = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
    try:
        poker = threading.Thread(target=poke)
        poker.start()
        assert g.wait(timeout=PATIENCE) == wg.Outcome(0, 0, 0, 0)
        poker.join(PATIENCE)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert handled == [signal.SIGUSR1]


def test_signal_handler_that_raises_ends_the_wait(g: wg.Group) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    g.add(1)
    main = threading.get_native_id()

    class Stop(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Stop

    def poke() -> None:
        until(lambda: sleeping_on_segment(main), "the wait to sleep")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        poker = threading.Thread(target=poke)
        poker.start()
        with pytest.raises(Stop):
            g.wait(timeout=PATIENCE)
        poker.join(PATIENCE)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert g.count == 1


def test_library_override_is_used() -> None:
    # The tests run against the build's libwg, not one installed on the machine.
    lib = os.environ.get("WG_LIBWG")
    if not lib:
        pytest.skip("WG_LIBWG is not set")
    with open(f"/proc/{os.getpid()}/maps") as f:
        assert os.path.realpath(lib) in f.read()
    assert sys.modules["wg._lib"].lib._name == lib
