/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "group-name.h"

int wg_socket_path(char *buf, size_t size) {
        const char *e;
        int n;

        e = secure_getenv("WGD_SOCKET");
        if (e && *e)
                n = snprintf(buf, size, "%s", e);
        else if ((e = secure_getenv("XDG_RUNTIME_DIR")) && *e == '/')
                n = snprintf(buf, size, "%s/wgd.sock", e);
        else
                n = snprintf(buf, size, "/run/wgd.sock");

        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}
