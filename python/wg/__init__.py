# SPDX-License-Identifier: LGPL-2.1-or-later
"""Go's sync.WaitGroup between unrelated processes: a binding of libwg.

A group is a counter in one page of shared memory (a sealed memfd). Producers :meth:`~Group.add`
work, workers call :meth:`~Group.done` as each piece ends, and any number of threads and
processes :meth:`~Group.wait` until the counter is back at zero. ``add`` and ``done`` are one
atomic operation inside libwg (no system call unless somebody waits); ``wait`` sleeps on a
futex in the same page. The binding is ctypes over ``libwg.so.0`` (or the file named by
``$WG_LIBWG``): the fast path is libwg's own, this module only checks arguments and turns
return codes into exceptions::

    import wg

    g = wg.Group.new()                  # anonymous: share it by passing g.fileno()
    g = wg.open("build", create=True)   # named, through wgd
    g.add(3)
    g.done()
    outcome = g.wait(timeout=60.0)      # TimeoutError after a minute
    with wg.join("build"):              # a member: wgd does its done even if it dies
        work()

Errors
    Everything libwg reports is raised as ``OSError(errno, os.strerror(errno))``, which Python
    turns into the matching subclass: :class:`TimeoutError` (ETIMEDOUT),
    :class:`FileNotFoundError` (ENOENT, no such group), :class:`FileExistsError` (EEXIST),
    :class:`PermissionError` (EACCES, EPERM), :class:`ConnectionRefusedError` (ECONNREFUSED:
    wgd is not running) ...; errors without a subclass of
    their own are plain :class:`OSError` with ``errno`` set: ERANGE (a done below zero),
    EOVERFLOW (an add above :data:`COUNT_MAX`), EIDRM (the group was deleted), EOWNERDEAD (it is
    broken: a member died under the break policy), EUCLEAN (its state word is corrupt). For
    named groups the name is the exception's ``filename``. Only the errno crosses libwg's API:
    wgd's sentence about an error does not reach Python.

    Arguments are checked before libwg sees them: a wrong type raises :class:`TypeError`, a
    value that can never be right (a negative timeout, an invalid name, a mode with bits
    outside 0o666) :class:`ValueError`. An add or done whose size cannot even be passed to C
    fails as libwg fails a too large one, with EOVERFLOW (or ERANGE): ctypes would otherwise
    wrap it silently. Nothing here can crash the interpreter on bad input.

Signals (PEP 475)
    :meth:`Group.wait` runs the Python signal handlers when a signal interrupts its sleep and
    goes on waiting for the same generation with what is left of its timeout, unless a handler
    raised (Ctrl-C raises :class:`KeyboardInterrupt` at once); it never raises
    :class:`InterruptedError`. The requests to wgd (:func:`open`, :func:`join`,
    :meth:`Member.leave`, :func:`unlink`) are interrupted only while libwg connects, before
    anything was sent (once a request is out, libwg waits for its answer through signals): then
    the handlers run and, unless one raised, the request is made again.

Threads
    A :class:`Group` may be used from several threads at once, like libwg's handle; ``close()``
    in one thread while others use it is safe (a waiter keeps the mapping until it returns; any
    other use after the close raises :class:`ValueError`). ``wait`` and the requests to wgd
    release the GIL while they block; ``add``, ``done`` and the getters, which never block,
    keep it. The binding needs a Python with a GIL (free-threaded builds: ``PYTHON_GIL=1``).

fork()
    A child made by ``os.fork()`` (or multiprocessing's fork start method) inherits every open
    :class:`Group` and may use it: the mapping is shared, not copied, and the fd is inherited.
    A membership stays the parent's: :meth:`Member.leave` in a child raises, and the child's
    ``close()`` only closes its copy. An exec'd program inherits nothing (libwg's fds are
    close-on-exec): pass ``g.fileno()`` with ``subprocess.Popen(..., pass_fds=[g.fileno()])``
    and attach with :meth:`Group.from_fd` there.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import math
import numbers
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple, NoReturn, Protocol, TypeVar, cast

from . import _lib

__all__ = [
    "COUNT_MAX",
    "Group",
    "Member",
    "Outcome",
    "join",
    "open",
    "unlink",
]

#: The largest value the counter can hold (WG_COUNT_MAX).
COUNT_MAX = _lib.COUNT_MAX

#: Generations count modulo 2**29 (see Group.generation).
GENERATION_MODULUS = _lib.GENERATION_MASK + 1

# A timeout this long (2**64 µs, half a million years) is forever.
_FOREVER = (_lib.USEC_INFINITY) / 1e6

# wait_async() sleeps in slices this long, so that its thread notices a cancellation.
_ASYNC_SLICE_USEC = 100_000

# The rule of wg.h for names, checked here to say what is wrong with a ValueError.
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")

# How close() in one thread is kept from freeing a handle that another thread is using, without
# a lock (a threading.Lock would cost an add + done pair half again as much):
#
#  - A Group holds its handle in one slot, _h, which close() empties with one swap before it
#    calls wg_unref(). A use of the handle reads _h in the very expression that calls libwg,
#    after every other argument is computed (no call comes between the read and the call), and
#    the function is one that keeps holding the GIL (_lib's PyDLL functions, which never
#    block). CPython lets another thread run only between bytecodes that can hand the GIL over
#    (a call's end, a backward jump, a function's start), and none comes between the read and
#    the end of the libwg call: so close() runs wholly before (the call gets NULL, which libwg
#    refuses with -EINVAL, and that is reported as use after close) or wholly after.
#  - A call that blocks (wait, leave) first takes a reference of its own that way (wg_ref()),
#    then calls with the GIL released, and drops it after: close() then drops only the Group's.
#
# A build of Python without the GIL would need a lock instead: this module refuses to load there.
if not getattr(sys, "_is_gil_enabled", lambda: True)():
    raise ImportError(
        "wg: this Python runs without the GIL, which the binding relies on; run it with PYTHON_GIL=1"
    )


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


_G = TypeVar("_G", bound="Group")


class Outcome(NamedTuple):
    """How the members of one completed generation ended (wg_get_outcome()).

    ``succeeded`` members left with status 0, ``failed`` left with another status, and
    ``abandoned`` died (or closed their handle) without leaving. Plain ``add``/``done`` work is
    not counted: a generation without members, and every generation of an anonymous group,
    has all three at zero. wgd keeps the record of the last four generations only.
    """

    #: The generation the counts belong to, modulo 2**29.
    generation: int
    succeeded: int = 0
    failed: int = 0
    abandoned: int = 0

    @property
    def ok(self) -> bool:
        """True when no member failed or was abandoned: what wgctl wait's exit 0 means."""
        return self.failed == 0 and self.abandoned == 0


