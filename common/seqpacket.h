/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * One record on an AF_UNIX SOCK_SEQPACKET socket, with at most one fd riding along: the framing
 * of wgd's protocol, shared by the daemon and its clients.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The protocol's cap on one record. */
#define WG_RECORD_MAX 65536

/*
 * Send @len bytes as one record, with @fd attached (SCM_RIGHTS) if it is >= 0. MSG_NOSIGNAL:
 * a peer that went away is -EPIPE, never SIGPIPE. @flags are added to sendmsg()'s (for
 * MSG_DONTWAIT). Returns 0 or -errno (-EAGAIN if it would block).
 */
int seqpacket_send(int sock, const void *buf, size_t len, int fd, int flags);

/*
 * Receive one record of at most @size bytes into @buf. Returns its length, 0 at end of file, or
 * -errno: -EMSGSIZE if the record did not fit (it is discarded), -EBADMSG if it carried fds it
 * should not have or more than one (all closed), -EAGAIN if it would block.
 *
 * With @ret_fd NULL, any fd is refused; otherwise *ret_fd is the one fd sent along (close-on-exec)
 * or -EBADF if there was none.
 */
ssize_t seqpacket_recv(int sock, void *buf, size_t size, int *ret_fd, int flags);

/*
 * Receive one record from a peer that may send no fds (wgd's clients): every fd that came with
 * it, however many, is closed, and *ret_had_fds says whether there were any, while the record's
 * bytes are still returned, so that the receiver can tell which request it refuses. -EMSGSIZE as
 * above.
 */
ssize_t seqpacket_recv_refusing_fds(int sock, void *buf, size_t size, bool *ret_had_fds, int flags);
