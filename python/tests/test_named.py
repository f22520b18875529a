# SPDX-License-Identifier: LGPL-2.1-or-later
"""Named groups and members, through a real wgd, shared with unrelated Python processes."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from conftest import PATIENCE, sleeping_on_segment, until

import wg


def test_open_create_exclusive(name: str) -> None:
    with pytest.raises(FileNotFoundError) as e:
        wg.open(name)
    assert e.value.filename == name
    with wg.open(name, create=True, exclusive=True, mode=0o660) as g:
        assert (g.count, g.generation) == (0, 0)
    with pytest.raises(FileExistsError):
        wg.open(name, create=True, exclusive=True)
    with wg.open(name, create=True) as g, wg.open(name) as h:
        g.add(1)
        assert h.count == 1
    wg.unlink(name)
    with pytest.raises(FileNotFoundError):
        wg.unlink(name)


@pytest.mark.parametrize("bad", ["", ".hidden", "a b", "x" * 65, "ümlaut", "a/b", "a\0b", "a\n"])
def test_invalid_names(wgd: str, bad: str) -> None:
    for call in (wg.open, wg.join, wg.unlink):
        with pytest.raises(ValueError, match="invalid group name"):
            call(bad)


@pytest.mark.parametrize("bad", [None, b"build", 3])
def test_names_must_be_str(wgd: str, bad: object) -> None:
    for call in (wg.open, wg.join, wg.unlink):
        with pytest.raises(TypeError):
            call(bad)  # type: ignore[arg-type]


def test_open_argument_checks(name: str) -> None:
    with pytest.raises(ValueError, match="create"):
        wg.open(name, exclusive=True)
    for mode in (0o700, 0o1666, -1):
        with pytest.raises(ValueError, match="mode"):
            wg.open(name, create=True, mode=mode)
    with pytest.raises(TypeError):
        wg.open(name, create=True, mode="0660")  # type: ignore[arg-type]
    # Nothing was created on the way.
    with pytest.raises(FileNotFoundError):
        wg.open(name)


def test_no_daemon_is_connection_refused(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("WGD_SOCKET", str(tmp_path / "nobody-here.sock"))
    with pytest.raises(ConnectionRefusedError):
        wg.open("anything")
    with pytest.raises(ConnectionRefusedError):
        wg.unlink("anything")


def test_permission_error(name: str, helpers) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a helper as another user")
    # The helper runs from this tree, as nobody: it must be able to read it.
    probe = subprocess.run(
        [sys.executable, "-c", "import wg"], user=65534, group=65534, extra_groups=[], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("nobody cannot load the package and libwg from this tree")
    wg.open(name, create=True, mode=0o600).close()
    child = helpers("open", name, user=65534, group=65534, extra_groups=[])
    assert child.expect("") == f"error {errno.EACCES} PermissionError"
    wg.unlink(name)


def test_two_processes_done_by_name(name: str, helpers) -> None:
    with wg.open(name, create=True) as g:
        g.add(5)
        a = helpers("done", name, "2")
        b = helpers("done", name, "3")
        outcome = g.wait(timeout=PATIENCE)
        assert outcome == wg.Outcome(0, 0, 0, 0)
        assert a.expect("opened") == "" and a.expect("did") == "2"
        assert b.expect("opened") == "" and b.expect("did") == "3"
        assert a.finish() == 0 and b.finish() == 0
        assert (g.count, g.generation) == (0, 1)
    wg.unlink(name)


def test_another_process_waits_by_name(name: str, helpers) -> None:
    with wg.open(name, create=True) as g:
        g.add(1)
        waiters = [helpers("wait", name) for _ in range(2)]
        for w in waiters:
            w.expect("waiting")
        g.done()
        for w in waiters:
            assert w.expect("outcome") == "0 0 0 0"
            assert w.finish() == 0
    wg.unlink(name)


def test_members_succeed_and_fail(name: str) -> None:
    with wg.open(name, create=True) as g:
        with wg.join(name) as m:
            assert isinstance(m, wg.Member)
            assert g.count == 1
        with pytest.raises(RuntimeError):
            with wg.join(name):
                raise RuntimeError("the work failed")
        with wg.join(name) as m:
            m.leave(3)
        assert g.count == 0
        assert g.generation == 3
        assert g.outcome(0) == wg.Outcome(0, 1, 0, 0)
        assert g.outcome(1) == wg.Outcome(1, 0, 1, 0)
        assert g.outcome(2) == wg.Outcome(2, 0, 1, 0)
        # Zero at once: the outcome of the generation that ended last.
        assert g.wait() == wg.Outcome(2, 0, 1, 0)
    wg.unlink(name)


def test_wait_outcome_counts_the_generation_waited_for(name: str, helpers) -> None:
    with wg.open(name, create=True) as g:
        ok = helpers("member", name)
        bad = helpers("member", name)
        ok.expect("joined")
        bad.expect("joined")
        assert g.count == 2
        result: list[wg.Outcome] = []
        waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
        waiter.start()
        until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
        ok.tell("0")
        ok.expect("left")
        bad.tell("7")
        bad.expect("left")
        waiter.join(PATIENCE)
        assert result == [wg.Outcome(0, 1, 1, 0)]
        assert not result[0].ok
    wg.unlink(name)


def test_member_killed_is_abandoned(name: str, helpers) -> None:
    with wg.open(name, create=True) as g:
        member = helpers("member", name)
        member.expect("joined")
        assert g.count == 1
        result: list[wg.Outcome] = []
        waiter = threading.Thread(target=lambda: result.append(g.wait(timeout=PATIENCE)))
        waiter.start()
        until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
        member.proc.send_signal(signal.SIGKILL)
        assert member.proc.wait(PATIENCE) == -signal.SIGKILL
        waiter.join(PATIENCE)
        assert result == [wg.Outcome(0, 0, 0, 1)]
        assert not result[0].ok
        assert g.count == 0
    wg.unlink(name)


def test_member_killed_releases_another_process(name: str, helpers) -> None:
    with wg.open(name, create=True):
        member = helpers("member", name)
        member.expect("joined")
        waiter = helpers("wait", name)
        waiter.expect("waiting")
        member.kill()
        assert waiter.expect("outcome") == "0 0 0 1"
        assert waiter.finish() == 0
    wg.unlink(name)


def test_member_closed_without_leaving_is_abandoned(name: str) -> None:
    with wg.open(name, create=True) as g:
        m = wg.join(name)
        assert g.count == 1
        m.close()
        assert g.wait(timeout=PATIENCE) == wg.Outcome(0, 0, 0, 1)
    wg.unlink(name)


def test_leave_checks(name: str) -> None:
    with wg.open(name, create=True) as g:
        m = wg.join(name)
        for status in (2**31, -(2**31) - 1, 2**64):
            with pytest.raises(ValueError, match="status"):
                m.leave(status)
        with pytest.raises(TypeError):
            m.leave("0")  # type: ignore[arg-type]
        assert g.count == 1
        m.leave(0)
        with pytest.raises(OSError) as e:
            m.leave(0)
        assert e.value.errno == errno.ENOTCONN
        # Still a plain handle on the group.
        m.add(1)
        m.done()
        m.close()
        with pytest.raises(ValueError, match="closed"):
            m.leave(0)
        assert g.outcome(0) == wg.Outcome(0, 1, 0, 0)
    wg.unlink(name)


def test_forked_child_cannot_leave(name: str) -> None:
    with wg.open(name, create=True) as g:
        m = wg.join(name)
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            code = 1
            try:
                m.leave(0)
            except OSError as e:
                code = 0 if e.errno == errno.ENOTCONN else 2
            try:
                with m:  # and its exit neither leaves nor disturbs the parent's membership
                    pass
            except BaseException:
                code = 3
            os._exit(code)
        deadline = time.monotonic() + PATIENCE
        while not os.waitpid(pid, os.WNOHANG)[0]:
            assert time.monotonic() < deadline, "the forked child hung"
            time.sleep(0.01)
        assert g.count == 1  # the membership is still the parent's
        with m:
            pass
        assert g.wait(timeout=PATIENCE) == wg.Outcome(0, 1, 0, 0)
    wg.unlink(name)


def test_unlink_wakes_waiters_and_stops_holders(name: str) -> None:
    with wg.open(name, create=True) as g:
        g.add(1)
        errors: list[int] = []

        def wait() -> None:
            try:
                g.wait(timeout=PATIENCE)
            except OSError as e:
                errors.append(e.errno)

        waiter = threading.Thread(target=wait)
        waiter.start()
        until(lambda: sleeping_on_segment(waiter.native_id), "the waiter to sleep")
        wg.unlink(name)
        waiter.join(PATIENCE)
        assert errors == [errno.EIDRM]
        for op in (lambda: g.add(1), g.done, g.wait, lambda: g.count):
            with pytest.raises(OSError) as e:
                op()
            assert e.value.errno == errno.EIDRM
