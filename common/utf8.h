/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * UTF-8 as text that others chose is checked before it is shown: wgctl's output and wgd's log
 * both escape what a terminal could take for a command.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The character at @s: its length in bytes (1 to 4), and *ret the code point; 0 if @s does not
 * start with a well-formed UTF-8 character (a stray continuation byte, an overlong form, a
 * surrogate, a character cut short by the end of the string).
 */
size_t utf8_decode(const char *s, uint32_t *ret);

/*
 * Whether a terminal may act on @c rather than show it: C0 and C1 controls, DEL, and the
 * characters that reorder the text around them (so that what follows could read backwards).
 */
bool unichar_is_control(uint32_t c);
