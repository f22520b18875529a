/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "utf8.h"

size_t utf8_decode(const char *s, uint32_t *ret) {
        const unsigned char *u = (const unsigned char *) s;
        uint32_t c, min;
        size_t n;

        if (u[0] < 0x80) {
                *ret = u[0];
                return 1;
        }
        if ((u[0] & 0xe0) == 0xc0) {
                n = 2;
                c = u[0] & 0x1f;
                min = 0x80;
        } else if ((u[0] & 0xf0) == 0xe0) {
                n = 3;
                c = u[0] & 0x0f;
                min = 0x800;
        } else if ((u[0] & 0xf8) == 0xf0) {
                n = 4;
                c = u[0] & 0x07;
                min = 0x10000;
        } else
                return 0;

        /* A continuation byte is never NUL: the end of the string stops a cut character here. */
        for (size_t i = 1; i < n; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                c = c << 6 | (u[i] & 0x3f);
        }
        /* Overlong forms (another spelling of a byte, even of ESC) and surrogates are not UTF-8. */
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return n;
}

/* U+009B is CSI, the start of a sequence, to a terminal that takes 8-bit controls. */
bool unichar_is_control(uint32_t c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
                (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}
