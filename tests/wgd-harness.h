/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A real wgd for the tests, with this process playing systemd's part: it owns the listening
 * socket and passes it in (LISTEN_FDS, named "control"), it listens on NOTIFY_SOCKET for
 * READY=1 and keeps the fds wgd parks with FDSTORE=1 (dropping them on FDSTOREREMOVE=1), and on
 * a restart it hands them back, as systemd's fdstore does. And a protocol client that speaks
 * wg.v1 with real protobuf bytes over the real socket.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wg.pb-c.h"

#define HARNESS_STORE_MAX 256

typedef struct Harness {
        char dir[256];
        char socket_path[300];
        char notify_path[300];
        int listen_fd;
        int notify_fd;
        struct {
                char name[256];
                int fd;
        } store[HARNESS_STORE_MAX];
        size_t n_store;
        pid_t pid;
        bool ready;
        pthread_t pump;
        pthread_mutex_t mutex; /* the store and what wgd said, shared with the pump thread */
        bool stop;

        /* What else wgd told "systemd" (under mutex; read with harness_pump() first). */
        unsigned nofile;     /* if not 0, wgd's RLIMIT_NOFILE, soft and hard */
        unsigned n_watchdog; /* WATCHDOG=1 pings: the harness sets WATCHDOG_USEC */
        bool stopping;       /* STOPPING=1 */
        char status[128];    /* the last STATUS= */
} Harness;

/* The harness's watchdog interval for wgd: pings come twice as often. */
#define HARNESS_WATCHDOG_USEC 400000

/* Make the sockets in a fresh directory (everybody may enter it) and point $WGD_SOCKET there. */
void harness_init(Harness *h);

/* Start wgd with the listening socket and the stored fds, plus @args; wait for READY=1. */
void harness_start(Harness *h, const char *const *args);

/* How harness_spawn() starts wgd, beyond what harness_start() does. */
typedef struct HarnessOptions {
        const char *binary;      /* NULL: $WG_WGD */
        const char *const *env;  /* NAME=VALUE entries to add, replacing ours of the same name */
        bool no_listen_fds;      /* pass no socket and no stored fds: wgd binds a socket itself */
        const char *stderr_path; /* append wgd's stderr to this file; NULL: ours */
        bool no_capabilities;    /* as the shipped unit runs it (CapabilityBoundingSet=): root, none */
} HarnessOptions;

/* Start wgd as harness_start() does, as @opts (may be NULL) say, without waiting for READY=1. */
void harness_spawn(Harness *h, const char *const *args, const HarnessOptions *opts);

/*
 * Wait up to @timeout_msec for READY=1 from the wgd that harness_spawn() started: 0 once it
 * came; -ECHILD if wgd exited first (h->pid is then -1, and *ret_status, if not NULL, is its
 * status as harness_stop() returns it); -ETIMEDOUT if neither happened in time.
 */
int harness_wait_ready(Harness *h, unsigned timeout_msec, int *ret_status);

/* Take in what wgd said on NOTIFY_SOCKET so far (FDSTORE, FDSTOREREMOVE, STATUS ...). */
void harness_pump(Harness *h);

/* Send @sig (0: none, just reap) and return wgd's exit status (128+N for a signal). */
int harness_stop(Harness *h, int sig);

/* Stop wgd if it runs, close everything, remove the directory. */
void harness_done(Harness *h);

/* cmocka setup and teardown: a Harness in *state, made and undone around each test. */
int harness_setup(void **state);
int harness_teardown(void **state);

/* Number of stored fds whose name starts with "wg1." and ends with ".@group". */
size_t harness_stored(Harness *h, const char *group);

/*
 * Close and forget the stored fds whose name starts with @prefix, as if wgd had removed them
 * (call with wgd stopped: it would not know). How many there were.
 */
size_t harness_drop_stored(Harness *h, const char *prefix);

/* How many fds and how much resident memory (KiB) process @pid has. */
unsigned proc_fd_count(pid_t pid);
unsigned long proc_rss_kib(pid_t pid);
unsigned proc_socket_count(pid_t pid);

/* CPU time (user + system) process @pid has used, in clock ticks. */
unsigned long proc_cpu_ticks(pid_t pid);

/*
 * Wait (bounded) until process @pid has exactly @n sockets open: wgd takes connections from its
 * backlog one at a time between other work, so closes from the test reach it a little later.
 */
void proc_settle_sockets(pid_t pid, unsigned n);

/* Start wgd by hand, without systemd's help; it binds its own socket. */
pid_t spawn_wgd(const char *const *args);

/* Connect to @path once something listens there (bounded). */
int connect_retry(const char *path);

/* Protocol client. Everything asserts, so a test reads as a list of expectations. */
int pc_connect(const char *path);
void pc_send(int fd, Wg__V1__Request *req);
/* Send @req as version 1 with id @id, not waiting for its answer. */
void pc_send_id(int fd, uint64_t id, Wg__V1__Request *req);
/* Wait (bounded) for the next response. @ret_fd may be NULL: then no fd may come. */
Wg__V1__Response *pc_recv(int fd, int *ret_fd);
Wg__V1__Response *pc_call(int fd, Wg__V1__Request *req, int *ret_fd);
void pc_free(Wg__V1__Response *r);

/* The errno of an Error response, 0 for any other. */
int pc_errnum(const Wg__V1__Response *r);

/* One call of each kind; return the response (free with pc_free). */
Wg__V1__Response *pc_create(int fd, const char *name, uint32_t mode, uint64_t count);
/* Create with `cluster`: a cluster group (the wgd must be a node of a cluster). */
Wg__V1__Response *pc_create_cluster(int fd, const char *name, uint32_t mode, uint64_t count);
Wg__V1__Response *pc_stat(int fd, const char *name);
/* Stat with `generation`: the outcome and the members of that generation. */
Wg__V1__Response *pc_stat_generation(int fd, const char *name, uint64_t generation);
Wg__V1__Response *pc_add(int fd, const char *name, int64_t delta);
Wg__V1__Response *pc_delete(int fd, const char *name);
Wg__V1__Response *pc_list(int fd, const char *after);
/* Open and Join: *ret_fd is the segment's fd on success (-1 on an error). */
Wg__V1__Response *pc_open(int fd, const char *name, int *ret_fd);
Wg__V1__Response *pc_join(int fd, const char *name, int *ret_fd);
/* Send a Wait and return without its answer. */
void pc_wait_send(int fd, uint64_t id, const char *name, uint64_t timeout_usec);

/* The same, asserting the outcome: 0 for success or the expected errno. */
void pc_expect(Wg__V1__Response *r, int errnum);
