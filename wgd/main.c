/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd: the daemon that manages named wait groups. See wgd --help, and proto/wg.proto for what
 * it speaks.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "cluster.h"
#include "dispatch.h"
#include "fdstore.h"
#include "group-name.h"
#include "group.h"
#include "log.h"
#include "macro.h"
#include "member.h"
#include "server.h"

#define CONTROL_FDNAME "control"
#define DEFAULT_IDLE_USEC (30 * UINT64_C(1000000))

static const char *arg_socket = NULL;
static char **arg_etcd = NULL; /* NULL-terminated endpoints; NULL: not a node of a cluster */
static const char *arg_node_name = NULL;
static uint64_t arg_lease_ttl_usec = 10 * UINT64_C(1000000);
static uint64_t arg_etcd_timeout_usec = 5 * UINT64_C(1000000);
static const char *arg_etcd_user = NULL;
static const char *arg_etcd_password_file = NULL;
static const char *arg_etcd_ca = NULL, *arg_etcd_cert = NULL, *arg_etcd_key = NULL;
static uint64_t arg_idle_usec = UINT64_MAX; /* not given: 30 s when socket-activated, else never */
static ServerLimits arg_limits = {
        .groups = 4096,
        .groups_per_uid = 1024,
        .connections_per_uid = 1024,
        .connections = 4096,
        .waits_per_connection = 64,
        .members_per_uid = 1024,
        .members = 4096,
        .queued_bytes_per_uid = 8 << 20,
        .queued_bytes = 64 << 20,
        .passes_per_uid = 256,
        .passes = 4096,
};

static void help(void) {
        printf("Usage: wgd [OPTIONS]\n"
               "\n"
               "Manage named wait groups (Go's sync.WaitGroup between processes) and serve them\n"
               "over a unix SOCK_SEQPACKET socket, with the protocol of wg.proto (wg.v1).\n"
               "\n"
               "  -h --help                          Show this help and exit\n"
               "     --version                       Show the version and exit\n"
               "     --socket=PATH                   Listen on PATH (default: $WGD_SOCKET, else\n"
               "                                     $XDG_RUNTIME_DIR/wgd.sock, else /run/wgd.sock);\n"
               "                                     ignored when systemd passes a socket\n"
               "     --idle-timeout=SECONDS          Exit after this long with no group and no\n"
               "                                     client (default: 30 when socket-activated,\n"
               "                                     else never; 0: never)\n"
               "     --max-groups=N                  Groups in all (default %u; with the members, within\n"
               "                                     the service's FileDescriptorStoreMax=, or restarts\n"
               "                                     lose some)\n"
               "     --max-groups-per-user=N         Groups one uid may own (default %u)\n"
               "     --max-connections-per-user=N    Connections of one uid (default %u)\n"
               "     --max-connections=N             Connections in all (default %u)\n"
               "     --max-waits-per-connection=N    Wait requests pending per connection (default %u)\n"
               "     --max-members-per-user=N        Memberships one uid may hold (default %u; each holds\n"
               "                                     a connection too)\n"
               "     --max-members=N                 Memberships in all (default %u)\n"
               "     --max-queued-per-user=BYTES     Answers queued for one uid's connections that do\n"
               "                                     not read them (default %zu)\n"
               "     --max-queued=BYTES              The same for everybody (default %zu)\n"
               "     --max-passed-per-user=N         Segment fds sent to one uid's connections and\n"
               "                                     not read yet (Open, Join; default %u)\n"
               "     --max-passed=N                  The same for everybody (default %u)\n"
               "     --etcd=URL[,URL...]             Be a node of the cluster whose groups live in\n"
               "                                     this etcd (cluster groups; see wgd(8))\n"
               "     --node-name=NAME                This node's name in the cluster (default: the\n"
               "                                     host name)\n"
               "     --lease-ttl=SECONDS             How long the members of a node that died hold\n"
               "                                     their cluster groups (default 10)\n"
               "     --etcd-timeout=SECONDS          How long one call to etcd may take (default 5)\n"
               "     --etcd-user=USER                etcd's authentication, with the password in\n"
               "     --etcd-password-file=PATH       the first line of PATH\n"
               "     --etcd-cacert=PATH              TLS for https:// endpoints: the CA of etcd's\n"
               "     --etcd-cert=PATH                certificate, and wgd's certificate and key\n"
               "     --etcd-key=PATH\n"
               "     --log-level=LEVEL               err, warning, notice, info (default) or debug\n"
               "\n"
               "Under systemd: socket activation (FileDescriptorName=control), Type=notify, the\n"
               "watchdog, and the fdstore, which keeps every group across restarts.\n"
               "See wgd(8).\n",
               arg_limits.groups,
               arg_limits.groups_per_uid,
               arg_limits.connections_per_uid,
               arg_limits.connections,
               arg_limits.waits_per_connection,
               arg_limits.members_per_uid,
               arg_limits.members,
               arg_limits.queued_bytes_per_uid,
               arg_limits.queued_bytes,
               arg_limits.passes_per_uid,
               arg_limits.passes);
}

