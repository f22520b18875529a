/* SPDX-License-Identifier: LGPL-2.1-or-later */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"

static void (*on_die_hook)(void);
static pid_t main_pid;

void bench_init(void (*on_die)(void)) {
        on_die_hook = on_die;
        main_pid = getpid();
}

_Noreturn void die(const char *what, int err) {
        fprintf(stderr, "bench[%d]: %s: %s\n", (int) getpid(), what, strerror(err));
        if (getpid() == main_pid) {
                if (on_die_hook)
                        on_die_hook();
                (void) fflush(stdout);
        } else if (main_pid > 0)
                /* Or the main process might wait forever for a post from us; its death kills the rest. */
                (void) kill(main_pid, SIGTERM);
        /* Not exit(): a child must not flush stdio buffers that belong to its parent. */
        _exit(EXIT_FAILURE);
}

uint64_t now_ns(void) {
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                die("clock_gettime", errno);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/*
 * The peers work on the same kind of memory as libwg: a shared memfd mapping, so that futexes
 * on it take the kernel's shared (inode-keyed) path, as libwg's do.
 */
void *shared_memory(size_t size) {
        void *p;
        int fd;

        fd = memfd_create("bench", MFD_CLOEXEC);
        if (fd < 0)
                die("memfd_create", errno);
        if (ftruncate(fd, (off_t) size) < 0)
                die("ftruncate", errno);
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                die("mmap", errno);
        if (close(fd) < 0)
                die("close", errno);
        return p;
}

void shared_memory_free(void *p, size_t size) {
        if (munmap(p, size) < 0)
                die("munmap", errno);
}

size_t page_round(size_t size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);

        return (size + page - 1) / page * page;
}

int proc_read(pid_t pid, const char *file, char *buf, size_t size) {
        char path[64];
        ssize_t n;
        int fd, e;

        (void) snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        e = errno;
        (void) close(fd);
        if (n < 0)
                return -e;
        buf[n] = 0;
        return 0;
}

void proc_read_or_die(pid_t pid, const char *file, char *buf, size_t size) {
        int r = proc_read(pid, file, buf, size);

        if (r < 0)
                die(file, -r);
}

pid_t fork_child(void) {
        pid_t parent = getpid(), pid;

        /* Or the child would print our buffered output a second time. */
        if (fflush(NULL) != 0)
                die("fflush", errno);

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* A bench killed half-way must not leave 1000 sleepers behind. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        die("prctl", errno);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
        }
        return pid;
}

void reap(pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid", errno);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench: child %d failed (wait status 0x%x)\n", (int) pid, (unsigned) status);
                die("child", ECHILD);
        }
}

/* Never FUTEX_PRIVATE_FLAG: the word is shared between processes, as libwg's is. */
static int futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts, uint32_t val3) {
        return (int) syscall(SYS_futex, word, op, val, ts, NULL, val3);
}

void futex_wait_nonzero(uint32_t *word, bool timed) {
        /* libwg's forever: UINT64_MAX µs from the epoch of CLOCK_MONOTONIC, which arms a timer. */
        static const struct timespec end_of_time = {
                .tv_sec = (time_t) (UINT64_MAX / 1000000),
                .tv_nsec = (long) (UINT64_MAX % 1000000 * 1000),
        };

        while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 0) {
                int r = timed ? futex(word, FUTEX_WAIT_BITSET, 0, &end_of_time, FUTEX_BITSET_MATCH_ANY) :
                                futex(word, FUTEX_WAIT, 0, NULL, 0);

                if (r < 0 && errno != EAGAIN && errno != EINTR)
                        die("FUTEX_WAIT", errno);
        }
}

int futex_set_and_wake(uint32_t *word) {
        int r;

        __atomic_store_n(word, 1, __ATOMIC_RELEASE);
        r = futex(word, FUTEX_WAKE, INT_MAX, NULL, 0);
        if (r < 0)
                die("FUTEX_WAKE", errno);
        return r;
}

void series_add(struct series *s, double v) {
        if (s->n < BENCH_MAX_RUNS)
                s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

double median_of(double *v, size_t n) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(double), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double series_median(const struct series *s) {
        double v[BENCH_MAX_RUNS];

        memcpy(v, s->v, sizeof(double) * s->n);
        return median_of(v, s->n);
}

void series_print(const char *name, const char *unit, const struct series *s) {
        double v[BENCH_MAX_RUNS], median;

        if (s->n == 0)
                return;
        memcpy(v, s->v, sizeof(double) * s->n);
        median = median_of(v, s->n);
        printf("  %-46s median %10.3f %-3s  min %10.3f  max %10.3f  (%u runs)\n",
               name,
               median,
               unit,
               v[0],
               v[s->n - 1],
               s->n);
}
