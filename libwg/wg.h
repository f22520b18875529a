/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef WG_H
#define WG_H

/*
 * DOC: libwg - Go's sync.WaitGroup between unrelated processes
 *
 * A group is a counter in a small shared-memory segment (one sealed memfd page). Producers add
 * work with wg_add(), workers call wg_done() as each piece ends, and any number of threads and
 * processes wg_wait() until the counter is back at zero. add and done are one atomic
 * compare-and-swap on the shared page and make no system call unless somebody is waiting; wait
 * sleeps on a process-shared futex in the same page.
 *
 * Processes share a group by sharing its segment fd: inherit it across fork()/exec(), pass it over
 * a unix socket with SCM_RIGHTS, or (with wgd) open a group by name. wg_from_fd() validates
 * whatever it is handed, so a process never trusts a peer's fd blindly.
 *
 * Each completion of the counter (its return to zero) ends a "generation". A waiter returns when
 * the generation it observed ends, even if the group is reused (added to again) at once.
 *
 * Conventions, as in systemd's sd-* libraries: functions return 0 (or a positive value) on
 * success and a negative errno-style code on failure; out-parameters (ret) are written only on
 * success; times are in microseconds and WG_USEC_INFINITY means forever. Nothing logs, nothing
 * exits, nothing aborts. The caller owns every handle it gets back and releases it with
 * wg_unref(); the shared segment lives as long as any process holds its fd or a mapping of it.
 *
 * Thread safety: wg_add(), wg_done(), wg_wait(), the getters, wg_ref() and wg_unref() may be
 * called on one handle from several threads at once.
 *
 * This header is C89-clean.
 */

#include <inttypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wait forever. */
#define WG_USEC_INFINITY UINT64_MAX

/* The largest value the counter can hold. */
#define WG_COUNT_MAX INT64_C(0x7fffffff)

typedef struct wg wg;

/* Flags of wg_open(). */
#define WG_CREATE (UINT64_C(1) << 32) /* create the group if it does not exist */
#define WG_EXCL (UINT64_C(1) << 33)   /* with WG_CREATE: fail if it exists */
#define WG_MODE_MASK UINT64_C(0777)   /* the permission bits of a group that is created */

/**
 * wg_new() - Create an anonymous group in a fresh sealed memfd, with no daemon.
 * @ret: where to store the new handle; the counter starts at zero, generation zero.
 *
 * Return: 0 on success; -EINVAL if @ret is NULL; -ENOMEM; -EMFILE or -ENFILE if no fd is left;
 * or another negative errno from memfd_create(), ftruncate(), fcntl() or mmap().
 */
int wg_new(wg **ret);

/**
 * wg_from_fd() - Attach to the segment behind an fd.
 * @fd: a segment fd, for example one inherited from, or sent by, another process. It is not
 *      taken over: the handle keeps a close-on-exec duplicate, and the caller still owns @fd.
 * @ret: where to store the new handle.
 *
 * The segment is validated before anything in it is used: a sealed memfd (shrink, grow and
 * seal sealed) of exactly the segment size, whose header (magic, version, sizes, flags,
 * reserved bytes) is right. A file that fails any check is refused and never mapped past its
 * end, so no peer can crash the caller with SIGBUS.
 *
 * Return: 0 on success; -EINVAL if @ret is NULL; -EBADF if @fd is not an open fd;
 * -EMEDIUMTYPE if @fd is not a memfd sealed against shrinking, growing and further sealing (a
 * pipe, a socket, a regular file, an unsealed memfd); -EBADMSG if its size or header is not that
 * of a segment; -EPROTONOSUPPORT if the header is of a major version this library does not
 * know; -EACCES or -EPERM if @fd cannot be mapped for reading and writing (opened read-only,
 * write-sealed); -ENOMEM; -EMFILE or -ENFILE if no fd is left.
 */
int wg_from_fd(int fd, wg **ret);

