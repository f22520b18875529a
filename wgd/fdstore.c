/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "fdstore.h"
#include "list.h"
#include "log.h"
#include "macro.h"

#define RETRY_USEC (100 * 1000)

typedef struct Removal {
        LIST_FIELDS(struct Removal, removals);
        char fdname[];
} Removal;

static sd_event_source *retry_timer;
static Removal *pending;

static int try_remove(const char *fdname) {
        return sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", fdname);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        LIST_FOREACH (removals, i, pending)
                if (try_remove(i->fdname) >= 0) {
                        LIST_REMOVE(removals, pending, i);
                        free(i);
                }
        if (pending)
                (void) sd_event_source_set_time_relative(s, RETRY_USEC);
        else
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

int fdstore_setup(sd_event *event) {
        int r;

        r = sd_event_add_time_relative(
                event, &retry_timer, CLOCK_MONOTONIC, RETRY_USEC, RETRY_USEC / 10, on_retry, NULL);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(retry_timer, SD_EVENT_OFF);
}

void fdstore_teardown(void) {
        while (pending) {
                Removal *i = pending;

                if (try_remove(i->fdname) < 0)
                        log_error(
                                "Failed to remove %s from the fdstore: it may come back after a restart.",
                                i->fdname);
                LIST_REMOVE(removals, pending, i);
                free(i);
        }
        retry_timer = sd_event_source_disable_unref(retry_timer);
}

int fdstore_push(const char *fdname, int fd, bool poll, int log_level) {
        char msg[320];
        int r;

        if ((size_t) snprintf(
                    msg, sizeof(msg), "FDSTORE=1\n%sFDNAME=%s", poll ? "" : "FDPOLL=0\n", fdname) >=
            sizeof(msg))
                return -EIO;
        r = sd_pid_notify_with_fds(0, /* unset_environment= */ 0, msg, &fd, 1);
        if (r < 0) {
                log_full_errno(log_level, r, "Failed to park %s in the fdstore: %m", fdname);
                /* As wg.proto says: the notify socket's own errors mean nothing to a client. */
                return r == -ENOMEM ? r : -EIO;
        }
        return 0;
}

void fdstore_remove(const char *fdname) {
        Removal *i;
        int r;

        if (try_remove(fdname) >= 0)
                return;
        r = try_remove(fdname);
        if (r >= 0)
                return;

        log_warning_errno(r, "Failed to remove %s from the fdstore, trying again: %m", fdname);
        i = malloc(sizeof(*i) + strlen(fdname) + 1);
        if (!i) {
                log_error(
                        "Failed to remember to remove %s from the fdstore: it may come back after a "
                        "restart.",
                        fdname);
                return;
        }
        *i = (Removal) {};
        strcpy(i->fdname, fdname);
        LIST_PREPEND(removals, pending, i);
        if (retry_timer && sd_event_source_set_time_relative(retry_timer, RETRY_USEC) >= 0)
                (void) sd_event_source_set_enabled(retry_timer, SD_EVENT_ONESHOT);
}
