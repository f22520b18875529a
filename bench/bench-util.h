/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Helpers of the benchmarks: dying loudly, clocks, shared memory, children that die with their
 * parent, bare futexes, and medians. A benchmark that hits an error has no figure to report, so
 * every failed call ends the process with a message instead of an error code.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_RUNS 32

/*
 * Call first, in the main process. @on_die, if set, runs when the main process dies: for
 * resources that outlive processes.
 */
void bench_init(void (*on_die)(void));
/* Print @what and strerror(@err) and exit; in a child, take the main process down too. */
_Noreturn void die(const char *what, int err);

uint64_t now_ns(void);

/* Zeroed MAP_SHARED memfd memory of @size bytes (a multiple of the page size), like a segment. */
void *shared_memory(size_t size);
void shared_memory_free(void *p, size_t size);
size_t page_round(size_t size);

/* Read the small /proc file @file of @pid into @buf, NUL-terminated: 0, or -errno. */
int proc_read(pid_t pid, const char *file, char *buf, size_t size);
/* The same, dying if it cannot (the process must be there). */
void proc_read_or_die(pid_t pid, const char *file, char *buf, size_t size);

/* fork(), with a child that gets SIGKILL when we die; -errno if fork() failed. */
pid_t fork_child(void);
/* Wait for @pid; dies unless it exited with 0. */
void reap(pid_t pid);

/*
 * Sleep on @word until it is non-zero: with FUTEX_WAIT and no timeout, or, if @timed, as
 * wg_wait(g, WG_USEC_INFINITY) does, with FUTEX_WAIT_BITSET and a deadline at the end of time.
 */
void futex_wait_nonzero(uint32_t *word, bool timed);
/* Set @word to 1 and wake every sleeper; returns how many there were. */
int futex_set_and_wake(uint32_t *word);

/* The figures of one measurement, one per run. */
struct series {
        unsigned n;
        double v[BENCH_MAX_RUNS];
};

void series_add(struct series *s, double v);
double series_median(const struct series *s);
void series_print(const char *name, const char *unit, const struct series *s);

/* Sorts @v in place; returns its median. */
double median_of(double *v, size_t n);