/**
 * wg_open() - Open a named group through wgd.
 * @name: the group's name: 1 to 64 characters of A-Z a-z 0-9 _ . -, not starting with '.'.
 * @flags: 0, or WG_CREATE to create the group if it does not exist, with WG_EXCL to fail if it
 *         does; ORed with the permission bits for a group that gets created (0660 lets the
 *         creator's group in, 0666 everybody; 0 means 0600, the owner only).
 * @ret: where to store the new handle.
 *
 * Asks wgd (at $WGD_SOCKET, else $XDG_RUNTIME_DIR/wgd.sock, else /run/wgd.sock) for the group's
 * segment and attaches to it as wg_from_fd() does. From then on the handle works without wgd.
 * Once the request is sent, a signal handler does not interrupt the wait for wgd's answer (wgd
 * acts on the request either way); before, while connecting, it does: -EINTR, and nothing was
 * done. The same holds for wg_join(), wg_leave() and wg_unlink().
 *
 * Return: 0 on success; -EINVAL if @name is not a valid name, @flags has unknown bits, WG_EXCL
 * comes without WG_CREATE, or @ret is NULL; -ENOENT if there is no such group (and no WG_CREATE);
 * -EEXIST if it exists and WG_CREATE|WG_EXCL was given; -EACCES if its mode does not allow this
 * process to write it, or the socket does not allow this process to connect; -EDQUOT if the
 * caller owns as many groups as wgd allows it, -ENOSPC if wgd holds as many as it may in all;
 * -EUSERS if wgd refused the connection (too many); -ECONNREFUSED if wgd is not running;
 * -ECONNRESET if it hung up; -ETIMEDOUT if it did not answer within 25 seconds; -EPROTO if what
 * it answered was not a valid response; -ENOMEM, -EMFILE or -ENFILE, from wgd or from this
 * process; -ENAMETOOLONG if the socket path is too long; or any error of wg_from_fd().
 */
int wg_open(const char *name, uint64_t flags, wg **ret);

/**
 * wg_join() - Join a named group as a member, through wgd.
 * @name: the group's name.
 * @flags: 0 (reserved).
 * @ret: where to store the new handle: the group's segment, as from wg_open(), and the
 *       membership.
 *
 * Adds one to the counter, like wg_add(g, 1), but the matching done is wgd's to do: when the
 * member leaves (wg_leave(), with a status), or, if it dies first, on its behalf, counted as
 * abandoned, so that a crashed worker never hangs its group. The membership is held by this
 * process and by a connection to wgd that the handle keeps: dropping the last reference without
 * wg_leave() abandons it. It belongs to the process that joined; a child after fork() must not
 * leave for it.
 *
 * Return: 0 on success; -EINVAL if @name is not a valid name, @flags is not 0 or @ret is NULL;
 * -ENOENT if there is no such group; -EACCES if its mode does not allow this process to write
 * it; -EOWNERDEAD if it is broken; -EIDRM if it is being deleted; -EOVERFLOW if its counter is at
 * the maximum; -EDQUOT if the caller has as many memberships as wgd allows; -ESRCH if wgd could
 * not find this process to watch it; the connection errors of wg_open(); or any error of
 * wg_from_fd().
 */
int wg_join(const char *name, uint64_t flags, wg **ret);

/**
 * wg_leave() - Leave a group joined with wg_join(): the member's done, with its status.
 * @g: a member's handle.
 * @status: 0 if the member's work succeeded; anything else says it failed (by convention an exit
 *          status, or 128 + a signal number). Waiters learn of failures (see wg_wait()).
 *
 * The handle stays usable as a plain handle on the segment. If wgd was restarted since the join,
 * the leave goes over a new connection, and wgd knows the member again by its process.
 *
 * On a group that broke or was reset since the join, the leave is recorded and succeeds, but
 * there is no done to do: the generation it was for is over.
 *
 * Return: 0 on success; -EINVAL if @g is NULL; -ENOTCONN if @g is not a member's handle (or left
 * already), or wgd does not know the membership (the group was deleted and made anew); -ENOENT
 * if the group was deleted; the connection errors of wg_open().
 */
int wg_leave(wg *g, int status);

/**
 * wg_unlink() - Delete a named group through wgd.
 * @name: the group's name.
 *
 * The name is free at once. Processes that hold the group keep their mappings, but every
 * operation on them fails with -EIDRM from now on, and their waiters wake with that error.
 *
 * Return: 0 on success; -EINVAL if @name is not a valid name; -ENOENT if there is no such
 * group; -EACCES if the caller may not even read it; -EPERM if it may, but is neither its owner
 * nor root; -ECONNREFUSED, -ECONNRESET, -EUSERS, -ETIMEDOUT, -EPROTO, -ENAMETOOLONG as for
 * wg_open().
 */
int wg_unlink(const char *name);

/**
 * wg_fd() - The segment fd of a group, to hand to another process.
 * @g: the group.
 *
 * The fd is owned by @g and closed by its last wg_unref(); it is close-on-exec, so clear
 * FD_CLOEXEC on a duplicate (or use dup2()) to let an exec'd program inherit it.
 *
 * Return: the fd (non-negative); -EINVAL if @g is NULL.
 */
int wg_fd(wg *g);

/**
 * wg_ref() - Take another reference on a handle.
 * @g: the group, or NULL.
 *
 * Return: @g.
 */
wg *wg_ref(wg *g);

/**
 * wg_unref() - Drop a reference; the last one unmaps the segment and closes its fd.
 * @g: the group, or NULL.
 *
 * Return: NULL, so that one can write g = wg_unref(g).
 */
wg *wg_unref(wg *g);

