/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fault injection for wgd-fault, the test build of wgd (tests/meson.build). Every fallible call
 * that wgd's objects make (wgd, the static libwg, the generated protobuf code) is linked to a
 * wrapper here with -Wl,--wrap=SYMBOL. A wrapper counts the call, and fails it, the way the call
 * fails for real, when the count is one the environment names. Calls made inside shared
 * libraries (libc, libsystemd, protobuf-c, the sanitizers) are not redirected, so the counter
 * sees exactly the calls of wgd's own code, in the plain and in the ASan build alike.
 *
 *   WGD_FAULT_AT=N[,M...]   fail the Nth (and Mth ...) counted call; one counter over every
 *                           wrapper, so N = 1, 2, 3 ... reaches every dynamic call site once
 *   WGD_FAULT_ERRNO=E       fail with errno E (a number) instead of the call's usual one, e.g.
 *                           ENOBUFS rather than EAGAIN for sendmsg()
 *   WGD_FAULT_CALL=NAME[/DETAIL]:K
 *                           also fail the first K calls of wrapper NAME (with DETAIL only, as
 *                           the log shows it): a failure that lasts, wherever the calls come
 *                           from, e.g. memfd_create/wg:2 for the next two segments; SIGUSR2
 *                           ends it (K = 0), so that a test can say when it passes
 *   WGD_FAULT_LOG=PATH      append what happened, one line each:
 *                             ready N                   READY=1 went out with counted call N
 *                             fail NAME N errno=E [DETAIL] at ADDR...
 *                             mark N                    on SIGUSR1: N calls counted so far
 *                             exit N                    at exit, N calls counted in all
 *
 * ADDR is a return address as "+0xOFFSET" into wgd-fault (give addr2line OFFSET - 1) or
 * "LIB+0xOFFSET" into a library. Without these variables, wgd-fault is wgd: the counter is an
 * atomic increment that nothing reads, and SIGUSR1 is left alone.
 *
 * Nothing here may call a wrapped function by its plain name: --wrap redirects this file's
 * references too. The __real_ names reach the library's functions.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <protobuf-c/protobuf-c.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "fault-inject.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define AT_MAX 8

static uint64_t counter;    /* atomic: counted calls so far */
static uint64_t at[AT_MAX]; /* the calls to fail */
static size_t n_at;
static int errno_override; /* 0: each call's own */
static char call_name[64]; /* WGD_FAULT_CALL: "" for none */
static char call_detail[64];
static uint64_t call_left; /* atomic */
static int log_fd = -1;
static uintptr_t self_base; /* where wgd-fault is loaded, for offsets that addr2line reads */

