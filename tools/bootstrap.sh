#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The README's two commands, for a fresh Debian 12 machine:
#
#   tools/bootstrap.sh demo    install what is missing, build, run the main job (a shell
#                              pipeline coordinated by wgctl: examples/pipeline.sh)
#   tools/bootstrap.sh test    install what is missing, build, run every test: the plain build,
#                              the same tests under valgrind, and an ASan+UBSan build; then
#                              what deb does (below), counted as one more test
#   tools/bootstrap.sh bench   install what is missing (Redis, GNU parallel, etcdctl too), build,
#                              run every benchmark of bench/ (a few minutes; see
#                              docs/benchmarks.md)
#   tools/bootstrap.sh stress  install what is missing, build, run the long stress test:
#                              10^7 generations across processes (WG_STRESS_GENERATIONS to
#                              change it; minutes; see docs/stress.md)
#   tools/bootstrap.sh deb     install what is missing (debhelper, lintian too), build the
#                              Debian packages (debian/) into build-deb/, run lintian on them
#                              (failing on errors) and check what they hold (tests/deb/check.sh)
#   tools/bootstrap.sh deps    only install what is missing
#
# Packages come from apt-get (as root, or through sudo). Build directories: build/ and
# build-asan/ at the top of the tree; both are reused when they exist. build-deb/ is made anew
# each time.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

# Everything the build, the tests and the benchmarks need, by Debian package name.
packages=(
    gcc
    libc6-dev
    meson
    ninja-build
    pkg-config
    libcmocka-dev
    libprotobuf-c-dev
    protobuf-c-compiler
    libsystemd-dev
    systemd
    valgrind
    strace
    jq
    procps
    python3
    python3-pytest
    spin
    # wgd's etcd client (-Detcd), and the real etcd and TLS certificates its tests use.
    libcurl4-openssl-dev
    libjson-c-dev
    etcd-server
    openssl
)

# What only the benchmarks need: the peers they measure wg against. etcdctl (etcd-client) drives
# the etcd barrier of bench/run-cluster.sh; etcd-server only suggests it.
bench_packages=(
    redis-server
    redis-tools
    parallel
    etcd-client
)

# What only the Debian packages need: the packaging tools. Their Build-Depends (debian/control)
# are in the list above.
deb_packages=(
    build-essential
    debhelper
    dh-python
    dpkg-dev
    lintian
)

usage() {
    echo "usage: $0 demo|test|bench|stress|deb|deps" >&2
    exit 2
}

