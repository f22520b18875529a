/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "segment.h"
#include "test-util.h"

unsigned test_scale(unsigned n) {
        const char *e = getenv("WG_TEST_SLOW");

        if (e && *e && strcmp(e, "0") != 0)
                return n / 10 > 0 ? n / 10 : 1;
        return n;
}

pid_t spawn_helper(const int *fds, size_t n_fds, const char *const *argv) {
        const char *helper = getenv("WG_HELPER");
        size_t n_args = 0;
        pid_t pid;

        assert_non_null(helper);
        while (argv[n_args])
                n_args++;

        const char *full[n_args + 2];
        full[0] = helper;
        for (size_t i = 0; i < n_args; i++)
                full[i + 1] = argv[i];
        full[n_args + 1] = NULL;

        /*
         * fork + exec rather than posix_spawn, to place the fds by hand: the fds we pass may
         * themselves sit at 3, 4, ..., so move them all above the target range first.
         */
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int high[n_fds > 0 ? n_fds : 1];

                /* A test that fails or is killed must not leave helpers behind, asleep forever. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(122);

                for (size_t i = 0; i < n_fds; i++) {
                        high[i] = fcntl(fds[i], F_DUPFD, 100);
                        if (high[i] < 0)
                                _exit(120);
                }
                for (size_t i = 0; i < n_fds; i++)
                        if (dup2(high[i], 3 + (int) i) < 0)
                                _exit(121);
                closefrom(3 + (int) n_fds);
                execv(helper, (char *const *) full);
                _exit(127);
        }
        return pid;
}

int reap(pid_t pid) {
        int status;

        for (;;) {
                if (waitpid(pid, &status, 0) >= 0)
                        break;
                assert_int_equal(errno, EINTR);
        }
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
}

uint64_t monotonic_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / 1000000), .tv_nsec = (long) (usec % 1000000) * 1000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

void poll_pause(unsigned *round) {
        /* 1, 2, 4, 8 ms, then 10 ms at a time: most conditions hold within a few milliseconds. */
        sleep_usec(*round < 4 ? UINT64_C(1000) << *round : 10 * UINT64_C(1000));
        (*round)++;
}

/* /proc/PID/syscall starts with the number of the system call the task is blocked in. */
static void wait_until_in(const char *path, long syscall_nr) {
        for (unsigned i = 0; i < 20000; i++) {
                char buf[64] = {};
                FILE *f = fopen(path, "re");
                long nr = -1;

                if (f) {
                        if (fgets(buf, sizeof(buf), f))
                                nr = strtol(buf, NULL, 10);
                        fclose(f);
                }
                if (nr == syscall_nr)
                        return;
                sleep_usec(1000);
        }
        fail_msg("%s never showed system call %ld", path, syscall_nr);
}

bool sent_all_read(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        int queued = 0;

        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
                return true;
        return ioctl(fd, SIOCOUTQ, &queued) < 0 || queued == 0;
}

void wait_until_sent_all_read(int fd) {
        for (unsigned i = 0; i < 20000; i++) {
                if (sent_all_read(fd))
                        return;
                sleep_usec(1000);
        }
        fail_msg("the peer of fd %d did not read what we sent", fd);
}

void expect_byte(int fd, char expected) {
        char byte;
        ssize_t n;

        while ((n = read(fd, &byte, 1)) < 0 && errno == EINTR)
                ;
        if (n != 1)
                fail_msg("expected '%c' on fd %d, got %s", expected, fd, n == 0 ? "end of file" : strerror(errno));
        assert_int_equal(byte, expected);
}

void wait_until_futex_sleep(pid_t pid) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/syscall", (int) pid);
        wait_until_in(path, SYS_futex);
}

void wait_until_thread_futex_sleep(pid_t tid) {
        wait_until_thread_syscall(tid, SYS_futex);
}

void wait_until_thread_syscall(pid_t tid, long syscall_nr) {
        char path[64];

        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int) tid);
        wait_until_in(path, syscall_nr);
}

static uint64_t *map_state(wg *g, void **ret_map) {
        void *map = mmap(NULL, WG_SEGMENT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, wg_fd(g), 0);

        assert_true(map != MAP_FAILED);
        *ret_map = map;
        return (uint64_t *) ((uint8_t *) map + WG_STATE_OFFSET);
}

uint64_t raw_state(wg *g) {
        void *map;
        uint64_t s = __atomic_load_n(map_state(g, &map), __ATOMIC_SEQ_CST);

        assert_int_equal(munmap(map, WG_SEGMENT_SIZE), 0);
        return s;
}

void raw_state_set(wg *g, uint64_t s) {
        void *map;

        __atomic_store_n(map_state(g, &map), s, __ATOMIC_SEQ_CST);
        assert_int_equal(munmap(map, WG_SEGMENT_SIZE), 0);
}

int memfd_with(const void *data, size_t size, unsigned seals) {
        int fd = memfd_create("wg-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, (off_t) size), 0);
        if (size > 0)
                assert_int_equal(pwrite(fd, data, size, 0), (ssize_t) size);
        if (seals)
                assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

static unsigned count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        unsigned n = 0;

        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static unsigned fds_at_setup;

int fds_setup(void **state) {
        fds_at_setup = count_fds();
        return 0;
}

int fds_teardown(void **state) {
        unsigned now = count_fds();

        if (now != fds_at_setup) {
                print_error("fd leak: %u open before the test, %u after\n", fds_at_setup, now);
                return -1;
        }
        return 0;
}

uint64_t count_of(wg *g) {
        uint64_t v;

        assert_int_equal(wg_get_count(g, &v), 0);
        return v;
}

uint64_t generation_of(wg *g) {
        uint64_t v;

        assert_int_equal(wg_get_generation(g, &v), 0);
        return v;
}

unsigned file_count(const char *path, const char *text) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, len = 0;
        unsigned n = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        for (;;) {
                ssize_t k;

                if (len + 1 >= size) {
                        size = size ? 2 * size : 65536;
                        buf = realloc(buf, size);
                        assert_non_null(buf);
                }
                k = read(fd, buf + len, size - len - 1);
                assert_true(k >= 0);
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        close(fd);
        buf[len] = 0;
        for (const char *p = buf; (p = strstr(p, text)); p += strlen(text))
                n++;
        return n;
}

void file_count_until(const char *path, const char *text, unsigned n) {
        uint64_t deadline = monotonic_usec() + 60 * UINT64_C(1000000);

        while (file_count(path, text) < n) {
                if (monotonic_usec() > deadline)
                        fail_msg("'%s' is in %s %u times, not %u", text, path, file_count(path, text), n);
                sleep_usec(20000);
        }
}

bool file_has(const char *path, const char *text) {
        return file_count(path, text) > 0;
}