def _error(code: int, name: str | None = None) -> OSError:
    """The OSError subclass for a positive errno, with the group's name as its filename."""
    if name is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), name)


def _check_int(what: str, value: object) -> int:
    # bool is an int, but add(True) or leave(False) is a slip, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


def _name_bytes(name: object) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"group name must be a str, not {type(name).__name__}")
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"invalid group name {name!r}: 1 to 64 characters of A-Z a-z 0-9 _ . -, not starting with '.'"
        )
    return name.encode("ascii")


def _deadline(timeout: object) -> float | None:
    """The CLOCK_MONOTONIC deadline of a timeout in seconds; None for forever."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:  # an int beyond any float
        seconds = math.inf if cast(int, timeout) > 0 else -math.inf
    if math.isnan(seconds):
        raise ValueError("timeout must be a number of seconds or None, not NaN")
    if seconds < 0:
        raise ValueError(f"timeout must not be negative, got {timeout!r}")
    if seconds >= _FOREVER:
        return None
    return time.monotonic() + seconds


def _usec_until(deadline: float | None) -> int:
    if deadline is None:
        return _lib.USEC_INFINITY
    # Rounded up: a timeout of 1 µs or less is still a wait, never a try.
    return max(0, math.ceil((deadline - time.monotonic()) * 1e6))


def _get(getter: Callable[[int | None, int], int], h: int) -> int:
    """A getter's value, on a handle that the caller holds a reference of its own to."""
    value = ctypes.c_uint64()
    r = getter(h, ctypes.addressof(value))
    if r < 0:
        raise _error(-r)
    return value.value


# wg_get_outcome()'s three counts.
_Counts = ctypes.c_uint64 * 3


