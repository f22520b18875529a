/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libwg's side of wgd's protocol (proto/wg.proto): one request, one response. */

#include "wg.h"
#include "wg.pb-c.h"

/* For _cleanup_: free a response of wg__call() and friends, if any. */
void wg__response_freep(Wg__V1__Response **r);

/* How long a client waits for wgd to answer a request that is not a Wait. */
#define WG_CLIENT_TIMEOUT_USEC (25 * UINT64_C(1000000))

/*
 * Connect to wgd, send @req (its version and id are filled in here), and receive the response.
 * A response that is an Error becomes its -errnum. On success *ret is the response (free it
 * with wg__v1__response__free_unpacked(*ret, NULL)) and, if @ret_fd is not NULL, *ret_fd the fd
 * that came with it, or -EBADF.
 *
 * Returns 0 or -errno: -ECONNREFUSED if no wgd listens, -ETIMEDOUT if it did not answer in time,
 * -EPROTO if the answer was not a response to this request, or the daemon's error.
 */
int wg__call(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd);

/*
 * The same, but a daemon's Error is a response like any other (returned with 0), so that the
 * caller can show its message. Negative returns are failures to get a valid response at all.
 */
int wg__call_full(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd);

/*
 * wg__call(), on a connection that is handed back in *ret_sock (if not NULL) for what outlives
 * the request: a member's membership, a waiter's watch on wgd.
 */
int wg__call_keep(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd, int *ret_sock);

/* The two halves of wg__call_full(), for a connection that outlives one request (a member's). */
int wg__connect(void);
int wg__request(int sock, Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd);

/* wg_join() with a description of the member for wgd's reports (NULL: wgd reads the process's). */
int wg__join(const char *name, uint64_t flags, const char *description, wg **ret);

/* An Add request of @delta to group @name, on a connection of its own: 0 or -errno. */
int wg__add_request(const char *name, int64_t delta);
