# SPDX-License-Identifier: LGPL-2.1-or-later
"""libwg through ctypes: where the library is, and the C prototype of every function used.

Every function gets argtypes and restype. ctypes converts a Python int to a C integer by
truncating it silently (2**32 + 5 passed as an int arrives as 5), so the callers in __init__.py
check every integer's range before it gets here.
"""

from __future__ import annotations

import ctypes
import os

#: The library's soname, as the dynamic linker finds it once libwg is installed.
SONAME = "libwg.so.0"

#: Environment variable naming the library to load instead (a path), for build trees and tests.
ENV_OVERRIDE = "WG_LIBWG"

# The constants of wg.h.
USEC_INFINITY = 2**64 - 1
COUNT_MAX = 0x7FFFFFFF
CREATE = 1 << 32
EXCL = 1 << 33
MODE_MASK = 0o777
# wg_get_generation(): "It counts modulo 2^29 and wraps."
GENERATION_MASK = 2**29 - 1
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1


# wg *: a handle, as the address that libwg handed out (a Python int; None is NULL). A plain
# void pointer rather than a pointer to an opaque structure: ctypes converts an int to it about
# a third faster, and add and done are little more than that conversion.
WgP = ctypes.c_void_p

# uint64_t * out-parameters as addresses (void *, from ctypes.addressof()): ctypes converts an
# int to void * faster than it checks a byref() against a pointer type, and one array can then
# take several values.
_u64p = ctypes.c_void_p

# name: (restype, argtypes, GIL), one line per function of wg.h that the binding calls. GIL says
# whether the call keeps holding the GIL (ctypes.PyDLL) instead of releasing it (ctypes.CDLL):
# only for functions that never block. Besides saving the release and the re-acquisition, a
# call that holds the GIL cannot be overtaken by another Python thread: __init__.py relies on
# that to keep close() from freeing a handle under it.
_PROTOTYPES: dict[str, tuple[object, list[object], bool]] = {
    "wg_new": (ctypes.c_int, [ctypes.POINTER(WgP)], False),
    "wg_from_fd": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(WgP)], False),
    "wg_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(WgP)], False),
    "wg_join": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(WgP)], False),
    "wg_leave": (ctypes.c_int, [WgP, ctypes.c_int], False),
    "wg_unlink": (ctypes.c_int, [ctypes.c_char_p], False),
    "wg_fd": (ctypes.c_int, [WgP], True),
    "wg_ref": (WgP, [WgP], True),
    "wg_unref": (WgP, [WgP], True),
    "wg_add": (ctypes.c_int, [WgP, ctypes.c_int64], True),
    "wg_done": (ctypes.c_int, [WgP], True),
    "wg_wait": (ctypes.c_int, [WgP, ctypes.c_uint64], False),
    "wg_get_count": (ctypes.c_int, [WgP, _u64p], True),
    "wg_get_generation": (ctypes.c_int, [WgP, _u64p], True),
    "wg_get_outcome": (ctypes.c_int, [WgP, ctypes.c_uint64, _u64p, _u64p, _u64p], True),
}


def _load() -> tuple[ctypes.CDLL, ctypes.PyDLL]:
    path = os.environ.get(ENV_OVERRIDE) or SONAME
    try:
        # The same library twice (dlopen() hands out one mapping): once to call with the GIL
        # released, once with it held.
        released = ctypes.CDLL(path)
        held = ctypes.PyDLL(path)
    except OSError as e:
        raise ImportError(
            f"wg: cannot load libwg ({path}): {e}; install libwg, or set {ENV_OVERRIDE} to its path"
        ) from e
    for name, (restype, argtypes, gil) in _PROTOTYPES.items():
        try:
            fn = getattr(held if gil else released, name)
        except AttributeError as e:
            raise ImportError(f"wg: {path} has no {name}(): not a libwg of version 0.1 or later") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return released, held


lib, _held = _load()

# The functions, bound once: an attribute lookup on the library per call would cost more than
# some of the calls themselves.
wg_new = lib.wg_new
wg_from_fd = lib.wg_from_fd
wg_open = lib.wg_open
wg_join = lib.wg_join
wg_leave = lib.wg_leave
wg_unlink = lib.wg_unlink
wg_fd = _held.wg_fd
wg_ref = _held.wg_ref
wg_unref = _held.wg_unref
wg_add = _held.wg_add
wg_done = _held.wg_done
wg_wait = lib.wg_wait
wg_get_count = _held.wg_get_count
wg_get_generation = _held.wg_get_generation
wg_get_outcome = _held.wg_get_outcome

# Runs the Python signal handlers now (in the main thread; elsewhere it does nothing) and raises
# what they raise: PyDLL checks Python's error indicator after the call.
check_signals = ctypes.pythonapi.PyErr_CheckSignals
check_signals.restype = ctypes.c_int
check_signals.argtypes = []
