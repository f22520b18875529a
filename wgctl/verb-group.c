/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The verbs that manage groups through wgd: create, status, list, delete. */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "macro.h"
#include "wgctl.h"

enum {
        OPT_HELP = 'h',
        OPT_JSON = 0x100,
        OPT_COUNT,
        OPT_MODE,
        OPT_EXIST_OK,
        OPT_ON_ABANDON,
        OPT_CLUSTER,
};

static const char *state_name(Wg__V1__MemberState state) {
        switch (state) {
        case WG__V1__MEMBER_STATE__MEMBER_STATE_JOINED:
                return "joined";
        case WG__V1__MEMBER_STATE__MEMBER_STATE_SUCCEEDED:
                return "succeeded";
        case WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED:
                return "failed";
        case WG__V1__MEMBER_STATE__MEMBER_STATE_ABANDONED:
                return "abandoned";
        default:
                return "unknown";
        }
}

static const char *policy_name(Wg__V1__AbandonPolicy p) {
        return p == WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK ? "break" : "done";
}

/* Send @req; a daemon Error is reported with its own words. Returns 0 or the exit code. */
static int call(Wg__V1__Request *req, Wg__V1__Response **ret) {
        int r = daemon_call(req, ret, NULL);

        if (r < 0)
                return daemon_failure(r);
        if ((*ret)->result_case == WG__V1__RESPONSE__RESULT_ERROR) {
                r = failure(-(*ret)->error->errnum, "%s", response_message(*ret));
                wg__response_freep(ret);
                *ret = NULL;
                return r;
        }
        return 0;
}

static void print_json(const Wg__V1__GroupInfo *g, bool members) {
        printf("{\"name\":");
        json_string(g->name, stdout);
        printf(",\"count\":%" PRIu64 ",\"generation\":%" PRIu64 ",\"waiters\":%u,\"futex_waiters\":%s,"
               "\"owner\":%u,\"gid\":%u,\"mode\":\"%04o\",\"created_usec\":%" PRIu64
               ",\"broken\":%s,\"on_abandon\":\"%s\"",
               g->count,
               g->generation,
               g->waiters,
               g->futex_waiters ? "true" : "false",
               g->owner,
               g->gid,
               g->mode,
               g->created_usec,
               g->broken ? "true" : "false",
               policy_name(g->on_abandon));
        printf(",\"scope\":\"%s\"", g->cluster ? "cluster" : "local");
        if (members) {
                printf(",\"members\":[");
                for (size_t i = 0; i < g->n_members; i++) {
                        const Wg__V1__Member *m = g->members[i];

                        printf("%s{\"pid\":%u,\"state\":\"%s\",\"status\":%d,\"generation\":%" PRIu64
                               ",\"description\":",
                               i > 0 ? "," : "", m->pid, state_name(m->state), m->status, m->generation);
                        json_string(m->description, stdout);
                        if (m->node) {
                                printf(",\"node\":");
                                json_string(m->node, stdout);
                        }
                        printf("}");
                }
                printf("]");
                if (g->outcome)
                        printf(",\"outcome\":{\"generation\":%" PRIu64 ",\"succeeded\":%u,\"failed\":%u,"
                               "\"abandoned\":%u}",
                               g->outcome->generation, g->outcome->succeeded, g->outcome->failed,
                               g->outcome->abandoned);
        }
        printf("}");
}

static void format_time(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "%" PRIu64, usec);
}

