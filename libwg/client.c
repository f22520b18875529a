/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Named groups: libwg as a client of wgd. wgd owns names and permissions; once it has handed
 * over a segment fd, libwg never talks to it again for that group, unless the group is a
 * cluster group: its segment is a mirror, and its adds and dones are requests to wgd.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "client.h"
#include "group-name.h"
#include "macro.h"
#include "seqpacket.h"
#include "time-util.h"
#include "wg-private.h"

/* The ways a connection turns out to be dead when wgd is gone or was restarted. */
#define IN_SET_CONNECTION_LOST(r) ((r) == -EPIPE || (r) == -ECONNRESET || (r) == -ENOTCONN)

void wg__response_freep(Wg__V1__Response **r) {
        if (*r)
                wg__v1__response__free_unpacked(*r, NULL);
}

int wg__connect(void) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = {
                .tv_sec = WG_CLIENT_TIMEOUT_USEC / USEC_PER_SEC,
        };
        int r;

        r = wg_socket_path(sa.sun_path, sizeof(sa.sun_path));
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();

        /* A wedged daemon must not hang its clients: bound both directions. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return negative_errno();

        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                /* No socket file means no daemon, not "no such group". */
                if (errno == ENOENT)
                        return -ECONNREFUSED;
                return negative_errno();
        }

        return TAKE_FD(fd);
}

/*
 * Fill in @req's version and id, and mark it the connection's last with @last; pack it into a
 * buffer that will also take the answer.
 */
static int request_pack(Wg__V1__Request *req, bool last, uint8_t **ret_buf, size_t *ret_len) {
        uint8_t *buf;
        size_t len;

        req->has_version = true;
        req->version = 1;
        req->has_id = true;
        req->id = 1;
        req->has_last = req->last = last;

        len = wg__v1__request__get_packed_size(req);
        if (len > WG_RECORD_MAX)
                return -EMSGSIZE;
        buf = malloc(WG_RECORD_MAX);
        if (!buf)
                return -ENOMEM;
        wg__v1__request__pack(req, buf);
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

/* Send the packed @req (@len bytes at @buf) on @sock and receive its answer into @buf. */
static int request_exchange(
        int sock,
        const Wg__V1__Request *req,
        uint8_t *buf,
        size_t len,
        Wg__V1__Response **ret,
        int *ret_fd) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        assert(sock >= 0);
        assert(ret);

        n = seqpacket_send(sock, buf, len, -EBADF, 0);
        if (n < 0)
                return n == -EAGAIN ? -ETIMEDOUT : (int) n;

        /*
         * The request is out and wgd acts on it whatever we do now: a signal must not leave its
         * answer on the connection, for the next request to take as its own. So a handler that
         * interrupts the wait for it (no SA_RESTART) is not our caller's EINTR; the wait goes on,
         * with the socket's timeout afresh.
         */
        do
                n = seqpacket_recv(sock, buf, WG_RECORD_MAX, ret_fd ? &fd : NULL, 0);
        while (n == -EINTR);
        if (n == -EAGAIN)
                return -ETIMEDOUT;
        if (n < 0)
                return (int) n;
        if (n == 0)
                return -ECONNRESET;

        resp = wg__v1__response__unpack(NULL, (size_t) n, buf);
        if (!resp)
                return -EPROTO;

        if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR) {
                int e = resp->error && resp->error->has_errnum ? resp->error->errnum : 0;

                /* Only a plausible errno is passed on; anything else is the daemon's fault. */
                if (e <= 0 || e >= 4096)
                        return -EPROTO;
                /* A notice (id 0) answers too: the daemon turned the connection away. */
        } else if (!resp->has_id || resp->id != req->id || resp->result_case == WG__V1__RESPONSE__RESULT__NOT_SET)
                return -EPROTO;

        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        *ret = TAKE_PTR(resp);
        return 0;
}

/*
 * A connection for one request says so (Request.last): wgd closes it once it has answered, and
 * does not wake again for our close. Not for a Wait, nor a Join (whose connection is the
 * membership): the close would end them, and wgd refuses them so marked.
 */
static bool last_request(const Wg__V1__Request *req) {
        return req->op_case != WG__V1__REQUEST__OP_WAIT && req->op_case != WG__V1__REQUEST__OP_JOIN;
}

/*
 * Connect and make one request, packed before the connect: wgd wakes for the connection, and
 * the sooner the request follows it, the likelier it finds it at once.
 * On success *ret_sock (if not NULL) is the connection, for what outlives the request.
 */
static int connect_request(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd, int *ret_sock) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int sock = -EBADF;
        size_t len;
        int r;

        r = request_pack(req, !ret_sock && last_request(req), &buf, &len);
        if (r < 0)
                return r;
        sock = wg__connect();
        if (sock < 0)
                return sock;
        r = request_exchange(sock, req, buf, len, ret, ret_fd);
        if (r < 0)
                return r;
        if (ret_sock)
                *ret_sock = TAKE_FD(sock);
        return 0;
}

int wg__request(int sock, Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        assert(req);
        r = request_pack(req, /* last= */ false, &buf, &len);
        if (r < 0)
                return r;
        return request_exchange(sock, req, buf, len, ret, ret_fd);
}

