/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Creating and validating segments. A segment fd may come from anybody (an inherited fd, a
 * peer over a unix socket), so attaching checks the file before mapping it and the header
 * before using it: a sealed memfd cannot shrink under us (no SIGBUS), and nothing read from it is
 * ever used as a pointer or a length.
 */

#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "group-name.h"
#include "macro.h"
#include "segment.h"

#define WG_SEALS_REQUIRED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

static int memfd_new(void) {
        int fd;

        /*
         * A segment is never executable: say so, so that kernels with vm.memfd_noexec do not
         * complain. Kernels before 6.3 do not know the flag and refuse it with EINVAL.
         */
        fd = memfd_create("wg", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create("wg", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        return fd;
}

int wg__segment_create(const char *mirror_name) {
        _cleanup_close_ int fd = -EBADF;
        struct wg_header h = {
                .magic = WG_SEGMENT_MAGIC,
                .version_major = WG_VERSION_MAJOR,
                .version_minor = WG_VERSION_MINOR,
                .header_size = sizeof(struct wg_header),
                .segment_size = WG_SEGMENT_SIZE,
                .state_offset = WG_STATE_OFFSET,
        };
        ssize_t n;

        if (mirror_name && !group_name_valid(mirror_name))
                return -EINVAL;

        fd = memfd_new();
        if (fd < 0)
                return fd;

        if (ftruncate(fd, WG_SEGMENT_SIZE) < 0)
                return negative_errno();

        if (mirror_name) {
                /* Before the header, whose magic says the page is complete. */
                h.version_minor = 1;
                h.flags = WG_HEADER_FLAG_MIRROR;
                n = pwrite(fd, mirror_name, strlen(mirror_name) + 1, WG_NAME_OFFSET);
                if (n < 0)
                        return negative_errno();
                if ((size_t) n != strlen(mirror_name) + 1)
                        return -EIO;
        }

        /*
         * Nobody else holds the fd yet, so there is no reader to order against: the header goes
         * in with one write, on a file whose other bytes (the state word among them) are zero.
         */
        n = pwrite(fd, &h, sizeof(h), 0);
        if (n < 0)
                return negative_errno();
        if ((size_t) n != sizeof(h))
                return -EIO;

        if (fcntl(fd, F_ADD_SEALS, WG_SEALS_REQUIRED) < 0)
                return negative_errno();

        return TAKE_FD(fd);
}

static int check_file(int fd) {
        struct stat st;
        int seals;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EMEDIUMTYPE;

        /*
         * Seals first: once F_SEAL_SEAL is set they cannot change, and with SHRINK and GROW set
         * the size checked next stays what it is for as long as the file exists.
         */
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return errno == EINVAL ? -EMEDIUMTYPE : negative_errno();
        if ((seals & WG_SEALS_REQUIRED) != WG_SEALS_REQUIRED)
                return -EMEDIUMTYPE;

        if (st.st_size != WG_SEGMENT_SIZE)
                return -EBADMSG;

        return 0;
}

static int check_header(const void *map, bool *ret_mirror) {
        struct wg_header h;
        uint64_t magic;
        char name[WG_NAME_SIZE];

        /*
         * The creator writes the magic last. Read it with acquire, then take one private copy of
         * the rest, so that a peer scribbling on the page cannot change a field between its check
         * and its use.
         */
        magic = __atomic_load_n((const uint64_t *) map, __ATOMIC_ACQUIRE);
        memcpy(&h, map, sizeof(h));
        h.magic = magic;

        if (h.magic != WG_SEGMENT_MAGIC)
                return -EBADMSG;
        if (h.version_major != WG_VERSION_MAJOR)
                return -EPROTONOSUPPORT;
        if (h.header_size != sizeof(struct wg_header) || h.segment_size != WG_SEGMENT_SIZE ||
            h.state_offset != WG_STATE_OFFSET)
                return -EBADMSG;
        if (h.flags & ~WG_HEADER_FLAGS_KNOWN)
                return -EBADMSG;
        if (h.reserved0 != 0)
                return -EBADMSG;
        for (size_t i = 0; i < sizeof(h.reserved); i++)
                if (h.reserved[i] != 0)
                        return -EBADMSG;

        *ret_mirror = h.flags & WG_HEADER_FLAG_MIRROR;
        if (*ret_mirror) {
                /* A copy again: the name must end within its field, and be a name. */
                memcpy(name, (const uint8_t *) map + WG_NAME_OFFSET, sizeof(name));
                if (!memchr(name, 0, sizeof(name)) || !group_name_valid(name))
                        return -EBADMSG;
        }
        return 0;
}

int wg__segment_map(int fd, void **ret_map, bool *ret_mirror) {
        bool read_only, mirror = false;
        void *map;
        int r, flags;

        assert(fd >= 0);
        assert(ret_map);
        assert(ret_mirror);

        r = check_file(fd);
        if (r < 0)
                return r;

        /* A read-only fd can only be a mirror's (checked below): map it so, and never write. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        read_only = (flags & O_ACCMODE) == O_RDONLY;

        map = mmap(NULL, WG_SEGMENT_SIZE, read_only ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
                return negative_errno();

        r = check_header(map, &mirror);
        if (r == 0 && read_only && !mirror)
                r = -EACCES; /* where a segment must be written, as mmap() says of a read-only fd */
        if (r < 0) {
                (void) munmap(map, WG_SEGMENT_SIZE);
                return r;
        }

        *ret_map = map;
        *ret_mirror = mirror;
        return 0;
}
