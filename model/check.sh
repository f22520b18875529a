#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# check.sh [ci|full|all]: check model/wg.pml, the model of libwg's state word, with spin.
#
#   ci    (the default, what meson test runs) three configurations, each searched exhaustively:
#           core     two workers, one of which does a stray done; a waiter without a deadline
#                    that is woken spuriously and by a signal; a waiter with a deadline; wgd,
#                    which may delete the group;
#           members  one worker; wgd's member, its generation-checked done or its death that
#                    breaks the group, a reset, the delete; the same two waiters;
#           mixed    the two workers of core and the wgd of members, with the waiter without a
#                    deadline.
#         Then every known bug of wg.pml's list, each of which spin must reject for the property
#         it breaks, and the probes, situations that spin must show to be reachable.
#   full  the two workers, wgd's member, reset and delete, both waiters, the one without a
#         deadline neither woken spuriously nor signalled (with those too, the search outgrows
#         8 GB). Larger: see docs/model.md for its size, time and memory. Not run by meson.
#   all   ci, then full.
#
# Exit status: 0 when everything holds, 1 when not, 77 (skip) without spin or a C compiler,
# or when MODEL_SKIP says why not to run. Environment: SPIN (spin), CC (cc), MODEL_MEMLIM (the
# verifier's memory bound in MB; 2048, or 8192 for full), MODEL_KEEP=1 to keep the work
# directory and name it.
#
# Every verifier is compiled with -DSAFETY (assertions and invalid end states; no cycles are
# needed: see docs/model.md); the exhaustive searches with -DCOLLAPSE (a smaller stored state,
# the same search), those that must find an error with -DBFS. A search that reaches the memory
# bound or the depth bound has not searched everything, and fails.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
model=$here/wg.pml
spin=${SPIN:-spin}
cc=${CC:-cc}
what=${1:-ci}

case "$what" in
ci | full | all) ;;
*)
    echo "usage: $0 [ci|full|all]" >&2
    exit 2
    ;;
esac

if [ -n "${MODEL_SKIP:-}" ]; then
    echo "$MODEL_SKIP, skipping"
    exit 77
fi
if ! command -v "$spin" >/dev/null 2>&1; then
    echo "spin not found (Debian package spin), skipping"
    exit 77
fi
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "no C compiler ($cc) to build spin's verifier, skipping"
    exit 77
fi

tmp=$(mktemp -d)
if [ "${MODEL_KEEP:-0}" = 1 ]; then
    echo "work directory: $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi

failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}

# config NAME: the -D options of a configuration (the processes of wg.pml's init).
config() {
    case $1 in
    core) echo "-DWORKERS=2 -DSTRAY=1" ;;
    members) echo "-DWORKERS=1 -DMEMBER=1 -DRESET=1" ;;
    mixed) echo "-DWORKERS=2 -DSTRAY=1 -DMEMBER=1 -DRESET=1 -DWAITERS_RUN=1" ;;
    full) echo "-DWORKERS=2 -DSTRAY=1 -DMEMBER=1 -DRESET=1 -DSPURIOUS=0 -DSIGNALS=0" ;;
    # No waiters: the shortest way to a stray done that races wgd's member done.
    race) echo "-DWORKERS=2 -DSTRAY=1 -DMEMBER=1 -DWAITERS_RUN=0" ;;
    esac
}

# build NAME CFLAGS SPIN_FLAGS...: generate and compile the verifier of wg.pml in $tmp/NAME.
build() {
    dir=$tmp/$1
    cflags=$2
    shift 2
    mkdir "$dir"
    cp "$model" "$dir/wg.pml"
    if ! (cd "$dir" && "$spin" -a "$@" wg.pml >spin.log 2>&1); then
        cat "$dir/spin.log"
        return 1
    fi
    # shellcheck disable=SC2086 # $cflags is a list of options
    if ! (cd "$dir" && "$cc" $cflags -w -DSAFETY -DMEMLIM="$memlim" -o pan pan.c 2>cc.log); then
        cat "$dir/cc.log"
        return 1
    fi
}

# search NAME HASHBITS: run the verifier of $tmp/NAME (with a hash table of 2^HASHBITS slots
# to begin with; it grows); its report is $tmp/NAME/pan.log.
search() {
    log=$tmp/$1/pan.log
    start=$(date +%s.%N)
    (cd "$tmp/$1" && ./pan -m100000 -w"$2" >pan.log 2>&1) || true
    end=$(date +%s.%N)
    seconds=$(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }')
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$log")
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log")
    vector=$(sed -n 's/^State-vector \([0-9]*\) byte.*/\1/p' "$log")
    depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$log")
    memory=$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' "$log")
}

# searched_all: whether the last search covered every state.
searched_all() {
    ! grep -q -e 'Search not completed' -e 'MEMLIM' -e 'max search depth too small' "$log"
}

