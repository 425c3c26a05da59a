/*
 * `gateway --explain`, one handler of a route's chain at a time (explain.c drives it): what the
 * handler would do with the request, running it for real when it only looks at the request (the
 * policy stages that decide offline), and saying "decided at run time" where a live fact is needed.
 */
#ifndef GW_EXPLAIN_STAGES_H
#define GW_EXPLAIN_STAGES_H

#include <stdbool.h>
#include <stdio.h>

#include "handler.h"

/** The walk through a chain. */
typedef struct gw_explain {
    gw_req_t *req;
    FILE *out;
    int status;         /**< a stage refused with this status (the chain stops); 0: not so far */
    const char *answer; /**< what answers the request, once known (arena or static); NULL: not yet */
} gw_explain_t;

/** Prints handler `h` (number `n` in the chain) and updates e->status / e->answer. */
void gw_explain_stage(gw_explain_t *e, const gw_handler_t *h, size_t n);

#endif
