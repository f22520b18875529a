#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# verify.sh SOCKET SYSTEM_SERVICE USER_SERVICE INSTALLED_WGD BUILT_WGD
#
# Checks wgd's units with systemd-analyze verify: the system pair, then the user pair with
# --user. Exit 0 when they pass, 1 when not, 77 (skip) without systemd-analyze.
#
# verify loads the units into a private manager that never starts anything, so it needs no
# running systemd and works as root or not. It checks that ExecStart= is executable, so it is
# given copies of the services whose ExecStart= is the wgd of the build tree instead of the
# configured INSTALLED_WGD. Its exit status is not enough: an unknown key, or a value it cannot
# parse, is only a warning ("Unknown key ...", "Failed to parse ..., ignoring") and it still
# exits 0. So any message about one of our files is a failure too. A deliberately broken unit
# checks first that this systemd-analyze does report what we look for.

set -eu

socket=$1
system_service=$2
user_service=$3
installed_wgd=$4
built_wgd=$5

if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "systemd-analyze not found, skipping"
        exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}

# The configured units must name the installed wgd: no placeholder left, an absolute path,
# and the options of a drop-in (WGD_OPTIONS, empty unless one sets it).
for f in "$system_service" "$user_service"; do
        line=$(grep '^ExecStart=' "$f")
        if [ "$line" != "ExecStart=$installed_wgd \$WGD_OPTIONS" ]; then
                fail "$f: '$line', expected 'ExecStart=$installed_wgd \$WGD_OPTIONS'"
        fi
        if grep -n '@[a-z_]*@' "$f"; then
                fail "$f: placeholder left unsubstituted"
        fi
done

# Copy SERVICE into DIR (with the built wgd) along with the socket.
stage() {
        cp "$socket" "$1/wgd.socket"
        sed "s|^ExecStart=[^ ]*|ExecStart=$built_wgd|" "$2" >"$1/wgd.service"
}

# verify [--user] DIR: run systemd-analyze verify on DIR's units, show what it says, and fail
# on a non-zero exit or on any message that names our units. --recursive-errors=no: only our
# units count, not the state of this machine's other units that ours pull in (sockets.target,
# sysinit.target...). SYSTEMD_LOG_LEVEL=notice: syntax warnings, without the debug chatter a
# caller's environment might ask for. --man=no: verify looks for man pages among the installed
# ones, and a build tree has not installed wgd(8).
verify() {
        mode=
        if [ "$1" = --user ]; then
                mode=--user
                shift
        fi
        dir=$1
        rc=0
        # shellcheck disable=SC2086 # $mode is empty or one word
        out=$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice SYSTEMD_LOG_COLOR=0 \
                systemd-analyze verify $mode --man=no --recursive-errors=no "$dir/wgd.socket" "$dir/wgd.service" 2>&1) ||
                rc=$?
        echo "\$ systemd-analyze verify${mode:+ $mode} --man=no --recursive-errors=no wgd.socket wgd.service"
        if [ -n "$out" ]; then
                printf '%s\n' "$out"
        fi
        echo "(exit status $rc)"
        if [ "$rc" -ne 0 ]; then
                return 1
        fi
        if printf '%s\n' "$out" | grep -q -e "$dir" -e 'wgd\.socket' -e 'wgd\.service'; then
                return 1
        fi
        return 0
}

# check [--user] SERVICE: verify SERVICE with the socket, and a broken copy of it first. The
# copy has a key systemd does not know and a value it cannot parse: unless both are reported,
# this systemd-analyze cannot tell us anything and the check fails.
check() {
        mode=
        if [ "$1" = --user ]; then
                mode=--user
                shift
        fi
        name=system
        if [ -n "$mode" ]; then
                name=user
        fi
        mkdir "$tmp/$name" "$tmp/$name-broken"

        stage "$tmp/$name-broken" "$1"
        printf '[Service]\nNoSuchKey=yes\nWatchdogSec=soon\n' >>"$tmp/$name-broken/wgd.service"
        echo "== $name, broken copy (must fail):"
        if verify $mode "$tmp/$name-broken"; then
                fail "$name: systemd-analyze verify passes a broken unit"
        fi
        for what in "Unknown key 'NoSuchKey'" "Failed to parse .*: soon"; do
                if ! printf '%s\n' "$out" | grep -q -e "$what"; then
                        fail "$name: systemd-analyze verify did not report $what"
                fi
        done

        stage "$tmp/$name" "$1"
        echo "== $name:"
        verify $mode "$tmp/$name" || fail "$name units"
}

check "$system_service"
# verify --user needs no running user manager, only $XDG_RUNTIME_DIR (for %t): a fresh one.
mkdir -m 0700 "$tmp/runtime"
XDG_RUNTIME_DIR="$tmp/runtime"
export XDG_RUNTIME_DIR
check --user "$user_service"

exit "$failed"
