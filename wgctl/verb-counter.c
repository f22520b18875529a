/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * add, done and wait: one request to wgd for the segment, then atomics and the futex on it,
 * exactly as a program linking libwg does.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "macro.h"
#include "segment.h"
#include "time-util.h"
#include "wg-private.h"
#include "wgctl.h"

enum {
        OPT_HELP = 'h',
        OPT_TIMEOUT = 0x100,
        OPT_PROGRESS,
        OPT_QUIET,
};

/* "NAME [N]" of add and done. Returns 0, -1 after --help, or an exit code. */
static int parse_name_count(int argc, char **argv, const char *verb_name, const char **name, int64_t *n) {
        static const struct option options[] = {
                { "help", no_argument, NULL, OPT_HELP },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_HELP:
                        verb_help(verb_name, NULL);
                        return -1;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc)
                return usage_error("the group's NAME is missing.");
        if (optind + 2 < argc)
                return usage_error("unexpected argument '%s'.", argv[optind + 2]);
        r = parse_name(argv[optind], name);
        if (r != 0)
                return r;
        *n = 1;
        if (optind + 1 < argc)
                return parse_count(argv[optind + 1], n);
        return 0;
}

static int add(int argc, char **argv, const char *verb_name, int sign) {
        _cleanup_(wg_unrefp) wg *g = NULL;
        const char *name;
        uint64_t count = 0;
        int64_t n;
        int r;

        r = parse_name_count(argc, argv, verb_name, &name, &n);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        r = daemon_open(name, false, &g, NULL);
        if (r != 0)
                return r;

        r = wg_add(g, sign * n);
        if (r == -ERANGE) {
                (void) wg_get_count(g, &count);
                return failure(r, "'%s' is at %" PRIu64 ": %" PRId64 " done would take it below zero.", name, count,
                               n);
        }
        if (r == -EOVERFLOW)
                return failure(r, "'%s' cannot count past %lld.", name, (long long) WG_COUNT_MAX);
        if (r == -EIDRM)
                return failure(r, "'%s' was deleted.", name);
        if (r < 0)
                return failure(r, "'%s': %s", name, strerror(-r));
        return EXIT_OK;
}

int verb_add(int argc, char **argv) {
        return add(argc, argv, "add", 1);
}

int verb_done(int argc, char **argv) {
        return add(argc, argv, "done", -1);
}

typedef struct Progress {
        bool tty;        /* redraw one line in place */
        bool lines;      /* --progress off a terminal: a line per change */
        uint64_t start;  /* CLOCK_MONOTONIC usec */
        uint64_t total;  /* the most outstanding work seen in this generation */
        uint64_t last_left;
        int width;
} Progress;

/*
 * One frame: done/total of the generation, how many of its members failed so far (wgd counts
 * them in the segment as they end, before their done), and the time since the wait began.
 */
static void progress_draw(Progress *p, wg *g, uint64_t generation, uint64_t left, bool final) {
        double elapsed = (double) (now_usec() - p->start) / 1e6;
        char failures[48] = "";
        struct wg_outcome o;
        uint64_t done;

        if (left > p->total)
                p->total = left;
        done = p->total - left;
        if (wg__outcome(g, generation, &o) >= 0 && o.failed + o.abandoned > 0)
                snprintf(failures, sizeof(failures), ", %u failed", o.failed + o.abandoned);

        if (p->tty) {
                int filled = p->total > 0 ? (int) (done * (uint64_t) p->width / p->total) : p->width;

                fprintf(stderr, "\r\033[K[");
                for (int i = 0; i < p->width; i++)
                        fputc(i < filled ? '#' : '.', stderr);
                fprintf(stderr, "] %" PRIu64 "/%" PRIu64 " done%s  %.1fs%s", done, p->total, failures, elapsed,
                        final ? "\n" : "");
        } else if (p->lines && (left != p->last_left || final))
                fprintf(stderr, "%" PRIu64 "/%" PRIu64 " done%s, %.1fs\n", done, p->total, failures, elapsed);
        p->last_left = left;
        fflush(stderr);
}

void report_failed_members(const char *name, const Wg__V1__GroupInfo *info, uint64_t generation) {
        for (size_t i = 0; i < info->n_members; i++) {
                const Wg__V1__Member *m = info->members[i];

                if (m->generation != generation)
                        continue;
                /*
                 * notice() escapes the line: the description is whatever the member said. A
                 * cluster group's member says on which node it was: its pid is that node's.
                 */
                if (m->state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED)
                        notice("'%s': member %u%s%s failed with status %d: %s",
                               name,
                               m->pid,
                               m->node ? " on " : "",
                               m->node ? m->node : "",
                               m->status,
                               m->description ? m->description : "?");
                else if (m->state == WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED)
                        notice("'%s': member %u%s%s died without leaving: %s",
                               name,
                               m->pid,
                               m->node ? " on " : "",
                               m->node ? m->node : "",
                               m->description ? m->description : "?");
        }
}

