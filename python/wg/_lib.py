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


class _Wg(ctypes.Structure):
    """struct wg, opaque: only ever handled through pointers that libwg hands out."""


#: wg *: a handle. A distinct pointer type, so that no other pointer or int is accepted.
WgP = ctypes.POINTER(_Wg)

_u64p = ctypes.POINTER(ctypes.c_uint64)

# name: (restype, argtypes), one line per function of wg.h that the binding calls.
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "wg_new": (ctypes.c_int, [ctypes.POINTER(WgP)]),
    "wg_from_fd": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(WgP)]),
    "wg_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(WgP)]),
    "wg_join": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_uint64, ctypes.POINTER(WgP)]),
    "wg_leave": (ctypes.c_int, [WgP, ctypes.c_int]),
    "wg_unlink": (ctypes.c_int, [ctypes.c_char_p]),
    "wg_fd": (ctypes.c_int, [WgP]),
    "wg_ref": (WgP, [WgP]),
    "wg_unref": (WgP, [WgP]),
    "wg_add": (ctypes.c_int, [WgP, ctypes.c_int64]),
    "wg_done": (ctypes.c_int, [WgP]),
    "wg_wait": (ctypes.c_int, [WgP, ctypes.c_uint64]),
    "wg_get_count": (ctypes.c_int, [WgP, _u64p]),
    "wg_get_generation": (ctypes.c_int, [WgP, _u64p]),
    "wg_get_outcome": (ctypes.c_int, [WgP, ctypes.c_uint64, _u64p, _u64p, _u64p]),
}


def _load() -> ctypes.CDLL:
    path = os.environ.get(ENV_OVERRIDE) or SONAME
    try:
        # A plain CDLL: each call releases the GIL, so a wg_wait() blocks only its own thread.
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"wg: cannot load libwg ({path}): {e}; install libwg, or set {ENV_OVERRIDE} to its path"
        ) from e
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise ImportError(f"wg: {path} has no {name}(): not a libwg of version 0.1 or later") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()

# The functions, bound once: an attribute lookup on the CDLL per call would cost more than some
# of the calls themselves.
wg_new = lib.wg_new
wg_from_fd = lib.wg_from_fd
wg_open = lib.wg_open
wg_join = lib.wg_join
wg_leave = lib.wg_leave
wg_unlink = lib.wg_unlink
wg_fd = lib.wg_fd
wg_ref = lib.wg_ref
wg_unref = lib.wg_unref
wg_add = lib.wg_add
wg_done = lib.wg_done
wg_wait = lib.wg_wait
wg_get_count = lib.wg_get_count
wg_get_generation = lib.wg_get_generation
wg_get_outcome = lib.wg_get_outcome

# Runs the Python signal handlers now (in the main thread; elsewhere it does nothing) and raises
# what they raise: PyDLL checks Python's error indicator after the call.
check_signals = ctypes.pythonapi.PyErr_CheckSignals
check_signals.restype = ctypes.c_int
check_signals.argtypes = []