static int parse_unsigned(const char *s, unsigned min, unsigned *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || end == s || *end || s[0] == '-' || v < min || v > UINT_MAX)
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* "URL[,URL...]", each http:// or https://. */
static int parse_endpoints(const char *s) {
        size_t n = 1;
        char *copy, *state = NULL;

        for (const char *p = s; *p; p++)
                n += *p == ',';
        free(arg_etcd ? arg_etcd[0] : NULL); /* the last --etcd counts */
        free(arg_etcd);
        arg_etcd = calloc(n + 1, sizeof(char *));
        copy = strdup(s);
        if (!arg_etcd || !copy) {
                free(copy);
                fprintf(stderr, "wgd: out of memory.\n");
                return -ENOMEM;
        }
        /* arg_etcd[0] is the start of the copy: the strings are cut from it in place. */
        n = 0;
        for (char *u = strtok_r(copy, ",", &state); u; u = strtok_r(NULL, ",", &state)) {
                if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
                        fprintf(stderr, "wgd: --etcd takes http:// or https:// URLs, not '%s'.\n", u);
                        return -EINVAL;
                }
                arg_etcd[n++] = u;
        }
        if (n == 0 || arg_etcd[0] != copy) {
                fprintf(stderr, "wgd: --etcd needs at least one URL, not '%s'.\n", s);
                free(copy);
                return -EINVAL;
        }
        return 0;
}

/* Node names go into etcd's keys and into reports: as group names are. */
static bool node_name_valid(const char *s) {
        return group_name_valid(s);
}

