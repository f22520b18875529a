# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fixtures: a private wgd on a socket of its own, unique group names, and helper processes.

Run through ``meson test --suite python``, which sets WG_LIBWG (this build's libwg), WG_WGD (its
wgd) and PYTHONPATH (the package in the source tree). Nothing waits for something to "have
happened" by sleeping: events are ordered with pipes and groups, and states the test must see
are polled for with a generous deadline (PATIENCE).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Nothing here takes this long unless something hangs.
PATIENCE = 20.0

HELPER = Path(__file__).with_name("helper.py")


def until(predicate: Callable[[], bool], what: str, patience: float = PATIENCE) -> None:
    """Poll *predicate* until it holds; fail the test after *patience* seconds."""
    deadline = time.monotonic() + patience
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {patience} s waiting for {what}")
        time.sleep(0.01)


def _segments() -> list[tuple[int, int]]:
    """The address ranges of this process's mappings of wg segments (memfds named "wg")."""
    ranges = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == "/memfd:wg":
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
    return ranges


def sleeping_on_segment(tid: int) -> bool:
    """Whether thread *tid* of this process is blocked in a futex wait on a wg segment.

    Its system call's first argument (the futex word's address) must be inside a segment's
    mapping: a thread that waits for the GIL, or for anything else, sleeps in a futex too.
    """
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except PermissionError:
        pytest.skip("/proc/self/task/TID/syscall cannot be read here: no way to see a thread sleep")
    except OSError:  # the thread is gone
        return False
    # "running", or a number and its arguments
    if len(fields) < 2 or not fields[0].isdigit():
        return False
    addr = int(fields[1], 16)
    return any(start <= addr < end for start, end in _segments())


@pytest.fixture(scope="session")
def wgd() -> Iterator[str]:
    """This build's wgd, serving a socket in a fresh directory; $WGD_SOCKET points at it."""
    binary = os.environ.get("WG_WGD")
    if not binary:
        pytest.skip("WG_WGD is not set (run the tests through 'meson test --suite python')")

    tmp = tempfile.mkdtemp(prefix="wg-python-")
    # Other uids must reach the socket too: the permission test connects as nobody.
    os.chmod(tmp, 0o755)
    path = os.path.join(tmp, "wgd.sock")
    proc = subprocess.Popen(
        [binary, f"--socket={path}", "--idle-timeout=0", "--log-level=warning"],
        stdin=subprocess.DEVNULL,
    )

    def accepts() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"wgd exited with status {proc.returncode} before it served {path}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            try:
                s.connect(path)
            except OSError:
                return False
        return True

    try:
        until(accepts, f"wgd to accept on {path}")
        os.environ["WGD_SOCKET"] = path
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


_serial = itertools.count()


@pytest.fixture
def name(request: pytest.FixtureRequest, wgd: str) -> str:
    """A group name of this test's own (the wgd lives for the whole session)."""
    base = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:48]
    return f"{base}-{next(_serial)}"


class Helper:
    """A helper.py process: an unrelated Python program (exec'd, not forked) using wg.

    It talks on its stdout, one line per event, and waits for instructions on its stdin.
    """

    def __init__(self, *args: str, **popen: object) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **popen,  # type: ignore[arg-type]
        )

    def expect(self, line: str) -> str:
        """Read the helper's next line; it must start with *line*. Returns the rest."""
        got = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not got:
            status = self.proc.wait(PATIENCE)
            pytest.fail(f"helper {self.proc.args[2:]} exited ({status}) instead of saying {line!r}")
        assert got.startswith(line), f"helper said {got!r}, expected {line!r}"
        return got[len(line) :].strip()

    def tell(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def finish(self) -> int:
        """Close its stdin and collect its exit status."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        return self.proc.wait(PATIENCE)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(PATIENCE)


@pytest.fixture
def helpers() -> Iterator[Callable[..., Helper]]:
    """Start helper processes; any still running at the end of the test is killed."""
    started: list[Helper] = []

    def start(*args: str, **popen: object) -> Helper:
        h = Helper(*args, **popen)
        started.append(h)
        return h

    yield start
    for h in started:
        h.kill()
        for f in (h.proc.stdin, h.proc.stdout):
            if f:
                f.close()