static void print_human(const Wg__V1__GroupInfo *g) {
        struct passwd *pw = getpwuid(g->owner);
        char created[64];

        format_time(g->created_usec, created, sizeof(created));
        /* Every string from wgd is escaped: names are safe by their rules, but descriptions are not. */
        fputs("name: ", stdout);
        fputs_escaped(g->name, stdout);
        putchar('\n');
        printf("scope: %s\n", g->cluster ? "cluster" : "local");
        printf("count: %" PRIu64 "\n", g->count);
        printf("generation: %" PRIu64 "\n", g->generation);
        printf("waiters: %u%s\n", g->waiters, g->futex_waiters ? " (and processes on the segment)" : "");
        printf("owner: %u", g->owner);
        if (pw) {
                fputs(" (", stdout);
                fputs_escaped(pw->pw_name, stdout);
                putchar(')');
        }
        putchar('\n');
        printf("gid: %u\n", g->gid);
        printf("mode: %04o\n", g->mode);
        printf("created: %s\n", created);
        printf("on abandon: %s%s\n", policy_name(g->on_abandon), g->broken ? " (broken: 'wgctl reset' mends it)" : "");
        for (size_t i = 0; i < g->n_members; i++) {
                const Wg__V1__Member *m = g->members[i];

                if (m->generation != g->generation)
                        continue;
                printf("member: %u", m->pid);
                if (m->node) {
                        fputs("@", stdout);
                        fputs_escaped(m->node, stdout);
                }
                printf(" %s", state_name(m->state));
                if (m->state == WG__V1__MEMBER_STATE__MEMBER_STATE_FAILED)
                        printf(" (status %d)", m->status);
                fputs(": ", stdout);
                fputs_escaped(m->description ? m->description : "?", stdout);
                putchar('\n');
        }
        if (g->members_omitted > 0)
                printf("members not shown: %u\n", g->members_omitted);
        if (g->outcome)
                printf("last generation %" PRIu64 ": %u succeeded, %u failed, %u abandoned\n", g->outcome->generation,
                       g->outcome->succeeded, g->outcome->failed, g->outcome->abandoned);
}

/* Parse "VERB NAME [--json]"; returns 0, -1 after --help, or an exit code. */
static int parse_name_and_json(int argc, char **argv, const char *verb_name, bool allow_json, const char **name,
                               bool *json) {
        static const struct option options[] = {
                { "help", no_argument, NULL, OPT_HELP },
                { "json", no_argument, NULL, OPT_JSON },
                {},
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_HELP:
                        verb_help(verb_name, allow_json ? "  --json    print JSON\n" : NULL);
                        return -1;
                case OPT_JSON:
                        if (!allow_json)
                                return usage_error("--json is not an option of %s.", verb_name);
                        *json = true;
                        break;
                default:
                        return EXIT_USAGE;
                }

        if (name) {
                if (optind >= argc)
                        return usage_error("the group's NAME is missing.");
                if (optind + 1 < argc)
                        return usage_error("unexpected argument '%s'.", argv[optind + 1]);
                r = parse_name(argv[optind], name);
                if (r != 0)
                        return r;
        } else if (optind < argc)
                return usage_error("unexpected argument '%s'.", argv[optind]);
        return 0;
}

int verb_create(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, OPT_HELP },
                { "count", required_argument, NULL, OPT_COUNT },
                { "mode", required_argument, NULL, OPT_MODE },
                { "exist-ok", no_argument, NULL, OPT_EXIST_OK },
                { "on-abandon", required_argument, NULL, OPT_ON_ABANDON },
                { "cluster", no_argument, NULL, OPT_CLUSTER },
                {},
        };
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create m = WG__V1__CREATE__INIT;
        const char *name;
        int64_t count;
        char *end;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case OPT_HELP:
                        verb_help("create",
                                  "  --count N     start the counter at N (default 0)\n"
                                  "  --mode MODE   octal permissions: 0600 (default), 0640, 0660, 0644, 0666\n"
                                  "  --exist-ok    succeed if the group exists\n"
                                  "  --on-abandon done|break\n"
                                  "                when a member dies without leaving: count it done and report\n"
                                  "                it (default), or break the group until 'wgctl reset'\n"
                                  "  --cluster     a cluster group, shared through etcd by every wgd of the\n"
                                  "                cluster (wgd --etcd)\n");
                        return EXIT_OK;
                case OPT_COUNT:
                        if (strcmp(optarg, "0") == 0)
                                count = 0;
                        else if ((r = parse_count(optarg, &count)) != 0)
                                return r;
                        m.has_count = true;
                        m.count = (uint64_t) count;
                        break;
                case OPT_MODE:
                        errno = 0;
                        m.mode = (uint32_t) strtoul(optarg, &end, 8);
                        if (errno != 0 || end == optarg || *end || optarg[0] == '-' || (m.mode & ~0666u))
                                return usage_error("'%s' is not a mode: octal read and write bits, like 0660.",
                                                   optarg);
                        m.has_mode = true;
                        break;
                case OPT_EXIST_OK:
                        m.has_exist_ok = m.exist_ok = true;
                        break;
                case OPT_CLUSTER:
                        m.has_cluster = m.cluster = true;
                        break;
                case OPT_ON_ABANDON:
                        m.has_on_abandon = true;
                        if (strcmp(optarg, "done") == 0)
                                m.on_abandon = WG__V1__ABANDON_POLICY__ABANDON_POLICY_COUNT_AS_DONE;
                        else if (strcmp(optarg, "break") == 0)
                                m.on_abandon = WG__V1__ABANDON_POLICY__ABANDON_POLICY_BREAK;
                        else
                                return usage_error("--on-abandon takes 'done' or 'break', not '%s'.", optarg);
                        break;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc)
                return usage_error("the group's NAME is missing.");
        if (optind + 1 < argc)
                return usage_error("unexpected argument '%s'.", argv[optind + 1]);
        r = parse_name(argv[optind], &name);
        if (r != 0)
                return r;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &m;
        return call(&req, &resp);
}

