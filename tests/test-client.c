/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd's connection object on a real socketpair, for what the protocol cannot provoke: an answer
 * too large for a record must become an error that says so, never a write past the buffer (it
 * was once bounded only by an assert(), which release builds drop); and a peer whose
 * supplementary groups the kernel keeps saying it has no room for (getsockopt() wrapped here,
 * see meson.build) is refused, never served with a list that was not filled.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "peer.h"
#include "seqpacket.h"

/* SO_PEERGROUPS answers ERANGE, "more room", forever, and says it needs this much. */
static bool peergroups_erange;

int __real_getsockopt(int fd, int level, int name, void *value, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *value, socklen_t *len);
int __wrap_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
        if (peergroups_erange && level == SOL_SOCKET && name == SO_PEERGROUPS) {
                *len = 64 * sizeof(gid_t);
                errno = ERANGE;
                return -1;
        }
        return __real_getsockopt(fd, level, name, value, len);
}

static void on_record(Client *c, const uint8_t *buf, size_t len, int error) {
}

static void on_closed(Client *c) {
}

static const ClientHandlers handlers = { .record = on_record, .closed = on_closed };

static void test_oversized_answer(void **state) {
        Wg__V1__Response resp = WG__V1__RESPONSE__INIT, *got;
        Wg__V1__GroupInfo info = WG__V1__GROUP_INFO__INIT;
        Peer peer = { .uid = getuid(), .gid = getgid(), .pid = getpid() };
        uint8_t buf[WG_RECORD_MAX];
        char *name;
        sd_event *event;
        Client *c;
        ssize_t n;
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(client_new(event, sv[0], &peer, &handlers, NULL, &c), 0);

        name = malloc(WG_RECORD_MAX + 1);
        assert_non_null(name);
        memset(name, 'a', WG_RECORD_MAX);
        name[WG_RECORD_MAX] = 0;
        info.name = name;
        resp.has_id = true;
        resp.id = 77;
        resp.result_case = WG__V1__RESPONSE__RESULT_GROUP;
        resp.group = &info;
        client_reply(c, &resp, NULL);

        n = seqpacket_recv(sv[1], buf, sizeof(buf), NULL, MSG_DONTWAIT);
        assert_true(n > 0);
        got = wg__v1__response__unpack(NULL, (size_t) n, buf);
        assert_non_null(got);
        assert_int_equal(got->id, 77);
        assert_int_equal(got->result_case, WG__V1__RESPONSE__RESULT_ERROR);
        assert_int_equal(got->error->errnum, EMSGSIZE);
        assert_false(c->dead);

        wg__v1__response__free_unpacked(got, NULL);
        free(name);
        client_free(c);
        close(sv[1]);
        sd_event_unref(event);
}

static void test_peergroups_never_fit(void **state) {
        Peer peer;
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(peer_read(sv[0], &peer), 0);
        assert_int_equal(peer.uid, getuid());
        peer_done(&peer);

        peergroups_erange = true;
        assert_int_equal(peer_read(sv[0], &peer), -ERANGE);
        peergroups_erange = false;

        close(sv[0]);
        close(sv[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oversized_answer),
                cmocka_unit_test(test_peergroups_never_fit),
        };

        return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