/* Tell the failures of @generation, from the counts in the segment and wgd's details. */
static int report_outcome(const char *name, uint64_t generation, uint64_t failed, uint64_t abandoned) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;

        m.name = (char *) name;
        m.has_generation = true;
        m.generation = generation;
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        if (daemon_call(&req, &resp, NULL) >= 0 && resp->result_case == WG__V1__RESPONSE__RESULT_GROUP)
                report_failed_members(name, resp->group, generation);

        notice("'%s': done, but %" PRIu64 " member%s failed and %" PRIu64 " died without leaving.", name, failed,
               failed == 1 ? "" : "s", abandoned);
        return EXIT_MEMBER_FAILED;
}

int wait_outcome(const char *name, wg *g, uint64_t generation) {
        struct wg_outcome o;

        if (wg__outcome(g, generation, &o) < 0 || o.failed + o.abandoned == 0)
                return EXIT_OK;
        return report_outcome(name, generation, o.failed, o.abandoned);
}

/* A broken group: a member died, and the group's policy stops everybody until a reset. */
static int report_broken(const char *name) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        if (daemon_call(&req, &resp, NULL) >= 0 && resp->result_case == WG__V1__RESPONSE__RESULT_GROUP)
                report_failed_members(name, resp->group, resp->group->generation);
        notice("'%s' is broken: a member died without leaving; 'wgctl reset %s' mends it.", name, name);
        return EXIT_MEMBER_FAILED;
}

/*
 * The fallback for a group we may read but not write: wait through wgd, in slices. A Wait cut
 * short by wgd's end is asked again, once: under systemd, the wgd after it has the group.
 */
static int wait_through_wgd(const char *name, uint64_t deadline) {
        uint64_t generation = 0;
        bool have_generation = false, retried = false;

        /* The wgd that answered daemon_open() knows the group: a new one of ours would not. */
        daemon_forbid_start();

        for (;;) {
                _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__Wait m = WG__V1__WAIT__INIT;
                uint64_t now = now_usec(), slice;
                int r;

                /* Each request must be answered within the client's receive timeout. */
                slice = deadline > now ? deadline - now : 0;
                if (slice > 20 * USEC_PER_SEC)
                        slice = 20 * USEC_PER_SEC;

                m.name = (char *) name;
                m.has_timeout_usec = true;
                m.timeout_usec = slice;
                m.has_generation = have_generation;
                m.generation = generation;
                req.op_case = WG__V1__REQUEST__OP_WAIT;
                req.wait = &m;

                r = daemon_call(&req, &resp, NULL);
                if ((r == -ECONNRESET || r == -EPIPE) && !retried) {
                        retried = true;
                        continue;
                }
                if (r == -ECONNRESET || r == -EPIPE || r == -ECONNREFUSED)
                        return daemon_died(name, r);
                if (r < 0)
                        return daemon_failure(r);
                retried = false;
                if (resp->result_case == WG__V1__RESPONSE__RESULT_GROUP) {
                        const Wg__V1__Outcome *o = resp->group->outcome;

                        if (!o || o->failed + o->abandoned == 0)
                                return EXIT_OK;
                        report_failed_members(name, resp->group, o->generation);
                        notice("'%s': done, but %u member%s failed and %u died without leaving.", name,
                               o->failed, o->failed == 1 ? "" : "s", o->abandoned);
                        return EXIT_MEMBER_FAILED;
                }
                if (resp->result_case != WG__V1__RESPONSE__RESULT_ERROR)
                        return failure(-EPROTO, "wgd answered something else than a group.");
                if (resp->error->errnum == EOWNERDEAD)
                        return report_broken(name);
                if (resp->error->errnum != ETIMEDOUT || now_usec() >= deadline)
                        return failure(-resp->error->errnum, "%s", response_message(resp));

                if (!have_generation) {
                        /* Pin the generation we were waiting for before the next slice. */
                        _cleanup_(wg__response_freep) Wg__V1__Response *st = NULL;
                        Wg__V1__Stat sm = WG__V1__STAT__INIT;

                        req = (Wg__V1__Request) WG__V1__REQUEST__INIT;
                        sm.name = (char *) name;
                        req.op_case = WG__V1__REQUEST__OP_STAT;
                        req.stat = &sm;
                        r = daemon_call(&req, &st, NULL);
                        if (r < 0 || st->result_case != WG__V1__RESPONSE__RESULT_GROUP)
                                continue;
                        if (st->group->count == 0)
                                return EXIT_OK;
                        generation = st->group->generation;
                        have_generation = true;
                }
        }
}

