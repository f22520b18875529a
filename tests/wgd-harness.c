/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "seqpacket.h"
#include "test-util.h"
#include "wgd-harness.h"

/* Nothing in these tests takes this long unless something hangs. */
#define PATIENCE_MSEC 20000

static int bind_unix(int type, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

static void *pump_thread(void *p);

void harness_init(Harness *h) {
        *h = (Harness) { .listen_fd = -1, .notify_fd = -1, .pid = -1 };

        snprintf(h->dir, sizeof(h->dir), "/tmp/wg-test-XXXXXX");
        assert_non_null(mkdtemp(h->dir));
        assert_int_equal(chmod(h->dir, 0755), 0);
        snprintf(h->socket_path, sizeof(h->socket_path), "%s/wgd.sock", h->dir);
        snprintf(h->notify_path, sizeof(h->notify_path), "%s/notify", h->dir);

        /* What the socket unit does: bind, open to all (wgd checks each request), listen. */
        h->listen_fd = bind_unix(SOCK_SEQPACKET, h->socket_path);
        assert_int_equal(chmod(h->socket_path, 0666), 0);
        assert_int_equal(listen(h->listen_fd, SOMAXCONN), 0);

        h->notify_fd = bind_unix(SOCK_DGRAM | SOCK_NONBLOCK, h->notify_path);
        assert_int_equal(setenv("WGD_SOCKET", h->socket_path, 1), 0);

        assert_int_equal(pthread_mutex_init(&h->mutex, NULL), 0);
        assert_int_equal(pthread_create(&h->pump, NULL, pump_thread, h), 0);
}

/*
 * Close and forget the stored fds named @name, or (@prefix) whose name starts with it; how many.
 * Under the mutex.
 */
static size_t store_drop(Harness *h, const char *name, bool prefix) {
        size_t n = 0;

        for (size_t i = 0; i < h->n_store;)
                if (prefix ? strncmp(h->store[i].name, name, strlen(name)) == 0 :
                             strcmp(h->store[i].name, name) == 0) {
                        close(h->store[i].fd);
                        h->store[i] = h->store[--h->n_store];
                        n++;
                } else
                        i++;
        return n;
}

/* One notify datagram: apply FDSTORE/FDSTOREREMOVE; returns whether it said READY=1. */
static bool notify_one(Harness *h, int flags) {
        char buf[4096];
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * 16)];
        } control = {};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        int fds[16];
        size_t n_fds = 0;
        const char *fdname = NULL;
        bool store = false, remove = false, ready = false;
        ssize_t n;

        n = recvmsg(h->notify_fd, &mh, MSG_CMSG_CLOEXEC | flags);
        if (n < 0)
                return false;
        buf[n] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && n_fds < 16; i++)
                                memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));

        for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                if (strcmp(line, "READY=1") == 0)
                        ready = true;
                else if (strcmp(line, "FDSTORE=1") == 0)
                        store = true;
                else if (strcmp(line, "FDSTOREREMOVE=1") == 0)
                        remove = true;
                else if (strncmp(line, "FDNAME=", 7) == 0)
                        fdname = line + 7;
                else if (strcmp(line, "WATCHDOG=1") == 0)
                        h->n_watchdog++;
                else if (strcmp(line, "STOPPING=1") == 0)
                        h->stopping = true;
                else if (strncmp(line, "STATUS=", 7) == 0)
                        snprintf(h->status, sizeof(h->status), "%s", line + 7);
        }

        if (store && fdname) {
                for (size_t i = 0; i < n_fds && h->n_store < HARNESS_STORE_MAX; i++) {
                        snprintf(h->store[h->n_store].name, sizeof(h->store[0].name), "%s", fdname);
                        h->store[h->n_store++].fd = fds[i];
                }
                n_fds = 0;
        }
        if (remove && fdname)
                (void) store_drop(h, fdname, /* prefix= */ false);
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        return ready;
}

