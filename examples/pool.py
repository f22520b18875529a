#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A pool of Python worker processes on one wait group.

The parent creates an anonymous group and adds one piece of work per job, before any worker
starts (a wait group's rule: add, then start). It starts each worker as a separate program
(this file again, with --worker) that inherits nothing but the group's fd (pass_fds) and its
share of the jobs on its command line. A worker attaches with wg.Group.from_fd() and calls
done() as each job ends: one atomic operation on shared memory, no daemon, no pipe. The parent
waits until the counter is back at zero, drawing a progress line on a terminal.

    examples/pool.py [--workers N] [--jobs N] [--fail-worker I]

From the source tree, after a build:

    WG_LIBWG=build/libwg/libwg.so.0 PYTHONPATH=python examples/pool.py

--fail-worker I makes worker I exit halfway, as a crashed worker would: its jobs are never
done. The parent notices (it watches its workers while it waits) and says so. Workers that
may crash, in processes the parent does not own, are what members are for: wg.join(name)
through wgd does the done of a member that dies, and the waiter learns it was abandoned.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import wg


def job_seconds(job: int) -> float:
    """How long job *job* takes: 20 to 110 ms, the same on every run."""
    return 0.02 + (job * 37 % 10) / 100


def worker(fd: int, jobs: list[int], fail_after: int | None) -> int:
    with wg.Group.from_fd(fd) as g:
        os.close(fd)  # the group holds its own copy
        for n, job in enumerate(jobs):
            if fail_after is not None and n == fail_after:
                os._exit(3)  # a crash: no done for this job or the rest
            time.sleep(job_seconds(job))  # the work
            g.done()
    return 0


def draw(done: int, total: int, elapsed: float, end: str = "") -> None:
    width = 30
    filled = width * done // total if total else width
    sys.stderr.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} done  {elapsed:.1f}s{end}")
    sys.stderr.flush()


def parent(n_workers: int, n_jobs: int, fail_worker: int | None) -> int:
    tty = sys.stderr.isatty()
    with wg.Group.new() as g:
        g.add(n_jobs)
        workers = []
        for i in range(n_workers):
            share = [str(job) for job in range(i, n_jobs, n_workers)]
            args = [sys.executable, __file__, "--worker", str(g.fileno())]
            if i == fail_worker:
                args += ["--fail-after", str(len(share) // 2)]
            workers.append(subprocess.Popen(args + share, pass_fds=[g.fileno()]))

        start = time.monotonic()
        while True:
            try:
                # Slices of 100 ms, to redraw and to look at the workers: one that died
                # before its last done would leave this wait hanging.
                g.wait(timeout=0.1)
                break
            except TimeoutError:
                pass
            if tty:
                draw(n_jobs - g.count, n_jobs, time.monotonic() - start)
            dead = [(i, p.returncode) for i, p in enumerate(workers) if p.poll() not in (None, 0)]
            if dead:
                if tty:
                    sys.stderr.write("\n")
                for i, status in dead:
                    print(f"pool: worker {i} exited with status {status} before its last done "
                          f"({g.count} of {n_jobs} jobs outstanding)", file=sys.stderr)
                for p in workers:
                    p.kill()
                    p.wait()
                return 1

        elapsed = time.monotonic() - start
        if tty:
            draw(n_jobs, n_jobs, elapsed, "\n")
        for p in workers:
            p.wait()
        print(f"pool: {n_jobs} jobs done by {n_workers} workers in {elapsed:.2f} s "
              f"(one worker alone: {sum(job_seconds(j) for j in range(n_jobs)):.2f} s)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--fail-worker", type=int, metavar="I", help="worker I crashes halfway")
    # The worker's side: the fd, then its jobs.
    parser.add_argument("--worker", type=int, metavar="FD", help=argparse.SUPPRESS)
    parser.add_argument("--fail-after", type=int, help=argparse.SUPPRESS)
    parser.add_argument("jobs_of_worker", nargs="*", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        return worker(args.worker, args.jobs_of_worker, args.fail_after)
    if args.workers < 1 or args.jobs < 0:
        parser.error("--workers must be at least 1, --jobs at least 0")
    return parent(args.workers, args.jobs, args.fail_worker)


if __name__ == "__main__":
    sys.exit(main())
