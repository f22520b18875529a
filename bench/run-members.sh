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
builddir=${builddir:-$srcdir/build-bench}

for tool in meson ninja; do
    if ! command -v "$tool" >/dev/null; then
        echo "run-members.sh: $tool not found; install the build dependencies (see README.md)" >&2
        exit 1
    fi
done

# wgd's socket lives here; the benchmark runs in the background so that the trap can stop it
# (it then stops its wgd, and its children die with it: PR_SET_PDEATHSIG).
tmp=$(mktemp -d)
bench_pid=
# shellcheck disable=SC2317 # run by the trap
cleanup() {
    if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
        kill -TERM "$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== build ($builddir)"
if [ ! -f "$builddir/build.ninja" ]; then
    meson setup "$builddir" "$srcdir" --buildtype=release -Dtests=false
fi
meson compile -C "$builddir" bench/bench-members:executable wgd/wgd:executable
bin=$builddir/bench/bench-members
wgd=$builddir/wgd/wgd

# A debug build measures the compiler, not wgd: say so rather than refuse.
buildtype=$(meson introspect --buildoptions "$builddir" | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')
if [ "$buildtype" != release ]; then
    echo "run-members.sh: warning: $builddir is a '$buildtype' build; figures are meant for 'release'" >&2
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
if [ -z "$cpu" ] && command -v lscpu >/dev/null; then
    cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
fi
# Virtual machines often name the CPU vaguely ("AMD EPYC"); family and model tell it apart.
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
model=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
if [ -n "$family" ] && [ -n "$model" ]; then
    cpu="${cpu:-unknown} (family $family, model $model)"
fi

echo
echo "== machine"
echo "date:        $(date '+%Y-%m-%d %H:%M %Z')"
echo "nproc:       $(nproc)"
echo "cpu:         ${cpu:-unknown}"
echo "memory:      $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:      $(uname -srm)"
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || true)
echo "clocksource: ${clocksource:-unknown}"
# Other work on the machine delays every wake-up measured here: say how busy it is.
echo "load:        $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "compiler:    $(${CC:-cc} --version 2>/dev/null | head -n 1 || echo unknown)"
echo "buildtype:   $buildtype"
echo "source:      $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)"
echo "wgd:         $("$wgd" --version 2>/dev/null || echo unknown)"

echo
echo "== bench-members${quick:+ $quick}"
args=(--wgd "$wgd")
[ -n "$quick" ] && args+=("$quick")
TMPDIR=$tmp "$bin" "${args[@]}" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=
exit "$status"
