#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The README's main job as a test: examples/pipeline.sh with a wgd of its own, on a socket in a
# directory of its own, so that two runs at once (two builds, two checkouts, a CI job beside a
# developer) never share a wgd or stop each other's.

set -eu

dir=$(mktemp -d /tmp/wg-pipeline-demo-XXXXXX)
export WGD_SOCKET="$dir/wgd.sock"
cleanup() {
        pkill -f -- "--socket=$WGD_SOCKET" 2>/dev/null || true
        rm -rf "$dir"
}
trap cleanup EXIT

"$(dirname "$0")/../examples/pipeline.sh"
