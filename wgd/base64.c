/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base64.h"
#include "macro.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t size, char **ret) {
        const uint8_t *p = data;
        char *out, *o;

        assert(data || size == 0);
        assert(ret);

        if (size > (SIZE_MAX - 1) / 4 * 3)
                return -ENOMEM;
        out = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;

        o = out;
        for (size_t i = 0; i < size; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;

                if (i + 1 < size)
                        v |= (uint32_t) p[i + 1] << 8;
                if (i + 2 < size)
                        v |= p[i + 2];
                *o++ = alphabet[v >> 18];
                *o++ = alphabet[(v >> 12) & 63];
                *o++ = i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
                *o++ = i + 2 < size ? alphabet[v & 63] : '=';
        }
        *o = 0;

        *ret = out;
        return 0;
}

/* The 6-bit value of @c, or -1 for a character outside the alphabet (padding included). */
static int value_of(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *text, size_t len, void **ret, size_t *ret_size) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t n = 0, pad = 0;

        assert(text || len == 0);
        assert(ret);
        assert(ret_size);

        if (len % 4 != 0)
                return -EBADMSG;
        if (len > 0 && text[len - 1] == '=')
                pad = len > 1 && text[len - 2] == '=' ? 2 : 1;

        out = malloc(len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                uint32_t v = 0;

                for (size_t j = 0; j < 4; j++) {
                        int d;

                        /* Padding stands only in the last group's last one or two places. */
                        if (last && j >= 4 - pad) {
                                v <<= 6;
                                continue;
                        }
                        d = value_of(text[i + j]);
                        if (d < 0)
                                return -EBADMSG;
                        v = v << 6 | (uint32_t) d;
                }

                out[n++] = (uint8_t) (v >> 16);
                if (last && pad == 2) {
                        if (v & 0xffff) /* bits an encoder leaves zero */
                                return -EBADMSG;
                        break;
                }
                out[n++] = (uint8_t) (v >> 8);
                if (last && pad == 1) {
                        if (v & 0xff)
                                return -EBADMSG;
                        break;
                }
                out[n++] = (uint8_t) v;
        }
        out[n] = 0;

        *ret = TAKE_PTR(out);
        *ret_size = n;
        return 0;
}