int verb_wait(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, OPT_HELP },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "progress", no_argument, NULL, OPT_PROGRESS },
                { "quiet", no_argument, NULL, OPT_QUIET },
                {},
        };
        _cleanup_(wg_unrefp) wg *g = NULL;
        _cleanup_close_ int sock = -EBADF;
        uint64_t timeout = UINT64_MAX, deadline, s, gen;
        bool progress = false, quiet = false;
        Progress p = { .width = 30 };
        const char *name;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_HELP:
                        verb_help("wait",
                                  "  --timeout DURATION   give up after 250ms, 30s, 5m, 1h ... (exit 124)\n"
                                  "  --progress           draw progress on stderr even if it is not a terminal\n"
                                  "  --quiet              never draw progress\n");
                        return EXIT_OK;
                case OPT_TIMEOUT:
                        r = parse_duration(optarg, &timeout);
                        if (r != 0)
                                return r;
                        break;
                case OPT_PROGRESS:
                        progress = true;
                        break;
                case OPT_QUIET:
                        quiet = true;
                        break;
                default:
                        return EXIT_USAGE;
                }
        if (progress && quiet)
                return usage_error("--progress and --quiet contradict each other.");
        if (optind >= argc)
                return usage_error("the group's NAME is missing.");
        if (optind + 1 < argc)
                return usage_error("unexpected argument '%s'.", argv[optind + 1]);
        r = parse_name(argv[optind], &name);
        if (r != 0)
                return r;

        p.start = now_usec();
        deadline = timeout == UINT64_MAX ? UINT64_MAX : deadline_after(timeout);

        r = daemon_open(name, true, &g, &sock);
        if (r == -EACCES)
                /* Readable but not writable (mode 0644, say): wgd waits for us. */
                return wait_through_wgd(name, deadline);
        if (r != 0)
                return r;
        /* The wgd that gave us the group is the one that counts: if it goes, do not start another. */
        daemon_forbid_start();

        p.tty = !quiet && isatty(STDERR_FILENO);
        p.lines = progress && !p.tty;

        r = wg__wait_begin(g, &gen);
        if (r == -EOWNERDEAD)
                return report_broken(name);
        if (r < 0)
                return failure(r, "'%s': %s", name, r == -EIDRM ? "it was deleted" : strerror(-r));
        if (r == 0)
                /* Nothing outstanding: how did the generation that ended last go? */
                return wait_outcome(name, g, gen);
        p.total = wg_state_count(wg__state(g));
        p.last_left = UINT64_MAX; /* so that --progress off a terminal starts with a line */

        /*
         * Learn if wgd goes for good while we sleep on the segment (watch.c). Without a thread
         * for it (the only failure), wait as before: only wgd's death would go unnoticed.
         */
        (void) watch_wgd(name, g, gen, TAKE_FD(sock), p.tty);

        for (;;) {
                bool drawing = p.tty || p.lines;
                uint64_t until = deadline;

                /* Drawing: wake five times a second to redraw; still one generation throughout. */
                if (drawing) {
                        uint64_t tick = now_usec() + 200 * 1000;

                        if (tick < until)
                                until = tick;
                        progress_draw(&p, g, gen, wg_state_count(wg__state(g)), false);
                }

                r = wg__wait_generation(g, gen, until);
                if (r == -EINTR || (r == -ETIMEDOUT && until < deadline))
                        continue;
                break;
        }

        /* The outcome is ours now: the watch must not end the process with another. */
        watch_end();

        if (r == 0) {
                if (p.tty || p.lines)
                        progress_draw(&p, g, gen, 0, true);
                return wait_outcome(name, g, gen);
        }
        if (p.tty || p.lines)
                fputc('\n', stderr);
        if (r == -ETIMEDOUT) {
                s = wg__state(g);
                if (wg_state_count(s) > p.total)
                        p.total = wg_state_count(s);
                return failure(r, "'%s': timed out, %" PRIu64 " of %" PRIu64 " still outstanding.", name,
                               wg_state_count(s), p.total);
        }
        if (r == -EOWNERDEAD)
                return report_broken(name);
        return failure(r, "'%s': %s", name, r == -EIDRM ? "it was deleted" : strerror(-r));
}
