/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "etcd-harness.h"
#include "test-util.h"

/* Nothing here takes this long unless something is wrong. */
#define PATIENCE_USEC (60 * 1000 * 1000ULL)

/* How often readiness is polled. */
#define POLL_USEC (10 * 1000ULL)

/* Ports taken by something else between our check and etcd's bind: try anew this often. */
#define START_ATTEMPTS 5

/*
 * Quick elections (etcd's defaults are 100 and 1000 ms), so that a cluster that lost its leader
 * gets another soon; the ratio etcd recommends. etcd is not run under valgrind, so the tests'
 * own slowness there does not touch these.
 */
#define HEARTBEAT_MSEC "50"
#define ELECTION_MSEC "500"

const char *etcd_binary(void) {
        static char found[4096];
        const char *env = getenv("WG_ETCD"), *path = getenv("PATH");

        if (env && *env)
                return access(env, X_OK) == 0 ? env : NULL;
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path; *p;) {
                size_t len = strcspn(p, ":");

                if (len > 0 &&
                    snprintf(found, sizeof(found), "%.*s/etcd", (int) len, p) < (int) sizeof(found) &&
                    access(found, X_OK) == 0)
                        return found;
                p += len;
                if (*p == ':')
                        p++;
        }
        return NULL;
}

bool etcd_harness_have_openssl(void) {
        return system("command -v openssl >/dev/null 2>&1") == 0;
}

/* A port the kernel just handed out and nobody listens on (until someone binds it again). */
static unsigned free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

unsigned etcd_harness_dead_port(void) {
        return free_port();
}

static void member_spawn(EtcdCluster *c, size_t i, bool existing) {
        EtcdMember *m = &c->members[i];
        const char *etcd = etcd_binary();
        char data[300], log[300], client[64], peer[64], token[64];
        char ca_arg[320], cert_arg[320], key_arg[320];
        pid_t pid;

        assert_non_null(etcd);
        snprintf(data, sizeof(data), "%s/%s", c->dir, m->name);
        snprintf(log, sizeof(log), "%s/%s.log", c->dir, m->name);
        snprintf(client, sizeof(client), "%s://127.0.0.1:%u", c->tls ? "https" : "http", m->client_port);
        snprintf(peer, sizeof(peer), "http://127.0.0.1:%u", m->peer_port);
        /* Unique per cluster, so that members of two tests' clusters never mistake each other. */
        snprintf(token, sizeof(token), "wg-test-%s", strrchr(c->dir, '/') + 1);
        snprintf(ca_arg, sizeof(ca_arg), "--trusted-ca-file=%s/ca.crt", c->dir);
        snprintf(cert_arg, sizeof(cert_arg), "--cert-file=%s/server.crt", c->dir);
        snprintf(key_arg, sizeof(key_arg), "--key-file=%s/server.key", c->dir);

        const char *argv[40] = {
                etcd,
                "--name",
                m->name,
                "--data-dir",
                data,
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                c->initial_cluster,
                "--initial-cluster-state",
                existing ? "existing" : "new",
                "--initial-cluster-token",
                token,
                "--heartbeat-interval",
                HEARTBEAT_MSEC,
                "--election-timeout",
                ELECTION_MSEC,
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
        };
        size_t n = 0;

        while (argv[n])
                n++;
        if (c->tls) {
                argv[n++] = ca_arg;
                argv[n++] = cert_arg;
                argv[n++] = key_arg;
                argv[n++] = "--client-cert-auth";
        }
        argv[n] = NULL;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd;

                /* A test that fails or is killed must not leave etcd behind. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(120);
                fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(121);
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                        _exit(122);
                closefrom(3);
                execv(etcd, (char *const *) argv);
                _exit(127);
        }
        m->pid = pid;
        m->stopped = false;
}

static size_t collect_body(char *p, size_t size, size_t n, void *userdata) {
        FILE *f = userdata;

        return fwrite(p, size, n, f);
}

/* One blocking request: the HTTP status, or 0 if there was no answer. */
static long
request(EtcdCluster *c, size_t i, const char *path, const char *body, const char *token, char **ret_body) {
        char url[128], auth[512];
        struct curl_slist *headers = NULL;
        char *answer = NULL;
        size_t answer_size = 0;
        long status = 0;
        FILE *f;
        CURL *easy;

        snprintf(url, sizeof(url), "%s%s", c->members[i].url, path);
        f = open_memstream(&answer, &answer_size);
        assert_non_null(f);
        easy = curl_easy_init();
        assert_non_null(easy);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        if (token) {
                snprintf(auth, sizeof(auth), "Authorization: %s", token);
                headers = curl_slist_append(headers, auth);
        }
        assert_non_null(headers);
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_PROXY, "");
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
        if (body)
                curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        if (c->tls) {
                curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
                curl_easy_setopt(easy, CURLOPT_SSLCERT, c->client_cert_file);
                curl_easy_setopt(easy, CURLOPT_SSLKEY, c->client_key_file);
        }
        if (curl_easy_perform(easy) == CURLE_OK)
                curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
        assert_int_equal(fclose(f), 0);
        if (ret_body)
                *ret_body = answer;
        else
                free(answer);
        return status;
}

