/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/*
 * Intrusive doubly linked lists with a first and a last element, so that one list serves as
 * a set (unlink in O(1)) and as a queue (append at the end, take from the front).
 *
 *   struct conn { LIST_FIELDS(struct conn, all); LIST_FIELDS(struct conn, hello); ... };
 *   struct server { LIST_HEAD(struct conn) conns, hellos; ... };
 *   LIST_APPEND(all, &srv->conns, c);  LIST_REMOVE(all, &srv->conns, c);
 *   LIST_FOREACH_SAFE(all, c, next, &srv->conns) { ... may unlink c ... }
 *
 * An element may be on several lists, one pair of fields per list. LIST_REMOVE clears the
 * element's fields; LIST_LINKED tells whether it is on the list.
 */

#define LIST_FIELDS(type, name) type *name##_next, *name##_prev
#define LIST_HEAD(type) struct { type *first, *last; size_t n; }

#define LIST_APPEND(name, head, item)                                   \
        do {                                                            \
                (item)->name##_next = NULL;                             \
                (item)->name##_prev = (head)->last;                     \
                if ((head)->last)                                       \
                        (head)->last->name##_next = (item);             \
                else                                                    \
                        (head)->first = (item);                         \
                (head)->last = (item);                                  \
                (head)->n++;                                            \
        } while (0)

#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                (item)->name##_prev = NULL;                             \
                (item)->name##_next = (head)->first;                    \
                if ((head)->first)                                      \
                        (head)->first->name##_prev = (item);            \
                else                                                    \
                        (head)->last = (item);                          \
                (head)->first = (item);                                 \
                (head)->n++;                                            \
        } while (0)

#define LIST_REMOVE(name, head, item)                                   \
        do {                                                            \
                if ((item)->name##_prev)                                \
                        (item)->name##_prev->name##_next = (item)->name##_next; \
                else                                                    \
                        (head)->first = (item)->name##_next;            \
                if ((item)->name##_next)                                \
                        (item)->name##_next->name##_prev = (item)->name##_prev; \
                else                                                    \
                        (head)->last = (item)->name##_prev;             \
                (item)->name##_next = (item)->name##_prev = NULL;       \
                (head)->n--;                                            \
        } while (0)

#define LIST_LINKED(name, head, item) \
        ((item)->name##_prev != NULL || (head)->first == (item))

#define LIST_FOREACH(name, i, head) \
        for ((i) = (head)->first; (i); (i) = (i)->name##_next)

/* Allows unlinking (or freeing) i inside the loop; n is a spare pointer of the same type. */
#define LIST_FOREACH_SAFE(name, i, n, head) \
        for ((i) = (head)->first; (i) && ((n) = (i)->name##_next, 1); (i) = (n))