static void log_write(const char *s, size_t len) {
        while (log_fd >= 0 && len > 0) {
                ssize_t n = write(log_fd, s, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                s += n;
                len -= (size_t) n;
        }
}

/* "WORD N\n", with nothing but write(): the signal handler uses it too. */
static void log_count(const char *word, uint64_t n) {
        char buf[64], digits[24];
        size_t len = 0, k = 0;

        while (*word && len < 32)
                buf[len++] = *word++;
        buf[len++] = ' ';
        do
                digits[k++] = (char) ('0' + n % 10);
        while ((n /= 10) > 0);
        while (k > 0)
                buf[len++] = digits[--k];
        buf[len++] = '\n';
        log_write(buf, len);
}

/*
 * The return addresses of the stack from @site (the wrapper's return address, in wgd) on, as
 * offsets that a symbolizer can read. (From the top if @site is not found.)
 */
static size_t format_backtrace(const void *site, char *buf, size_t size) {
        void *frames[24];
        size_t len = 0;
        int n, first = 0;

        n = backtrace(frames, (int) (sizeof(frames) / sizeof(frames[0])));
        while (first < n && frames[first] != site)
                first++;
        if (first == n)
                first = 0;
        for (int i = first; i < n && len + 64 < size; i++) {
                Dl_info info;

                if (dladdr(frames[i], &info) == 0 || !info.dli_fbase)
                        len += (size_t) snprintf(buf + len, size - len, " %p", frames[i]);
                else if ((uintptr_t) info.dli_fbase == self_base)
                        len += (size_t) snprintf(
                                buf + len,
                                size - len,
                                " +0x%zx",
                                (size_t) ((uintptr_t) frames[i] - self_base));
                else {
                        const char *lib = strrchr(info.dli_fname, '/');

                        len += (size_t) snprintf(
                                buf + len,
                                size - len,
                                " %s+0x%zx",
                                lib ? lib + 1 : info.dli_fname,
                                (size_t) ((uintptr_t) frames[i] - (uintptr_t) info.dli_fbase));
                }
        }
        return len;
}

/* See fault-inject.h. */
bool fault_hit_at(const void *site, const char *name, const char *detail, int *error) {
        uint64_t n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
        char line[1024];
        size_t len;
        bool hit = false;

        for (size_t i = 0; i < n_at; i++)
                hit = hit || at[i] == n;
        if (!hit && call_name[0] && strcmp(name, call_name) == 0 &&
            (!call_detail[0] || (detail && strcmp(detail, call_detail) == 0))) {
                uint64_t left = __atomic_load_n(&call_left, __ATOMIC_SEQ_CST);

                while (left > 0 && !hit)
                        hit = __atomic_compare_exchange_n(
                                &call_left, &left, left - 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
        if (!hit)
                return false;

        if (errno_override > 0)
                *error = errno_override;
        len = (size_t) snprintf(
                line, sizeof(line), "fail %s %llu errno=%d", name, (unsigned long long) n, *error);
        if (detail && len < sizeof(line) - 1)
                len += (size_t) snprintf(line + len, sizeof(line) - len, " [%s]", detail);
        if (len < sizeof(line) - 8) {
                memcpy(line + len, " at", 3);
                len += 3;
                len += format_backtrace(site, line + len, sizeof(line) - len - 1);
        }
        if (len > sizeof(line) - 1)
                len = sizeof(line) - 1;
        line[len++] = '\n';
        log_write(line, len);
        return true;
}

static void on_call_over(int sig) {
        __atomic_store_n(&call_left, 0, __ATOMIC_SEQ_CST);
}

static void on_mark(int sig) {
        int saved_errno = errno;

        log_count("mark", __atomic_load_n(&counter, __ATOMIC_SEQ_CST));
        errno = saved_errno;
}

static void at_exit(void) {
        log_count("exit", __atomic_load_n(&counter, __ATOMIC_SEQ_CST));
}

extern int __real_open64(const char *path, int flags, ...);
extern int __real_fcntl64(int fd, int cmd, ...);

static __attribute__((constructor)) void fault_setup(void) {
        const char *e;
        Dl_info info;

        e = getenv("WGD_FAULT_AT");
        for (char *end; e && *e && n_at < AT_MAX; e = *end == ',' ? end + 1 : end) {
                unsigned long long v = strtoull(e, &end, 10);

                if (end == e)
                        break;
                at[n_at++] = v;
        }
        e = getenv("WGD_FAULT_ERRNO");
        if (e)
                errno_override = atoi(e);
        e = getenv("WGD_FAULT_CALL");
        if (e) {
                const char *colon = strrchr(e, ':'), *slash = strchr(e, '/');
                size_t name_len;

                if (colon && (!slash || slash < colon)) {
                        name_len = (size_t) ((slash ? slash : colon) - e);
                        snprintf(call_name, sizeof(call_name), "%.*s", (int) name_len, e);
                        if (slash)
                                snprintf(
                                        call_detail,
                                        sizeof(call_detail),
                                        "%.*s",
                                        (int) (colon - slash - 1),
                                        slash + 1);
                        call_left = strtoull(colon + 1, NULL, 10);
                        (void) signal(SIGUSR2, on_call_over);
                }
        }

        e = getenv("WGD_FAULT_LOG");
        if (!e || !*e)
                return;
        log_fd = __real_open64(e, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return;
        /* Move it out of the way of the fds that systemd passes from 3 up. */
        if (log_fd < 100) {
                int high = __real_fcntl64(log_fd, F_DUPFD_CLOEXEC, 100);

                if (high >= 0) {
                        close(log_fd);
                        log_fd = high;
                }
        }
        if (dladdr((void *) fault_hit_at, &info) != 0)
                self_base = (uintptr_t) info.dli_fbase;
        {
                /* The first backtrace() loads the unwinder: not in the middle of a failing call. */
                void *frames[2];

                (void) backtrace(frames, 2);
        }
        (void) signal(SIGUSR1, on_mark);
        (void) atexit(at_exit);
}

/* Memory. */

extern void *__real_malloc(size_t size);
extern void *__real_calloc(size_t n, size_t size);
extern void *__real_realloc(void *p, size_t size);
extern char *__real_strdup(const char *s);
extern char *__real_strndup(const char *s, size_t n);
extern void *__real_tsearch(const void *key, void **root, int (*compare)(const void *, const void *));

void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size) {
        int error = ENOMEM;

        if (fault_hit("malloc", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size) {
        int error = ENOMEM;

        if (fault_hit("calloc", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size) {
        int error = ENOMEM;

        /* A failed realloc() leaves the old block alone, as the caller must know. */
        if (fault_hit("realloc", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_realloc(p, size);
}

char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s) {
        int error = ENOMEM;

        if (fault_hit("strdup", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n);
char *__wrap_strndup(const char *s, size_t n) {
        int error = ENOMEM;

        if (fault_hit("strndup", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_strndup(s, n);
}

/* tsearch() allocates the node of a new key: NULL then, and the tree is unchanged. */
void *__wrap_tsearch(const void *key, void **root, int (*compare)(const void *, const void *));
void *__wrap_tsearch(const void *key, void **root, int (*compare)(const void *, const void *)) {
        int error = ENOMEM;

        if (fault_hit("tsearch", NULL, &error)) {
                errno = error;
                return NULL;
        }
        return __real_tsearch(key, root, compare);
}

/* protobuf-c answers NULL for out of memory as for a malformed message; so does this. */
extern ProtobufCMessage *__real_protobuf_c_message_unpack(
        const ProtobufCMessageDescriptor *desc,
        ProtobufCAllocator *allocator,
        size_t len,
        const uint8_t *data);

ProtobufCMessage *__wrap_protobuf_c_message_unpack(
        const ProtobufCMessageDescriptor *desc,
        ProtobufCAllocator *allocator,
        size_t len,
        const uint8_t *data);
ProtobufCMessage *__wrap_protobuf_c_message_unpack(
        const ProtobufCMessageDescriptor *desc,
        ProtobufCAllocator *allocator,
        size_t len,
        const uint8_t *data) {
        int error = ENOMEM;

        if (fault_hit("protobuf_c_message_unpack", desc->name, &error))
                return NULL;
        return __real_protobuf_c_message_unpack(desc, allocator, len, data);
}

/* Threads, descriptors, mappings. */

extern int
__real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
        int error = EAGAIN;

        if (fault_hit("pthread_create", NULL, &error))
                return error;
        return __real_pthread_create(thread, attr, start, arg);
}

extern int __real_eventfd(unsigned initval, int flags);

int __wrap_eventfd(unsigned initval, int flags);
int __wrap_eventfd(unsigned initval, int flags) {
        int error = EMFILE;

        if (fault_hit("eventfd", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_eventfd(initval, flags);
}

extern int __real_memfd_create(const char *name, unsigned flags);

int __wrap_memfd_create(const char *name, unsigned flags);
int __wrap_memfd_create(const char *name, unsigned flags) {
        int error = EMFILE;

        if (fault_hit("memfd_create", name, &error)) {
                errno = error;
                return -1;
        }
        return __real_memfd_create(name, flags);
}

extern void *__real_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
extern void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);

void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
void *__wrap_mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t offset) {
        int error = ENOMEM;

        if (fault_hit("mmap", NULL, &error)) {
                errno = error;
                return MAP_FAILED;
        }
        return __real_mmap64(addr, len, prot, flags, fd, offset);
}

/* The same for a build without large-file names (the object then refers to plain mmap). */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset) {
        int error = ENOMEM;

        if (fault_hit("mmap", NULL, &error)) {
                errno = error;
                return MAP_FAILED;
        }
        return __real_mmap(addr, len, prot, flags, fd, offset);
}

/* A page for the segment's header: shmem can be out of memory (or over a cgroup's limit). */
extern ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t offset);
extern ssize_t __real_pwrite(int fd, const void *buf, size_t len, off_t offset);

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t offset);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t offset) {
        int error = ENOMEM;

        if (fault_hit("pwrite", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_pwrite64(fd, buf, len, offset);
}

ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t offset);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t len, off_t offset) {
        int error = ENOMEM;

        if (fault_hit("pwrite", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_pwrite(fd, buf, len, offset);
}

/*
 * fcntl(): only the commands that can fail on a good fd are counted. F_DUPFD_CLOEXEC needs a
 * free fd (EMFILE); F_ADD_SEALS is refused with EBUSY when the kernel will not seal. F_GETFL,
 * F_SETFD, F_GET_SEALS, and F_SETFL with O_NONBLOCK on a socket, do not fail on an open fd.
 */
extern int __real_fcntl(int fd, int cmd, ...);

static bool fcntl_fault(const void *site, int cmd, int *error) {
        if (cmd == F_DUPFD_CLOEXEC) {
                *error = EMFILE;
                return fault_hit_at(site, "fcntl", "F_DUPFD_CLOEXEC", error);
        }
        if (cmd == F_ADD_SEALS) {
                *error = EBUSY;
                return fault_hit_at(site, "fcntl", "F_ADD_SEALS", error);
        }
        return false;
}

int __wrap_fcntl64(int fd, int cmd, ...);
int __wrap_fcntl64(int fd, int cmd, ...) {
        va_list ap;
        void *arg;
        int error;

        /* Every command's argument is an int or a pointer: passed the same way on Linux ABIs. */
        va_start(ap, cmd);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (fcntl_fault(__builtin_return_address(0), cmd, &error)) {
                errno = error;
                return -1;
        }
        return __real_fcntl64(fd, cmd, arg);
}

int __wrap_fcntl(int fd, int cmd, ...);
int __wrap_fcntl(int fd, int cmd, ...) {
        va_list ap;
        void *arg;
        int error;

        va_start(ap, cmd);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (fcntl_fault(__builtin_return_address(0), cmd, &error)) {
                errno = error;
                return -1;
        }
        return __real_fcntl(fd, cmd, arg);
}

/* open(): the lock file next to a socket wgd binds, /proc/PID/cmdline of a member. */
extern int __real_open(const char *path, int flags, ...);

static int open_fault(const void *site, const char *path, int flags, va_list ap, bool large) {
        mode_t mode = 0;
        int error = EMFILE;

        /* As the C library reads it: O_TMPFILE includes O_DIRECTORY, so all of its bits. */
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
                mode = va_arg(ap, mode_t);
        if (fault_hit_at(site, "open", path, &error)) {
                errno = error;
                return -1;
        }
        return large ? __real_open64(path, flags, mode) : __real_open(path, flags, mode);
}

int __wrap_open64(const char *path, int flags, ...);
int __wrap_open64(const char *path, int flags, ...) {
        va_list ap;
        int r;

        va_start(ap, flags);
        r = open_fault(__builtin_return_address(0), path, flags, ap, true);
        va_end(ap);
        return r;
}

int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...) {
        va_list ap;
        int r;

        va_start(ap, flags);
        r = open_fault(__builtin_return_address(0), path, flags, ap, false);
        va_end(ap);
        return r;
}

/* Sockets. */

extern int __real_socket(int domain, int type, int protocol);

int __wrap_socket(int domain, int type, int protocol);
int __wrap_socket(int domain, int type, int protocol) {
        int error = EMFILE;

        if (fault_hit("socket", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_socket(domain, type, protocol);
}

extern int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
        int error = EMFILE;

        if (fault_hit("accept4", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_accept4(fd, addr, len, flags);
}

/* A full socket buffer (EAGAIN), or with WGD_FAULT_ERRNO another failure such as ENOBUFS. */
extern ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags) {
        int error = EAGAIN;

        if (fault_hit("sendmsg", msg->msg_controllen > 0 ? "with fd" : NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_sendmsg(fd, msg, flags);
}

/* The same for a batch of answers: none of them goes out. */
extern int __real_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);

int __wrap_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags);
int __wrap_sendmmsg(int fd, struct mmsghdr *msgs, unsigned n, int flags) {
        int error = EAGAIN;

        if (fault_hit("sendmmsg", n > 1 ? "batch" : NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_sendmmsg(fd, msgs, n, flags);
}

/* The peer's credentials, groups and pidfd: the kernel allocates for the last two. */
extern int __real_getsockopt(int fd, int level, int name, void *value, socklen_t *len);

int __wrap_getsockopt(int fd, int level, int name, void *value, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
        int error = ENOMEM;
        const char *what = NULL;

        if (level == SOL_SOCKET && name == SO_PEERCRED)
                what = "SO_PEERCRED";
        else if (level == SOL_SOCKET && name == SO_PEERGROUPS)
                what = "SO_PEERGROUPS";
        else if (level == SOL_SOCKET && name == SO_PEERPIDFD) {
                what = "SO_PEERPIDFD";
                error = EMFILE;
        }
        if (what && fault_hit("getsockopt", what, &error)) {
                errno = error;
                return -1;
        }
        return __real_getsockopt(fd, level, name, value, len);
}

/* GRND_NONBLOCK before the kernel's pool is ready: EAGAIN. */
extern ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags) {
        int error = EAGAIN;

        if (fault_hit("getrandom", NULL, &error)) {
                errno = error;
                return -1;
        }
        return __real_getrandom(buf, len, flags);
}

/* libsystemd: sd-event allocates for every source; the notify socket can be full (EAGAIN). */

extern int __real_sd_event_new(sd_event **ret);

int __wrap_sd_event_new(sd_event **ret);
int __wrap_sd_event_new(sd_event **ret) {
        int error = ENOMEM;

        if (fault_hit("sd_event_new", NULL, &error))
                return -error;
        return __real_sd_event_new(ret);
}

extern int __real_sd_event_add_io(
        sd_event *e,
        sd_event_source **s,
        int fd,
        uint32_t events,
        sd_event_io_handler_t callback,
        void *userdata);

int __wrap_sd_event_add_io(
        sd_event *e,
        sd_event_source **s,
        int fd,
        uint32_t events,
        sd_event_io_handler_t callback,
        void *userdata);
int __wrap_sd_event_add_io(
        sd_event *e,
        sd_event_source **s,
        int fd,
        uint32_t events,
        sd_event_io_handler_t callback,
        void *userdata) {
        int error = ENOMEM;

        if (fault_hit("sd_event_add_io", NULL, &error))
                return -error;
        return __real_sd_event_add_io(e, s, fd, events, callback, userdata);
}

extern int __real_sd_event_add_time_relative(
        sd_event *e,
        sd_event_source **s,
        clockid_t clock,
        uint64_t usec,
        uint64_t accuracy,
        sd_event_time_handler_t callback,
        void *userdata);

int __wrap_sd_event_add_time_relative(
        sd_event *e,
        sd_event_source **s,
        clockid_t clock,
        uint64_t usec,
        uint64_t accuracy,
        sd_event_time_handler_t callback,
        void *userdata);
int __wrap_sd_event_add_time_relative(
        sd_event *e,
        sd_event_source **s,
        clockid_t clock,
        uint64_t usec,
        uint64_t accuracy,
        sd_event_time_handler_t callback,
        void *userdata) {
        int error = ENOMEM;

        if (fault_hit("sd_event_add_time_relative", NULL, &error))
                return -error;
        return __real_sd_event_add_time_relative(e, s, clock, usec, accuracy, callback, userdata);
}

extern int __real_sd_event_add_signal(
        sd_event *e, sd_event_source **s, int sig, sd_event_signal_handler_t callback, void *userdata);

int __wrap_sd_event_add_signal(
        sd_event *e, sd_event_source **s, int sig, sd_event_signal_handler_t callback, void *userdata);
int __wrap_sd_event_add_signal(
        sd_event *e, sd_event_source **s, int sig, sd_event_signal_handler_t callback, void *userdata) {
        int error = ENOMEM;

        if (fault_hit("sd_event_add_signal", sigabbrev_np(sig), &error))
                return -error;
        return __real_sd_event_add_signal(e, s, sig, callback, userdata);
}

extern int __real_sd_event_set_watchdog(sd_event *e, int b);

int __wrap_sd_event_set_watchdog(sd_event *e, int b);
int __wrap_sd_event_set_watchdog(sd_event *e, int b) {
        int error = ENOMEM;

        if (fault_hit("sd_event_set_watchdog", NULL, &error))
                return -error;
        return __real_sd_event_set_watchdog(e, b);
}

/* Turning a source on can fail (epoll_ctl() allocates); turning it off cannot. */
extern int __real_sd_event_source_set_enabled(sd_event_source *s, int enabled);

int __wrap_sd_event_source_set_enabled(sd_event_source *s, int enabled);
int __wrap_sd_event_source_set_enabled(sd_event_source *s, int enabled) {
        const char *description = NULL;
        int error = ENOMEM;

        /* The source's description, if it has one, is the detail (WGD_FAULT_CALL can name it). */
        (void) sd_event_source_get_description(s, &description);
        if (enabled != SD_EVENT_OFF && fault_hit("sd_event_source_set_enabled", description, &error))
                return -error;
        return __real_sd_event_source_set_enabled(s, enabled);
}

extern int __real_sd_listen_fds_with_names(int unset_environment, char ***names);

int __wrap_sd_listen_fds_with_names(int unset_environment, char ***names);
int __wrap_sd_listen_fds_with_names(int unset_environment, char ***names) {
        int error = ENOMEM;

        if (fault_hit("sd_listen_fds_with_names", NULL, &error))
                return -error;
        return __real_sd_listen_fds_with_names(unset_environment, names);
}

/* The notification, on one line for the log: "READY=1 STATUS=...", "FDSTORE=1 FDNAME=wg1...". */
static void notify_detail(const char *state, char *buf, size_t size) {
        size_t i;

        for (i = 0; state[i] && i < size - 1; i++)
                buf[i] = state[i] == '\n' ? ' ' : state[i];
        buf[i] = 0;
}

static bool notify_fault(const void *site, const char *name, const char *state, int *error) {
        char detail[300];

        notify_detail(state, detail, sizeof(detail));
        return fault_hit_at(site, name, detail, error);
}

/* After READY=1 went out: the counter from here on counts what wgd does while it serves. */
static void notify_sent(const char *state, int r) {
        if (r > 0 && strstr(state, "READY=1"))
                log_count("ready", __atomic_load_n(&counter, __ATOMIC_SEQ_CST));
}

extern int __real_sd_notify(int unset_environment, const char *state);

int __wrap_sd_notify(int unset_environment, const char *state);
int __wrap_sd_notify(int unset_environment, const char *state) {
        int error = EAGAIN, r;

        if (notify_fault(__builtin_return_address(0), "sd_notify", state, &error))
                return -error;
        r = __real_sd_notify(unset_environment, state);
        notify_sent(state, r);
        return r;
}

int __wrap_sd_notifyf(int unset_environment, const char *format, ...) __attribute__((format(printf, 2, 3)));
int __wrap_sd_notifyf(int unset_environment, const char *format, ...) {
        char state[4096];
        va_list ap;
        int error = EAGAIN, r;

        va_start(ap, format);
        r = vsnprintf(state, sizeof(state), format, ap);
        va_end(ap);
        if (r < 0 || (size_t) r >= sizeof(state))
                return -EINVAL; /* wgd's notifications are short; a long one is a bug here */

        if (notify_fault(__builtin_return_address(0), "sd_notifyf", state, &error))
                return -error;
        r = __real_sd_notify(unset_environment, state);
        notify_sent(state, r);
        return r;
}

extern int __real_sd_pid_notify_with_fds(
        pid_t pid, int unset_environment, const char *state, const int *fds, unsigned n_fds);

int __wrap_sd_pid_notify_with_fds(
        pid_t pid, int unset_environment, const char *state, const int *fds, unsigned n_fds);
int __wrap_sd_pid_notify_with_fds(
        pid_t pid, int unset_environment, const char *state, const int *fds, unsigned n_fds) {
        int error = EAGAIN, r;

        if (notify_fault(__builtin_return_address(0), "sd_pid_notify_with_fds", state, &error))
                return -error;
        r = __real_sd_pid_notify_with_fds(pid, unset_environment, state, fds, n_fds);
        notify_sent(state, r);
        return r;
}
