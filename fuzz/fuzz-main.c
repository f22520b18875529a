/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Replay inputs through the fuzz target without libFuzzer: with gcc, under valgrind, in every
 * `meson test`. Takes files and directories (every regular file in them, not recursing, in name
 * order so that runs are reproducible). Each input runs once, as libFuzzer runs a crasher.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-dispatch.h"
#include "macro.h"

/* Larger than any input libFuzzer would make from this corpus; a bigger file is a mistake. */
#define INPUT_MAX (16u * 1024 * 1024)

static int read_file(int dir_fd, const char *path, uint8_t **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t size = 0;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        if ((uintmax_t) st.st_size > INPUT_MAX)
                return -EFBIG;

        /* One byte more than needed, so that malloc(0) never happens for an empty file. */
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (size < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + size, (size_t) st.st_size - size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break; /* shrank under us: run what was there */
                size += (size_t) n;
        }

        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

static int run_one(int dir_fd, const char *path, const char *shown) {
        uint8_t *data;
        size_t size;
        int r;

        r = read_file(dir_fd, path, &data, &size);
        if (r < 0) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", shown, strerror(-r));
                return r;
        }
        /* A crash here leaves this line as the last one: which input it was. */
        fprintf(stderr, "fuzz-replay: %s (%zu bytes)\n", shown, size);
        (void) LLVMFuzzerTestOneInput(data, size);
        free(data);
        return 0;
}

static int not_hidden(const struct dirent *de) {
        return de->d_name[0] != '.';
}

static int run_dir(const char *path, unsigned *n_run) {
        _cleanup_close_ int dir_fd = -EBADF;
        struct dirent **entries;
        int n, r = 0;

        dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                r = negative_errno();
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(-r));
                return r;
        }
        n = scandir(path, &entries, not_hidden, alphasort);
        if (n < 0) {
                r = negative_errno();
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(-r));
                return r;
        }

        for (int i = 0; i < n; i++) {
                char shown[4096];
                struct stat st;

                (void) snprintf(shown, sizeof(shown), "%s/%s", path, entries[i]->d_name);
                if (fstatat(dir_fd, entries[i]->d_name, &st, 0) < 0) {
                        r = negative_errno();
                        fprintf(stderr, "fuzz-replay: %s: %s\n", shown, strerror(-r));
                } else if (S_ISREG(st.st_mode)) {
                        int k = run_one(dir_fd, entries[i]->d_name, shown);

                        if (k < 0)
                                r = k;
                        else
                                (*n_run)++;
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned n_run = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr,
                        "Usage: %s FILE|DIRECTORY...\n"
                        "Run each input through the fuzz target once.\n",
                        argv[0]);
                return EXIT_FAILURE;
        }

        (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int k;

                if (stat(argv[i], &st) < 0) {
                        k = negative_errno();
                        fprintf(stderr, "fuzz-replay: %s: %s\n", argv[i], strerror(-k));
                } else if (S_ISDIR(st.st_mode))
                        k = run_dir(argv[i], &n_run);
                else {
                        k = run_one(AT_FDCWD, argv[i], argv[i]);
                        if (k >= 0)
                                n_run++;
                }
                if (k < 0)
                        r = k;
        }

        fprintf(stderr, "fuzz-replay: %u inputs run%s\n", n_run, r < 0 ? ", some could not be read" : "");
        /* No input at all is a broken corpus path, not a pass. */
        return r < 0 || n_run == 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
