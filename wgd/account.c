/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Accounts live in a list: a machine has few users with something in wgd at once, and each
 * connection looks its account up once, at accept.
 */

#include <errno.h>
#include <stdlib.h>

#include "account.h"

Account *account_find(AccountTable *t, uid_t uid) {
        LIST_FOREACH (accounts, i, t->accounts)
                if (i->uid == uid)
                        return i;
        return NULL;
}

Account *account_get(AccountTable *t, uid_t uid) {
        Account *a = account_find(t, uid);

        if (a)
                return a;
        a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->table = t;
        a->uid = uid;
        LIST_PREPEND(accounts, t->accounts, a);
        return a;
}

void account_release(Account *a) {
        if (!a || a->n_connections > 0 || a->n_groups > 0 || a->n_creating > 0 || a->n_members > 0 ||
            a->queued_bytes > 0 || a->n_passes > 0)
                return;
        LIST_REMOVE(accounts, a->table->accounts, a);
        free(a);
}

int account_queue(Account *a, size_t bytes) {
        AccountTable *t = a->table;

        if (bytes > t->queued_bytes_per_uid_max - a->queued_bytes ||
            bytes > t->queued_bytes_max - t->queued_bytes)
                return -ENOBUFS;
        a->queued_bytes += bytes;
        t->queued_bytes += bytes;
        return 0;
}

void account_unqueue(Account *a, size_t bytes) {
        a->queued_bytes -= bytes;
        a->table->queued_bytes -= bytes;
}

void account_pass(Account *a) {
        a->n_passes++;
        a->table->n_passes++;
}

void account_unpass(Account *a, unsigned n) {
        a->n_passes -= n;
        a->table->n_passes -= n;
}