/* Called with the mutex held. */
static void pump_locked(Harness *h) {
        char c;

        while (recv(h->notify_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
                if (notify_one(h, MSG_DONTWAIT))
                        h->ready = true;
}

void harness_pump(Harness *h) {
        pthread_mutex_lock(&h->mutex);
        pump_locked(h);
        pthread_mutex_unlock(&h->mutex);
}

/*
 * systemd reads NOTIFY_SOCKET at once, and wgd's sd_notify() blocks when the socket's queue is
 * full; so must we read at once, whatever the test is doing: a thread drains it.
 */
static void *pump_thread(void *p) {
        Harness *h = p;

        while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST)) {
                struct pollfd pfd = { .fd = h->notify_fd, .events = POLLIN };

                if (poll(&pfd, 1, 50) > 0)
                        harness_pump(h);
        }
        return NULL;
}

/* Is @entry ("NAME=VALUE") one that @env (NULL-terminated, may be NULL) sets too? */
static bool env_overridden(const char *entry, const char *const *env) {
        size_t len = strcspn(entry, "=");

        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], entry, len) == 0 && env[i][len] == '=')
                        return true;
        return false;
}

void harness_spawn(Harness *h, const char *const *args, const HarnessOptions *opts) {
        static char names[HARNESS_STORE_MAX * 260 + 32], fds_env[32], pid_env[32], notify_env[320],
                watchdog_env[64];
        static const HarnessOptions defaults = {};
        extern char **environ;
        const char *wgd;
        size_t n_args = 0, n_env = 0, n_extra = 0;
        int err_fd = -1;
        pid_t pid;

        if (!opts)
                opts = &defaults;
        wgd = opts->binary ? opts->binary : getenv("WG_WGD");
        assert_non_null(wgd);
        assert_true(h->pid < 0);
        while (args && args[n_args])
                n_args++;
        while (environ[n_env])
                n_env++;
        while (opts->env && opts->env[n_extra])
                n_extra++;

        /*
         * Everything the child needs is prepared here: after fork() in a process with threads,
         * the child may only make plain system calls until it execs.
         */
        const char *argv[n_args + 2];
        const char *envp[n_env + n_extra + 6];
        size_t k = 0;

        argv[0] = wgd;
        for (size_t i = 0; i < n_args; i++)
                argv[i + 1] = args[i];
        argv[n_args + 1] = NULL;
        for (size_t i = 0; i < n_env; i++)
                if (strncmp(environ[i], "LISTEN_", 7) != 0 &&
                    strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0 &&
                    strncmp(environ[i], "WATCHDOG_", 9) != 0 && !env_overridden(environ[i], opts->env))
                        envp[k++] = environ[i];
        for (size_t i = 0; i < n_extra; i++)
                envp[k++] = opts->env[i];
        if (!opts->no_listen_fds) {
                envp[k++] = names;
                envp[k++] = fds_env;
                envp[k++] = pid_env;
        }
        envp[k++] = notify_env;
        envp[k++] = watchdog_env;
        envp[k] = NULL;

        snprintf(watchdog_env, sizeof(watchdog_env), "WATCHDOG_USEC=%u", HARNESS_WATCHDOG_USEC);

        if (opts->stderr_path) {
                err_fd = open(opts->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                assert_true(err_fd >= 0);
        }

        pthread_mutex_lock(&h->mutex);
        h->ready = false;
        h->stopping = false;
        h->n_watchdog = 0;
        strcpy(names, "LISTEN_FDNAMES=control");
        for (size_t i = 0; i < h->n_store; i++) {
                strcat(names, ":");
                strcat(names, h->store[i].name);
        }
        snprintf(fds_env, sizeof(fds_env), "LISTEN_FDS=%zu", h->n_store + 1);
        snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", h->notify_path);

        pid = fork();
        if (pid == 0) {
                int high[HARNESS_STORE_MAX + 1];

                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(120);
                if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
                        _exit(123);

                if (opts->no_listen_fds)
                        closefrom(3);
                else {
                        /* fd 3 is the socket, 4... the stored segments, as systemd lays them out. */
                        high[0] = fcntl(h->listen_fd, F_DUPFD, 1000);
                        for (size_t i = 0; i < h->n_store; i++)
                                high[i + 1] = fcntl(h->store[i].fd, F_DUPFD, 1000);
                        for (size_t i = 0; i <= h->n_store; i++)
                                if (high[i] < 0 || dup2(high[i], 3 + (int) i) < 0)
                                        _exit(121);
                        closefrom(4 + (int) h->n_store);
                }

                if (h->nofile > 0) {
                        struct rlimit rl = { .rlim_cur = h->nofile, .rlim_max = h->nofile };

                        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                                _exit(122);
                }

                /*
                 * Root without capabilities: with the bounding set empty, exec() gives root none,
                 * so the kernel's own limits apply to wgd as to anybody (the fds it may have in
                 * flight in unix sockets: RLIMIT_NOFILE).
                 */
                if (opts->no_capabilities)
                        for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
                                if (prctl(PR_CAPBSET_DROP, cap) < 0)
                                        _exit(124);

                /* LISTEN_PID is the one thing only the child knows. */
                {
                        char digits[16];
                        int pid_now = (int) syscall(SYS_getpid), n = 0;

                        do
                                digits[n++] = (char) ('0' + pid_now % 10);
                        while ((pid_now /= 10) > 0);
                        strcpy(pid_env, "LISTEN_PID=");
                        for (size_t j = strlen(pid_env); n > 0; j++)
                                pid_env[j] = digits[--n], pid_env[j + 1] = 0;
                }
                execve(wgd, (char *const *) argv, (char *const *) envp);
                _exit(127);
        }
        pthread_mutex_unlock(&h->mutex);
        if (err_fd >= 0)
                close(err_fd);
        assert_true(pid >= 0);
        h->pid = pid;
        /* As systemd does, keep the stored fds: the store outlives each run of the service. */
}

int harness_wait_ready(Harness *h, unsigned timeout_msec, int *ret_status) {
        assert_true(h->pid > 0);

        for (unsigned i = 0;; i++) {
                bool ready;
                int status;

                pthread_mutex_lock(&h->mutex);
                pump_locked(h);
                ready = h->ready;
                pthread_mutex_unlock(&h->mutex);
                if (ready)
                        return 0;

                if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
                        h->pid = -1;
                        harness_pump(h);
                        if (ret_status)
                                *ret_status =
                                        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                        return -ECHILD;
                }
                if (i >= timeout_msec)
                        return -ETIMEDOUT;
                usleep(1000);
        }
}