int wg__call_full(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd) {
        return connect_request(req, ret, ret_fd, NULL);
}

int wg__call_keep(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd, int *ret_sock) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int sock = -EBADF, fd = -EBADF;
        int r;

        r = connect_request(req, &resp, &fd, ret_sock ? &sock : NULL);
        if (r < 0)
                return r;
        if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR)
                return -resp->error->errnum;

        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        if (ret_sock)
                *ret_sock = TAKE_FD(sock);
        *ret = TAKE_PTR(resp);
        return 0;
}

int wg__call(Wg__V1__Request *req, Wg__V1__Response **ret, int *ret_fd) {
        return wg__call_keep(req, ret, ret_fd, NULL);
}

_public_ int wg_open(const char *name, uint64_t flags, wg **ret) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int fd = -EBADF;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open open = WG__V1__OPEN__INIT;
        int r;

        assert_return(group_name_valid(name), -EINVAL);
        assert_return((flags & ~(WG_CREATE | WG_EXCL | WG_MODE_MASK)) == 0, -EINVAL);
        assert_return(!(flags & WG_EXCL) || (flags & WG_CREATE), -EINVAL);
        assert_return(ret, -EINVAL);

        open.name = (char *) name;
        open.has_create = open.create = !!(flags & WG_CREATE);
        open.has_exclusive = open.exclusive = !!(flags & WG_EXCL);
        if (flags & WG_MODE_MASK) {
                open.has_mode = true;
                open.mode = (uint32_t) (flags & WG_MODE_MASK);
        }
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &open;

        r = wg__call(&req, &resp, &fd);
        if (r < 0)
                return r;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP || fd < 0)
                return -EPROTO;

        return wg_from_fd(fd, ret);
}

_public_ int wg_unlink(const char *name) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Delete del = WG__V1__DELETE__INIT;
        int r;

        assert_return(group_name_valid(name), -EINVAL);

        del.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_DELETE;
        req.delete_ = &del;

        r = wg__call(&req, &resp, NULL);
        if (r < 0)
                return r;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_DELETED)
                return -EPROTO;
        return 0;
}

int wg__remote_add(wg *g, int64_t delta) {
        return wg__add_request(g->name, delta);
}

int wg__add_request(const char *name, int64_t delta) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Add add = WG__V1__ADD__INIT;
        int r;

        add.name = (char *) name;
        add.has_delta = true;
        add.delta = delta;
        req.op_case = WG__V1__REQUEST__OP_ADD;
        req.add = &add;

        r = wg__call(&req, &resp, NULL);
        if (r < 0)
                return r;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP)
                return -EPROTO;
        return 0;
}

int wg__join(const char *name, uint64_t flags, const char *description, wg **ret) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        _cleanup_close_ int sock = -EBADF, fd = -EBADF;
        _cleanup_(wg_unrefp) wg *g = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join join = WG__V1__JOIN__INIT;
        int r;

        assert_return(group_name_valid(name), -EINVAL);
        assert_return(flags == 0, -EINVAL);
        assert_return(ret, -EINVAL);

        join.name = (char *) name;
        join.description = (char *) description;
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &join;

        r = wg__call_keep(&req, &resp, &fd, &sock);
        if (r < 0)
                return r;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_JOINED || !resp->joined || !resp->joined->has_member_id ||
            fd < 0)
                return -EPROTO;

        r = wg_from_fd(fd, &g);
        if (r < 0)
                return r;
        g->member_name = strdup(name);
        if (!g->member_name)
                return -ENOMEM;
        g->member_id = resp->joined->member_id;
        /* The connection is the membership: it lives as long as the handle, or until wg_leave(). */
        g->member_sock = TAKE_FD(sock);

        *ret = TAKE_PTR(g);
        return 0;
}

_public_ int wg_join(const char *name, uint64_t flags, wg **ret) {
        return wg__join(name, flags, NULL, ret);
}

_public_ int wg_leave(wg *g, int status) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Leave leave = WG__V1__LEAVE__INIT;
        int r;

        assert_return(g, -EINVAL);
        assert_return(g->member_sock >= 0, -ENOTCONN);

        leave.name = g->member_name;
        leave.has_status = true;
        leave.status = status;
        leave.has_member_id = true;
        leave.member_id = g->member_id;
        req.op_case = WG__V1__REQUEST__OP_LEAVE;
        req.leave = &leave;

        r = wg__request(g->member_sock, &req, &resp, NULL);
        if (IN_SET_CONNECTION_LOST(r)) {
                /*
                 * wgd went away since we joined (a restart: it kept the membership, and the pidfd
                 * that proves it is ours). Say it again on a new connection.
                 */
                _cleanup_close_ int sock = wg__connect();

                if (sock < 0)
                        return sock;
                wg__response_freep(&resp);
                resp = NULL;
                r = wg__request(sock, &req, &resp, NULL);
        }
        if (r < 0)
                return r;
        if (resp->result_case == WG__V1__RESPONSE__RESULT_ERROR)
                return -resp->error->errnum;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP)
                return -EPROTO;

        g->member_sock = safe_close(g->member_sock);
        return 0;
}