def _outcome(h: int, generation: int, failures: int) -> Outcome:
    """The outcome of @generation, which has ended; @failures is what wg_wait() counted."""
    # One array for the three counts: every ctypes object made costs as much as a call.
    counts = _Counts()
    at = ctypes.addressof(counts)
    r = _wg_get_outcome(h, generation, at, at + 8, at + 16)
    if r == 0:
        return Outcome(generation, counts[0], counts[1], counts[2])
    if r == -errno.ENODATA:
        # No member ended in it, or four more generations ended since and its record is
        # gone: then the failures wg_wait() counted are all that is left, kind unknown.
        return Outcome(generation, 0, failures, 0)
    raise _error(-r)


def _begin(h: int) -> tuple[int, bool]:
    """Which generation a wait is for: (generation, True) if it has ended already.

    The getters look at the state word one at a time, so the generation is read on both sides
    of the count: if it did not move, the count belongs to it.
    """
    value = ctypes.c_uint64()
    at = ctypes.addressof(value)
    r = _wg_get_generation(h, at)
    before = value.value
    if not r:
        r = _wg_get_count(h, at)
        count = value.value
    if not r:
        r = _wg_get_generation(h, at)
    if r:
        raise _error(-r)
    if value.value != before:
        # It ended while we looked: that is the generation this wait observed, and it is over.
        return before, True
    if count == 0:
        # Nothing outstanding: the generation that counts is the one that ended last (wg_wait()).
        return (before - 1) & _lib.GENERATION_MASK, True
    return before, False


def _address(h: ctypes.c_void_p) -> int:
    """The address in a handle that libwg wrote on success (never NULL then)."""
    assert h.value is not None
    return h.value


def _closed(group: Group) -> ValueError:
    return ValueError(f"operation on a closed {type(group).__name__}")


# The calls on a Group's own handle (see the top): bound here, so that nothing but loads comes
# between reading the handle and the call; and add and done are the hot path.
_wg_add = _lib.wg_add
_wg_done = _lib.wg_done
_wg_fd = _lib.wg_fd
_wg_ref = _lib.wg_ref
_wg_get_count = _lib.wg_get_count
_wg_get_generation = _lib.wg_get_generation
_wg_get_outcome = _lib.wg_get_outcome


class _Stopped(Exception):
    """wait_async()'s thread was told to stop."""


def _wait_generation(
    h: int, gen: int, deadline: float | None, slice_usec: int | None, stop: threading.Event | None
) -> Outcome:
    """Sleep until generation @gen ends, or @deadline; the core of wait() and wait_async().

    Each call of wg_wait() waits for the generation it finds running. Between calls (after a
    signal, or a slice of wait_async()) @gen may have ended and the group been reused: so the
    generation is checked before every new call, and the wait ends when it has moved on, as
    wg_wait() itself would end it.
    """
    while True:
        usec = _usec_until(deadline)
        if slice_usec is not None and usec > slice_usec:
            usec = slice_usec
        r = _lib.wg_wait(h, usec)
        if r >= 0:
            return _outcome(h, gen, r)
        if r == -errno.EINTR:
            # PEP 475: let the handlers run (they raise, or we go on); only the main thread runs
            # them, and elsewhere this does nothing.
            _lib.check_signals()
        elif r != -errno.ETIMEDOUT:
            raise _error(-r)
        if _get(_lib.wg_get_generation, h) != gen:
            return _outcome(h, gen, 0)
        if r == -errno.ETIMEDOUT and deadline is not None and time.monotonic() >= deadline:
            raise _error(errno.ETIMEDOUT)
        if stop is not None and stop.is_set():
            raise _Stopped