void harness_start(Harness *h, const char *const *args) {
        int r, status = 0;

        harness_spawn(h, args, NULL);
        r = harness_wait_ready(h, PATIENCE_MSEC, &status);
        if (r == -ECHILD)
                fail_msg("wgd exited with status %d before READY=1", status);
        if (r < 0)
                fail_msg("wgd did not send READY=1");
}

int harness_stop(Harness *h, int sig) {
        int status;

        assert_true(h->pid > 0);
        if (sig)
                assert_int_equal(kill(h->pid, sig), 0);
        status = reap(h->pid);
        h->pid = -1;
        harness_pump(h);
        return status;
}

void harness_done(Harness *h) {
        if (h->pid > 0)
                (void) harness_stop(h, SIGKILL);
        __atomic_store_n(&h->stop, true, __ATOMIC_SEQ_CST);
        /* Wake the pump at once, rather than at the end of its poll: an empty datagram. */
        {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

                strcpy(sa.sun_path, h->notify_path);
                if (fd >= 0) {
                        (void) sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *) &sa, sizeof(sa));
                        close(fd);
                }
        }
        pthread_join(h->pump, NULL);
        pthread_mutex_destroy(&h->mutex);
        for (size_t i = 0; i < h->n_store; i++)
                close(h->store[i].fd);
        h->n_store = 0;
        close(h->listen_fd);
        close(h->notify_fd);

        /* Whatever the test left in the directory (sockets, lock files), then the directory. */
        {
                DIR *d = opendir(h->dir);
                struct dirent *de;

                while (d && (de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                if (d)
                        closedir(d);
        }
        rmdir(h->dir);
        unsetenv("WGD_SOCKET");
}

size_t harness_drop_stored(Harness *h, const char *prefix) {
        size_t n;

        assert_true(h->pid <= 0);
        pthread_mutex_lock(&h->mutex);
        n = store_drop(h, prefix, /* prefix= */ true);
        pthread_mutex_unlock(&h->mutex);
        return n;
}

size_t harness_stored(Harness *h, const char *group) {
        size_t n = 0, len = strlen(group);

        pthread_mutex_lock(&h->mutex);
        pump_locked(h);
        for (size_t i = 0; i < h->n_store; i++) {
                size_t l = strlen(h->store[i].name);

                if (strncmp(h->store[i].name, "wg1.", 4) == 0 && l > len &&
                    strcmp(h->store[i].name + l - len, group) == 0 && h->store[i].name[l - len - 1] == '.')
                        n++;
        }
        pthread_mutex_unlock(&h->mutex);
        return n;
}

unsigned proc_fd_count(pid_t pid) {
        char path[64];
        unsigned n = 0;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n - 2;
}

unsigned proc_socket_count(pid_t pid) {
        char path[64], link[384], target[64];
        unsigned n = 0;
        struct dirent *de;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        assert_non_null(d);
        while ((de = readdir(d))) {
                ssize_t len;

                snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
                len = readlink(link, target, sizeof(target) - 1);
                if (len > 0) {
                        target[len] = 0;
                        n += strncmp(target, "socket:", 7) == 0;
                }
        }
        closedir(d);
        return n;
}

void proc_settle_sockets(pid_t pid, unsigned n) {
        for (unsigned i = 0; proc_socket_count(pid) != n; i++) {
                if (i >= PATIENCE_MSEC / 10)
                        fail_msg("wgd still has %u sockets, not %u", proc_socket_count(pid), n);
                usleep(10 * 1000);
        }
}

unsigned long proc_cpu_ticks(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long utime = 0, stime = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        /* After the command name, which may hold anything but ends at the last ')'. */
        p = strrchr(buf, ')');
        assert_non_null(p);
        assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime), 2);
        return utime + stime;
}