# verify CONFIG [reached]: the configuration must hold every property, in a complete search;
# with "reached", one that reaches every statement of the waiter.
verify() {
    flags=$(config "$1")
    # shellcheck disable=SC2086 # $flags is a list of -D options
    if ! build "$1" "-O1 -DCOLLAPSE" $flags; then
        fail "$1: cannot build the verifier"
        return
    fi
    search "$1" 24
    if [ "${errors:-x}" != 0 ]; then
        grep '^pan:' "$log" || cat "$log"
        fail "$1: spin reports ${errors:-no count of} errors"
    elif ! searched_all; then
        cat "$log"
        fail "$1: the search did not cover every state"
    elif [ "${2:-}" = reached ] &&
        ! awk '/^unreached in proctype waiter/ { getline; exit !($0 ~ /\(0 of/) }' "$log"; then
        sed -n '/^unreached in proctype waiter/,/^unreached in proctype wgd/p' "$log"
        fail "$1: parts of the waiter were never reached"
    else
        echo "ok - $1 ($flags): $states states of $vector bytes, depth $depth, $memory MB, $seconds s"
    fi
}

# reject NAME CONFIG EXPECT SPIN_FLAGS...: spin must find an error, and report EXPECT first.
# Breadth-first: the first error is one of the shortest runs to it, found soonest.
reject() {
    name=$1
    flags=$(config "$2")
    expect=$3
    shift 3
    # shellcheck disable=SC2086 # $flags is a list of -D options
    if ! build "$name" "-O0 -DBFS" $flags "$@"; then
        fail "$name: cannot build the verifier"
        return
    fi
    search "$name" 20
    if [ "${errors:-0}" = 0 ]; then
        fail "$name: spin finds no error ($states states)"
    elif ! grep -q -F -e "$expect" "$log"; then
        grep '^pan:' "$log" || cat "$log"
        fail "$name: spin reports another error than '$expect'"
    else
        echo "ok - $name ($*) is rejected: $(grep -m1 '^pan:1:' "$log" | sed 's/^pan:1: //')"
    fi
}

# reach N CONFIG WHAT: probe N must be shown reachable (an assertion with probe==N fails).
reach() {
    reject "probe-$1" "$2" "probe==$1" "-DPROBE=$1" >"$tmp/reach.out"
    if grep -q '^ok' "$tmp/reach.out"; then
        echo "ok - reachable: $3"
    else
        cat "$tmp/reach.out"
        fail "probe $1 ($3) never happens"
    fi
}

spin_version=$("$spin" -V | head -1)
echo "# $spin_version, $cc"

if [ "$what" != full ]; then
    memlim=${MODEL_MEMLIM:-2048}
    verify core reached
    verify members reached
    verify mixed

    # The bugs of wg.pml's list: each must be found, by the property it breaks.
    reject clear-early core '!(lost_wakeup)' -DBUG_CLEAR_EARLY
    reject wake-early core '!(lost_wakeup)' -DBUG_WAKE_EARLY
    reject count-only core '!(lost_wakeup)' -DBUG_COUNT_ONLY
    reject no-range core '!(below_zero)' -DBUG_NO_RANGE
    reject wake-always core '!(wake_without_waiters)' -DBUG_WAKE_ALWAYS
    reject mark-no-wake core '!(lost_wakeup)' -DBUG_MARK_NO_WAKE
    reject any-generation race '!(member_done_astray)' -DBUG_ANY_GEN
    reject one-bit-generation members '!(lost_wakeup)' -DGEN_BITS=1

    # What the properties are about does happen.
    reach 1 core "a waiter woken from the futex returns 0"
    reach 2 core "a waiter woken from the futex by the delete returns EIDRM"
    reach 3 members "a waiter woken from the futex by the break returns EOWNERDEAD"
    reach 4 core "a waiter returns 0 while the counter is not zero (the group was reused)"
    reach 5 core "the futex compare fails (EAGAIN) and the waiter returns 0"
    reach 6 core "a waiter of the last generation before the wrap returns 0 after it"
    reach 7 members "wgd's member done is refused with ESTALE after a reset"
    reach 8 core "a done below zero is refused with ERANGE"
    reach 9 core "a done ends a generation without a FUTEX_WAKE (nobody registered)"
    reach 10 core "a FUTEX_WAKE finds nobody asleep (a stale WAITERS)"
    reach 11 core "the waiter with a deadline times out in the futex"
    reach 12 core "the waiter without a deadline gets EINTR, waits again, returns 0"
    reach 13 core "a waiter woken spuriously goes back to sleep"
    reach 14 members "a reset wakes a registered waiter"
fi

if [ "$what" != ci ]; then
    memlim=${MODEL_MEMLIM:-8192}
    verify full
fi

exit "$failed"
