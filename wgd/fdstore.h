/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * systemd's fdstore, where wgd parks what must survive its restart (segments, members' pidfds)
 * under names that carry their metadata. A leaf: it calls nothing of wgd. Without systemd
 * ($NOTIFY_SOCKET unset) every call does nothing and succeeds.
 */

#include <stdbool.h>

#include <systemd/sd-event.h>

/* Make the retry timer, now, so that a failed removal later needs nothing that could fail. */
int fdstore_setup(sd_event *event);
/* Try the removals still pending one last time, and free what setup made. */
void fdstore_teardown(void);

/*
 * Park @fd under @fdname; @poll: whether systemd should drop it when it polls readable (no for
 * a pidfd, which does when its process dies). 0, or -ENOMEM or -EIO: not parked, which is
 * logged at @log_level (LOG_WARNING; a caller that tries again and says so itself, less).
 */
int fdstore_push(const char *fdname, int fd, bool poll, int log_level);

/*
 * Take @fdname out of the store. A removal that fails is tried again at once and then on a timer
 * until it goes through: an entry left behind would come back after a restart (a member that
 * left, rejoined by nobody, whose death would do a second done).
 */
void fdstore_remove(const char *fdname);