unsigned long proc_rss_kib(pid_t pid) {
        char path[64], line[256];
        unsigned long kib = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %lu kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

int pc_connect(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

void pc_send(int fd, Wg__V1__Request *req) {
        uint8_t buf[WG_RECORD_MAX];
        size_t len = wg__v1__request__get_packed_size(req);

        assert_true(len <= sizeof(buf));
        wg__v1__request__pack(req, buf);
        assert_int_equal(seqpacket_send(fd, buf, len, -1, 0), 0);
}

void pc_send_id(int fd, uint64_t id, Wg__V1__Request *req) {
        req->has_version = req->has_id = true;
        req->version = 1;
        req->id = id;
        pc_send(fd, req);
}

Wg__V1__Response *pc_recv(int fd, int *ret_fd) {
        uint8_t buf[WG_RECORD_MAX];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        Wg__V1__Response *r;
        ssize_t n;

        if (poll(&p, 1, PATIENCE_MSEC) != 1)
                fail_msg("no response from wgd");
        n = seqpacket_recv(fd, buf, sizeof(buf), ret_fd, 0);
        if (n <= 0)
                fail_msg("reading a response: %zd", n);
        r = wg__v1__response__unpack(NULL, (size_t) n, buf);
        assert_non_null(r);
        return r;
}

Wg__V1__Response *pc_call(int fd, Wg__V1__Request *req, int *ret_fd) {
        static uint64_t next_id = 1000;
        Wg__V1__Response *r;

        pc_send_id(fd, next_id++, req);
        r = pc_recv(fd, ret_fd);
        assert_true(r->has_id);
        assert_true(r->id == req->id);
        return r;
}

void pc_free(Wg__V1__Response *r) {
        wg__v1__response__free_unpacked(r, NULL);
}

int pc_errnum(const Wg__V1__Response *r) {
        if (r->result_case != WG__V1__RESPONSE__RESULT_ERROR)
                return 0;
        assert_non_null(r->error);
        assert_true(r->error->has_errnum);
        assert_non_null(r->error->message);
        assert_true(strlen(r->error->message) > 0);
        return r->error->errnum;
}

void pc_expect(Wg__V1__Response *r, int errnum) {
        int e = pc_errnum(r);

        if (e != errnum)
                fail_msg("expected errno %d (%s), got %d (%s): %s", errnum, strerror(errnum), e, strerror(e),
                         e ? r->error->message : "success");
        pc_free(r);
}

static Wg__V1__Response *create(int fd, const char *name, uint32_t mode, uint64_t count, bool cluster) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Create m = WG__V1__CREATE__INIT;

        m.name = (char *) name;
        m.has_cluster = m.cluster = cluster;
        if (mode) {
                m.has_mode = true;
                m.mode = mode;
        }
        m.has_count = true;
        m.count = count;
        req.op_case = WG__V1__REQUEST__OP_CREATE;
        req.create = &m;
        return pc_call(fd, &req, NULL);
}

Wg__V1__Response *pc_create(int fd, const char *name, uint32_t mode, uint64_t count) {
        return create(fd, name, mode, count, false);
}

Wg__V1__Response *pc_create_cluster(int fd, const char *name, uint32_t mode, uint64_t count) {
        return create(fd, name, mode, count, true);
}

Wg__V1__Response *pc_stat_generation(int fd, const char *name, uint64_t generation) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Stat m = WG__V1__STAT__INIT;

        m.name = (char *) name;
        if (generation != UINT64_MAX) {
                m.has_generation = true;
                m.generation = generation;
        }
        req.op_case = WG__V1__REQUEST__OP_STAT;
        req.stat = &m;
        return pc_call(fd, &req, NULL);
}

