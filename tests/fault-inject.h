/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The counter of wgd-fault's wrappers (fault-inject.c), for the wrappers in other files. */

#include <stdbool.h>

/*
 * Count one call of @name, made from @site; true if it is to fail, with *@error set to the errno
 * to fail with (@error holds the call's usual one on entry). @detail, if not NULL, says more in
 * the log.
 */
bool fault_hit_at(const void *site, const char *name, const char *detail, int *error);

/* In a wrapper: the call site is where the wrapper returns to. */
#define fault_hit(name, detail, error) fault_hit_at(__builtin_return_address(0), name, detail, error)
