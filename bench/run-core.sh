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
script=run-core.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

bench_build bench/bench-core
bin=$builddir/bench/bench-core

bench_machine

echo
echo "== bench-core${quick:+ $quick}"
"$bin" ${quick:+"$quick"}

echo
echo "== system calls of wg_add(1) + wg_done() with nobody waiting (strace -c -f)"
if ! command -v strace >/dev/null; then
    echo "strace not found: check skipped (apt-get install strace)"
    exit 0
fi

bench_temp

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