Wg__V1__Response *pc_stat(int fd, const char *name) {
        return pc_stat_generation(fd, name, UINT64_MAX);
}

Wg__V1__Response *pc_add(int fd, const char *name, int64_t delta) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Add m = WG__V1__ADD__INIT;

        m.name = (char *) name;
        m.has_delta = true;
        m.delta = delta;
        req.op_case = WG__V1__REQUEST__OP_ADD;
        req.add = &m;
        return pc_call(fd, &req, NULL);
}

Wg__V1__Response *pc_delete(int fd, const char *name) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Delete m = WG__V1__DELETE__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_DELETE;
        req.delete_ = &m;
        return pc_call(fd, &req, NULL);
}

Wg__V1__Response *pc_list(int fd, const char *after) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__List m = WG__V1__LIST__INIT;

        m.after = (char *) after;
        req.op_case = WG__V1__REQUEST__OP_LIST;
        req.list = &m;
        return pc_call(fd, &req, NULL);
}

Wg__V1__Response *pc_open(int fd, const char *name, int *ret_fd) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Open m = WG__V1__OPEN__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_OPEN;
        req.open = &m;
        return pc_call(fd, &req, ret_fd);
}

Wg__V1__Response *pc_join(int fd, const char *name, int *ret_fd) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Join m = WG__V1__JOIN__INIT;

        m.name = (char *) name;
        req.op_case = WG__V1__REQUEST__OP_JOIN;
        req.join = &m;
        return pc_call(fd, &req, ret_fd);
}

void pc_wait_send(int fd, uint64_t id, const char *name, uint64_t timeout_usec) {
        Wg__V1__Request req = WG__V1__REQUEST__INIT;
        Wg__V1__Wait m = WG__V1__WAIT__INIT;

        m.name = (char *) name;
        if (timeout_usec != UINT64_MAX) {
                m.has_timeout_usec = true;
                m.timeout_usec = timeout_usec;
        }
        req.op_case = WG__V1__REQUEST__OP_WAIT;
        req.wait = &m;
        pc_send_id(fd, id, &req);
}

pid_t spawn_wgd(const char *const *args) {
        const char *wgd = getenv("WG_WGD");
        size_t n_args = 0;
        pid_t pid;

        assert_non_null(wgd);
        while (args[n_args])
                n_args++;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const char *argv[n_args + 2];

                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(120);
                closefrom(3);
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                unsetenv("NOTIFY_SOCKET");
                argv[0] = wgd;
                for (size_t i = 0; i < n_args; i++)
                        argv[i + 1] = args[i];
                argv[n_args + 1] = NULL;
                execv(wgd, (char *const *) argv);
                _exit(127);
        }
        return pid;
}

int connect_retry(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        strcpy(sa.sun_path, path);
        for (unsigned i = 0; i < PATIENCE_MSEC / 10; i++) {
                int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

                assert_true(fd >= 0);
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        return fd;
                close(fd);
                usleep(10 * 1000);
        }
        fail_msg("nobody listens on %s", path);
        return -1;
}

int harness_setup(void **state) {
        Harness *h = calloc(1, sizeof(*h));

        assert_non_null(h);
        harness_init(h);
        *state = h;
        return 0;
}

int harness_teardown(void **state) {
        Harness *h = *state;

        harness_done(h);
        free(h);
        return 0;
}