int verb_status(int argc, char **argv) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;
        const char *name;
        bool json = false;
        int r;

        r = parse_name_and_json(argc, argv, "status", true, &name, &json);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        r = call(&req, &resp);
        if (r != 0)
                return r;
        if (resp->result_case != WG__V1__RESPONSE__RESULT_GROUP || !resp->group)
                return failure(-EPROTO, "wgd answered something else than a group.");

        if (json) {
                print_json(resp->group, true);
                putchar('\n');
        } else
                print_human(resp->group);
        return fflush(stdout) == 0 ? EXIT_OK : failure(-EIO, "cannot write: %m");
}

int verb_list(int argc, char **argv) {
        _cleanup_free_ char *after = NULL;
        bool json = false, first = true;
        int r;

        r = parse_name_and_json(argc, argv, "list", true, NULL, &json);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        if (json)
                putchar('[');
        else
                printf("%-24s %10s %10s %7s %8s %4s\n", "NAME", "COUNT", "GEN", "WAITERS", "OWNER", "MODE");

        /* One response holds what fits in a record: page with 'after' until wgd says no more. */
        for (;;) {
                _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
                Wg__V1__Request req = WG__V1__REQUEST__INIT;
                Wg__V1__List m = WG__V1__LIST__INIT;
                Wg__V1__GroupList *list;

                m.after = after;
                req.op_case = WG__V1__REQUEST__OP_LIST;
                req.list = &m;
                r = call(&req, &resp);
                if (r != 0)
                        return r;
                if (resp->result_case != WG__V1__RESPONSE__RESULT_LIST || !resp->list)
                        return failure(-EPROTO, "wgd answered something else than a list.");
                list = resp->list;

                for (size_t i = 0; i < list->n_groups; i++) {
                        const Wg__V1__GroupInfo *g = list->groups[i];

                        if (json) {
                                if (!first)
                                        putchar(',');
                                print_json(g, false);
                        } else {
                                size_t n = fputs_escaped(g->name, stdout);

                                printf("%*s %10" PRIu64 " %10" PRIu64 " %7u %8u %04o\n", n < 24 ? (int) (24 - n) : 0,
                                       "", g->count, g->generation, g->waiters, g->owner, g->mode);
                        }
                        first = false;
                }
                if (!list->more || list->n_groups == 0)
                        break;
                free(after);
                after = strdup(list->groups[list->n_groups - 1]->name);
                if (!after)
                        return failure(-ENOMEM, "out of memory.");
        }

        if (json)
                printf("]\n");
        return fflush(stdout) == 0 ? EXIT_OK : failure(-EIO, "cannot write: %m");
}

int verb_delete(int argc, char **argv) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Delete m = WG__V1__DELETE__INIT;
        const char *name;
        bool json = false;
        int r;

        r = parse_name_and_json(argc, argv, "delete", false, &name, &json);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_DELETE;
        req.delete_ = &m;
        return call(&req, &resp);
}

int verb_reset(int argc, char **argv) {
        _cleanup_(wg__response_freep) Wg__V1__Response *resp = NULL;
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Reset m = WG__V1__RESET__INIT;
        const char *name;
        bool json = false;
        int r;

        r = parse_name_and_json(argc, argv, "reset", false, &name, &json);
        if (r != 0)
                return r < 0 ? EXIT_OK : r;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_RESET;
        req.reset = &m;
        return call(&req, &resp);
}
