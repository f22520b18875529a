#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Run the test suite again and again while every core is kept busy, to catch tests that depend
# on timing: a test that passes only when the machine is idle fails here first.
#
#   tools/under-load.sh [RUNS] [-- COMMAND...]
#
# RUNS (default 10) runs of COMMAND (default: tools/bootstrap.sh test), one after the other,
# with one busy loop per core (nproc) beside them at the same priority. Each run's output goes to
# under-load/run-N.log; the last line says how many runs passed. Exit 0 if all did.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

runs=10
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    runs=$1
    shift
fi
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RUNS] [-- COMMAND...]" >&2; exit 2; }
if [ $# -gt 0 ]; then
    [ "$1" = "--" ] || { echo "usage: $0 [RUNS] [-- COMMAND...]" >&2; exit 2; }
    shift
fi
[ $# -gt 0 ] || set -- tools/bootstrap.sh test

hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true; }
trap stop_hogs EXIT
for _ in $(seq "$(nproc)"); do
    bash -c 'while :; do :; done' &
    hogs+=($!)
done

mkdir -p under-load
passed=0 failed=0
for i in $(seq "$runs"); do
    start=$(date +%s)
    if "$@" >"under-load/run-$i.log" 2>&1; then
        passed=$((passed + 1))
        result=passed
    else
        failed=$((failed + 1))
        result="FAILED (see under-load/run-$i.log)"
    fi
    echo "run $i of $runs: $result in $(($(date +%s) - start)) s, with $(nproc) cores busy"
done
echo "under load: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
