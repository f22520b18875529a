#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build libwg and wgd, then run the Python binding's benchmark (bench/bench-python.py) against
# multiprocessing's primitives and the protocol path. Method and figures: docs/benchmarks.md.
#
# Usage: bench/run-python.sh [--quick] [BUILD_DIR]
#
#   --quick     fewer and shorter runs (about 1 s instead of about 10 s)
#   BUILD_DIR   the meson build directory to use; set up (release, no tests) if it is not one
#               yet. Default: build-bench/ at the top of the source tree.
#
# The interpreter is $PYTHON, else Debian's /usr/bin/python3, else python3 from PATH. A report,
# not a test: it exits 0 whatever the figures, and non-zero only if the benchmark could not be
# built or failed to run. The wgd and the processes it starts die with it.

set -euo pipefail

quick=
builddir=
for arg in "$@"; do
    case "$arg" in
        --quick) quick=--quick ;;
        -h | --help)
            sed -n '7,11s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        -*)
            echo "run-python.sh: unknown option '$arg'" >&2
            exit 2
            ;;
        *) builddir=$arg ;;
    esac
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
script=run-python.sh
# shellcheck source=bench/lib.sh
. "$srcdir/bench/lib.sh"
builddir=${builddir:-$srcdir/build-bench}

python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=python3; fi
fi

bench_build libwg/wg:shared_library wgd/wgd:executable
bench_machine
echo "python:      $("$python" --version 2>&1) ($(command -v "$python"))"

echo
echo "== bench-python${quick:+ $quick}"
# The package from the source tree, over this build's libwg; no bytecode left in the tree.
WG_LIBWG=$builddir/libwg/libwg.so.0 PYTHONPATH=$srcdir/python PYTHONDONTWRITEBYTECODE=1 \
    "$python" "$srcdir/bench/bench-python.py" --wgd "$builddir/wgd/wgd" ${quick:+"$quick"}
