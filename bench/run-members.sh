#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build and run the members benchmark: the time from a member's death to its waiters' return,
# through a real wgd, against a waiter that polls with a timeout of its own (what a user has
# without members). Method and figures: docs/benchmarks.md.
#
# Usage: bench/run-members.sh [--quick] [BUILD_DIR]
#
#   --quick     fewer runs, and no 1 s polling (about 2 s instead of about 20 s)
#   BUILD_DIR   the meson build directory to use; set up (release, no tests) if it is not one
#               yet. Default: build-bench/ at the top of the source tree.
#
# A report, not a test: it exits 0 whether the target is met or not, and non-zero only if the
# benchmark could not be built or failed to run. Every process it starts (wgd, the members, the
# waiters, the benchmark) is gone when it exits, however it exits.

set -euo pipefail

quick=
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        -h | --help)
            sed -n '8,12s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-members.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-members.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

# wgd's socket lives here; the benchmark runs in the background so that the trap can stop it
# (it then stops its wgd, and its children die with it: PR_SET_PDEATHSIG).
bench_temp

bench_build bench/bench-members:executable wgd/wgd:executable
bin=$builddir/bench/bench-members
wgd=$builddir/wgd/wgd

bench_machine
echo "wgd:         $("$wgd" --version 2>/dev/null || echo unknown)"

echo
echo "== bench-members${quick:+ $quick}"
args=(--wgd "$wgd")
[ -n "$quick" ] && args+=("$quick")
TMPDIR=$tmp "$bin" "${args[@]}" &
bench_pid=$!
bench_started "$bench_pid"
status=0
bench_wait "$bench_pid" || status=$?
exit "$status"
