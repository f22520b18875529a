/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The wg handle: one mapping of one segment and the fd it came from. Handles are per process;
 * the segment behind them is what processes share.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "macro.h"
#include "segment.h"
#include "wg-private.h"

static wg *wg_free(wg *g) {
        if (!g)
                return NULL;
        if (g->map)
                (void) munmap(g->map, WG_SEGMENT_SIZE);
        safe_close(g->fd);
        /* A member that never left: closing the connection tells wgd it is gone (abandoned). */
        safe_close(g->member_sock);
        free(g->member_name);
        free(g);
        return NULL;
}

static void wg_freep(wg **g) {
        wg_free(*g);
}

/* Takes over @fd in every case. */
static int wg_attach(int fd, wg **ret) {
        _cleanup_close_ int owned = fd;
        _cleanup_(wg_freep) wg *g = NULL;
        int r;

        g = malloc(sizeof(*g));
        if (!g)
                return -ENOMEM;
        *g = (wg) {
                .n_ref = 1,
                .fd = TAKE_FD(owned),
                .member_sock = -EBADF,
        };

        r = wg__segment_map(g->fd, &g->map, &g->mirror);
        if (r < 0)
                return r;
        g->state = (uint64_t *) ((uint8_t *) g->map + WG_STATE_OFFSET);
        if (g->mirror)
                /* Checked by the mapping: it ends within the field, and is a name. */
                memcpy(g->name, (const uint8_t *) g->map + WG_NAME_OFFSET, sizeof(g->name));

        *ret = TAKE_PTR(g);
        return 0;
}

_public_ int wg_new(wg **ret) {
        int fd;

        assert_return(ret, -EINVAL);

        fd = wg__segment_create(NULL);
        if (fd < 0)
                return fd;

        /* The same validating path as any peer's fd: one way in, and a self-check of the writer. */
        return wg_attach(fd, ret);
}

int wg__new_mirror(const char *name, wg **ret) {
        int fd;

        fd = wg__segment_create(name);
        if (fd < 0)
                return fd;
        return wg_attach(fd, ret);
}

int wg__mirror_fd_read_only(wg *g) {
        char path[sizeof("/proc/self/fd/") + 12];
        int fd;

        /* A new open file description of the same memfd, read-only: its holders cannot write. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", g->fd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

_public_ int wg_from_fd(int fd, wg **ret) {
        int copy;

        assert_return(fd >= 0, -EBADF);
        assert_return(ret, -EINVAL);

        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return negative_errno();

        return wg_attach(copy, ret);
}

_public_ int wg_fd(wg *g) {
        assert_return(g, -EINVAL);

        return g->fd;
}

_public_ wg *wg_ref(wg *g) {
        if (!g)
                return NULL;

        (void) __atomic_add_fetch(&g->n_ref, 1, __ATOMIC_RELAXED);
        return g;
}

_public_ wg *wg_unref(wg *g) {
        if (!g)
                return NULL;

        /* Release our uses of the handle; the thread that drops the last one acquires them all. */
        if (__atomic_sub_fetch(&g->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;

        return wg_free(g);
}
