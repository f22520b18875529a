#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build and run the wgd benchmark: Stat and Add requests per second over wg.v1, against Redis
# INCR on a unix socket in the same run, and what wgd holds in memory per group. Method and
# figures: docs/benchmarks.md.
#
# Usage: bench/run-wgd.sh [--quick] [--no-redis] [BUILD_DIR]
#
#   --quick     fewer and shorter runs (about 15 s instead of about 2 minutes)
#   --no-redis  wgd alone, without redis-server and redis-benchmark
#   BUILD_DIR   the meson build directory to use; set up (release, no tests) if it is not one
#               yet. Default: build-bench/ at the top of the source tree.
#
# A report, not a test: it exits 0 whether the target is met or not, and non-zero only if the
# benchmark could not be built or failed to run. Every process it starts (wgd, redis-server,
# the benchmark) is gone when it exits, however it exits.

set -euo pipefail

quick=
redis=yes
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        --no-redis) redis= ;;
        -h | --help)
            sed -n '8,13s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-wgd.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-wgd.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

if [ -n "$redis" ]; then
    for tool in redis-server redis-benchmark; do
        if ! command -v "$tool" >/dev/null; then
            echo "run-wgd.sh: $tool not found (apt-get install redis-server redis-tools);" \
                "measuring wgd alone" >&2
            redis=
        fi
    done
fi

# The benchmark's sockets, and whatever redis-server leaves, live here; the benchmark itself runs
# in the background so that the trap can stop it (it then stops its servers).
bench_temp

bench_build bench/bench-wgd:executable wgd/wgd:executable
bin=$builddir/bench/bench-wgd
wgd=$builddir/wgd/wgd

bench_machine
echo "wgd:         $("$wgd" --version 2>/dev/null || echo unknown)"
if [ -n "$redis" ]; then
    echo "redis:       $(redis-server --version | sed 's/^Redis server //')"
fi
echo "nofile:      $(ulimit -Sn) soft, $(ulimit -Hn) hard (wgd gets the hard one; a group is an fd)"

echo
echo "== bench-wgd${quick:+ $quick}"
args=(--wgd "$wgd")
[ -n "$quick" ] && args+=("$quick")
[ -z "$redis" ] && args+=(--no-redis)
TMPDIR=$tmp "$bin" "${args[@]}" &
bench_pid=$!
bench_started "$bench_pid"
status=0
bench_wait "$bench_pid" || status=$?
exit "$status"
