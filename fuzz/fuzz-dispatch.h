/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The input of fuzz-dispatch, shared with gen-corpus, which writes the seeds in it.
 *
 * An input is a sequence of records, each as a connection to wgd would deliver them:
 *
 *   control  1 byte    who sends, and what happens first (below)
 *   length   2 bytes   little-endian; at most 65535, so always within WG_RECORD_MAX
 *   payload  length bytes, handed to dispatch_record() as one record
 *
 * A length of 0 is the client hanging up, as a zero-length read is for wgd: its connection is
 * freed with whatever it has pending, and a new one with the same credentials takes its place.
 * A record cut short by the end of the input is dispatched with the bytes that are there, and
 * a header cut short is ignored, so that every byte string is a valid input.
 *
 * With FUZZ_PEER in the control byte, the record is not a request but what another process that
 * holds a group's segment does to it, behind wgd's back (the threat model of the README: any
 * holder may write anything into the state word):
 *
 *   payload[0]      what, modulo FUZZ_PEER_N: one of FUZZ_PEER_ADD ... below
 *   payload[1]      which group, modulo the number of groups, in name order (none: no-op)
 *   payload[2..9]   a 64-bit little-endian value (missing bytes are 0)
 *
 * Inputs are independent: after each one every group is freed, so a crasher reproduces alone.
 * They are deterministic but for wgd's watcher threads: before a peer writes, the fuzzer waits
 * for them to sleep, and after, for their report where one is due; a race in wgd between its
 * event loop and those threads (a request that changes what they watch while they re-read it)
 * still depends on the scheduler.
 */

#include <stddef.h>
#include <stdint.h>

#define FUZZ_HEADER_SIZE 3u

/* Low bits of the control byte: the client, modulo FUZZ_N_CLIENTS. */
#define FUZZ_CLIENT_MASK 0x07u
/* Run the event loop once before the record: expired Wait timeouts, watcher wakeups. */
#define FUZZ_RUN_EVENTS 0x08u
/* The record is a peer's write to a segment (above), not a request. */
#define FUZZ_PEER 0x10u
/* The other bits are ignored, left for later. */

enum {
        FUZZ_PEER_ADD,        /* wg_add(value), as a well-behaved holder's add or done */
        FUZZ_PEER_STORE,      /* the state word := value, waking nobody */
        FUZZ_PEER_STORE_WAKE, /* the state word := value, then FUTEX_WAKE on it */
        FUZZ_PEER_N,
};
#define FUZZ_PEER_SIZE 10u

/* The connections, by index; see the peers in fuzz-dispatch.c. */
enum {
        FUZZ_ROOT,     /* uid 0 */
        FUZZ_ALICE,    /* uid 1000, gid 1000 */
        FUZZ_BOB,      /* uid 1001, gid 1001, supplementary 1000: in alice's group */
        FUZZ_ALICE2,   /* a second connection of uid 1000: same quota, its own Wait limit */
        FUZZ_STRANGER, /* uid 2000, gid 2000, supplementary 3000 and 3001: the "other" bits */
        FUZZ_N_CLIENTS,
};

/* The limits of the fuzzed server, small so that inputs reach them; four uids could own 32. */
#define FUZZ_GROUPS 24u
#define FUZZ_GROUPS_PER_UID 8u
#define FUZZ_WAITS_PER_CONNECTION 4u
#define FUZZ_MEMBERS_PER_UID 4u

/* libFuzzer's entry points; fuzz-main.c calls them the same way without libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