/**
 * wg_add() - Add @delta to the counter.
 * @g: the group.
 * @delta: how much to add; negative to mark work done (wg_add(g, -1) is wg_done(g)); zero only
 *         checks the state word.
 *
 * One compare-and-swap on the shared state word. When the counter reaches zero the generation
 * ends: every waiter of that generation is released, with one FUTEX_WAKE only if one sleeps.
 * Everything the caller did before a wg_add() that ends a generation happens before the return
 * of every wg_wait() it releases. On any error the state word is left exactly as it was.
 *
 * Return: 0 on success; -EINVAL if @g is NULL; -ERANGE if the counter would drop below zero;
 * -EOVERFLOW if it would exceed WG_COUNT_MAX; -EIDRM if the group was deleted (a named group,
 * by wgd); -EOWNERDEAD if it is broken; -EUCLEAN if the state word in the segment is corrupt.
 */
int wg_add(wg *g, int64_t delta);

/**
 * wg_done() - Mark one piece of work done: wg_add(@g, -1).
 * @g: the group.
 *
 * Return: 0 on success; -EINVAL if @g is NULL; -ERANGE if the counter is already zero;
 * -EIDRM if the group was deleted; -EOWNERDEAD if it is broken; -EUCLEAN if the state word in
 * the segment is corrupt.
 */
int wg_done(wg *g);

/**
 * wg_wait() - Wait until the counter is zero.
 * @g: the group.
 * @timeout_usec: how long to wait at most: 0 only checks (a try-wait), WG_USEC_INFINITY waits
 *                forever. The deadline is computed once on CLOCK_MONOTONIC, so neither clock
 *                changes nor spurious wakeups stretch it.
 *
 * Returns at once if the counter is zero. Otherwise it waits for the generation it observed to
 * end: it returns 0 even if, by the time it runs again, the group was reused and its counter is
 * non-zero again. Spurious wakeups never surface.
 *
 * Members (wg_join()) that fail or die make their generation end with failures: the return
 * value counts them, so that 0 means "done, and nobody failed". When the counter is zero at
 * once, the generation that counts is the one that ended last.
 *
 * Return: 0 once the counter was zero and no member of the generation that ended failed; a
 * positive number, how many of its members failed or were abandoned (wg_get_outcome() tells
 * which); -EINVAL if @g is NULL; -ETIMEDOUT if @timeout_usec passed first; -EINTR if a signal
 * handler ran in this thread while it slept (with or without SA_RESTART; the caller decides
 * whether to wait again); -EIDRM if the group was deleted, before or during the wait;
 * -EOWNERDEAD if it is broken (a member died, and its policy is to break); -EUCLEAN if the
 * state word in the segment is corrupt.
 */
int wg_wait(wg *g, uint64_t timeout_usec);

/**
 * wg_get_count() - Read the counter.
 * @g: the group.
 * @ret: where to store the counter, 0 to WG_COUNT_MAX.
 *
 * Return: 0 on success; -EINVAL if @g or @ret is NULL; -EIDRM if the group was deleted;
 * -EOWNERDEAD if it is broken; -EUCLEAN if the state word in the segment is corrupt.
 */
int wg_get_count(wg *g, uint64_t *ret);

/**
 * wg_get_generation() - Read how many times the counter went back to zero.
 * @g: the group.
 * @ret: where to store the generation. It counts modulo 2^29 and wraps.
 *
 * Return: 0 on success; -EINVAL if @g or @ret is NULL; -EIDRM if the group was deleted;
 * -EOWNERDEAD if it is broken; -EUCLEAN if the state word in the segment is corrupt.
 */
int wg_get_generation(wg *g, uint64_t *ret);

/**
 * wg_get_outcome() - How the members of a completed generation ended.
 * @g: the group.
 * @generation: the generation (see wg_get_generation(): the last completed one is one less).
 * @ret_succeeded: where to store how many left with status 0, or NULL.
 * @ret_failed: where to store how many left with another status, or NULL.
 * @ret_abandoned: where to store how many died without leaving, or NULL.
 *
 * wgd records this in the segment for the last four generations; anonymous groups have no
 * members and never have an outcome.
 *
 * Return: 0 on success; -EINVAL if @g is NULL or @generation is not one; -ENODATA if no member
 * ended in that generation, or it is more than four generations ago.
 */
int wg_get_outcome(wg *g, uint64_t generation, uint64_t *ret_succeeded, uint64_t *ret_failed,
                   uint64_t *ret_abandoned);

#if defined(__GNUC__)
/* For __attribute__((cleanup(wg_unrefp))). */
static __inline__ void wg_unrefp(wg **g) {
        if (*g)
                (void) wg_unref(*g);
}
#endif

#ifdef __cplusplus
}
#endif

#endif /* WG_H */