long etcd_harness_post(
        EtcdCluster *c, size_t i, const char *method, const char *body, const char *token, char **ret_body) {
        char path[128];

        snprintf(path, sizeof(path), "/v3/%s", method);
        return request(c, i, path, body ? body : "{}", token, ret_body);
}

/* Whether member @i has exited (reaped then); @status is its wait status. */
static bool member_exited(EtcdMember *m, int *status) {
        pid_t r = waitpid(m->pid, status, WNOHANG);

        assert_true(r >= 0);
        if (r == 0)
                return false;
        m->pid = -1;
        return true;
}

static void dump_log(EtcdCluster *c, size_t i) {
        char path[300], line[1024];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.log", c->dir, c->members[i].name);
        f = fopen(path, "re");
        if (!f)
                return;
        fprintf(stderr, "--- %s\n", path);
        while (fgets(line, sizeof(line), f))
                fputs(line, stderr);
        fclose(f);
}

/* Wait until member @i is healthy: true; false if it exited first (then it is reaped). */
static bool member_wait_healthy(EtcdCluster *c, size_t i) {
        uint64_t deadline = monotonic_usec() + PATIENCE_USEC;

        for (;;) {
                char *body = NULL;
                long status;
                int wstatus;

                if (member_exited(&c->members[i], &wstatus))
                        return false;
                status = request(c, i, "/health", NULL, NULL, &body);
                if (status == 200 && strstr(body, "\"health\":\"true\"")) {
                        free(body);
                        return true;
                }
                free(body);
                if (monotonic_usec() > deadline) {
                        dump_log(c, i);
                        fail_msg("etcd member %zu did not become healthy", i);
                }
                sleep_usec(POLL_USEC);
        }
}

void etcd_member_wait_healthy(EtcdCluster *c, size_t i) {
        if (!member_wait_healthy(c, i)) {
                dump_log(c, i);
                fail_msg("etcd member %zu exited", i);
        }
}