class Group:
    """A handle on a wait group: one mapping of its segment, and the segment's fd.

    Get one from :meth:`new`, :meth:`from_fd`, :func:`open` or :func:`join`; the constructor
    is not public. The handle is this process's: the group itself lives as long as any process
    holds its fd or a mapping of it, and wgd's name as long as wgd keeps it.

    :meth:`close` releases the handle (wg_unref()): it is idempotent, and any other use after it
    raises :class:`ValueError`, as a closed file does. A Group is a context manager that closes
    it. A Group that is garbage-collected is closed too, but a program should not count on when.
    """

    __slots__ = ("_h", "__weakref__")

    # The handle's address; None once closed. Read only as the top of the module says.
    _h: int | None

    def __init__(self) -> None:
        raise TypeError("use wg.Group.new(), wg.Group.from_fd(), wg.open() or wg.join()")

    @classmethod
    def _adopt(cls, h: int) -> Group:
        self = cls.__new__(cls)
        self._h = h
        return self

    @classmethod
    def new(cls) -> Group:
        """Create an anonymous group in a fresh sealed memfd, with no daemon (wg_new()).

        The counter starts at zero, in generation zero. Share it with another process by
        passing :meth:`fileno`. Raises :class:`OSError`: ENOMEM, EMFILE or ENFILE (no fd left),
        or another error of memfd_create(), ftruncate() or mmap().
        """
        h = _lib.WgP()
        r = _lib.wg_new(ctypes.byref(h))
        if r < 0:
            raise _error(-r)
        return Group._adopt(_address(h))

    @classmethod
    def from_fd(cls, fd: int | _HasFileno) -> Group:
        """Attach to the group behind a segment fd (wg_from_fd()).

        *fd* is an int or an object with a ``fileno()`` method, for example an fd inherited
        through ``pass_fds`` or received over a unix socket. It is not taken over: the group
        keeps a close-on-exec duplicate, and the caller still owns (and closes) *fd*.

        The segment is validated before it is used: anything that is not a sealed memfd with a
        valid header is refused, never mapped past its end. Raises :class:`OSError`: EBADF
        (*fd* is not an open fd), EMEDIUMTYPE (not a sealed memfd: a pipe, a file, ...),
        EBADMSG (wrong size or header), EPROTONOSUPPORT (a segment of an unknown major
        version), EACCES or EPERM (cannot be mapped read-write), ENOMEM, EMFILE, ENFILE.
        """
        if not isinstance(fd, int) and hasattr(fd, "fileno"):
            fd = fd.fileno()
        fd = _check_int("fd", fd)
        if not 0 <= fd <= _lib.INT_MAX:
            raise _error(errno.EBADF)
        h = _lib.WgP()
        r = _lib.wg_from_fd(fd, ctypes.byref(h))
        if r < 0:
            raise _error(-r)
        return Group._adopt(_address(h))

    def _ref(self) -> int:
        """A reference of the caller's own on the handle, for a call that blocks: wg_unref() it."""
        h: int | None = _wg_ref(self._h)
        if h is None:
            raise _closed(self)
        return h

    def close(self) -> None:
        """Release the handle (wg_unref()). Idempotent; never raises.

        Unmaps the segment and closes its fd once no wait of this handle is still running (a
        wait in another thread keeps its own reference until it returns). Closing a
        :class:`Member` that has not left abandons the membership: wgd does its done and
        counts it abandoned.
        """
        h, self._h = self._h, None
        if h is not None:
            _lib.wg_unref(h)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._h is None

    def __enter__(self: _G) -> _G:
        if self._h is None:
            raise _closed(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter exit the module's globals may be gone: then the process exits anyway,
        # and the kernel cleans up.
        try:
            h, self._h = self._h, None
            if h is not None:
                _lib.wg_unref(h)
        except Exception:
            pass

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"cannot pickle a {type(self).__name__}: pass its fileno() to the other process and "
            "attach with wg.Group.from_fd(), or open the group by name"
        )

    def __repr__(self) -> str:
        h = self._h
        if h is None:
            return f"<wg.{type(self).__name__} closed>"
        try:
            return (
                f"<wg.{type(self).__name__} fd={self.fileno()} count={self.count} "
                f"generation={self.generation}>"
            )
        except (OSError, ValueError) as e:
            return f"<wg.{type(self).__name__} {e}>"

    def _error(self, r: int) -> Exception:
        """The exception of a failed call on the Group's own handle: EINVAL means it was NULL."""
        if r == -errno.EINVAL and self._h is None:
            return _closed(self)
        return _error(-r)

    def fileno(self) -> int:
        """The segment's fd (wg_fd()), to hand to another process.

        The fd belongs to the group and is closed by :meth:`close`; it is close-on-exec, so pass
        it with ``pass_fds`` (or a duplicate) to let an exec'd program inherit it.
        """
        fd: int = _wg_fd(self._h)
        if fd < 0:
            raise _closed(self)  # wg_fd() fails for NULL only
        return fd

    def add(self, delta: int) -> None:
        """Add *delta* to the counter (wg_add()); negative to mark work done, 0 only checks.

        One compare-and-swap on the shared page, no system call unless it ends a generation
        that somebody waits for. Everything done before an add that ends a generation happens
        before the return of every wait that it releases. On any error the counter is left as
        it was.

        Raises :class:`TypeError` if *delta* is not an int, :class:`ValueError` if the group is
        closed, and :class:`OSError`: ERANGE if the counter would drop below zero, EOVERFLOW if
        it would exceed :data:`COUNT_MAX`, EIDRM if the group was deleted, EOWNERDEAD if it is
        broken, EUCLEAN if its state word is corrupt.
        """
        if type(delta) is not int:  # the common case in one test; bool and the rest below
            delta = _check_int("delta", delta)
        # Beyond the counter's range either way, a delta fails in libwg as one just past it
        # does, after the same checks of the state word; passed as it is, ctypes would wrap it.
        if delta > COUNT_MAX:
            delta = COUNT_MAX + 1
        elif delta < -COUNT_MAX:
            delta = -COUNT_MAX - 1
        r = _wg_add(self._h, delta)
        if r:
            raise self._error(r)

    def done(self) -> None:
        """Mark one piece of work done: ``add(-1)`` (wg_done()).

        Raises :class:`ValueError` if the group is closed, and :class:`OSError`: ERANGE if the
        counter is already zero, EIDRM, EOWNERDEAD, EUCLEAN as :meth:`add`.
        """
        r = _wg_done(self._h)
        if r:
            raise self._error(r)

    def _read(self, getter: Callable[[int | None, int], int]) -> int:
        """A getter's value; the handle is read in the call's own expression (see Threads)."""
        value = ctypes.c_uint64()
        r = getter(self._h, ctypes.addressof(value))
        if r:
            raise self._error(r)
        return value.value

    @property
    def count(self) -> int:
        """The counter now, 0 to :data:`COUNT_MAX` (wg_get_count()).

        Raises :class:`ValueError` if closed; :class:`OSError` EIDRM, EOWNERDEAD, EUCLEAN.
        """
        return self._read(_wg_get_count)

    @property
    def generation(self) -> int:
        """How many times the counter went back to zero, modulo 2**29 (wg_get_generation()).

        Raises :class:`ValueError` if closed; :class:`OSError` EIDRM, EOWNERDEAD, EUCLEAN.
        """
        return self._read(_wg_get_generation)

    def outcome(self, generation: int) -> Outcome | None:
        """How the members of *generation* ended, or None if wgd has no record of it.

        There is a record when a member ended in that generation, for the last four
        generations that ended. (wait() returns the outcome of the generation it waited for.)
        Raises :class:`ValueError` if *generation* is not one (0 to 2**29 - 1) or the group is
        closed.
        """
        generation = _check_int("generation", generation)
        if not 0 <= generation <= _lib.GENERATION_MASK:
            raise ValueError(f"generation must be 0 to {_lib.GENERATION_MASK}, got {generation}")
        counts = _Counts()
        at = ctypes.addressof(counts)
        failed_at, abandoned_at = at + 8, at + 16
        r = _wg_get_outcome(self._h, generation, at, failed_at, abandoned_at)
        if r == -errno.ENODATA:
            return None
        if r:
            raise self._error(r)
        return Outcome(generation, counts[0], counts[1], counts[2])

    def wait(self, timeout: float | None = None) -> Outcome:
        """Wait until the counter is zero; return how the generation waited for ended.

        Blocks the calling thread (not the others: the GIL is released). If the counter is zero
        already it returns at once, with the outcome of the generation that ended last.
        Otherwise it waits for the generation running when it was called to end: it returns
        even if the group is reused (added to again) at once. *timeout* is in seconds (a
        float; 0 only checks); None waits forever. The deadline is taken once, on the
        monotonic clock.

        The generation is the one this method finds running; libwg's wg_wait() then looks
        again. Should the generation end and the group be reused in the microseconds between
        the two looks, the wait lasts until the next generation ends, as a wait called a moment
        later would (the outcome returned is still that of the first). libwg has no public call
        to wait for a given generation that would close this gap.

        A signal that interrupts the wait runs the Python handlers; if they return, the wait
        goes on for the same generation with the time left (PEP 475), so
        :class:`InterruptedError` is never raised; what a handler raises (such as
        :class:`KeyboardInterrupt`) propagates.

        Returns the generation's :class:`Outcome`: check ``outcome.ok`` to learn whether every
        member (see :func:`join`) succeeded. Raises :class:`TypeError` or :class:`ValueError`
        for a timeout that is not a non-negative number (or None), :class:`ValueError` if the
        group is closed, :class:`TimeoutError` when *timeout* passed first, and
        :class:`OSError`: EIDRM if the group was deleted (before or during the wait),
        EOWNERDEAD if it is broken, EUCLEAN if its state word is corrupt.
        """
        deadline = _deadline(timeout)
        h = self._ref()
        try:
            gen, ended = _begin(h)
            if ended:
                return _outcome(h, gen, 0)
            return _wait_generation(h, gen, deadline, None, None)
        finally:
            _lib.wg_unref(h)

    async def wait_async(self, timeout: float | None = None) -> Outcome:
        """:meth:`wait`, for asyncio: the event loop keeps running while the group is waited for.

        Same arguments, result and exceptions as :meth:`wait`. If the counter is zero it
        returns without blocking. Otherwise a dedicated thread (daemon, named ``wg-wait``)
        sleeps on the futex and hands the result to the loop. Not the loop's default executor:
        a few long waits would take all its workers from ``run_in_executor`` and
        ``getaddrinfo``. Nothing can wake a thread out of a futex sleep except the futex or a
        timeout, so the thread sleeps in slices of 100 ms and looks between them whether the
        task was cancelled: cancelling the task ends the coroutine at once, and its thread
        within one slice. The thread holds a reference of its own to the handle, so
        :meth:`close` while it sleeps is safe.
        """
        deadline = _deadline(timeout)
        h = self._ref()
        try:
            gen, ended = _begin(h)
            if ended:
                return _outcome(h, gen, 0)
        except BaseException:
            _lib.wg_unref(h)
            raise

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        stop = threading.Event()

        def settle(result: Outcome | None, error: BaseException | None) -> None:
            if future.done():  # cancelled meanwhile
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        def run() -> None:
            result: Outcome | None = None
            error: BaseException | None = None
            try:
                result = _wait_generation(h, gen, deadline, _ASYNC_SLICE_USEC, stop)
            except _Stopped:
                return
            except BaseException as e:  # handed to the awaiting task, not lost in a thread
                error = e
            finally:
                _lib.wg_unref(h)
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:
                pass  # the loop was closed while we slept: nobody is left to tell

        thread = threading.Thread(target=run, name="wg-wait", daemon=True)
        try:
            thread.start()
        except BaseException:
            _lib.wg_unref(h)
            raise
        try:
            return await future
        finally:
            stop.set()


