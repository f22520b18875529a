/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One connection. Answers that cannot go out at once are queued, and charged to the uid's
 * account: a client whose queue holds OUT_MAX answers, or whose uid holds its share of queued
 * bytes (or everybody the total), is dropped, so that no user can make wgd hold an unbounded
 * amount of memory. A queued answer that passes a segment holds a reference to the segment's
 * mapping, not a descriptor: the fd is attached when the answer goes out.
 *
 * Passes. An answer with a segment's fd pins the segment (its page, and in wgd a mapping and an
 * fd while queued) until the peer reads it, whether it waits in wgd's queue or in the socket:
 * fds in flight in unix sockets are charged by the kernel to the sender, wgd, and past
 * RLIMIT_NOFILE of them every send of an fd fails (ETOOMANYREFS), the fdstore's included. Even a
 * deleted group's segment stays pinned by an answer nobody reads. So each such answer counts
 * against its uid, and against everybody, from the moment it is made until the peer is seen to
 * have read it: its socket's output queue (SIOCOUTQ) is empty, which for a unix socket means the
 * peer has consumed every record sent. That is looked at only when a limit is near: when this
 * client asks for one more, and, for the connections of its uid (or of everybody), when the
 * limit is reached.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "client.h"
#include "log.h"
#include "macro.h"
#include "seqpacket.h"

#define OUT_MAX 256
/*
 * Records handled per wakeup, so that one busy client cannot starve the others; they are read
 * RECV_MAX at a time, and their answers go out together.
 */
#define BATCH_MAX 32
#define RECV_MAX 16

struct Outgoing {
        size_t len;
        wg *segment; /* its fd goes with the answer */
        LIST_FIELDS(Outgoing, queue);
        uint8_t data[];
};

/*
 * The answers to the batch of records being handled, packed where they will be sent from, and
 * sent with one sendmmsg() when the batch ends (or this fills up): a client that pipelines costs
 * a system call per batch, not per request. One batch at a time in the whole process: wgd
 * handles one client's records at once, and never starts another's from inside.
 */
static struct {
        Client *client; /* whose batch this is; NULL between batches */
        SeqpacketRecord records[SEQPACKET_MANY_MAX];
        wg *segments[SEQPACKET_MANY_MAX]; /* referenced until sent or queued */
        size_t n, used;
        uint8_t data[WG_RECORD_MAX]; /* any one answer fits an empty stage */
} stage;

/* Where a batch of records is read into. Static: 1 MiB, but only the pages records touch. */
static uint8_t in_data[RECV_MAX][WG_RECORD_MAX];

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

/* @n answers with a segment's fd left: they are counted until the peer is seen to read them. */
static void passes_sent(Client *c, unsigned n) {
        if (n == 0)
                return;
        if (c->n_passes_sent == 0)
                LIST_PREPEND(passers, c->account->passers, c);
        c->n_passes_sent += n;
}

/* If the peer has read everything sent to it, the passes it was sent are no longer counted. */
static void passes_reclaim(Client *c) {
        int outq;

        if (c->n_passes_sent == 0 || ioctl(c->fd, SIOCOUTQ, &outq) < 0 || outq > 0)
                return;
        account_unpass(c->account, c->n_passes_sent);
        c->n_passes -= c->n_passes_sent;
        c->n_passes_sent = 0;
        LIST_REMOVE(passers, c->account->passers, c);
}

static void passes_reclaim_account(Account *a) {
        LIST_FOREACH (passers, i, a->passers)
                passes_reclaim(i);
}