static void member_kill(EtcdMember *m) {
        if (m->pid <= 0)
                return;
        /* SIGKILL works on a stopped process too; the data goes with the directory anyway. */
        (void) kill(m->pid, SIGKILL);
        (void) reap(m->pid);
        m->pid = -1;
        m->stopped = false;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void make_certificates(EtcdCluster *c) {
        char script[4096];

        /*
         * A CA, a certificate for the members (127.0.0.1) and one for clients, EC keys for
         * speed. A file for each certificate's extensions: sh has no process substitution.
         */
        snprintf(
                script,
                sizeof(script),
                "set -e; cd '%s'\n"
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
                "-subj /CN=wg-test-ca -keyout ca.key -out ca.crt 2>/dev/null\n"
                "for who in server client; do\n"
                "  printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > "
                "$who.ext\n"
                "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                "-subj /CN=wg-test-$who -keyout $who.key -out $who.csr 2>/dev/null\n"
                "  openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                "-extfile $who.ext -out $who.crt 2>/dev/null\n"
                "done\n",
                c->dir);
        assert_int_equal(system(script), 0);
        snprintf(c->ca_file, sizeof(c->ca_file), "%s/ca.crt", c->dir);
        snprintf(c->client_cert_file, sizeof(c->client_cert_file), "%s/client.crt", c->dir);
        snprintf(c->client_key_file, sizeof(c->client_key_file), "%s/client.key", c->dir);
}

/*
 * Where etcd keeps its data: in memory (/dev/shm) where there is one. etcd syncs its log to disk
 * at every write, and on a disk that the build (or another test) has just filled with dirty pages
 * one sync can take longer than the second within which the tests' nodes expect an answer: a
 * test would then measure the disk, not wgd.
 */
static const char *data_parent(void) {
        struct stat st;

        if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK | X_OK) == 0)
                return "/dev/shm";
        return "/tmp";
}

static void cluster_start(EtcdCluster *c, size_t n, bool tls) {
        static bool curl_initialized = false;

        assert_true(n >= 1 && n <= ETCD_MEMBERS_MAX);
        assert_non_null(etcd_binary());
        if (!curl_initialized) {
                assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
                curl_initialized = true;
        }

        *c = (EtcdCluster) { .n = n, .tls = tls };
        snprintf(c->dir, sizeof(c->dir), "%s/wg-etcd-XXXXXX", data_parent());
        assert_non_null(mkdtemp(c->dir));
        if (tls)
                make_certificates(c);

        for (unsigned attempt = 1;; attempt++) {
                bool up = true;
                size_t len = 0;

                for (size_t i = 0; i < n; i++) {
                        EtcdMember *m = &c->members[i];

                        *m = (EtcdMember) { .pid = -1,
                                            .client_port = free_port(),
                                            .peer_port = free_port() };
                        snprintf(m->name, sizeof(m->name), "m%u", (unsigned) i);
                        snprintf(
                                m->url,
                                sizeof(m->url),
                                "%s://127.0.0.1:%u",
                                tls ? "https" : "http",
                                m->client_port);
                        c->endpoints[i] = m->url;
                        len += (size_t) snprintf(
                                c->initial_cluster + len,
                                sizeof(c->initial_cluster) - len,
                                "%s%s=http://127.0.0.1:%u",
                                i > 0 ? "," : "",
                                m->name,
                                m->peer_port);
                        assert_true(len < sizeof(c->initial_cluster));
                }
                c->endpoints[n] = NULL;

                for (size_t i = 0; i < n; i++)
                        member_spawn(c, i, /* existing= */ false);
                for (size_t i = 0; i < n && up; i++)
                        up = member_wait_healthy(c, i);
                if (up)
                        return;

                /* Most likely a port somebody else took meanwhile: all again, on new ports. */
                for (size_t i = 0; i < n; i++) {
                        char data[300];

                        if (attempt == START_ATTEMPTS)
                                dump_log(c, i);
                        member_kill(&c->members[i]);
                        snprintf(data, sizeof(data), "%s/%s", c->dir, c->members[i].name);
                        (void) nftw(data, remove_one, 16, FTW_DEPTH | FTW_PHYS);
                }
                if (attempt == START_ATTEMPTS)
                        fail_msg("etcd did not start");
        }
}

void etcd_cluster_start(EtcdCluster *c, size_t n) {
        cluster_start(c, n, /* tls= */ false);
}

void etcd_cluster_start_tls(EtcdCluster *c, size_t n) {
        cluster_start(c, n, /* tls= */ true);
}