class Member(Group):
    """A member's handle (wg_join()): the group, plus a membership held through wgd.

    Joining added one to the counter; the matching done is wgd's, when the member leaves with
    a status (:meth:`leave`) or, if the process dies first, on its behalf, counted as
    abandoned, so that a crashed worker never hangs its group. Used as a context manager
    (``with wg.join(name):``), it leaves with status 0 when the block ends normally and 1 when
    it raises, then closes. The membership belongs to the process that joined: a child after
    fork() cannot leave for it.
    """

    __slots__ = ("_pid", "_left")

    _pid: int
    _left: bool

    @classmethod
    def _adopt(cls, h: int) -> Member:
        self = cls.__new__(cls)
        self._h = h
        self._pid = os.getpid()
        self._left = False
        return self

    def leave(self, status: int = 0) -> None:
        """Leave the group: the member's done, with its status (wg_leave()).

        *status* 0 means the member's work succeeded; anything else (by convention an exit
        status, or 128 + a signal number) that it failed, which waiters learn in their
        :class:`Outcome`. The handle stays usable as a plain :class:`Group`.

        Raises :class:`TypeError`, or :class:`ValueError` if *status* does not fit a C int;
        :class:`ValueError` if closed; :class:`OSError`: ENOTCONN if it left already, or this
        process is not the one that joined (a child after fork()), or wgd does not know the
        membership; ENOENT if the group was deleted; ECONNREFUSED, ECONNRESET, ETIMEDOUT,
        EPROTO ... if wgd cannot be reached. A signal's handlers run; the request is not
        interrupted (see Signals above).
        """
        status = _check_int("status", status)
        if not _lib.INT_MIN <= status <= _lib.INT_MAX:
            raise ValueError(f"status must fit a C int, got {status}")
        if self._pid != os.getpid():
            raise OSError(
                errno.ENOTCONN,
                f"{os.strerror(errno.ENOTCONN)}: the membership belongs to process {self._pid}, "
                "which joined",
            )
        h = self._ref()
        try:
            r = _request(lambda: _lib.wg_leave(h, status))
        finally:
            _lib.wg_unref(h)
        if r < 0:
            raise _error(-r)
        self._left = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._left and self._h is not None and self._pid == os.getpid():
                if exc_type is None:
                    self.leave(0)
                else:
                    try:
                        self.leave(1)
                    except OSError:
                        # The block's own exception says more; and close() below abandons the
                        # membership, which wgd reports as a failure too.
                        pass
        finally:
            self.close()


