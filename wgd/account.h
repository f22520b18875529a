/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Per-uid accounting: what each user holds in wgd (connections, groups, memberships, bytes of
 * answers queued for clients that do not read), so that one user's share is bounded and
 * counted in one place. An Account exists while something is charged to it. A leaf: it calls
 * nothing of wgd.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "list.h"

typedef struct AccountTable AccountTable;
struct Client;

typedef struct Account {
        AccountTable *table;
        uid_t uid;
        unsigned n_connections;
        unsigned n_groups;
        unsigned n_creating; /* Creates of cluster groups waiting for etcd: groups to come */
        unsigned n_members;
        size_t queued_bytes;    /* answers queued for this uid's connections */
        unsigned n_passes;      /* segment fds passed to this uid's connections, maybe unread */
        struct Client *passers; /* its connections with passes sent that may be unread (client.c) */
        LIST_FIELDS(struct Account, accounts);
} Account;

struct AccountTable {
        Account *accounts;
        unsigned n_members;              /* of everybody */
        size_t queued_bytes;             /* for everybody */
        size_t queued_bytes_max;         /* in all */
        size_t queued_bytes_per_uid_max; /* for one uid */
        unsigned n_passes;               /* of everybody */
        unsigned passes_max;             /* in all */
        unsigned passes_per_uid_max;     /* for one uid */
};

/* The account of @uid, made empty if there is none; NULL: out of memory. */
Account *account_get(AccountTable *t, uid_t uid);

/* Look, without making one. */
Account *account_find(AccountTable *t, uid_t uid);

/*
 * Charge @bytes of queued answers to @a. -ENOBUFS, and nothing charged, if that would take the
 * uid past its share or everybody past the total.
 */
int account_queue(Account *a, size_t bytes);
void account_unqueue(Account *a, size_t bytes);

/*
 * Passes: answers that carry a segment's fd, from the moment they are made until the peer is
 * seen to have read them. The caller checks the limits first (client_may_pass()); charging
 * cannot fail.
 */
void account_pass(Account *a);
void account_unpass(Account *a, unsigned n);

/* Free @a if nothing is charged to it any more (after each decrement). NULL-safe. */
void account_release(Account *a);
static inline void account_releasep(Account **a) {
        account_release(*a);
}
