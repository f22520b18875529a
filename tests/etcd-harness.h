/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A real etcd for the tests: one member, or a cluster of three, on free ports of 127.0.0.1,
 * with its data in a fresh directory that goes with it. Members run as our children (killed
 * with us if we die), can be stopped, continued, killed and started again on the same ports and
 * data. Readiness is a poll of each member's /health, with a generous deadline, through a
 * blocking libcurl of our own: never the client under test.
 *
 * Everything asserts, as the other harnesses do: a test reads as a list of expectations.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ETCD_MEMBERS_MAX 3

typedef struct EtcdMember {
        pid_t pid; /* -1: not running */
        bool stopped;
        unsigned client_port;
        unsigned peer_port;
        char name[16];
        char url[64]; /* what clients use: http(s)://127.0.0.1:PORT */
} EtcdMember;

typedef struct EtcdCluster {
        char dir[256];
        size_t n;
        bool tls; /* clients must speak TLS and show a certificate of the cluster's CA */
        EtcdMember members[ETCD_MEMBERS_MAX];
        const char *endpoints[ETCD_MEMBERS_MAX + 1]; /* the members' URLs, NULL-terminated */
        char initial_cluster[512];
        /* With tls, in dir: the CA, and a certificate and key for clients. */
        char ca_file[300];
        char client_cert_file[300];
        char client_key_file[300];
} EtcdCluster;

/*
 * The etcd program to run: $WG_ETCD, else etcd in PATH; NULL when there is none, and the tests
 * that need it skip.
 */
const char *etcd_binary(void);

/* Whether openssl(1) is there, to make the certificates of a TLS cluster. */
bool etcd_harness_have_openssl(void);

/* Start @n members (1 to ETCD_MEMBERS_MAX) and wait until each answers that it is healthy. */
void etcd_cluster_start(EtcdCluster *c, size_t n);

/* The same, with TLS between clients and members (and client certificates required). */
void etcd_cluster_start_tls(EtcdCluster *c, size_t n);

/* Kill every member, remove the directory. */
void etcd_cluster_done(EtcdCluster *c);

/*
 * SIGSTOP (returns once the member is stopped), SIGCONT, or SIGKILL (returns once it is reaped;
 * etcd_member_restart() brings it back) to member @i.
 */
void etcd_member_signal(EtcdCluster *c, size_t i, int sig);

/* Start member @i again after SIGKILL: same ports, same data; wait until it is healthy. */
void etcd_member_restart(EtcdCluster *c, size_t i);

/* Wait (bounded, then fail) until member @i says it is healthy: it has a leader. */
void etcd_member_wait_healthy(EtcdCluster *c, size_t i);

/*
 * A blocking POST of @body to /v3/@method of member @i, with @token as Authorization if not
 * NULL, for what a test sets up around the client under test. Returns the HTTP status; the
 * answer goes to *@ret_body (to free) if that is not NULL.
 */
long etcd_harness_post(
        EtcdCluster *c, size_t i, const char *method, const char *body, const char *token, char **ret_body);

/* Turn on etcd's authentication with a user root (role root) whose password is @password. */
void etcd_cluster_enable_auth(EtcdCluster *c, const char *password);

/*
 * Set root's password to @password, authenticating with @old: etcd then refuses every token it
 * gave root before. Asserts that it does.
 */
void etcd_cluster_change_root_password(EtcdCluster *c, const char *old, const char *password);

/* Add a user @name with @password and no role, as root (whose password is @root_password). */
void etcd_cluster_add_user(
        EtcdCluster *c, const char *root_password, const char *name, const char *password);

/* A port of 127.0.0.1 that nothing listens on, for an endpoint that refuses connections. */
unsigned etcd_harness_dead_port(void);
