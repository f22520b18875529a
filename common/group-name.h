/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Names of groups, and where wgd listens: the rules every part of wg agrees on. */

#include <stdbool.h>
#include <stddef.h>

#define WG_NAME_MAX 64

#define WG_NAME_RULES "1 to 64 characters of A-Z a-z 0-9 _ . -, not starting with '.'"

static inline bool group_name_valid(const char *name) {
        size_t n = 0;

        if (!name || name[0] == '.')
                return false;
        for (; name[n]; n++) {
                char c = name[n];

                if (n >= WG_NAME_MAX)
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-'))
                        return false;
        }
        return n > 0;
}

/*
 * The control socket's path: $WGD_SOCKET, else $XDG_RUNTIME_DIR/wgd.sock, else /run/wgd.sock.
 * Returns 0, or -ENAMETOOLONG if it does not fit a sockaddr_un (@size bytes with the NUL).
 */
int wg_socket_path(char *buf, size_t size);
