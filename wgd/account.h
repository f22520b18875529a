/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Per-uid accounting: what each user holds in wgd (connections, groups, memberships), so that
 * limits are checked in one place. An Account exists while something is charged to it. A leaf:
 * it calls nothing of wgd.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "list.h"

typedef struct AccountTable AccountTable;

typedef struct Account {
        AccountTable *table;
        uid_t uid;
        unsigned n_connections;
        unsigned n_groups;
        unsigned n_members;
        LIST_FIELDS(struct Account, accounts);
} Account;

struct AccountTable {
        Account *accounts;
};

/* The account of @uid, made empty if there is none; NULL: out of memory. */
Account *account_get(AccountTable *t, uid_t uid);

/* Look, without making one. */
Account *account_find(AccountTable *t, uid_t uid);

/* Free @a if nothing is charged to it any more (after each decrement). NULL-safe. */
void account_release(Account *a);
