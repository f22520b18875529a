#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lint.sh PAGE...
#
# Formats each man page as man(1) does and fails on any warning (groff -ww: every kind), on a
# placeholder that configure_file() left behind, and on a line of the formatted page wider than
# 80 columns (an example too long for a terminal; the text itself is filled to 78). Exit 0 when
# all pass, 1 when not, 77 (skip) without groff, or man(1) to fall back on.

set -eu

if command -v groff >/dev/null 2>&1; then
        tool="groff"
elif command -v man >/dev/null 2>&1; then
        tool="man"
else
        echo "neither groff nor man found, skipping"
        exit 77
fi

failed=0
fail() {
        echo "FAIL: $*"
        failed=1
}

for page in "$@"; do
        name=${page##*/}

        if grep -n '@[A-Za-z_]*@' "$page"; then
                fail "$name: placeholder left unsubstituted"
        fi
        if LC_ALL=C grep -n '[^ -~	]' "$page"; then
                fail "$name: not ASCII (write \\(lq, \\(em... instead)"
        fi

        if [ "$tool" = groff ]; then
                echo "\$ groff -man -Tutf8 -ww -z $name"
                out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "$name: groff failed"
        else
                echo "\$ man --warnings=w -l $name"
                out=$(MANWIDTH=80 man --warnings=w -l "$page" 2>&1 >/dev/null) || fail "$name: man failed"
        fi
        if [ -n "$out" ]; then
                printf '%s\n' "$out"
                fail "$name: warnings"
        fi

        if [ "$tool" = groff ]; then
                wide=$(groff -man -Tascii -P-cbou "$page" 2>/dev/null | awk 'length > 80 { print NR ": " $0 }')
                if [ -n "$wide" ]; then
                        printf '%s\n' "$wide"
                        fail "$name: lines wider than 80 columns"
                fi
        fi
done

exit "$failed"
