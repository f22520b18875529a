/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Text that others chose, made safe to print. A member's description is any bytes its joiner
 * sent (or its command line), and it reaches the terminal of whoever runs 'wgctl status' or
 * 'wgctl wait', root included: written raw, an escape sequence in it would be the terminal's
 * command, from another user. So everything wgctl prints for people goes through
 * fputs_escaped(), and JSON through json_string().
 */

#define _GNU_SOURCE
#include <langinfo.h>
#include <locale.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"
#include "wgctl.h"

/*
 * Whether the terminal's character set is UTF-8, as the locale says. The locale is loaded here,
 * the first time wgctl prints text that others chose, and nowhere else: nothing else in wgctl
 * depends on it, and loading it (a handful of files opened and mapped) would be a good part of
 * what an add or a done costs.
 */
static bool charset_utf8;

static void locale_load(void) {
        (void) setlocale(LC_CTYPE, "");
        charset_utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
}

static bool locale_is_utf8(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        (void) pthread_once(&once, locale_load);
        return charset_utf8;
}

size_t fputs_escaped(const char *s, FILE *f) {
        static const char named[128] = {
                ['\a'] = 'a', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n',
                ['\v'] = 'v', ['\f'] = 'f', ['\r'] = 'r', ['\\'] = '\\',
        };
        bool utf8 = locale_is_utf8();
        size_t written = 0;

        while (*s) {
                unsigned char b = (unsigned char) *s;
                uint32_t c;
                size_t n;

                if (b < sizeof(named) && named[b]) {
                        fputc('\\', f);
                        fputc(named[b], f);
                        written += 2;
                        s++;
                        continue;
                }

                /*
                 * A printable character goes out whole. Outside a UTF-8 locale that is ASCII
                 * only: there, the bytes of a UTF-8 character could be 8-bit controls.
                 */
                n = utf8_decode(s, &c);
                if (n > 0 && !unichar_is_control(c) && (utf8 || n == 1)) {
                        fwrite(s, 1, n, f);
                        written += n;
                        s += n;
                        continue;
                }

                /* Anything else, byte by byte, in octal, as C and systemd's cescape() write it. */
                for (n = n > 0 ? n : 1; n > 0; n--, s++) {
                        fprintf(f, "\\%03o", (unsigned char) *s);
                        written += 4;
                }
        }
        return written;
}

void json_string(const char *s, FILE *f) {
        fputc('"', f);
        while (s && *s) {
                uint32_t c;
                size_t n = utf8_decode(s, &c);

                if (n == 0) {
                        /*
                         * JSON is UTF-8: a byte that is not can only be replaced, as decoders
                         * (jq's too) would replace it anyway.
                         */
                        fputs("\\ufffd", f);
                        s++;
                } else {
                        if (c == '"' || c == '\\')
                                fprintf(f, "\\%c", (char) c);
                        else if (unichar_is_control(c))
                                /* The same character, escaped: a terminal showing the JSON stays safe. */
                                fprintf(f, "\\u%04x", (unsigned) c);
                        else
                                fwrite(s, 1, n, f);
                        s += n;
                }
        }
        fputc('"', f);
}
