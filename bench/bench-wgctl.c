/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-wgctl: how long whole commands take to run, one after the other, as a shell script
 * would run them: posix_spawn() and waitpid(), timed with CLOCK_MONOTONIC from before the spawn
 * to after the wait, every invocation's exit status checked. bench/run-wgctl.sh gives it
 * `wgctl add`, `wgctl done`, a do-nothing program linked as wgctl is, `redis-cli DECR` and GNU
 * parallel's `sem`; the method and the figures are in docs/benchmarks.md.
 *
 * Usage: bench-wgctl [--rounds N] [--warmup N] [--scale F] [--csv FILE] [--open NAME]
 *                    LABEL COUNT PROGRAM [ARG...] [:: LABEL COUNT PROGRAM [ARG...]]...
 *        bench-wgctl --as-wgctl open|request NAME DELTA
 *        bench-wgctl --as-run PROGRAM [ARG...]
 *
 * Each round runs every command COUNT times, the commands interleaved invocation by invocation
 * (a command with a smaller COUNT spread evenly over the round), in an order that rotates from
 * round to round, so that all of them see the same noise; the first command is the reference
 * of the ratios. Per command and round: the mean wall time per invocation, and the child's CPU
 * time (user + system, from wait4()) per invocation; then the median over the rounds.
 *
 * A timing loop of our own rather than hyperfine, which runs all the runs of one command before
 * the next command's: on a shared machine, load that comes and goes over seconds then lands on
 * some commands and not others, where the differences to see here are tens of µs. Here every
 * command is spawned the same way (posix_spawn(), a vfork-style clone, then one wait4()), and
 * the CPU time of each child comes with it.
 *
 * --open NAME also times, inside this process, the steps of the verb without the process around
 * them; --as-wgctl makes this program a stand-in for `wgctl add` that does its add one way or
 * the other (see as_wgctl()), --as-run one for `wgctl run` that only runs the command (see
 * as_run()).
 *
 * A report, not a test: it exits 0 unless a command failed (then it says which, and how).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-util.h"
#include "client.h"
#include "wg.h"

#define COMMANDS_MAX 16

extern char **environ;

struct command {
        const char *label;
        unsigned count; /* invocations per round, before --scale */
        char **argv;
        struct series wall; /* ms per invocation, one figure per round */
        struct series cpu;  /* the child's user + system ms per invocation */
        double *samples;    /* every invocation's wall time, ms, for the spread */
        size_t n_samples;
};

static struct command commands[COMMANDS_MAX];
static unsigned n_commands;
static posix_spawn_file_actions_t quiet;

/*
 * --open NAME: what the verb does besides starting, inside one warm process, in three steps
 * that take turns within each round:
 *  - connect: wg__connect() to wgd and close(), the connection alone;
 *  - Add request: connect, one Add (+1, then -1 the next time) over the protocol, close: what
 *    add and done would cost if wgctl asked wgd to do them (proto/wg.proto's Add);
 *  - wg_open + wg_unref: connect, Open, the segment's fd in the answer, its checks, mmap, then
 *    munmap and close, and the add on the page in between: what `wgctl add` does now.
 * Lower bounds of the verb's share: a fresh process also pays its first touches of the code
 * and data involved (page faults, malloc's first brk).
 */
enum open_step { STEP_CONNECT, STEP_ADD_REQUEST, STEP_OPEN, _STEP_MAX };

static void open_step(enum open_step step, const char *name, int64_t delta) {
        wg *g;
        int r;

        switch (step) {
        case STEP_CONNECT:
                r = wg__connect();
                if (r < 0)
                        die("wg__connect", -r);
                (void) close(r);
                break;
        case STEP_ADD_REQUEST:
                r = wg__add_request(name, delta);
                if (r < 0)
                        die("Add request", -r);
                break;
        case STEP_OPEN:
                r = wg_open(name, 0, &g);
                if (r < 0)
                        die("wg_open", -r);
                r = wg_add(g, delta);
                if (r < 0)
                        die("wg_add", -r);
                wg_unref(g);
                break;
        default:
                break;
        }
}

