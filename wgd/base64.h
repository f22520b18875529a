/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Base64 (RFC 4648, the standard alphabet, with padding): how etcd's JSON gateway carries keys
 * and values, which are bytes. Neither libcurl nor json-c exports an encoder, and glibc has none
 * in its public API, so this is ours. Decoding is strict, as Go's encoding/base64.StdEncoding
 * (what the gateway uses) is: the length is a multiple of 4, padding only at the end, no
 * whitespace, and the unused low bits of the last group are zero. A value that breaks those
 * rules did not come from etcd.
 */

#include <stddef.h>

/*
 * Encode @size bytes at @data. On success *@ret is a NUL-terminated string the caller frees.
 * Returns 0, or -ENOMEM.
 */
int base64_encode(const void *data, size_t size, char **ret);

/*
 * Decode the @len characters at @text. On success *@ret holds the bytes plus a NUL after them
 * (so text reads as a string), *@ret_size their number; the caller frees *@ret. Returns 0,
 * -EBADMSG if @text is not strict base64, or -ENOMEM.
 */
int base64_decode(const char *text, size_t len, void **ret, size_t *ret_size);
