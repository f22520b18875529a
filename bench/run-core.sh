#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build and run the libwg core benchmark, then check with strace that wg_add() and wg_done()
# make no system call when nobody waits. Method and figures: docs/benchmarks.md.
#
# Usage: bench/run-core.sh [--quick] [BUILD_DIR]
#
#   --quick     fewer and shorter runs
#   BUILD_DIR   the meson build directory to use; set up (release, no tests) if it is not one
#               yet. Default: build-bench/ at the top of the source tree.
#
# A report, not a test: it exits 0 whether the targets are met or not, and non-zero only if the
# benchmark could not be built or failed to run.

set -euo pipefail

quick=
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        -h | --help)
            sed -n '7,12s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-core.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${builddir:-$srcdir/build-bench}

for tool in meson ninja; do
    if ! command -v "$tool" >/dev/null; then
        echo "run-core.sh: $tool not found; install the build dependencies (see README.md)" >&2
        exit 1
    fi
done

echo "== build ($builddir)"
if [ ! -f "$builddir/build.ninja" ]; then
    meson setup "$builddir" "$srcdir" --buildtype=release -Dtests=false
fi
meson compile -C "$builddir" bench/bench-core
bin=$builddir/bench/bench-core

# A debug build measures the compiler, not libwg: say so rather than refuse.
buildtype=$(meson introspect --buildoptions "$builddir" | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')
if [ "$buildtype" != release ]; then
    echo "run-core.sh: warning: $builddir is a '$buildtype' build; figures are meant for 'release'" >&2
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
echo "kernel:      $(uname -srm)"
clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || true)
echo "clocksource: ${clocksource:-unknown}"
# The load average counts this script's own earlier runs too (the fan-out forks 1000 processes).
echo "load:        $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "compiler:    $(${CC:-cc} --version 2>/dev/null | head -n 1 || echo unknown)"
echo "buildtype:   $buildtype"

echo
echo "== bench-core${quick:+ $quick}"
"$bin" ${quick:+"$quick"}

echo
echo "== system calls of wg_add(1) + wg_done() with nobody waiting (strace -c -f)"
if ! command -v strace >/dev/null; then
    echo "strace not found: check skipped (apt-get install strace)"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The whole process is counted, start-up and exit included: those are the same for any number
# of pairs, so the count must not move when the pairs go from a thousand to a million.
counts=()
for n in 1000 1000000; do
    if ! strace -f -c -o "$tmp/$n" "$bin" --only-pairs "$n" 2>"$tmp/$n.err"; then
        echo "strace failed (is ptrace allowed here?): check skipped"
        sed 's/^/  /' "$tmp/$n.err"
        exit 0
    fi
    total=$(awk '$NF == "total" { print $4 }' "$tmp/$n")
    futex=$(awk '$NF == "futex" { print $4 }' "$tmp/$n")
    printf '%8s pairs: %s system calls in all, %s futex\n' "$n" "${total:-?}" "${futex:-0}"
    counts+=("${total:-?}")
done

if [ "${counts[0]}" != "?" ] && [ "${counts[0]}" = "${counts[1]}" ]; then
    echo "constant: yes, add and done make no system call when nobody waits"
else
    echo "constant: NO, the count grows with the pairs; per system call:"
    for n in 1000 1000000; do
        echo "  -- $n pairs"
        sed 's/^/  /' "$tmp/$n"
    done
fi