static void time_open(const char *name, unsigned rounds, unsigned per_round) {
        static const char *const step_names[_STEP_MAX] = {
                [STEP_CONNECT] = "connect + close",
                [STEP_ADD_REQUEST] = "connect + Add request + close",
                [STEP_OPEN] = "wg_open + wg_add + wg_unref",
        };
        struct series s[_STEP_MAX] = {};

        /* Round 0 warms up; an even count leaves the counter as it was. */
        per_round += per_round % 2;
        for (unsigned round = 0; round <= rounds; round++)
                for (unsigned j = 0; j < _STEP_MAX; j++) {
                        enum open_step step = (enum open_step)((round + j) % _STEP_MAX);
                        uint64_t t0 = now_ns();

                        for (unsigned i = 0; i < per_round; i++)
                                open_step(step, name, i % 2 ? -1 : 1);
                        if (round > 0)
                                series_add(&s[step], (double) (now_ns() - t0) / 1e6 / per_round);
                }
        printf("\nInside this process, \"%s\" at $WGD_SOCKET, %u of each per round:\n", name, per_round);
        for (unsigned j = 0; j < _STEP_MAX; j++)
                series_print(step_names[j], "ms", &s[j]);
}

/*
 * bench-wgctl --as-wgctl open|request NAME DELTA: one add of DELTA, the way `wgctl add` does it
 * (open: wg_open(), wg_add() on the page, wg_unref()) or through the protocol's Add request
 * (request), then exit. This program is linked as wgctl is (the static libwg, protobuf-c,
 * libc), so the two, spawned like any command, compare the ways wgctl could do its verb, start-up
 * and all; "open" against wgctl itself tells what wgctl's own code adds.
 */
static int as_wgctl(const char *how, const char *name, const char *delta) {
        enum open_step step;

        if (strcmp(how, "open") == 0)
                step = STEP_OPEN;
        else if (strcmp(how, "request") == 0)
                step = STEP_ADD_REQUEST;
        else
                return 2;
        open_step(step, name, strtoll(delta, NULL, 10));
        return 0;
}

/*
 * bench-wgctl --as-run PROGRAM [ARG...]: fork(), execvp() the command, waitpid(), exit with its
 * status, as a shell does for a command: all that `wgctl run NAME -- PROGRAM` must do besides
 * joining and leaving, in a program linked as wgctl is.
 */
static int as_run(char **cmd) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return 125;
        if (pid == 0) {
                execvp(cmd[0], cmd);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return 125;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void help(void) {
        printf("Usage: bench-wgctl [--rounds N] [--warmup N] [--scale F] [--csv FILE]\n"
               "                   [--open NAME] LABEL COUNT PROGRAM [ARG...] [:: LABEL COUNT PROGRAM "
               "[ARG...]]...\n\n"
               "Times whole commands, COUNT invocations per round each, in turns. The first command\n"
               "is the reference of the ratios. --scale multiplies every COUNT (at least 1 remains);\n"
               "--csv writes every invocation's wall time; --open NAME also times, inside this\n"
               "process, a connection, an Add request and wg_open() of NAME (wgd at $WGD_SOCKET).\n"
               "bench-wgctl --as-wgctl open|request NAME DELTA does one add and exits;\n"
               "bench-wgctl --as-run PROGRAM [ARG...] forks, execs PROGRAM, waits, and exits as it did.\n");
}

static double tv_ms(const struct timeval *tv) {
        return (double) tv->tv_sec * 1e3 + (double) tv->tv_usec / 1e3;
}

/* One invocation: its wall time in ms; its CPU time added to *cpu_ms. */
static double run_once(const struct command *c, double *cpu_ms) {
        struct rusage ru;
        uint64_t t0, t1;
        pid_t pid;
        int r, status;

        t0 = now_ns();
        r = posix_spawnp(&pid, c->argv[0], &quiet, NULL, c->argv, environ);
        if (r != 0) {
                fprintf(stderr, "bench-wgctl: %s: cannot run %s\n", c->label, c->argv[0]);
                die("posix_spawnp", r);
        }
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        die("wait4", errno);
        t1 = now_ns();

        /* A command that failed did less than its work: its time would flatter it. */
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr,
                        "bench-wgctl: %s failed (wait status 0x%x); run it by hand:",
                        c->label,
                        (unsigned) status);
                for (char **a = c->argv; *a; a++)
                        fprintf(stderr, " %s", *a);
                fputc('\n', stderr);
                die(c->label, ECHILD);
        }
        *cpu_ms += tv_ms(&ru.ru_utime) + tv_ms(&ru.ru_stime);
        return (double) (t1 - t0) / 1e6;
}

