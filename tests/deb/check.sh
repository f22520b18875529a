#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# check.sh DIR
#
# Checks the Debian packages that tools/bootstrap.sh deb built into DIR, without installing them:
# each holds the files it should and no file is in two of them; wg enables wgd.socket and leaves
# wgd.service to it; libwg0 has its symbols file. Then, with the packages unpacked into a scratch
# root (dpkg -x): a C program builds against libwg-dev through pkg-config and runs, wgctl and wgd
# run, and python3-wg imports and uses the unpacked libwg. Exit 0 when all pass, 1 when not.

set -eu

dir=$1
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg --print-architecture)

passed=0
failed=0
pass() {
    echo "ok - $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL - $1"
    failed=$((failed + 1))
}
# check WHAT COMMAND...: one check, by the command's exit status.
check() {
    what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# deb PACKAGE: the path of PACKAGE's one .deb in DIR.
deb() {
    for f in "$dir/$1"_*_"$arch".deb "$dir/$1"_*_all.deb; do
        [ -e "$f" ] && echo "$f" && return 0
    done
    echo "$dir: no package $1" >&2
    return 1
}

# contains PACKAGE PATH...: the package lists each PATH (a file or a symbolic link).
contains() {
    list=$(dpkg-deb -c "$(deb "$1")" | awk '{ print substr($6, 2) }')
    package=$1
    shift
    for path; do
        if ! printf '%s\n' "$list" | grep -qxF "$path"; then
            echo "$package lacks $path" >&2
            return 1
        fi
    done
}

packages="libwg0 libwg-dev wg python3-wg"
for p in $packages; do
    deb "$p" >/dev/null || exit 1
done

lib=/usr/lib/$multiarch
check "libwg0: the shared library" contains libwg0 "$lib/libwg.so.0"
check "libwg-dev: header, .so link, static library, pkg-config file, section 3 pages" \
    contains libwg-dev /usr/include/wg.h "$lib/libwg.so" "$lib/libwg.a" \
    "$lib/pkgconfig/libwg.pc" /usr/share/man/man3/libwg.3.gz /usr/share/man/man3/wg_wait.3.gz
check "wg: wgctl, wgd, units, pages, completion" \
    contains wg /usr/bin/wgctl /usr/libexec/wgd \
    /lib/systemd/system/wgd.socket /lib/systemd/system/wgd.service \
    /usr/lib/systemd/user/wgd.socket /usr/lib/systemd/user/wgd.service \
    /usr/share/man/man1/wgctl.1.gz /usr/share/man/man8/wgd.8.gz \
    /usr/share/bash-completion/completions/wgctl
check "python3-wg: the module" \
    contains python3-wg /usr/lib/python3/dist-packages/wg/__init__.py \
    /usr/lib/python3/dist-packages/wg/_lib.py /usr/lib/python3/dist-packages/wg/py.typed

no_overlap() {
    dups=$(for p in $packages; do
        dpkg-deb -c "$(deb "$p")" | awk '$1 !~ /^d/ { print $6 }'
    done | sort | uniq -d)
    [ -z "$dups" ] || { echo "in two packages: $dups" >&2; return 1; }
}
check "no file in two packages" no_overlap

# The system and the user socket enabled; the service never started or enabled by itself.
socket_only() {
    postinst=$(dpkg-deb -I "$(deb wg)" postinst)
    printf '%s\n' "$postinst" | grep -q "deb-systemd-helper enable 'wgd.socket'" &&
        printf '%s\n' "$postinst" | grep -q "deb-systemd-helper --user enable 'wgd.socket'" &&
        ! printf '%s\n' "$postinst" | grep -q 'wgd\.service'
}
check "wg: postinst enables wgd.socket, not wgd.service" socket_only

check "libwg0: symbols file for LIBWG_0.1" \
    sh -c 'dpkg-deb -I "$1" symbols | grep -q "^ wg_wait@LIBWG_0.1 "' - "$(deb libwg0)"

python_depends() {
    depends=$(dpkg-deb -f "$(deb python3-wg)" Depends)
    case $depends in *libwg0*) ;; *) return 1 ;; esac
    case $depends in *python3*) ;; *) return 1 ;; esac
}
check "python3-wg: depends on libwg0 and python3" python_depends

# The unpacked packages. pwd -P: the Python check compares it with the paths the loader maps.
root=$(cd "$(mktemp -d)" && pwd -P)
trap 'rm -rf "$root"' EXIT
for p in $packages; do
    dpkg -x "$(deb "$p")" "$root"
done
version=$(dpkg-deb -f "$(deb wg)" Version)
version=${version%-*}

build_c() {
    cat >"$root/t.c" <<'CEOF'
#include <wg.h>

int main(void) {
        wg *g;

        if (wg_new(&g) < 0 || wg_add(g, 1) < 0 || wg_done(g) < 0 || wg_wait(g, 0) < 0)
                return 1;
        wg_unref(g);
        return 0;
}
CEOF
    # The unpacked libwg.pc, with its prefix moved into the scratch root.
    flags=$(PKG_CONFIG_PATH="$root$lib/pkgconfig" \
        pkg-config --define-variable=prefix="$root/usr" --cflags --libs libwg) &&
        cc -o "$root/t" "$root/t.c" $flags &&
        LD_LIBRARY_PATH="$root$lib" "$root/t"
}
check "libwg-dev: a program builds with pkg-config libwg and runs" build_c

check "wg: wgctl --version says $version" \
    sh -c '"$1/usr/bin/wgctl" --version | grep -qxF "wgctl $2"' - "$root" "$version"
check "wg: wgd --version says $version" \
    sh -c '"$1/usr/libexec/wgd" --version | grep -qxF "wgd $2"' - "$root" "$version"

# From the scratch root itself, so that nothing else named wg can be imported; WG_LIBWG unset, so
# that the module loads libwg.so.0 by its soname, which LD_LIBRARY_PATH finds unpacked.
python_import() {
    (cd "$root" && env -u WG_LIBWG LD_LIBRARY_PATH="$root$lib" \
        PYTHONPATH="$root/usr/lib/python3/dist-packages" PYTHONDONTWRITEBYTECODE=1 \
        python3 -c '
import sys
import wg

root = sys.argv[1]
assert wg.__file__.startswith(root + "/"), wg.__file__
with open("/proc/self/maps") as maps:
    mapped = [line for line in maps if "libwg.so" in line]
assert mapped and all(root + "/usr/lib/" in line for line in mapped), mapped
g = wg.Group.new()
g.add(1)
g.done()
g.wait(timeout=1.0)
g.close()
' "$root")
}
check "python3-wg: import wg, with the unpacked libwg" python_import

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