def _request(call: Callable[[], int]) -> int:
    """Make a request to wgd with @call, again after a signal that came before it went out.

    libwg returns -EINTR only then (nothing was done), so PEP 475 applies: run the handlers,
    which may raise, and retry.
    """
    while True:
        r = call()
        if r != -errno.EINTR:
            return r
        _lib.check_signals()


def _request_error(r: int, name: str) -> OSError:
    """The exception of a request to wgd that failed with -@r."""
    return _error(-r, name)


def open(name: str, *, create: bool = False, exclusive: bool = False, mode: int = 0o600) -> Group:
    """Open the named group *name* through wgd (wg_open()).

    With *create*, a group that does not exist is created with permission bits *mode* (a
    subset of 0o666; the owner's 0o600 are always added; 0o660 lets the creator's group in);
    with *exclusive* too, an existing one is an error. wgd is asked once; from then on the
    handle works on shared memory without it. wgd's socket: ``$WGD_SOCKET``, else
    ``$XDG_RUNTIME_DIR/wgd.sock``, else ``/run/wgd.sock``. Blocks for the request (25 s at most).

    Raises :class:`TypeError` or :class:`ValueError` for a bad name, mode or *exclusive*
    without *create*; :class:`FileNotFoundError` (no such group), :class:`FileExistsError`
    (*exclusive*), :class:`PermissionError` (its mode, or the socket's, does not let this
    process in), :class:`ConnectionRefusedError` (wgd is not running), :class:`OSError`:
    EDQUOT or ENOSPC (wgd's limits), EUSERS, ECONNRESET, ETIMEDOUT, EPROTO, or any error of
    :meth:`Group.from_fd`.
    """
    raw = _name_bytes(name)
    mode = _check_int("mode", mode)
    if mode & ~0o666 or mode < 0:
        raise ValueError(f"mode must be permission bits within 0o666, got {mode:#o}")
    if exclusive and not create:
        raise ValueError("exclusive=True needs create=True")
    flags = 0
    if create:
        flags = _lib.CREATE | mode | (_lib.EXCL if exclusive else 0)
    h = _lib.WgP()
    r = _request(lambda: _lib.wg_open(raw, flags, ctypes.byref(h)))
    if r < 0:
        raise _request_error(r, name)
    return Group._adopt(_address(h))


