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

/* The most records one call of the _many functions below moves. */
#define SEQPACKET_MANY_MAX 32

/* One record of a batch: what to send, or where to receive and what came. */
typedef struct SeqpacketRecord {
        void *buf;
        size_t size;    /* receiving: the room at @buf */
        size_t len;     /* sending: the record's length; received: its length (0 at end of file) */
        int fd;         /* sending: an fd to attach, or -EBADF */
        bool had_fds;   /* received: it came with fds, all closed now */
        bool truncated; /* received: larger than @size, and discarded */
} SeqpacketRecord;

/*
 * Send up to SEQPACKET_MANY_MAX of @n records with one sendmmsg(), each with its fd attached.
 * Returns how many went out, from the first (fewer than @n when the socket filled up, or failed
 * after the first), or -errno if none did (-EAGAIN if it would block). MSG_NOSIGNAL as above.
 */
int seqpacket_send_many(int sock, const SeqpacketRecord *records, size_t n, int flags);

/*
 * Receive up to SEQPACKET_MANY_MAX of @n records with one recvmmsg(), from a peer that may send
 * no fds (wgd's clients): every fd that came with a record, however many, is closed and the
 * record marked had_fds, while its bytes are still returned, so that the receiver can tell which
 * request it refuses. A record larger than its buffer is discarded and marked truncated. Returns
 * how many records arrived, or -errno (-EAGAIN if none is there). End of file reads as a record
 * of length 0 (so does an empty record); recvmmsg() may repeat it to fill @n.
 */
int seqpacket_recv_many_refusing_fds(int sock, SeqpacketRecord *records, size_t n, int flags);
