/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * noop: a program that does nothing, the yardstick of bench/run-wgctl.sh. What a run of
 * `wgctl add NAME` costs is mostly what any program costs to start: fork, exec, the dynamic
 * loader, exit. This program pays exactly that and nothing else, so that wgctl / noop is what
 * wgctl's own work adds.
 *
 * Built twice (bench/meson.build). As "noop" it is linked as wgctl is, with the static libwg
 * and libm, and keeps a reference to wg_open() (never called) so that the linker keeps what
 * wgctl keeps: libwg's client and the protobuf-c code it uses, hence the same shared libraries
 * for the loader to map and relocate (libprotobuf-c.so.1 and libc.so.6); without the reference
 * --as-needed would drop libprotobuf-c and noop would measure less than wgctl's start-up. As
 * "noop-libc" (NOOP_LIBC_ONLY) it is the same main() with libc alone: the difference between
 * the two is what loading libprotobuf-c and libwg's code costs.
 */

#ifndef NOOP_LIBC_ONLY
#include "wg.h"

/* volatile: the compiler may not drop the reference, nor the linker what it pulls in. */
int (*volatile noop_keep_libwg)(const char *, uint64_t, wg **) = wg_open;
#endif

int main(void) {
        return 0;
}
