/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One connection. Answers that cannot go out at once are queued, and charged to the uid's
 * account: a client whose queue holds OUT_MAX answers, or whose uid holds its share of queued
 * bytes (or everybody the total), is dropped, so that no user can make wgd hold an unbounded
 * amount of memory. A queued answer that passes a segment holds a reference to the segment's
 * mapping, not a descriptor: the fd is attached when the answer goes out, so answers nobody reads
 * cannot fill wgd's descriptor table.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "macro.h"
#include "seqpacket.h"

#define OUT_MAX 256
/* Records handled per wakeup, so that one busy client cannot starve the others. */
#define BATCH_MAX 32

struct Outgoing {
        size_t len;
        wg *segment; /* its fd goes with the answer */
        LIST_FIELDS(Outgoing, queue);
        uint8_t data[];
};

static void out_push(Client *c, Outgoing *o) {
        o->queue_next = NULL;
        o->queue_prev = c->out_tail;
        if (c->out_tail)
                c->out_tail->queue_next = o;
        else
                c->out_head = o;
        c->out_tail = o;
        c->n_out++;
}

static void out_pop(Client *c) {
        Outgoing *o = c->out_head;

        c->out_head = o->queue_next;
        if (c->out_head)
                c->out_head->queue_prev = NULL;
        else
                c->out_tail = NULL;
        c->n_out--;
        account_unqueue(c->account, sizeof(*o) + o->len);
        wg_unref(o->segment);
        free(o);
}

/* Send what is queued; 0 when empty, -EAGAIN when the socket is full, or another -errno. */
static int out_flush(Client *c) {
        while (c->out_head) {
                Outgoing *o = c->out_head;
                int r = seqpacket_send(
                        c->fd, o->data, o->len, o->segment ? wg_fd(o->segment) : -EBADF, MSG_DONTWAIT);

                if (r < 0)
                        return r;
                out_pop(c);
        }
        return 0;
}

static int update_events(Client *c) {
        return sd_event_source_set_io_events(c->io, EPOLLIN | (c->out_head ? EPOLLOUT : 0));
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

int client_new(
        sd_event *event,
        int fd,
        const Peer *peer,
        const ClientHandlers *handlers,
        void *userdata,
        Client **ret) {
        _cleanup_(client_freep) Client *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Client) {
                .event = event,
                .fd = -EBADF,
                .handlers = handlers,
                .userdata = userdata,
        };
        r = peer_copy(&c->peer, peer);
        if (r < 0)
                return r;
        if (fd >= 0) {
                r = sd_event_add_io(event, &c->io, fd, EPOLLIN, on_io, c);
                if (r < 0)
                        return r;
                c->fd = fd;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

Client *client_free(Client *c) {
        if (!c)
                return NULL;

        assert(!c->waits && !c->members);
        while (c->out_head)
                out_pop(c);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        peer_done(&c->peer);
        free(c);
        return NULL;
}

void client_kill(Client *c) {
        if (c->dead)
                return;
        c->dead = true;
        if (c->fd >= 0) {
                (void) shutdown(c->fd, SHUT_RDWR);
                (void) sd_event_source_set_io_events(c->io, EPOLLIN);
        }
}

/* Pack @resp into @buf: an answer too large for a record becomes an error that says so. */
static size_t pack(const Wg__V1__Response *resp, uint8_t buf[static WG_RECORD_MAX]) {
        Wg__V1__Response big = WG__V1__RESPONSE__INIT;
        Wg__V1__Error err = WG__V1__ERROR__INIT;
        size_t len = wg__v1__response__get_packed_size(resp);

        if (len <= WG_RECORD_MAX)
                return wg__v1__response__pack(resp, buf);

        log_error(
                "An answer of %zu bytes does not fit a record of %d: answering an error instead.",
                len,
                WG_RECORD_MAX);
        err.has_errnum = true;
        err.errnum = EMSGSIZE;
        err.message = (char *) "The answer would be larger than a record may be.";
        big.has_id = resp->has_id;
        big.id = resp->id;
        big.result_case = WG__V1__RESPONSE__RESULT_ERROR;
        big.error = &err;
        return wg__v1__response__pack(&big, buf);
}

void client_reply(Client *c, const Wg__V1__Response *resp, wg *segment) {
        uint8_t buf[WG_RECORD_MAX];
        Outgoing *o;
        size_t len;
        int r;

        if (c->fd < 0 || c->dead)
                return; /* nobody to answer: the fuzzer's client, or one on its way out */

        len = pack(resp, buf);

        if (!c->out_head) {
                r = seqpacket_send(c->fd, buf, len, segment ? wg_fd(segment) : -EBADF, MSG_DONTWAIT);
                if (r >= 0)
                        return;
                if (r != -EAGAIN) {
                        log_debug_errno(r, "Dropping client (pid %d): %m", (int) c->peer.pid);
                        client_kill(c);
                        return;
                }
        }

        if (c->n_out >= OUT_MAX) {
                log_warning(
                        "Dropping client (pid %d, uid %u): it does not read its responses.",
                        (int) c->peer.pid,
                        (unsigned) c->peer.uid);
                client_kill(c);
                return;
        }

        if (account_queue(c->account, sizeof(*o) + len) < 0) {
                log_warning(
                        "Dropping client (pid %d, uid %u): its user has %zu bytes of answers queued, its "
                        "share.",
                        (int) c->peer.pid,
                        (unsigned) c->peer.uid,
                        c->account->queued_bytes);
                client_kill(c);
                return;
        }
        o = malloc(sizeof(*o) + len);
        if (!o) {
                account_unqueue(c->account, sizeof(*o) + len);
                client_kill(c);
                return;
        }
        o->len = len;
        memcpy(o->data, buf, len);
        o->segment = segment ? wg_ref(segment) : NULL;
        out_push(c, o);
        if (update_events(c) < 0)
                client_kill(c);
}

static void on_readable(Client *c) {
        uint8_t buf[WG_RECORD_MAX];

        for (unsigned i = 0; i < BATCH_MAX && !c->dead; i++) {
                bool had_fds = false;
                ssize_t n = seqpacket_recv_refusing_fds(c->fd, buf, sizeof(buf), &had_fds, MSG_DONTWAIT);

                if (n == -EAGAIN)
                        return;
                if (n >= 0 && had_fds)
                        /* Requests never carry fds (all closed now): the owner says so, by id. */
                        c->handlers->record(c, buf, (size_t) n, -EBADMSG);
                else if (n == -EMSGSIZE)
                        c->handlers->record(c, NULL, 0, (int) n);
                else if (n <= 0)
                        /* End of file (an empty record reads the same), or the connection broke. */
                        client_kill(c);
                else
                        c->handlers->record(c, buf, (size_t) n, 0);
        }
}

/*
 * Never an error back to sd-event: that would disable this source and leave the connection
 * unserved for good. Whatever goes wrong ends this connection alone.
 */
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;

        if (!c->dead && (revents & EPOLLOUT)) {
                int r = out_flush(c);

                if ((r < 0 && r != -EAGAIN) || update_events(c) < 0)
                        client_kill(c);
        }
        if (!c->dead && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(c);
        if (c->dead)
                c->handlers->closed(c);
        return 0;
}
