/*
 * The handler contract: every stage of request processing (policy, filters, upstreams, static
 * files, modules) answers one of three things, like nginx's phase codes.
 */
#ifndef GW_HANDLER_H
#define GW_HANDLER_H

#include "request.h"

typedef enum gw_handler_result {
    GW_CONTINUE = 0, /**< not mine: the next handler runs */
    GW_DONE = 1,     /**< I answer this request (a response was or will be started) */
    GW_ERROR = 2,    /**< refuse with the status in req->res.status (500 if unset): error page */
} gw_handler_result_t;

typedef struct gw_handler gw_handler_t;

struct gw_handler {
    const char *name;
    /** Decides for `req`; must not block. Handlers may keep state in the request arena. */
    gw_handler_result_t (*on_request)(const gw_handler_t *self, gw_req_t *req);
};

/**
 * Routes a parsed request and runs the handler chain of its route; always ends with a response
 * being started (an error page when no handler answers). Called by the codecs.
 */
void gw_req_dispatch(gw_req_t *req);

/**
 * Normalises the request's path (query split off, absolute-form authority taken) and picks its
 * route (req->route, never NULL); returns 0 or the error status (400) for a path that cannot be
 * normalised. gw_req_dispatch's first step, also used by `gateway --explain`.
 */
int gw_req_route(gw_req_t *req);

/**
 * For a handler that returned GW_DONE without answering because it waits for something (forward
 * auth): runs the rest of the chain, from the handler after it.
 */
void gw_req_continue(gw_req_t *req);

/** For such a handler: answers with an error status (errorConfig applies, then the error page). */
void gw_req_fail(gw_req_t *req, int status);

#endif
