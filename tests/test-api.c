/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The public API as a user sees it: only wg.h, linked against the shared library, compiled as
 * C89 with -pedantic (the header promises that), calling every exported function once.
 */

#include <errno.h>
#include <stdio.h>

#include "wg.h"

#define CHECK(expr)                                                                                         \
        do {                                                                                                \
                if (!(expr)) {                                                                              \
                        fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #expr);                   \
                        return 1;                                                                           \
                }                                                                                           \
        } while (0)

int main(void) {
        wg *g = NULL, *h = NULL;
        uint64_t v = 0;

        CHECK(wg_new(&g) == 0);
        CHECK(wg_fd(g) >= 0);
        CHECK(wg_from_fd(wg_fd(g), &h) == 0);
        CHECK(wg_ref(h) == h);
        CHECK(wg_unref(h) == NULL);
        CHECK(wg_add(g, 2) == 0);
        CHECK(wg_done(g) == 0);
        CHECK(wg_get_count(h, &v) == 0 && v == 1);
        CHECK(wg_wait(h, 0) == -ETIMEDOUT);
        CHECK(wg_done(h) == 0);
        CHECK(wg_wait(g, WG_USEC_INFINITY) == 0);
        CHECK(wg_get_generation(g, &v) == 0 && v == 1);
        CHECK(wg_unref(h) == NULL);
        CHECK(wg_unref(g) == NULL);
        puts("1..1\nok 1 - every exported function callable through wg.h alone");
        return 0;
}
