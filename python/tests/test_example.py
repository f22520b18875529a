# SPDX-License-Identifier: LGPL-2.1-or-later
"""examples/pool.py, as the README runs it: workers done, and a crashed worker reported."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import PATIENCE

POOL = Path(__file__).resolve().parents[2] / "examples" / "pool.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(POOL), *args], capture_output=True, text=True, timeout=PATIENCE
    )


def test_pool_does_every_job() -> None:
    r = run("--workers", "3", "--jobs", "9")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("pool: 9 jobs done by 3 workers")


def test_pool_reports_a_crashed_worker() -> None:
    r = run("--workers", "2", "--jobs", "6", "--fail-worker", "1")
    assert r.returncode == 1
    # Worker 1 did its first 1 of 3 jobs; worker 0 may or may not have done its own yet.
    said = r"worker 1 exited with status 3 before its last done \(([2-5]) of 6"
    assert re.search(said, r.stderr), r.stderr
