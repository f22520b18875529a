#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The shared library exports exactly the API: the functions wg.h declares, the names libwg.sym
# lists, and the dynamic symbols of libwg.so must be one and the same set.
set -eu

sym=$1 header=$2 lib=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed -n 's/^[[:space:]]*\(wg_[a-z_]*\);$/\1/p' "$sym" | sort >"$tmp/sym"
sed -n 's/^[a-z].*[ *]\(wg_[a-z_]*\)(.*$/\1/p' "$header" | grep -v '^wg_unrefp$' | sort -u >"$tmp/header"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { sub(/@.*/, "", $3); print $3 }' | sort >"$tmp/lib"

status=0
for pair in "sym:header" "sym:lib"; do
    a=${pair%%:*} b=${pair##*:}
    if ! diff -u "$tmp/$a" "$tmp/$b" >"$tmp/diff"; then
        echo "exported API differs between $a and $b:"
        cat "$tmp/diff"
        status=1
    fi
done
if [ "$(wc -l <"$tmp/lib")" -eq 0 ]; then
    echo "no symbols found in $lib"
    status=1
fi
[ $status -eq 0 ] && echo "$(wc -l <"$tmp/lib") symbols, all declared in wg.h and listed in libwg.sym"
exit $status
