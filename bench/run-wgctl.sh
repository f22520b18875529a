#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build and run the wgctl benchmark: `wgctl add` and `wgctl done` on an existing group, timed as
# whole commands, against a do-nothing program linked as wgctl is, `redis-cli DECR` and GNU
# parallel's `sem`, in the same run; then what the difference is made of. Method and figures:
# docs/benchmarks.md.
#
# Usage: bench/run-wgctl.sh [--quick] [BUILD_DIR]
#
#   --quick     fewer and shorter rounds (about 10 s instead of about 50 s)
#   BUILD_DIR   the meson build directory to use; set up (release, no tests) if it is not one
#               yet. Default: build-bench/ at the top of the source tree.
#
# WGD_WRAP, if set, is a command that wgd is started under, for experiments: WGD_WRAP="chrt -b 0"
# runs it as SCHED_BATCH.
#
# Needs redis-server and redis-cli (Debian: redis-server, redis-tools) and sem (parallel) for
# the comparisons, and measures without them, with a message, if they are missing; strace and
# perf, if present, for the analysis. A report, not a test: it exits 0 whether the target is
# met or not. Every process it starts (wgd, redis-server, the benchmark) is gone when it exits,
# however it exits.

set -euo pipefail

quick=
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        -h | --help)
            sed -n '9,16s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-wgctl.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-wgctl.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

redis=yes
for tool in redis-server redis-cli; do
    if ! command -v "$tool" >/dev/null; then
        echo "run-wgctl.sh: $tool not found (apt-get install redis-server redis-tools);" \
            "measuring without Redis" >&2
        redis=
    fi
done
sem=yes
if ! command -v sem >/dev/null; then
    echo "run-wgctl.sh: sem not found (apt-get install parallel); measuring without it" >&2
    sem=
fi

# Sockets, Redis's directory and sem's semaphores live here; what runs in the background is
# recorded so that the trap stops exactly that.
bench_temp

bench_build bench/bench-wgctl:executable bench/noop:executable \
    bench/noop-libc:executable wgctl/wgctl:executable wgd/wgd:executable
bin=$builddir/bench/bench-wgctl
noop=$builddir/bench/noop
noop_libc=$builddir/bench/noop-libc
wgctl=$builddir/wgctl/wgctl
wgd=$builddir/wgd/wgd

bench_machine
echo "libc:        $(ldd --version 2>/dev/null | head -n 1 || echo unknown)"
echo "wgctl:       $("$wgctl" --version), $(stat -c %s "$wgctl") bytes;" \
    "noop $(stat -c %s "$noop"), noop-libc $(stat -c %s "$noop_libc")"
for exe in "$wgctl" "$noop" "$noop_libc"; do
    echo "  needs:     $(basename "$exe"): $(readelf -d "$exe" 2>/dev/null |
        sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
done
[ -n "$redis" ] && echo "redis:       $(redis-server --version | sed 's/^Redis server //')"
[ -n "$sem" ] && echo "parallel:    $(sem --version 2>/dev/null | head -n 1), $(perl -e 'printf "perl %vd", $^V')"

# wgd of this build on a socket of our own, never one started on demand by wgctl.
export WGD_SOCKET=$tmp/wgd.sock WGCTL_NO_AUTOSTART=1
# shellcheck disable=SC2086 # WGD_WRAP is a command line: split it
bench_wgd_bench_group "$wgd" "$wgctl" ${WGD_WRAP:-}

if [ -n "$redis" ]; then
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" \
        --loglevel warning >/dev/null &
    bench_started $!
    for _ in $(seq 100); do
        redis-cli -s "$tmp/redis.sock" PING >/dev/null 2>&1 && break
        sleep 0.05
    done
    redis-cli -s "$tmp/redis.sock" SET bench:counter 1000000 >/dev/null
fi
# sem keeps its semaphores under $PARALLEL_HOME (else ~/.parallel): ours go away with $tmp.
export PARALLEL_HOME=$tmp/parallel

