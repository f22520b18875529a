#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two builds of wgctl side by side: `wgctl add`, `done` and `--version` of build A and of build
# B, interleaved in one bench-wgctl run against one wgd (B's), each after a do-nothing program,
# with wgd and the benchmark pinned to one CPU and then to two. What a change to wgctl or libwg
# bought, without the noise that separate runs and the scheduler's placement add. Method and
# figures: docs/benchmarks.md, section "wgctl".
#
# Usage: bench/run-wgctl-ab.sh [--quick] BUILD_A BUILD_B
#
#   --quick     5 rounds of 100 instead of 11 of 400
#   BUILD_A     the build to compare with ("before"): a meson build directory, set up (release,
#               no tests) and built if it is not one yet
#   BUILD_B     the build to compare ("after"); its wgd, noop and bench-wgctl are used
#
# A report, not a test: it exits 0 whatever the figures. Every process it starts is gone when it
# exits, however it exits.

set -euo pipefail

quick=
dirs=()
for arg in "$@"; do
    case "$arg" in
        --quick) quick=yes ;;
        -h | --help)
            sed -n '9,15s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-wgctl-ab.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) dirs+=("$arg") ;;
    esac
done
if [ "${#dirs[@]}" -ne 2 ]; then
    echo "run-wgctl-ab.sh: two build directories are needed; try --help" >&2
    exit 2
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "run-wgctl-ab.sh: needs two CPUs for its second placement" >&2
    exit 1
fi

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-wgctl-ab.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"

targets=(bench/bench-wgctl:executable bench/noop:executable wgctl/wgctl:executable wgd/wgd:executable)
builddir=${dirs[0]}
bench_build wgctl/wgctl:executable
a=$builddir
builddir=${dirs[1]}
bench_build "${targets[@]}"
b=$builddir
bench_machine
echo "A:           $a ($("$a/wgctl/wgctl" --version))"
echo "B:           $b ($("$b/wgctl/wgctl" --version))"

bench_temp

export WGD_SOCKET=$tmp/wgd.sock WGCTL_NO_AUTOSTART=1
noop=$b/bench/noop
args=(--rounds 11 --warmup 20)
count=400
[ -n "$quick" ] && args=(--rounds 5 --warmup 10) && count=100

# A verb costs the process after it a few hundredths of noop too (the scheduler's and the
# kernel's aftermath of its round trip): every command here comes after a noop of its own, so
# that none pays for another's. The rotation of bench-wgctl keeps those pairs together.
cmds=(noop "$count" "$noop")
for verb in add "done" --version; do
    for side in A B; do
        dir=$a
        [ "$side" = B ] && dir=$b
        args_verb=("$verb")
        [ "$verb" != --version ] && args_verb+=(bench)
        cmds+=(:: "noop before $side $verb" "$count" "$noop")
        cmds+=(:: "$side: wgctl $verb" "$count" "$dir/wgctl/wgctl" "${args_verb[@]}")
    done
done

# placement WGD_CPU BENCH_CPU: a wgd of B's pinned to one CPU, the benchmark (and so every
# command it starts) to one, and the run.
placement() {
    bench_wgd_bench_group "$b/wgd/wgd" "$b/wgctl/wgctl" taskset -c "$1"
    taskset -c "$2" "$b/bench/bench-wgctl" "${args[@]}" "${cmds[@]}" &
    bench_pid=$!
    bench_started "$bench_pid"
    bench_wait "$bench_pid"
    bench_stop "$wgd_pid"
}

echo
echo "== wgd and the benchmark on CPU 0"
placement 0 0
echo
echo "== wgd on CPU 1, the benchmark on CPU 0"
placement 1 0
