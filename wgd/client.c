/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One connection: reading records, answering them, and a bounded output queue for a client that
 * is slow to read. A client that lets the queue fill up is dropped, so that no client can make
 * wgd hold an unbounded amount of memory.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "seqpacket.h"
#include "wgd.h"

#define OUT_MAX 256
/* Records handled per wakeup, so that one busy client cannot starve the others. */
#define BATCH_MAX 32

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
        safe_close(o->fd);
        free(o);
}

/* Send what is queued; 0 when empty, -EAGAIN when the socket is full, or another -errno. */
static int out_flush(Client *c) {
        while (c->out_head) {
                Outgoing *o = c->out_head;
                int r = seqpacket_send(c->fd, o->data, o->len, o->fd, MSG_DONTWAIT);

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

int client_new(Server *s, int fd, const Peer *peer, Client **ret) {
        Client *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Client) {
                .server = s,
                .fd = -EBADF,
                .peer = *peer,
        };
        c->peer.groups = NULL;
        if (peer->n_groups > 0) {
                c->peer.groups = malloc(peer->n_groups * sizeof(gid_t));
                if (!c->peer.groups) {
                        free(c);
                        return -ENOMEM;
                }
                memcpy(c->peer.groups, peer->groups, peer->n_groups * sizeof(gid_t));
        }
        LIST_PREPEND(clients, s->clients, c);
        s->n_clients++;

        c->account = server_account(s, peer->uid);
        if (!c->account) {
                client_free(c);
                return -ENOMEM;
        }
        c->account->n_connections++;

        if (fd >= 0) {
                r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN, on_io, c);
                if (r < 0) {
                        client_free(c);
                        return r;
                }
                c->fd = fd;
        }

        server_update_idle(s);
        *ret = c;
        return 0;
}

Client *client_free(Client *c) {
        Server *s;

        if (!c)
                return NULL;
        s = c->server;

        LIST_FOREACH(by_client, w, c->waits)
                wait_free(w);
        /*
         * The connection that held a membership is gone, without a Leave: the member died (or
         * let go of it), so it is abandoned. Unless wgd itself is stopping: then the member
         * lives on in the fdstore, for the next wgd.
         */
        LIST_FOREACH(by_client, m, c->members) {
                if (s->stopping) {
                        LIST_REMOVE(by_client, c->members, m);
                        m->client = NULL;
                } else {
                        log_info("Member %d of %s went away without leaving.", (int) m->pid, m->group->name);
                        member_end(m, WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED, 0);
                }
        }
        while (c->out_head)
                out_pop(c);

        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        LIST_REMOVE(clients, s->clients, c);
        s->n_clients--;
        if (c->account) {
                c->account->n_connections--;
                server_account_release(s, c->account);
        }
        free(c->peer.groups);
        free(c);

        server_rearm_watch(s);
        server_update_idle(s);
        return NULL;
}

/*
 * A client that cannot be served any more. It is not freed here, because callers may be in the
 * middle of lists that hold it (a group's Waits): its socket is shut down, which wakes its io
 * source, which frees it.
 */
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
 * Send a response, with @fd attached if >= 0 (the caller keeps its own @fd; a queued copy is a
 * dup). A response that cannot go out now is queued; a client whose queue is full, or whose
 * socket failed, is killed.
 */
void client_reply(Client *c, const Wg__V1__Response *resp, int fd) {
        uint8_t buf[WG_RECORD_MAX];
        Outgoing *o;
        size_t len;
        int r;

        if (c->fd < 0 || c->dead)
                return; /* nobody to answer: the fuzzer's client, or one on its way out */

        len = wg__v1__response__get_packed_size(resp);
        assert(len <= sizeof(buf)); /* dispatch keeps every response below the cap */
        wg__v1__response__pack(resp, buf);

        if (!c->out_head) {
                r = seqpacket_send(c->fd, buf, len, fd, MSG_DONTWAIT);
                if (r >= 0)
                        return;
                if (r != -EAGAIN) {
                        log_debug_errno(r, "Dropping client (pid %d): %m", (int) c->peer.pid);
                        client_kill(c);
                        return;
                }
        }

        if (c->n_out >= OUT_MAX) {
                log_warning("Dropping client (pid %d, uid %u): it does not read its responses.", (int) c->peer.pid,
                            (unsigned) c->peer.uid);
                client_kill(c);
                return;
        }

        o = malloc(sizeof(*o) + len);
        if (!o) {
                client_kill(c);
                return;
        }
        o->len = len;
        memcpy(o->data, buf, len);
        o->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -EBADF;
        if (fd >= 0 && o->fd < 0) {
                free(o);
                client_kill(c);
                return;
        }
        out_push(c, o);
        if (update_events(c) < 0)
                client_kill(c);
}

void client_reply_error(Client *c, uint64_t id, int error, const char *format, ...) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT;
        Wg__V1__Error err = WG__V1__ERROR__INIT;
        char message[256];
        va_list ap;

        assert(error < 0);

        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);

        err.has_errnum = true;
        err.errnum = -error;
        err.message = message;
        resp.has_id = true;
        resp.id = id;
        resp.result_case = WG__V1__RESPONSE__RESULT_ERROR;
        resp.error = &err;
        client_reply(c, &resp, -EBADF);
}

static int on_readable(Client *c) {
        uint8_t buf[WG_RECORD_MAX];

        for (unsigned i = 0; i < BATCH_MAX && !c->dead; i++) {
                ssize_t n = seqpacket_recv(c->fd, buf, sizeof(buf), NULL, MSG_DONTWAIT);

                if (n == -EAGAIN)
                        return 0;
                if (n == -EMSGSIZE)
                        client_reply_error(c, 0, -EBADMSG, "Record larger than %d bytes.", WG_RECORD_MAX);
                else if (n == -EBADMSG)
                        client_reply_error(c, 0, -EBADMSG, "Requests must not carry file descriptors.");
                else if (n <= 0)
                        /* End of file (an empty record reads the same), or the connection broke. */
                        client_kill(c);
                else
                        dispatch_record(c, buf, (size_t) n);
        }
        if (c->dead)
                client_free(c);
        return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;

        if (c->dead) {
                client_free(c);
                return 0;
        }

        if (revents & EPOLLOUT) {
                int r = out_flush(c);

                if ((r < 0 && r != -EAGAIN) || update_events(c) < 0) {
                        client_free(c);
                        return 0;
                }
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                return on_readable(c);
        return 0;
}