def join(name: str) -> Member:
    """Join the named group *name* as a member, through wgd (wg_join()); see :class:`Member`.

    Adds one to the counter now; the matching done happens when the member leaves, or when
    this process dies (or closes the handle) without leaving, counted as abandoned. Blocks for
    the request (25 s at most).

    Raises :class:`TypeError` or :class:`ValueError` for a bad name; :class:`FileNotFoundError`,
    :class:`PermissionError`, :class:`OSError`: EOWNERDEAD (the group is broken), EIDRM (being
    deleted), EOVERFLOW (its counter is at the maximum), EDQUOT, ESRCH, and the connection
    errors of :func:`open`.
    """
    raw = _name_bytes(name)
    h = _lib.WgP()
    r = _request(lambda: _lib.wg_join(raw, 0, ctypes.byref(h)))
    if r < 0:
        raise _request_error(r, name)
    return Member._adopt(_address(h))


def unlink(name: str) -> None:
    """Delete the named group *name* through wgd (wg_unlink()).

    The name is free at once; processes that hold the group keep their handles, but every
    operation on them raises EIDRM from then on, and their waiters wake with it.

    Raises :class:`TypeError` or :class:`ValueError` for a bad name; :class:`FileNotFoundError`,
    :class:`PermissionError` (EACCES: may not even read it; EPERM: neither its owner nor root),
    and the connection errors of :func:`open`.
    """
    raw = _name_bytes(name)
    r = _request(lambda: _lib.wg_unlink(raw))
    if r < 0:
        raise _request_error(r, name)
