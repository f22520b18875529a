/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A connection: reading records, answering them, and a bounded output queue for a client that
 * is slow to read. It knows nothing of requests or groups: it hands each record to its owner
 * (ClientHandlers.record), and tells its owner when the connection is gone
 * (ClientHandlers.closed), who then undoes what it linked to the client and frees it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "account.h"
#include "list.h"
#include "peer.h"
#include "wg.h"
#include "wg.pb-c.h"

typedef struct Client Client;
typedef struct Outgoing Outgoing;
struct Wait;
struct Member;
struct ClusterOp;

typedef struct ClientHandlers {
        /*
         * One record arrived. @error is 0, or what was wrong with it: -EMSGSIZE (larger than a
         * record may be; @buf is NULL) or -EBADMSG (it carried file descriptors, which were
         * closed; @buf holds what came with them).
         */
        void (*record)(Client *c, const uint8_t *buf, size_t len, int error);
        /* The connection is gone (end of file, an error, client_kill()): undo and client_free(). */
        void (*closed)(Client *c);
} ClientHandlers;

struct Client {
        sd_event *event;
        int fd; /* -EBADF for a client without a connection (the fuzzer's) */
        sd_event_source *io;
        Peer peer;
        const ClientHandlers *handlers;
        void *userdata;   /* the owner's */
        Account *account; /* the owner's charge for this connection */

        /* Linked here by their own files (wait.c, member.c), which unlink them too. */
        struct Wait *waits;
        unsigned n_waits;
        struct Member *members;
        struct ClusterOp *cluster_ops; /* requests waiting for etcd (cluster-op.h) */
        unsigned n_cluster_ops;

        Outgoing *out_head, *out_tail;
        unsigned n_out;
        unsigned n_passes;      /* answers with a segment's fd not seen read: staged, queued, sent */
        unsigned n_passes_sent; /* of those, sent; linked in account->passers while not 0 */
        LIST_FIELDS(Client, passers);
        bool dead;    /* failed or misbehaved: shut down, closed at its next event */
        bool hung_up; /* end of file or Request.last: answered as far as the socket takes it, then closed */

        LIST_FIELDS(Client, clients); /* the owner's list */
};

/*
 * A client on connection @fd (or -EBADF: a client whose answers go nowhere, for the fuzzer). On
 * success the client owns @fd and @peer's groups (peer_move()); on failure the caller still does.
 */
int client_new(
        sd_event *event,
        int fd,
        Peer *peer,
        const ClientHandlers *handlers,
        void *userdata,
        Client **ret);

/* Free the connection. Nothing may be linked to it any more (waits, members). NULL-safe. */
Client *client_free(Client *c);
static inline void client_freep(Client **c) {
        client_free(*c);
}

/*
 * Send a response, with @segment's fd attached if it is not NULL. A response that cannot go out
 * now is queued (with a reference to @segment); a client whose queue is full, whose user's
 * share of queued bytes is used up, or whose socket failed, is killed. Never frees @c.
 */
void client_reply(Client *c, const Wg__V1__Response *resp, wg *segment);

/*
 * May @c be sent one more answer with a segment's fd (Open, Join)? 0, or -ETOOMANYREFS when its
 * uid, or everybody, has as many passed and unread as the limits allow. Ask before carrying out
 * the request, so that a refused one changes nothing. Answers that the peer has read since (its
 * socket's output queue is empty) are no longer counted.
 */
int client_may_pass(Client *c);

/*
 * Serve what the peer sent already, as if the connection had been found readable: a client
 * connects and sends its request at once, and by the time wgd has accepted, the request is
 * usually there, so this saves a wakeup. May end the connection (ClientHandlers.closed), so @c
 * may be gone when it returns.
 */
void client_serve_now(Client *c);

/*
 * The request just handled was @c's last (Request.last): nothing more is read from it, and once
 * this batch is answered it is closed, as after an end of file. Only from a ClientHandlers.record
 * callback, once the request is handled.
 */
void client_last_request(Client *c);

/*
 * The last answer @c waited for (cluster requests, which wait for etcd) went out: a client that
 * shut down its writing side meanwhile is closed now (ClientHandlers.closed), so @c may be gone.
 */
void client_pending_done(Client *c);

/*
 * A client that cannot be served any more. Not freed here, because callers may be in the
 * middle of lists that hold it: its socket is shut down, which wakes its io source, which tells
 * the owner (closed). A client without a connection is only marked dead.
 */
void client_kill(Client *c);