int client_may_pass(Client *c) {
        Account *a = c->account;
        AccountTable *t = a->table;

        if (c->fd < 0)
                return 0; /* its answers go nowhere */

        passes_reclaim(c);
        if (a->n_passes >= t->passes_per_uid_max)
                passes_reclaim_account(a);
        if (a->n_passes >= t->passes_per_uid_max)
                return -ETOOMANYREFS;
        if (t->n_passes >= t->passes_max)
                LIST_FOREACH (accounts, i, t->accounts)
                        passes_reclaim_account(i);
        if (t->n_passes >= t->passes_max)
                return -ETOOMANYREFS;
        return 0;
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

/* Send what is queued, many at a time; 0 when empty, -EAGAIN when the socket is full, or another -errno. */
static int out_flush(Client *c) {
        while (c->out_head) {
                SeqpacketRecord records[SEQPACKET_MANY_MAX];
                size_t n = 0;
                int r;

                for (Outgoing *o = c->out_head; o && n < ELEMENTSOF(records); o = o->queue_next)
                        records[n++] = (SeqpacketRecord) {
                                .buf = o->data,
                                .len = o->len,
                                .fd = o->segment ? wg_fd(o->segment) : -EBADF,
                        };
                r = seqpacket_send_many(c->fd, records, n, MSG_DONTWAIT);
                if (r < 0)
                        return r;
                while (r-- > 0) {
                        passes_sent(c, c->out_head->segment ? 1 : 0);
                        out_pop(c);
                }
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
        Peer *peer,
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
        if (fd >= 0) {
                r = sd_event_add_io(event, &c->io, fd, EPOLLIN, on_io, c);
                if (r < 0)
                        return r;
                c->fd = fd;
        }
        peer_move(&c->peer, peer);

        *ret = TAKE_PTR(c);
        return 0;
}

Client *client_free(Client *c) {
        if (!c)
                return NULL;

        assert(!c->waits && !c->members);
        while (c->out_head)
                out_pop(c);
        if (c->account) {
                account_unpass(c->account, c->n_passes);
                LIST_REMOVE(passers, c->account->passers, c);
        }
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

/*
 * What goes out for @resp, and its packed size: @resp itself, or, when it is too large for a
 * record, an error that says so, built in @big and @err.
 */
static const Wg__V1__Response *
fit(const Wg__V1__Response *resp, Wg__V1__Response *big, Wg__V1__Error *err, size_t *ret_len) {
        size_t len = wg__v1__response__get_packed_size(resp);

        if (len <= WG_RECORD_MAX) {
                *ret_len = len;
                return resp;
        }

        log_error(
                "An answer of %zu bytes does not fit a record of %d: answering an error instead.",
                len,
                WG_RECORD_MAX);
        *err = (Wg__V1__Error) WG__V1__ERROR__INIT;
        err->has_errnum = true;
        err->errnum = EMSGSIZE;
        err->message = (char *) "The answer would be larger than a record may be.";
        *big = (Wg__V1__Response) WG__V1__RESPONSE__INIT;
        big->has_id = resp->has_id;
        big->id = resp->id;
        big->result_case = WG__V1__RESPONSE__RESULT_ERROR;
        big->error = err;
        *ret_len = wg__v1__response__get_packed_size(big);
        return big;
}

/* Queue an answer that cannot go out now, or kill a client that has too many queued. */
static void enqueue(Client *c, const uint8_t *buf, size_t len, wg *segment) {
        Outgoing *o;

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

/*
 * Send the staged answers of the batch; what the socket does not take now is queued, in order.
 * A client that failed, or died during the batch, gets nothing more.
 */
static void stage_flush(void) {
        Client *c = stage.client;
        size_t sent = 0;

        while (sent < stage.n && !c->dead && !c->out_head) {
                int r = seqpacket_send_many(c->fd, stage.records + sent, stage.n - sent, MSG_DONTWAIT);

                if (r == -EAGAIN)
                        break;
                if (r < 0) {
                        log_debug_errno(r, "Dropping client (pid %d): %m", (int) c->peer.pid);
                        client_kill(c);
                        break;
                }
                for (size_t i = sent; i < sent + (size_t) r; i++)
                        passes_sent(c, stage.segments[i] ? 1 : 0);
                sent += (size_t) r;
        }
        for (size_t i = sent; i < stage.n && !c->dead; i++)
                enqueue(c, stage.records[i].buf, stage.records[i].len, stage.segments[i]);

        for (size_t i = 0; i < stage.n; i++)
                wg_unref(stage.segments[i]);
        stage.n = stage.used = 0;
}

void client_reply(Client *c, const Wg__V1__Response *resp, wg *segment) {
        Wg__V1__Response big;
        Wg__V1__Error err;
        uint8_t buf[WG_RECORD_MAX];
        size_t len;
        int r;

        if (c->fd < 0 || c->dead)
                return; /* nobody to answer: the fuzzer's client, or one on its way out */

        resp = fit(resp, &big, &err, &len);
        if (segment) {
                /* Charged until the peer is seen to read it (client_may_pass() asked first). */
                c->n_passes++;
                account_pass(c->account);
        }

        if (stage.client == c) {
                if (stage.n == ELEMENTSOF(stage.records) || len > sizeof(stage.data) - stage.used)
                        stage_flush();
                if (c->dead)
                        return;
                if (!c->out_head) {
                        uint8_t *p = stage.data + stage.used;

                        wg__v1__response__pack(resp, p);
                        stage.records[stage.n] = (SeqpacketRecord) {
                                .buf = p,
                                .len = len,
                                .fd = segment ? wg_fd(segment) : -EBADF,
                        };
                        stage.segments[stage.n++] = segment ? wg_ref(segment) : NULL;
                        stage.used += len;
                        return;
                }
        }

        wg__v1__response__pack(resp, buf);

        if (!c->out_head) {
                r = seqpacket_send(c->fd, buf, len, segment ? wg_fd(segment) : -EBADF, MSG_DONTWAIT);
                if (r >= 0) {
                        passes_sent(c, segment ? 1 : 0);
                        return;
                }
                if (r != -EAGAIN) {
                        log_debug_errno(r, "Dropping client (pid %d): %m", (int) c->peer.pid);
                        client_kill(c);
                        return;
                }
        }
        enqueue(c, buf, len, segment);
}

/* One record of the batch, to the owner; a record that says the connection ended, to client_kill(). */
static void handle_record(Client *c, const SeqpacketRecord *rec) {
        if (rec->truncated)
                c->handlers->record(c, NULL, 0, -EMSGSIZE);
        else if (rec->had_fds)
                /* Requests never carry fds (all closed now): the owner says so, by id. */
                c->handlers->record(c, rec->buf, rec->len, -EBADMSG);
        else if (rec->len == 0)
                /*
                 * End of file (an empty record reads the same): the client sent its last request,
                 * and may still read. Its answers go out with the batch's, then it is closed.
                 */
                c->hung_up = true;
        else
                c->handlers->record(c, rec->buf, rec->len, 0);
}

static void on_readable(Client *c) {
        SeqpacketRecord in[RECV_MAX];
        unsigned handled = 0;

        stage.client = c;
        while (handled < BATCH_MAX && !c->dead && !c->hung_up) {
                int n;

                for (size_t i = 0; i < RECV_MAX; i++)
                        in[i] = (SeqpacketRecord) { .buf = in_data[i], .size = WG_RECORD_MAX };
                n = seqpacket_recv_many_refusing_fds(c->fd, in, RECV_MAX, MSG_DONTWAIT);
                if (n == -EAGAIN)
                        break;
                if (n < 0) {
                        client_kill(c); /* the connection broke */
                        break;
                }
                for (int i = 0; i < n && !c->dead && !c->hung_up; i++)
                        handle_record(c, &in[i]);
                handled += (unsigned) n;
                if (n < RECV_MAX)
                        break; /* the socket is empty: no read that only says EAGAIN */
        }
        stage_flush();
        stage.client = NULL;
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
        if (c->hung_up && (revents & EPOLLHUP))
                client_kill(c); /* gone for good: its pending answers have nobody to go to */
        if (c->hung_up && !c->dead && c->n_cluster_ops > 0) {
                /*
                 * Answers still to come (cluster requests wait for etcd): closed once they are
                 * out (client_pending_done()). Until then only a full socket, or the peer's
                 * close, is of interest: its end of file would wake us for nothing.
                 */
                if (sd_event_source_set_io_events(c->io, c->out_head ? EPOLLOUT : 0) < 0)
                        client_kill(c);
                else
                        return 0;
        }
        if (c->hung_up && !c->dead && c->out_head)
                (void) out_flush(c); /* what the socket takes now; the rest goes with the client */
        if (c->dead || c->hung_up)
                c->handlers->closed(c);
        return 0;
}

void client_last_request(Client *c) {
        /* on_readable() reads no further, and on_io() closes it after the batch's answers. */
        c->hung_up = true;
}

void client_pending_done(Client *c) {
        if (!c->hung_up || c->n_cluster_ops > 0)
                return;
        if (!c->dead && c->out_head)
                (void) out_flush(c);
        c->handlers->closed(c);
}

void client_serve_now(Client *c) {
        (void) on_io(c->io, c->fd, EPOLLIN, c);
}
