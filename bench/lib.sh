# SPDX-License-Identifier: LGPL-2.1-or-later
#
# What every bench/run-*.sh does alike, sourced by them: build the benchmark in a release tree,
# and say on which machine the figures were taken. Each script sets $script (its name, for
# messages), $srcdir and $builddir first.

# bench_build TARGET...: set up $builddir if it is not one (release, no tests), compile the
# targets, and set $buildtype, warning if it is not a release build.
bench_build() {
    local tool
    for tool in meson ninja; do
        if ! command -v "$tool" >/dev/null; then
            echo "$script: $tool not found; install the build dependencies (see README.md)" >&2
            exit 1
        fi
    done

    echo "== build ($builddir)"
    if [ ! -f "$builddir/build.ninja" ]; then
        meson setup "$builddir" "$srcdir" --buildtype=release -Dtests=false
    fi
    meson compile -C "$builddir" "$@"

    # A debug build measures the compiler, not wg: say so rather than refuse.
    buildtype=$(meson introspect --buildoptions "$builddir" | python3 -c '
import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"))')
    if [ "$buildtype" != release ]; then
        echo "$script: warning: $builddir is a '$buildtype' build; figures are meant for 'release'" >&2
    fi
}

# bench_machine: the machine, the build and the load, under a "== machine" heading; the
# caller may print more lines of its own after it.
bench_machine() {
    local cpu family model clocksource
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
    clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || true)

    echo
    echo "== machine"
    echo "date:        $(date '+%Y-%m-%d %H:%M %Z')"
    echo "nproc:       $(nproc)"
    echo "cpu:         ${cpu:-unknown}"
    echo "memory:      $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:      $(uname -srm)"
    echo "clocksource: ${clocksource:-unknown}"
    # Other work on the machine moves these figures more than anything in wg: say how busy it is.
    echo "load:        $(cut -d ' ' -f 1-3 /proc/loadavg)"
    echo "compiler:    $(${CC:-cc} --version 2>/dev/null | head -n 1 || echo unknown)"
    echo "buildtype:   $buildtype"
    echo "source:      $(git -C "$srcdir" describe --always --dirty 2>/dev/null || echo unknown)"
}

# bench_temp: a fresh directory in $tmp, and traps that, however the script ends, stop what it
# started in the background (bench_started PID), the newest first (the benchmark before the
# servers it measures), and remove $tmp and whatever bench_remove names. A process waited for
# with bench_wait is forgotten: its pid may be another process's by then.
bench_pids=()
bench_paths=()
bench_temp() {
    tmp=$(mktemp -d)
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_started() {
    bench_pids+=("$1")
}

bench_remove() {
    bench_paths+=("$1")
}

# bench_wait PID: wait for it, forget it, and return its status.
bench_wait() {
    local status=0 pid kept=()
    wait "$1" || status=$?
    for pid in "${bench_pids[@]}"; do
        [ "$pid" = "$1" ] || kept+=("$pid")
    done
    bench_pids=("${kept[@]}")
    return "$status"
}

# bench_stop PID: SIGTERM, then bench_wait (its status ignored).
bench_stop() {
    kill -TERM "$1" 2>/dev/null || true
    bench_wait "$1" || true
}

# shellcheck disable=SC2317 # run by the trap
bench_cleanup() {
    local i
    for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${bench_pids[i]}" 2>/dev/null || true
        wait "${bench_pids[i]}" 2>/dev/null || true
    done
    rm -rf "$tmp" "${bench_paths[@]}"
}

# bench_wgd_bench_group WGD WGCTL [WRAPPER...]: start WGD (under WRAPPER, if given) on
# $WGD_SOCKET, never exiting on idle, and make the group "bench" there at a count far from zero,
# so that no add or done, in whatever order, takes it below (a failing done would be timed for
# its error path). Sets $wgd_pid.
bench_wgd_bench_group() {
    local wgd=$1 wgctl=$2
    shift 2
    "$@" "$wgd" --socket="$WGD_SOCKET" --idle-timeout=0 --log-level=warning &
    wgd_pid=$!
    bench_started "$wgd_pid"
    for _ in $(seq 100); do
        "$wgctl" create bench --count 1000000 2>/dev/null && break
        sleep 0.05
    done
    "$wgctl" status bench >/dev/null
}