/*
 * One round: every command @count times, interleaved invocation by invocation (each spread
 * evenly over the round), so that a burst of load elsewhere hits all of them alike; the order
 * within each turn starts at @first. Records the round's mean per invocation unless warming up.
 */
static void run_round(const unsigned *count, unsigned first, bool record) {
        double wall[COMMANDS_MAX] = {}, cpu[COMMANDS_MAX] = {};
        unsigned slots = 0;

        for (unsigned k = 0; k < n_commands; k++)
                if (count[k] > slots)
                        slots = count[k];

        for (unsigned i = 0; i < slots; i++)
                for (unsigned j = 0; j < n_commands; j++) {
                        unsigned k = (first + j) % n_commands;
                        struct command *c = &commands[k];
                        double t;

                        /* The command's (i+1)-th share of the slots has begun: its turn. */
                        if ((uint64_t) (i + 1) * count[k] / slots == (uint64_t) i * count[k] / slots)
                                continue;
                        t = run_once(c, &cpu[k]);
                        wall[k] += t;
                        if (record)
                                c->samples[c->n_samples++] = t;
                }

        if (record)
                for (unsigned k = 0; k < n_commands; k++) {
                        series_add(&commands[k].wall, wall[k] / count[k]);
                        series_add(&commands[k].cpu, cpu[k] / count[k]);
                }
}

static unsigned scaled(unsigned count, double scale) {
        double n = count * scale;

        return n < 1 ? 1 : (unsigned) (n + 0.5);
}

