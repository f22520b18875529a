#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-python: the Python binding side by side with what a Python program has without it.

 1. add + done pair, nobody waiting, in one process: wg's Group.add(1) + done(), against
    the same two libwg calls made through ctypes with no checks (what the binding adds),
    a multiprocessing.Value incremented and decremented under its lock (what the standard
    library offers for a counter shared between processes), and the protocol path: an Add +1
    and an Add -1 request to wgd over its socket (what a client without libwg does).
 2. One Stat request to wgd: the price of any request on the protocol path.
 3. One-way wake between two processes, a ping-pong on two one-shot events: wg (done, wait,
    add), multiprocessing.Event (set, wait, clear) and multiprocessing.Semaphore (release,
    acquire): the same loop, only the three operations behind it differ. Pinned to one CPU,
    then to two.

Every figure is the median of several runs, and the mechanisms take turns within each run (in
an order that rotates), so that all of them see the same noise. A report, not a test.
Run it with bench/run-python.sh, which sets WG_LIBWG, PYTHONPATH and --wgd; the method and the
figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import wg
from wg import _lib

CONFIG = {
    # runs; pairs per run (the protocol's: fewer, each is two round trips); ping-pong rounds
    "full": {"runs": 7, "pairs": 100_000, "proto_pairs": 3_000, "warmup": 200, "rounds": 2_000},
    "quick": {"runs": 3, "pairs": 20_000, "proto_pairs": 500, "warmup": 50, "rounds": 300},
}

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this process when the benchmark dies (as bench-core's children)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def pin(cpu: int) -> None:
    os.sched_setaffinity(0, {cpu})


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# --- the protocol path: wg.v1 records packed by hand (proto/wg.proto) --------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def request(request_id: int, op_field: int, op: bytes) -> bytes:
    # Request: version = 1, id = 2, and the operation in its oneof field.
    return field_varint(1, 1) + field_varint(2, request_id) + field_bytes(op_field, op)


def zigzag(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


OP_STAT, OP_ADD = 14, 15
RESPONSE_ERROR, RESPONSE_GROUP = 2, 10


def response_fields(record: bytes) -> tuple[int, set[int]]:
    """A Response's id and the numbers of its top-level fields."""
    pos, rid, seen = 0, -1, set()
    while pos < len(record):
        key = 0
        shift = 0
        while True:
            b = record[pos]
            pos += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = 0
            shift = 0
            while True:
                b = record[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            if number == 1:
                rid = value
        elif wire == 2:
            length = 0
            shift = 0
            while True:
                b = record[pos]
                pos += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire} in a Response")
        seen.add(number)
    return rid, seen


class Wgd:
    """A wgd of this build on a socket of its own, stopped by stop() (or with the benchmark)."""

    def __init__(self, binary: str, cpu: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="bench-python-")
        self.path = os.path.join(self.dir, "wgd.sock")
        self.proc = subprocess.Popen(
            [binary, f"--socket={self.path}", "--idle-timeout=0", "--log-level=warning"],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        os.sched_setaffinity(self.proc.pid, {cpu})
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench-python: wgd exited with status {self.proc.returncode}")
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
                    s.connect(self.path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("bench-python: wgd did not start serving within 20 s")
                time.sleep(0.01)
        os.environ["WGD_SOCKET"] = self.path

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()
        for f in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, f))
        os.rmdir(self.dir)


class Protocol:
    """One connection to wgd, and requests packed once: the floor of a Python client."""

    def __init__(self, path: str, name: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)
        raw = name.encode()
        self.stat = request(1, OP_STAT, field_bytes(1, raw))
        self.up = request(2, OP_ADD, field_bytes(1, raw) + field_varint(2, zigzag(1)))
        self.down = request(3, OP_ADD, field_bytes(1, raw) + field_varint(2, zigzag(-1)))

    def call(self, record: bytes, request_id: int) -> None:
        self.sock.send(record)
        rid, fields = response_fields(self.sock.recv(65536))
        if rid != request_id or RESPONSE_GROUP not in fields:
            raise SystemExit(f"bench-python: bad answer to request {request_id}: id {rid}, fields {fields}")

    def close(self) -> None:
        self.sock.close()


# --- 1 and 2: in one process --------------------------------------------------------------------


def time_loop(fn: Callable[[], None], n: int) -> float:
    """ns per call of fn, over n calls."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def pair_mechanisms(g: wg.Group, proto: Protocol) -> dict[str, Callable[[], None]]:
    add, done = g.add, g.done
    h = g._h
    raw_add, raw_done = _lib.wg_add, _lib.wg_done
    value = multiprocessing.get_context("fork").Value("q", 0)
    lock = value.get_lock()

    def wg_pair() -> None:
        add(1)
        done()

    def ctypes_pair() -> None:
        # The two calls the binding makes, with the checks a caller must still do.
        if raw_add(h, 1) or raw_done(h):
            raise SystemExit("bench-python: wg_add/wg_done failed")

    def mp_value_pair() -> None:
        with lock:
            value.value += 1
        with lock:
            value.value -= 1

    def proto_pair() -> None:
        proto.call(proto.up, 2)
        proto.call(proto.down, 3)

    def proto_stat() -> None:
        proto.call(proto.stat, 1)

    return {
        "wg": wg_pair,
        "ctypes": ctypes_pair,
        "mp.Value": mp_value_pair,
        "protocol Add": proto_pair,
        "protocol Stat": proto_stat,
    }


# --- 3: ping-pong between two processes -------------------------------------------------------


def make_events(kind: str) -> tuple[object, object]:
    ctx = multiprocessing.get_context("fork")
    if kind == "wg":
        a, b = wg.Group.new(), wg.Group.new()
        a.add(1)
        b.add(1)
        return a, b
    if kind == "mp.Event":
        return ctx.Event(), ctx.Event()
    return ctx.Semaphore(0), ctx.Semaphore(0)


def close_events(kind: str, events: tuple[object, object]) -> None:
    if kind == "wg":
        for e in events:
            e.close()  # type: ignore[attr-defined]


def loops(kind: str, a: object, b: object) -> tuple[Callable[[int], None], Callable[[int], None]]:
    """(child, parent): each round the child waits for A, re-arms it and fires B; the parent
    fires A, waits for B and re-arms it."""
    if kind == "wg":
        ga, gb = a, b

        def child(n: int) -> None:
            wait, add, fire = ga.wait, ga.add, gb.done  # type: ignore[attr-defined]
            for _ in range(n):
                wait()
                add(1)
                fire()

        def parent(n: int) -> None:
            fire, wait, add = ga.done, gb.wait, gb.add  # type: ignore[attr-defined]
            for _ in range(n):
                fire()
                wait()
                add(1)

    elif kind == "mp.Event":

        def child(n: int) -> None:
            wait, clear, fire = a.wait, a.clear, b.set  # type: ignore[attr-defined]
            for _ in range(n):
                wait()
                clear()
                fire()

        def parent(n: int) -> None:
            fire, wait, clear = a.set, b.wait, b.clear  # type: ignore[attr-defined]
            for _ in range(n):
                fire()
                wait()
                clear()

    else:

        def child(n: int) -> None:
            wait, fire = a.acquire, b.release  # type: ignore[attr-defined]
            for _ in range(n):
                wait()
                fire()

        def parent(n: int) -> None:
            fire, wait = a.release, b.acquire  # type: ignore[attr-defined]
            for _ in range(n):
                fire()
                wait()

    return child, parent


def child_main(kind: str, a: object, b: object, n: int, cpu: int) -> None:
    die_with_parent()
    pin(cpu)
    loops(kind, a, b)[0](n)


def pingpong(kind: str, cpus: tuple[int, int], warmup: int, rounds: int) -> float:
    """One-way wake, µs: a round trip / 2, over *rounds* round trips after *warmup*."""
    a, b = make_events(kind)
    pin(cpus[0])
    proc = multiprocessing.get_context("fork").Process(
        target=child_main, args=(kind, a, b, warmup + rounds, cpus[1]), daemon=True
    )
    proc.start()
    parent = loops(kind, a, b)[1]
    parent(warmup)
    t0 = time.perf_counter_ns()
    parent(rounds)
    elapsed = time.perf_counter_ns() - t0
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"bench-python: the {kind} ping-pong child exited with {proc.exitcode}")
    close_events(kind, (a, b))
    return elapsed / rounds / 2 / 1000


# --- the report -------------------------------------------------------------------------------


def row(op: str, w: float, peer: str, p: float, unit: str) -> None:
    print(f"{op:34} {w:10.3f} {unit:2}  {peer:22} {p:10.3f} {unit:2} {w / p:7.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description="The Python binding of libwg against its peers.")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    parser.add_argument("--wgd", default=os.environ.get("WG_WGD"), help="the wgd to start")
    args = parser.parse_args()
    if not args.wgd:
        parser.error("--wgd (or $WG_WGD) is needed for the protocol path")
    c = CONFIG["quick" if args.quick else "full"]
    t_start = time.monotonic()
    two_cpus = len(os.sched_getaffinity(0)) >= 2

    kind = "quick" if args.quick else "full"
    print(f"bench-python: {kind} run; every figure is the median of {c['runs']} runs")
    print(f"  python {sys.version.split()[0]} ({sys.executable}), libwg {_lib.lib._name}")
    print(f"  pairs: {c['pairs']} per run (protocol: {c['proto_pairs']}); ns per pair of operations")
    print(f"  ping-pong: {c['rounds']} round trips per run (after {c['warmup']}); one-way = round trip / 2")
    print()

    # wgd and this process on CPU 0 for the pairs: one CPU, as the in-process pairs have.
    daemon = Wgd(args.wgd, cpu=0)
    try:
        pin(0)
        name = f"bench-python-{os.getpid()}"
        g = wg.open(name, create=True)
        proto = Protocol(daemon.path, name)
        mechanisms = pair_mechanisms(g, proto)
        for fn in mechanisms.values():  # warm up
            fn()
        pairs: dict[str, list[float]] = {k: [] for k in mechanisms}
        keys = list(mechanisms)
        for run in range(c["runs"]):
            for k in keys[run % len(keys) :] + keys[: run % len(keys)]:
                n = c["proto_pairs"] if k.startswith("protocol") else c["pairs"]
                pairs[k].append(time_loop(mechanisms[k], n))
        proto.close()
        g.close()
        wg.unlink(name)
    finally:
        daemon.stop()

    kinds = ["wg", "mp.Event", "mp.Semaphore"]
    placements = [("same CPU", (0, 0))] + ([("two CPUs", (0, 1))] if two_cpus else [])
    wake: dict[tuple[str, str], list[float]] = {(k, p): [] for k in kinds for p, _ in placements}
    for run in range(c["runs"]):
        for k in kinds[run % len(kinds) :] + kinds[: run % len(kinds)]:
            for place, cpus in placements:
                wake[(k, place)].append(pingpong(k, cpus, c["warmup"], c["rounds"]))

    print("Over the runs (min / median / max):")
    for k, xs in pairs.items():
        print(f"  pair {k:16} {min(xs):10.1f} {median(xs):10.1f} {max(xs):10.1f} ns")
    for (k, place), xs in wake.items():
        print(f"  wake {k:12} {place:9} {min(xs):8.2f} {median(xs):8.2f} {max(xs):8.2f} us")
    print()

    m = {k: median(xs) for k, xs in pairs.items()}
    print(f"{'operation':34} {'wg':>13}  {'peer':22} {'peer':>13} {'wg/peer':>8}")
    row("add + done pair, no waiter", m["wg"], "raw ctypes calls", m["ctypes"], "ns")
    row("add + done pair, no waiter", m["wg"], "mp.Value + its lock", m["mp.Value"], "ns")
    row("add + done pair, no waiter", m["wg"], "protocol Add +1, -1", m["protocol Add"], "ns")
    row("add + done pair, no waiter", m["wg"], "protocol Stat (one)", m["protocol Stat"], "ns")
    for place, _ in placements:
        w = median(wake[("wg", place)])
        for k in kinds[1:]:
            row(f"one-way wake, {place}", w, k, median(wake[(k, place)]), "us")
    if not two_cpus:
        print("one-way wake, two CPUs: skipped, only one CPU to run on")
    print(f"\nbench-python: done in {time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