# Per round: the one-shot commands 400 times each, the slower ones less; sem is a Perl program
# of 15,000 lines that takes about 0.1 s to start, so 8 of it are 0.8 s of every round. The
# stand-ins are bench-wgctl itself, linked as wgctl is, doing one add as wgctl does it (Open,
# then the atomic on the page) and through the protocol's Add request: what the second would
# save. They add +1 and -1 as many times, so the counter ends where it started.
args=(--rounds 11 --warmup 20 --open bench)
[ -n "$quick" ] && args=(--rounds 5 --warmup 10 --scale 0.25 --open bench)
cmds=(
    noop 400 "$noop"
    :: "wgctl add" 400 "$wgctl" add bench
    :: "wgctl done" 400 "$wgctl" "done" bench
    :: noop-libc 400 "$noop_libc"
    :: "wgctl --version" 400 "$wgctl" --version
    :: "wgctl run -- true" 100 "$wgctl" run bench -- true
    :: "stand-in, fork-exec-wait true" 100 "$bin" --as-run true
    :: "stand-in, Open" 400 "$bin" --as-wgctl open bench 1
    :: "stand-in, Add request" 400 "$bin" --as-wgctl request bench -1
)
[ -n "$redis" ] && cmds+=(:: "redis-cli DECR" 100 redis-cli -s "$tmp/redis.sock" DECR bench:counter)
[ -n "$sem" ] && cmds+=(:: "sem --fg true" 8 sem --id bench --fg true)
[ -n "$sem" ] && cmds+=(:: "perl -e 1" 50 perl -e 1)

echo
echo "== bench-wgctl${quick:+ $quick}"
"$bin" "${args[@]}" "${cmds[@]}" &
bench_pid=$!
bench_started "$bench_pid"
bench_wait "$bench_pid"

# What the difference is made of: system calls, the loader's work, page faults.
echo
echo "== system calls of one run (strace -c -f): noop, wgctl --version, wgctl done"
if command -v strace >/dev/null; then
    for cmd in "$noop" "$wgctl --version" "$wgctl done bench"; do
        # shellcheck disable=SC2086 # the command's words
        if strace -f -c -o "$tmp/strace" $cmd >/dev/null 2>&1; then
            # Columns: % time, seconds, usecs/call, calls, [errors], name: the calls are $4.
            printf '  %-22s %s system calls:' "$(basename "${cmd%% *}")${cmd#"${cmd%% *}"}" \
                "$(awk '$NF == "total" { print $4 }' "$tmp/strace")"
            awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { printf " %s %s", $NF, $4 }' "$tmp/strace"
            echo
        else
            echo "  strace failed (is ptrace allowed here?)"
            break
        fi
    done
else
    echo "  strace not found: skipped (apt-get install strace)"
fi

echo
echo "== wgd's side of one wgctl add or done (/proc/PID/schedstat of wgd over 200 of each)"
read -r cpu0 _ slices0 <"/proc/$wgd_pid/schedstat"
for _ in $(seq 100); do
    "$wgctl" add bench
    "$wgctl" "done" bench
done
read -r cpu1 _ slices1 <"/proc/$wgd_pid/schedstat"
awk -v cpu=$((cpu1 - cpu0)) -v slices=$((slices1 - slices0)) 'BEGIN {
    printf "  wgd: %.1f us of CPU and %.1f wake-ups (time slices) per invocation\n", cpu / 200 / 1000, slices / 200 }'

echo
echo "== the dynamic loader (LD_DEBUG=statistics: cycles of its own start-up, median of 21 runs)"
for cmd in "$noop_libc" "$noop" "$wgctl --version" "$wgctl done bench"; do
    for _ in $(seq 21); do
        # shellcheck disable=SC2086 # the command's words
        LD_DEBUG=statistics $cmd 2>&1 >/dev/null
        # The add that undoes the done, outside what is measured.
        if [ "$cmd" = "$wgctl done bench" ]; then
            "$wgctl" add bench
        fi
    done |
        awk -v name="$(basename "${cmd%% *}")${cmd#"${cmd%% *}"}" '
            function median(a, n,    i, j, t) {
                for (i = 2; i <= n; i++)
                    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
                return a[int((n + 1) / 2)]
            }
            /total startup time in dynamic loader/ { cycles[++nc] = $(NF-1) }
            /time needed for relocation/ { reloc[++nr] = $(NF-2) }
            /final number of relocations:/ { n = $NF }
            END { printf "  %-22s %8d cycles in all, %8d of them relocating, %s relocations\n", name,
                  median(cycles, nc), median(reloc, nr), n }'
done

echo
echo "== page faults and context switches per run (perf stat -r 200)"
if command -v perf >/dev/null && perf stat -e page-faults true >/dev/null 2>&1; then
    for cmd in "$noop_libc" "$noop" "$wgctl --version" "$wgctl add bench" "$wgctl done bench"; do
        # shellcheck disable=SC2086 # the command's words
        perf stat -r "$([ -n "$quick" ] && echo 50 || echo 200)" -e page-faults,context-switches \
            $cmd 2>&1 >/dev/null |
            awk -v name="$(basename "${cmd%% *}")${cmd#"${cmd%% *}"}" '
                /page-faults/ { pf = $1 } /context-switches/ { cs = $1 }
                END { printf "  %-22s %4s page faults, %s context switches\n", name, pf, cs }'
    done
else
    echo "  perf not found or not allowed: skipped (apt-get install linux-perf)"
fi