/* The command line after the options: LABEL COUNT PROGRAM [ARG...], separated by "::". */
static void parse_commands(int argc, char **argv) {
        int i = 0;

        while (i < argc) {
                struct command *c;
                char *end;
                unsigned long n;
                int j;

                if (n_commands == COMMANDS_MAX) {
                        fprintf(stderr, "bench-wgctl: at most %d commands\n", COMMANDS_MAX);
                        exit(2);
                }
                for (j = i; j < argc && strcmp(argv[j], "::") != 0; j++)
                        ;
                if (j - i < 3) {
                        fprintf(stderr, "bench-wgctl: each command is LABEL COUNT PROGRAM [ARG...]\n");
                        exit(2);
                }
                errno = 0;
                n = strtoul(argv[i + 1], &end, 10);
                if (errno != 0 || *end || n == 0 || n > 100000) {
                        fprintf(stderr, "bench-wgctl: '%s' is not a count (1 to 100000)\n", argv[i + 1]);
                        exit(2);
                }
                c = &commands[n_commands++];
                c->label = argv[i];
                c->count = (unsigned) n;
                c->argv = argv + i + 2;
                /* The command's argv ends where the separator was. */
                if (j < argc)
                        argv[j] = NULL;
                i = j + 1;
        }
        if (n_commands == 0) {
                help();
                exit(2);
        }
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "rounds", required_argument, NULL, 'r' },
                { "warmup", required_argument, NULL, 'w' },
                { "scale", required_argument, NULL, 's' },
                { "csv", required_argument, NULL, 'c' },
                { "open", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        unsigned rounds = 7, warmup = 20, count[COMMANDS_MAX], warm[COMMANDS_MAX];
        double scale = 1, ref_wall, ref_cpu;
        const char *csv = NULL, *open_name = NULL;
        int opt, r;

        bench_init(NULL);
        if (argc == 5 && strcmp(argv[1], "--as-wgctl") == 0)
                return as_wgctl(argv[2], argv[3], argv[4]);
        if (argc >= 3 && strcmp(argv[1], "--as-run") == 0)
                return as_run(argv + 2);
        /* "+": stop at the first non-option, so that the commands' own options stay theirs. */
        while ((opt = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (opt) {
                case 'r':
                        rounds = (unsigned) strtoul(optarg, NULL, 10);
                        if (rounds < 1 || rounds > BENCH_MAX_RUNS) {
                                fprintf(stderr, "bench-wgctl: --rounds is 1 to %d\n", BENCH_MAX_RUNS);
                                return 2;
                        }
                        break;
                case 'w':
                        warmup = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 's':
                        scale = strtod(optarg, NULL);
                        if (!(scale > 0)) {
                                fprintf(stderr, "bench-wgctl: --scale must be positive\n");
                                return 2;
                        }
                        break;
                case 'c':
                        csv = optarg;
                        break;
                case 'o':
                        open_name = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }
        parse_commands(argc - optind, argv + optind);

        /* The commands' output would only cost the terminal's time: to /dev/null, as in cron. */
        r = posix_spawn_file_actions_init(&quiet);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&quiet, 0, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        if (r == 0)
                r = posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        if (r != 0)
                die("posix_spawn_file_actions", r);

        for (unsigned k = 0; k < n_commands; k++) {
                struct command *c = &commands[k];

                count[k] = scaled(c->count, scale);
                warm[k] = scaled(warmup < c->count ? warmup : c->count, scale);
                c->samples = calloc((size_t) rounds * count[k], sizeof(double));
                if (!c->samples)
                        die("calloc", ENOMEM);
        }

        /* Page cache, the loader's cache, the servers' first connection: not what we time. */
        run_round(warm, 0, false);

        printf("%u rounds; invocations per round, interleaved:", rounds);
        for (unsigned k = 0; k < n_commands; k++)
                printf(" %s %u%s", commands[k].label, count[k], k + 1 < n_commands ? "," : "\n");
        fflush(stdout);

        for (unsigned round = 0; round < rounds; round++)
                run_round(count, round % n_commands, true);

        printf("\nms per invocation, per round (wall):\n");
        for (unsigned k = 0; k < n_commands; k++)
                series_print(commands[k].label, "ms", &commands[k].wall);
        printf("\nms of CPU per invocation (the child's user + system), per round:\n");
        for (unsigned k = 0; k < n_commands; k++)
                series_print(commands[k].label, "ms", &commands[k].cpu);

        /* In the order of the runs, before the summary sorts them. */
        if (csv) {
                FILE *f = fopen(csv, "we");

                if (!f)
                        die(csv, errno);
                fprintf(f, "command,ms\n");
                for (unsigned k = 0; k < n_commands; k++)
                        for (size_t i = 0; i < commands[k].n_samples; i++)
                                fprintf(f, "%s,%.6f\n", commands[k].label, commands[k].samples[i]);
                if (fclose(f) != 0)
                        die(csv, errno);
        }

        ref_wall = series_median(&commands[0].wall);
        ref_cpu = series_median(&commands[0].cpu);
        printf("\nSummary: medians over the rounds; ratios to %s\n", commands[0].label);
        printf("  %-24s %12s %8s %12s %8s %12s %12s\n",
               "command",
               "wall ms",
               "ratio",
               "CPU ms",
               "ratio",
               "p50 single",
               "p90 single");
        for (unsigned k = 0; k < n_commands; k++) {
                struct command *c = &commands[k];
                double wall = series_median(&c->wall), cpu = series_median(&c->cpu), p50, p90;

                /* median_of() sorts the samples in place, so the p90 can be read after it. */
                p50 = median_of(c->samples, c->n_samples);
                p90 = c->samples[(size_t) ((double) (c->n_samples - 1) * 0.9)];
                printf("  %-24s %12.3f %7.2fx %12.3f %7.2fx %12.3f %12.3f\n",
                       c->label,
                       wall,
                       wall / ref_wall,
                       cpu,
                       cpu / ref_cpu,
                       p50,
                       p90);
        }

        if (open_name)
                time_open(open_name, rounds, scaled(500, scale));

        return 0;
}
