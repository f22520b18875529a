#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A bounded run of fuzz-dispatch, wgd's request handling under libFuzzer (see README.md here):
#
#   fuzz/run.sh [BUILD_DIR] [LIBFUZZER_OPTION...]
#
# BUILD_DIR (default: build-fuzz/ at the top of the tree) is configured with clang, ASan, UBSan
# and libFuzzer's coverage, or reused if it is. The run lasts $FUZZ_SECONDS (default 60; not
# $SECONDS, which bash keeps for itself), in a corpus under BUILD_DIR seeded from
# fuzz/corpus/dispatch, and keeps what it learns there for the next run. Crashers land in
# BUILD_DIR/fuzz-artifacts/. Exits non-zero if libFuzzer found anything.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

builddir=$top/build-fuzz
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    builddir=$1
    shift
fi
seconds=${FUZZ_SECONDS:-60}

if [ ! -f "$builddir/build.ninja" ]; then
    # fuzzer-no-link everywhere: wgd, libwg and protobuf-c's generated code give coverage.
    # Tests off: they need cmocka, and a clang ASan build of libwg.so does not link.
    CC=${CC:-clang} meson setup "$builddir" "$top" \
        -Dfuzz=true \
        -Dtests=false \
        -Db_sanitize=address,undefined \
        -Db_lundef=false \
        -Dc_args=-fsanitize=fuzzer-no-link
fi
# Only the fuzz target and what it needs: the shared libwg does not link with clang's ASan.
ninja -C "$builddir" fuzz/fuzz-dispatch

corpus=$builddir/fuzz-corpus/dispatch
artifacts=$builddir/fuzz-artifacts
mkdir -p "$corpus" "$artifacts"
# The tree's seeds are the floor; what earlier runs found stays.
cp -- "$top"/fuzz/corpus/dispatch/* "$corpus"/

# UBSan only prints by default: make it a crash. LSan is on with ASan.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

echo "fuzz/run.sh: fuzzing for ${seconds}s, corpus $corpus, crashers to $artifacts/"
rc=0
"$builddir/fuzz/fuzz-dispatch" \
    -max_total_time="$seconds" \
    -timeout=5 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="$artifacts/" \
    "$@" \
    "$corpus" || rc=$?

if [ "$rc" -ne 0 ]; then
    echo "fuzz/run.sh: libFuzzer exited with $rc; inputs in $artifacts/:" >&2
    ls -l "$artifacts" >&2 || true
    echo "Minimise one with: $builddir/fuzz/fuzz-dispatch -minimize_crash=1 -runs=10000 FILE" >&2
fi
exit "$rc"
