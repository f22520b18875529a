/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Intrusive doubly linked lists, in the manner of systemd's list.h: an object can sit in several
 * lists at once, one pair of named fields per list.
 *
 * A node knows whether it is linked: an unlinked node has both pointers NULL (as calloc() leaves
 * it, and as LIST_REMOVE() leaves it), and a linked node with no predecessor is the head. So
 * LIST_REMOVE() of a node that is not in the list changes nothing, and a free function may
 * unlink an object from every list it might be in, whether or not construction got that far.
 */

#define LIST_FIELDS(t, name) t *name##_next, *name##_prev

#define LIST_PREPEND(name, head, item)                                                                   \
        do {                                                                                             \
                __typeof__(*(head)) **_head = &(head), *_item = (item);                                  \
                _item->name##_next = *_head;                                                             \
                _item->name##_prev = NULL;                                                               \
                if (*_head)                                                                              \
                        (*_head)->name##_prev = _item;                                                   \
                *_head = _item;                                                                          \
        } while (0)

#define LIST_REMOVE(name, head, item)                                                                    \
        do {                                                                                             \
                __typeof__(*(head)) **_head = &(head), *_item = (item);                                  \
                if (!_item->name##_prev && *_head != _item)                                              \
                        break; /* not linked here */                                                     \
                if (_item->name##_next)                                                                  \
                        _item->name##_next->name##_prev = _item->name##_prev;                            \
                if (_item->name##_prev)                                                                  \
                        _item->name##_prev->name##_next = _item->name##_next;                            \
                else                                                                                     \
                        *_head = _item->name##_next;                                                     \
                _item->name##_next = _item->name##_prev = NULL;                                          \
        } while (0)

/* Safe against removing i (not others) while iterating. */
#define LIST_FOREACH(name, i, head)                                                                      \
        for (__typeof__(*(head)) *i = (head), *_n_##i = i ? i->name##_next : NULL; i;                   \
             i = _n_##i, _n_##i = i ? i->name##_next : NULL)
