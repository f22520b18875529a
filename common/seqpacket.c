/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "macro.h"
#include "seqpacket.h"

/* Room for more fds than we accept, so that a sender's extra fds are seen, and closed. */
#define FDS_MAX 8

typedef union ControlOneFd {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
} ControlOneFd;

/* Point @mh at @iov (the record) and, with @fd >= 0, at @control holding it. */
static void record_header(struct msghdr *mh, struct iovec *iov, ControlOneFd *control, int fd) {
        *mh = (struct msghdr) { .msg_iov = iov, .msg_iovlen = 1 };
        if (fd >= 0) {
                struct cmsghdr *c;

                memset(control, 0, sizeof(*control));
                mh->msg_control = control;
                mh->msg_controllen = sizeof(*control);
                c = CMSG_FIRSTHDR(mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
}

int seqpacket_send(int sock, const void *buf, size_t len, int fd, int flags) {
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        ControlOneFd control;
        struct msghdr mh;

        record_header(&mh, &iov, &control, fd);
        if (sendmsg(sock, &mh, MSG_NOSIGNAL | flags) < 0)
                return negative_errno();
        return 0;
}

int seqpacket_send_many(int sock, const SeqpacketRecord *records, size_t n, int flags) {
        struct mmsghdr mm[SEQPACKET_MANY_MAX];
        struct iovec iov[SEQPACKET_MANY_MAX];
        ControlOneFd control[SEQPACKET_MANY_MAX];
        int r;

        if (n > SEQPACKET_MANY_MAX)
                n = SEQPACKET_MANY_MAX;
        for (size_t i = 0; i < n; i++) {
                iov[i] = (struct iovec) { .iov_base = records[i].buf, .iov_len = records[i].len };
                record_header(&mm[i].msg_hdr, &iov[i], &control[i], records[i].fd);
                mm[i].msg_len = 0;
        }
        r = sendmmsg(sock, mm, (unsigned) n, MSG_NOSIGNAL | flags);
        if (r < 0)
                return negative_errno();
        return r;
}

typedef union ControlFds {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * FDS_MAX)];
} ControlFds;

/* The fds that came with a received record (MSG_CMSG_CLOEXEC), at most FDS_MAX. */
static size_t harvest(struct msghdr *mh, int fds[static FDS_MAX]) {
        size_t n_fds = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t k;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k && n_fds < FDS_MAX; i++)
                        memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
        return n_fds;
}

/*
 * recvmsg() one record and harvest every fd that came with it, so that none leaks whatever else
 * is wrong with the record. Returns the record's length or -errno; *ret_truncated says whether
 * the data or the fds did not fit.
 */
static ssize_t recv_harvest(
        int sock,
        void *buf,
        size_t size,
        int flags,
        int fds[static FDS_MAX],
        size_t *ret_n_fds,
        bool *ret_data_truncated,
        bool *ret_fds_truncated) {
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        ControlFds control;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        ssize_t n;

        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
        if (n < 0)
                return negative_errno();

        *ret_n_fds = harvest(&mh, fds);
        *ret_data_truncated = mh.msg_flags & MSG_TRUNC;
        *ret_fds_truncated = mh.msg_flags & MSG_CTRUNC;
        return n;
}

ssize_t seqpacket_recv(int sock, void *buf, size_t size, int *ret_fd, int flags) {
        bool data_truncated, fds_truncated;
        int fds[FDS_MAX], received = -EBADF;
        size_t n_fds;
        ssize_t n;

        n = recv_harvest(sock, buf, size, flags, fds, &n_fds, &data_truncated, &fds_truncated);
        if (n < 0)
                return n;

        if (fds_truncated || n_fds > 1 || (n_fds == 1 && !ret_fd)) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                return -EBADMSG;
        }
        if (n_fds == 1)
                received = fds[0];

        if (data_truncated) {
                safe_close(received);
                return -EMSGSIZE;
        }

        if (ret_fd)
                *ret_fd = received;
        return n;
}

int seqpacket_recv_many_refusing_fds(int sock, SeqpacketRecord *records, size_t n, int flags) {
        struct mmsghdr mm[SEQPACKET_MANY_MAX];
        struct iovec iov[SEQPACKET_MANY_MAX];
        ControlFds control[SEQPACKET_MANY_MAX];
        int r;

        if (n > SEQPACKET_MANY_MAX)
                n = SEQPACKET_MANY_MAX;
        for (size_t i = 0; i < n; i++) {
                iov[i] = (struct iovec) { .iov_base = records[i].buf, .iov_len = records[i].size };
                mm[i].msg_hdr = (struct msghdr) {
                        .msg_iov = &iov[i],
                        .msg_iovlen = 1,
                        .msg_control = &control[i],
                        .msg_controllen = sizeof(control[i]),
                };
                mm[i].msg_len = 0;
        }

        r = recvmmsg(sock, mm, (unsigned) n, MSG_CMSG_CLOEXEC | flags, NULL);
        if (r < 0)
                return negative_errno();

        for (int i = 0; i < r; i++) {
                struct msghdr *mh = &mm[i].msg_hdr;
                int fds[FDS_MAX];
                size_t n_fds = harvest(mh, fds);

                for (size_t k = 0; k < n_fds; k++)
                        safe_close(fds[k]);
                records[i].had_fds = n_fds > 0 || (mh->msg_flags & MSG_CTRUNC);
                records[i].len = mh->msg_flags & MSG_TRUNC ? (size_t) 0 : mm[i].msg_len;
                records[i].truncated = mh->msg_flags & MSG_TRUNC;
        }
        return r;
}
