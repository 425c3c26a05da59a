/*
 * A request without a client, for the cache's background revalidation (stale-while-revalidate,
 * RFC 5861 §3): a copy of a client's GET that runs the rest of that client's handler chain (the
 * handlers after the cache: rproxy, fcgi, scgi, cgi, static files) on the same worker, so that the
 * cache filter sees its response exactly as it sees a miss or a revalidation, while the body goes
 * nowhere. It has no request body, is not logged, and ends by itself once its response is complete.
 * The worker tracks it like a connection, so one still running when the worker exits is released.
 */
#ifndef GW_CACHE_BACKGROUND_H
#define GW_CACHE_BACKGROUND_H

#include "request.h"

/**
 * A GET for what `client` asked (same route, authority, target, client address and headers,
 * minus its conditionals, Range, Cache-Control and body framing), to run from the handler after
 * the one running now. NULL without memory, or when the worker's config changed since `client`
 * arrived (its route belongs to an older generation; the caller then revalidates in the
 * foreground).
 */
gw_req_t *gw_cache_bg_new(const gw_req_t *client);

/** Runs the request's chain from the next loop iteration (never inside the caller's call). */
void gw_cache_bg_start(gw_req_t *bg);

/** Releases a request that was never started. */
void gw_cache_bg_drop(gw_req_t *bg);

#endif