install_deps() {
    local missing=() p
    for p in "${packages[@]}" "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    echo "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# setup DIR [meson options...]: configure once, then build.
build() {
    local dir=$1
    shift
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
    ninja -C "$dir"
}

# Run one meson test pass (its arguments: -C DIR, then any other) and add its counts to the
# totals, and what failed to the digest the summary ends with: CI shows only the end of what
# this printed, and the log of a failed test is far above it.
passed=0 failed=0 skipped=0 failures=() digest=$(mktemp)
trap 'rm -f "$digest"' EXIT
run_tests() {
    local title=$1 dir=$3 log since
    shift
    echo
    echo "=== $title"
    log=$(mktemp) since=$(mktemp)
    local rc=0
    meson test --print-errorlogs "$@" 2>&1 | tee "$log" || rc=$?
    local ok fail xfail xpass timeout skip
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log")
    fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log")
    xfail=$(sed -n 's/^Expected Fail: *\([0-9]*\).*/\1/p' "$log")
    xpass=$(sed -n 's/^Unexpected Pass: *\([0-9]*\).*/\1/p' "$log")
    timeout=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log")
    skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log")
    passed=$((passed + ${ok:-0} + ${xfail:-0}))
    failed=$((failed + ${fail:-0} + ${xpass:-0} + ${timeout:-0}))
    skipped=$((skipped + ${skip:-0}))
    # The failed tests, from the JSON log this pass just wrote: each with its last lines.
    local name
    while IFS= read -r name; do
        failures+=("$title: $name")
    done < <(failed_tests "$title" "$dir" "$since" 2>>"$digest")
    rm -f "$log" "$since"
    # A run that died before its summary counts as a failure.
    if [ "$rc" -ne 0 ] && [ -z "$fail$timeout$xpass" ]; then
        failed=$((failed + 1))
        failures+=("$title: meson test died (exit $rc)")
    fi
}

# failed_tests TITLE DIR SINCE: the tests that failed in the JSON log of DIR written after the
# file SINCE was, a line each on stdout; on stderr, each one's first failed TAP checks and its
# last lines.
failed_tests() {
    python3 - "$1" "$2" "$3" <<'PY'
import glob, json, os, sys

title, d, since = sys.argv[1], sys.argv[2], os.path.getmtime(sys.argv[3])
logs = [l for l in glob.glob(os.path.join(d, "meson-logs", "testlog*.json")) if os.path.getmtime(l) >= since]
if not logs:
    sys.exit(0)
for line in open(max(logs, key=os.path.getmtime), encoding="utf-8", errors="replace"):
    t = json.loads(line)
    if t["result"] in ("OK", "SKIP", "EXPECTEDFAIL"):
        continue
    print(f"{t['name']} ({t['result']})")
    out = [l for l in (t.get("stdout") or "").splitlines() if l.strip()]
    print(f"--- {title}: {t['name']} ({t['result']}): its failed checks, then its last lines", file=sys.stderr)
    for l in [l for l in out[:-12] if l.startswith("not ok")][:5] + out[-12:]:
        print("  " + l[:300], file=sys.stderr)
PY
}

# Build the Debian packages into build-deb/. dpkg-buildpackage builds in the tree it runs in and
# writes the packages into that tree's parent: it runs in a copy, build-deb/src, of what git
# tracks or would track here (uncommitted changes included, ignored files such as build/ not), so
# that the packages land in build-deb/ and nothing lands in the tree.
build_debs() {
    rm -rf build-deb
    mkdir -p build-deb/src
    local f
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        # A tracked file deleted in the work tree is not copied.
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | tar -c --null -T - | tar -x -C build-deb/src
    (cd build-deb/src && dpkg-buildpackage -us -uc -b -Jauto)
    echo
    echo "=== lintian"
    lintian --fail-on error --display-info build-deb/*.changes
    echo
    echo "=== package contents"
    tests/deb/check.sh build-deb
}

[ $# -eq 1 ] || usage
case "$1" in
deps)
    install_deps
    ;;
demo)
    install_deps
    build build
    echo
    # wgctl from this build, which starts this build's wgd when none runs.
    PATH=$top/build/wgctl:$PATH WGCTL_WGD=$top/build/wgd/wgd examples/pipeline.sh
    ;;
test)
    install_deps
    build build
    run_tests "tests" -C build
    run_tests "tests under valgrind" -C build --setup valgrind
    build build-asan -Db_sanitize=address,undefined
    run_tests "tests with AddressSanitizer and UndefinedBehaviorSanitizer" -C build-asan
    echo
    echo "=== Debian packages"
    # A process of its own, which set -e still stops at the first failure (it would not stop a
    # function called as a condition).
    if "$top/tools/bootstrap.sh" deb; then
        passed=$((passed + 1))
    else
        echo "Debian packages: FAILED"
        failed=$((failed + 1))
        failures+=("Debian packages")
    fi
    echo
    cat "$digest"
    for f in "${failures[@]}"; do
        echo "FAILED: $f"
    done
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    ;;
bench)
    install_deps "${bench_packages[@]}"
    for b in bench/run-*.sh; do
        echo
        echo "=== $b"
        "$b"
    done
    ;;
deb)
    install_deps "${deb_packages[@]}"
    build_debs
    ;;
stress)
    install_deps
    build build
    # The stress test's long run; the test suite runs a short one (tests/test-stress.c).
    WG_STRESS_GENERATIONS=${WG_STRESS_GENERATIONS:-10000000} WG_HELPER=$top/build/tests/wg-helper \
        build/tests/test-stress
    ;;
*)
    usage
    ;;
esac