static int parse_argv(int argc, char **argv) {
        enum {
                ARG_VERSION = 0x100,
                ARG_SOCKET,
                ARG_IDLE,
                ARG_MAX_GROUPS_ALL,
                ARG_MAX_GROUPS,
                ARG_MAX_CONN_UID,
                ARG_MAX_CONN,
                ARG_MAX_WAITS,
                ARG_MAX_MEMBERS,
                ARG_MAX_MEMBERS_ALL,
                ARG_MAX_QUEUED_UID,
                ARG_MAX_QUEUED,
                ARG_MAX_PASSED_UID,
                ARG_MAX_PASSED,
                ARG_LOG_LEVEL,
                ARG_ETCD,
                ARG_NODE_NAME,
                ARG_LEASE_TTL,
                ARG_ETCD_TIMEOUT,
                ARG_ETCD_USER,
                ARG_ETCD_PASSWORD_FILE,
                ARG_ETCD_CACERT,
                ARG_ETCD_CERT,
                ARG_ETCD_KEY,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "idle-timeout", required_argument, NULL, ARG_IDLE },
                { "max-groups", required_argument, NULL, ARG_MAX_GROUPS_ALL },
                { "max-groups-per-user", required_argument, NULL, ARG_MAX_GROUPS },
                { "max-connections-per-user", required_argument, NULL, ARG_MAX_CONN_UID },
                { "max-connections", required_argument, NULL, ARG_MAX_CONN },
                { "max-waits-per-connection", required_argument, NULL, ARG_MAX_WAITS },
                { "max-members-per-user", required_argument, NULL, ARG_MAX_MEMBERS },
                { "max-members", required_argument, NULL, ARG_MAX_MEMBERS_ALL },
                { "max-queued-per-user", required_argument, NULL, ARG_MAX_QUEUED_UID },
                { "max-queued", required_argument, NULL, ARG_MAX_QUEUED },
                { "max-passed-per-user", required_argument, NULL, ARG_MAX_PASSED_UID },
                { "max-passed", required_argument, NULL, ARG_MAX_PASSED },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "etcd", required_argument, NULL, ARG_ETCD },
                { "node-name", required_argument, NULL, ARG_NODE_NAME },
                { "lease-ttl", required_argument, NULL, ARG_LEASE_TTL },
                { "etcd-timeout", required_argument, NULL, ARG_ETCD_TIMEOUT },
                { "etcd-user", required_argument, NULL, ARG_ETCD_USER },
                { "etcd-password-file", required_argument, NULL, ARG_ETCD_PASSWORD_FILE },
                { "etcd-cacert", required_argument, NULL, ARG_ETCD_CACERT },
                { "etcd-cert", required_argument, NULL, ARG_ETCD_CERT },
                { "etcd-key", required_argument, NULL, ARG_ETCD_KEY },
                {}
        };
        unsigned u;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("wgd %s\n", WG_VERSION);
                        return 0;
                case ARG_SOCKET:
                        if (optarg[0] != '/' ||
                            strlen(optarg) >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
                                fprintf(stderr,
                                        "wgd: --socket needs an absolute path of at most %zu bytes.\n",
                                        sizeof(((struct sockaddr_un *) 0)->sun_path) - 1);
                                return -EINVAL;
                        }
                        arg_socket = optarg;
                        break;
                case ARG_IDLE:
                        if (parse_unsigned(optarg, 0, &u) < 0) {
                                fprintf(stderr,
                                        "wgd: --idle-timeout needs a number of seconds, not '%s'.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_idle_usec = (uint64_t) u * 1000000;
                        break;
                case ARG_MAX_GROUPS_ALL:
                case ARG_MAX_GROUPS:
                case ARG_MAX_CONN_UID:
                case ARG_MAX_CONN:
                case ARG_MAX_WAITS:
                case ARG_MAX_MEMBERS:
                case ARG_MAX_MEMBERS_ALL:
                case ARG_MAX_QUEUED_UID:
                case ARG_MAX_QUEUED:
                case ARG_MAX_PASSED_UID:
                case ARG_MAX_PASSED:
                        if (parse_unsigned(optarg, 1, &u) < 0) {
                                fprintf(stderr,
                                        "wgd: %s needs a positive number, not '%s'.\n",
                                        argv[optind - 1],
                                        optarg);
                                return -EINVAL;
                        }
                        if (c == ARG_MAX_GROUPS_ALL)
                                arg_limits.groups = u;
                        else if (c == ARG_MAX_GROUPS)
                                arg_limits.groups_per_uid = u;
                        else if (c == ARG_MAX_CONN_UID)
                                arg_limits.connections_per_uid = u;
                        else if (c == ARG_MAX_CONN)
                                arg_limits.connections = u;
                        else if (c == ARG_MAX_WAITS)
                                arg_limits.waits_per_connection = u;
                        else if (c == ARG_MAX_MEMBERS)
                                arg_limits.members_per_uid = u;
                        else if (c == ARG_MAX_MEMBERS_ALL)
                                arg_limits.members = u;
                        else if (c == ARG_MAX_QUEUED_UID)
                                arg_limits.queued_bytes_per_uid = u;
                        else if (c == ARG_MAX_QUEUED)
                                arg_limits.queued_bytes = u;
                        else if (c == ARG_MAX_PASSED_UID)
                                arg_limits.passes_per_uid = u;
                        else
                                arg_limits.passes = u;
                        break;
                case ARG_ETCD:
                        r = parse_endpoints(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_NODE_NAME:
                        if (!node_name_valid(optarg)) {
                                fprintf(stderr,
                                        "wgd: --node-name takes 1 to 64 bytes of [A-Za-z0-9_.-], not "
                                        "'%s'.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_node_name = optarg;
                        break;
                case ARG_LEASE_TTL:
                        /* etcd's least TTL is about two seconds (its election timeout's). */
                        if (parse_unsigned(optarg, 2, &u) < 0 || u > 3600) {
                                fprintf(stderr,
                                        "wgd: --lease-ttl takes 2 to 3600 seconds, not '%s'.\n",
                                        optarg);
                                return -EINVAL;
                        }
                        arg_lease_ttl_usec = (uint64_t) u * 1000000;
                        break;
                case ARG_ETCD_TIMEOUT:
                        if (parse_unsigned(optarg, 1, &u) < 0 || u > 600) {
                                fprintf(stderr, "wgd: --etcd-timeout takes 1 to 600 seconds, not '%s'.\n", optarg);
                                return -EINVAL;
                        }
                        arg_etcd_timeout_usec = (uint64_t) u * 1000000;
                        break;
                case ARG_ETCD_USER:
                        arg_etcd_user = optarg;
                        break;
                case ARG_ETCD_PASSWORD_FILE:
                        arg_etcd_password_file = optarg;
                        break;
                case ARG_ETCD_CACERT:
                        arg_etcd_ca = optarg;
                        break;
                case ARG_ETCD_CERT:
                        arg_etcd_cert = optarg;
                        break;
                case ARG_ETCD_KEY:
                        arg_etcd_key = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_parse_level(optarg);
                        if (r < 0) {
                                fprintf(stderr, "wgd: unknown log level '%s'.\n", optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(r);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }
        }
        if (optind < argc) {
                fprintf(stderr, "wgd: unexpected argument '%s'.\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/*
 * Take what systemd passed: the control socket, and the segments and pidfds the fdstore kept for
 * us. A group or member that cannot be restored for want of memory or fds fails the start, with
 * the store left as it was: systemd starts us again, and nothing is lost.
 */
static int take_passed_fds(Server *s) {
        char **names = NULL;
        int n, listen_fd = -EBADF, r = 0;

        n = sd_listen_fds_with_names(/* unset_environment= */ 1, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to read the fds passed by systemd: %m");

        /* Groups first: the members that come back need their groups. */
        for (int i = 0; i < n; i++) {
                const char *name = names && names[i] ? names[i] : "";
                int fd = SD_LISTEN_FDS_START + i;

                if (strncmp(name, GROUP_FDNAME_PREFIX, strlen(GROUP_FDNAME_PREFIX)) != 0)
                        continue;
                if (r < 0)
                        safe_close(fd);
                else
                        r = server_restore_group(s, name, fd);
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "";

                if (strncmp(name, GROUP_FDNAME_PREFIX, strlen(GROUP_FDNAME_PREFIX)) == 0)
                        continue;
                if (strncmp(name, MEMBER_FDNAME_PREFIX, strlen(MEMBER_FDNAME_PREFIX)) == 0) {
                        if (r < 0)
                                safe_close(fd);
                        else
                                r = server_restore_member(s, name, fd);
                } else if (
                        strncmp(name, MIRROR_FDNAME_PREFIX, strlen(MIRROR_FDNAME_PREFIX)) == 0 ||
                        strncmp(name, LEASE_FDNAME_PREFIX, strlen(LEASE_FDNAME_PREFIX)) == 0) {
                        /*
                         * The cluster's, once it has read etcd: cluster.c. Dropping one would lose
                         * a mirror or the lease for good: a failure fails the start, and the
                         * fdstore keeps it for the next.
                         */
                        if (r >= 0 && (r = server_stash(s, name, fd)) < 0)
                                log_error_errno(
                                        r, "Failed to keep stored fd '%s' for the cluster: %m", name);
                        if (r < 0)
                                safe_close(fd);
                } else if (
                        listen_fd < 0 &&
                        (strcmp(name, CONTROL_FDNAME) == 0 ||
                         sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) > 0))
                        listen_fd = fd;
                else {
                        log_warning("Closing unexpected fd '%s' passed by systemd.", name);
                        if (*name)
                                fdstore_remove(name);
                        safe_close(fd);
                }
        }
        for (int i = 0; names && names[i]; i++)
                free(names[i]);
        free(names);

        if (listen_fd >= 0) {
                int k = r < 0 ? r : server_listen_fd(s, listen_fd);

                if (k < 0)
                        safe_close(listen_fd);
                if (r < 0)
                        return r;
                if (k < 0)
                        return log_error_errno(
                                k,
                                "The socket passed as '%s' is not a listening SOCK_SEQPACKET "
                                "unix socket: %m",
                                CONTROL_FDNAME);
        }
        return r;
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received SIG%s, exiting.", sigabbrev_np((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(source), 0);
}

/*
 * One fd per group, per connection, per member: raise the soft limit to the hard one, as
 * systemd's own daemons do (wgd never uses select(), so a high soft limit is safe).
 */
static void bump_nofile(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(negative_errno(), "Failed to raise the fd limit, ignoring: %m");
}

/* The first line of @path, without its newline; a secret, so wiped when freed by the caller. */
static int read_first_line(const char *path, char **ret) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f;
        ssize_t n;

        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        n = getline(&line, &size, f);
        fclose(f);
        if (n < 0)
                return -ENODATA;
        line[strcspn(line, "\n")] = 0;
        *ret = TAKE_PTR(line);
        return 0;
}

static int start_cluster(Server *s) {
        _cleanup_free_ char *password = NULL;
        ClusterOptions o = {
                .endpoints = (const char *const *) arg_etcd,
                .node = arg_node_name,
                .lease_ttl_usec = arg_lease_ttl_usec,
                .timeout_usec = arg_etcd_timeout_usec,
                .user = arg_etcd_user,
                .ca_file = arg_etcd_ca,
                .cert_file = arg_etcd_cert,
                .key_file = arg_etcd_key,
        };
        int r;

        if (!!arg_etcd_user != !!arg_etcd_password_file)
                return log_error_errno(-EINVAL, "--etcd-user and --etcd-password-file go together.");
        if (arg_etcd_password_file) {
                r = read_first_line(arg_etcd_password_file, &password);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s: %m", arg_etcd_password_file);
                o.password = password;
        }
        r = cluster_new(s, &o, &s->cluster);
        if (password)
                explicit_bzero(password, strlen(password));
        if (r == -EOPNOTSUPP)
                return log_error_errno(r, "This wgd was built without etcd (meson -Detcd): no --etcd.");
        if (r < 0)
                return log_error_errno(r, "Failed to set up the cluster: %m");
        log_info(
                "A node of the cluster in etcd at %s%s, as %s.",
                arg_etcd[0],
                arg_etcd[1] ? " and more" : "",
                cluster_node(s->cluster));
        return 0;
}

static int run(void) {
        sd_event *event = NULL;
        Server *s = NULL;
        sigset_t mask;
        int r;

        /* Signals are handled in the loop (signalfd): block them before any thread starts. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        umask(0022);
        bump_nofile();

        r = sd_event_new(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        /*
         * What wgd cannot run without fails the start, for systemd to try again: a wgd that
         * ignored SIGTERM, or whose watchdog or fdstore clean-up were off, would look fine and
         * not be.
         */
        r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to handle SIGTERM and SIGINT: %m");
                goto finish;
        }
        r = sd_event_set_watchdog(event, true);
        if (r < 0) {
                log_error_errno(r, "Failed to enable the watchdog: %m");
                goto finish;
        }
        r = fdstore_setup(event);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                goto finish;
        }

        r = server_new(event, &arg_limits, dispatch_record, &s);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                goto finish;
        }

        r = take_passed_fds(s);
        if (r < 0)
                goto finish;

        if (s->listen_fd < 0) {
                char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];

                if (arg_socket)
                        snprintf(path, sizeof(path), "%s", arg_socket);
                else {
                        r = wg_socket_path(path, sizeof(path));
                        if (r < 0) {
                                log_error_errno(r, "The socket path is too long: %m");
                                goto finish;
                        }
                }
                r = server_listen_path(s, path);
                if (r == -EADDRINUSE) {
                        log_error("Another wgd is already serving %s.", path);
                        goto finish;
                }
                if (r < 0) {
                        log_error_errno(r, "Failed to listen on %s: %m", path);
                        goto finish;
                }
                log_info("Listening on %s", path);
        }

        if (arg_etcd) {
                r = start_cluster(s);
                if (r < 0)
                        goto finish;
        } else
                server_stash_drop(s); /* members of groups that are gone, a cluster's fds */

        s->idle_usec = arg_idle_usec != UINT64_MAX ? arg_idle_usec :
                s->socket_activated                ? DEFAULT_IDLE_USEC :
                                                     0;
        server_update_idle(s);

        r = sd_notifyf(0, "READY=1\nSTATUS=%u groups, %u clients", s->n_groups, s->n_clients);
        if (r < 0) {
                /* systemd would wait for it, and then kill us: say why now. */
                log_error_errno(r, "Failed to tell systemd that wgd is ready: %m");
                goto finish;
        }
        r = sd_event_loop(event);
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Shutting down...");
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");

finish:
        if (s)
                s->cluster = cluster_free(s->cluster);
        server_free(s);
        fdstore_teardown();
        sd_event_unref(event);
        return r;
}

int main(int argc, char **argv) {
        int r;

        log_setup();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        r = run();
        return r < 0 ? 1 : 0;
}
