/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wgd's connection object on a real socketpair, for what the protocol cannot provoke: an answer
 * too large for a record must become an error that says so, never a write past the buffer (it
 * was once bounded only by an assert(), which release builds drop).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "client.h"
#include "seqpacket.h"

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_oversized_answer),
        };

        return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