void etcd_cluster_done(EtcdCluster *c) {
        if (!c->dir[0])
                return;
        for (size_t i = 0; i < c->n; i++)
                member_kill(&c->members[i]);
        (void) nftw(c->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        c->dir[0] = 0;
}

void etcd_member_signal(EtcdCluster *c, size_t i, int sig) {
        EtcdMember *m = &c->members[i];
        int status;

        assert_true(i < c->n);
        assert_true(m->pid > 0);
        if (sig == SIGKILL) {
                member_kill(m);
                return;
        }
        assert_int_equal(kill(m->pid, sig), 0);
        if (sig == SIGSTOP) {
                /* Returns once it is stopped: nothing it does after this counts. */
                assert_int_equal(waitpid(m->pid, &status, WUNTRACED), m->pid);
                assert_true(WIFSTOPPED(status));
                m->stopped = true;
        } else if (sig == SIGCONT) {
                assert_int_equal(waitpid(m->pid, &status, WCONTINUED), m->pid);
                assert_true(WIFCONTINUED(status));
                m->stopped = false;
        }
}

void etcd_member_restart(EtcdCluster *c, size_t i) {
        assert_true(i < c->n);
        assert_true(c->members[i].pid < 0);
        /* Its data directory says which cluster it belongs to; "existing" is not read then. */
        member_spawn(c, i, /* existing= */ true);
        etcd_member_wait_healthy(c, i);
}

void etcd_cluster_enable_auth(EtcdCluster *c, const char *password) {
        char body[256];

        snprintf(body, sizeof(body), "{\"name\":\"root\",\"password\":\"%s\"}", password);
        assert_int_equal(etcd_harness_post(c, 0, "auth/user/add", body, NULL, NULL), 200);
        /* The role root exists in every etcd; granting it is what auth/enable asks for. */
        assert_int_equal(
                etcd_harness_post(
                        c, 0, "auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}", NULL, NULL),
                200);
        assert_int_equal(etcd_harness_post(c, 0, "auth/enable", "{}", NULL, NULL), 200);
}

/* The token in an answer of auth/authenticate, to free. */
static char *token_of(const char *answer) {
        const char *p = strstr(answer, "\"token\":\"");
        size_t len;

        assert_non_null(p);
        p += strlen("\"token\":\"");
        len = strcspn(p, "\"");
        return strndup(p, len);
}

/* A token of root's, to free. */
static char *root_token(EtcdCluster *c, const char *password) {
        char body[256], *answer = NULL, *token;

        snprintf(body, sizeof(body), "{\"name\":\"root\",\"password\":\"%s\"}", password);
        assert_int_equal(etcd_harness_post(c, 0, "auth/authenticate", body, NULL, &answer), 200);
        token = token_of(answer);
        free(answer);
        return token;
}

void etcd_cluster_change_root_password(EtcdCluster *c, const char *old, const char *password) {
        char body[256], *token = root_token(c, old);

        assert_int_equal(etcd_harness_post(c, 0, "kv/range", "{\"key\":\"AA==\"}", token, NULL), 200);

        /* etcd drops the user's tokens with the old password (authStore.UserChangePassword). */
        snprintf(body, sizeof(body), "{\"name\":\"root\",\"password\":\"%s\"}", password);
        assert_int_equal(etcd_harness_post(c, 0, "auth/user/changepw", body, token, NULL), 200);
        assert_int_equal(etcd_harness_post(c, 0, "kv/range", "{\"key\":\"AA==\"}", token, NULL), 401);
        free(token);
}

void etcd_cluster_add_user(
        EtcdCluster *c, const char *root_password, const char *name, const char *password) {
        char body[256], *token = root_token(c, root_password);

        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
        assert_int_equal(etcd_harness_post(c, 0, "auth/user/add", body, token, NULL), 200);
        free(token);
}
