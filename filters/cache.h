/*
 * The `cache` module: a shared in-memory HTTP cache (RFC 9111) in front of whatever answers after
 * it in loadModules order (rproxy, fcgi, scgi, cgi, static files).
 *  - The handler looks a GET or HEAD up (HEAD is answered from a stored GET), answers a hit from
 *    memory (with Age, ranges and the client's conditionals), revalidates a stale entry with a
 *    conditional request, makes concurrent misses for one key wait for a single backend fetch
 *    (woken on their own worker through its message queue), and notes unsafe methods.
 *  - The filter (first of the route's filters) sees the backend's response head: it stores a
 *    storable response as its body streams past (visible only after a clean end, never after an
 *    abort), turns a 304 to our conditional request into the refreshed stored response, serves a
 *    stale entry on a backend error where stale-if-error allows, and invalidates after a successful
 *    unsafe request (target, Location, Content-Location).
 * Every response it considers carries `Cache-Status` (RFC 9211) and `X-Gateway-Cache: HIT`, `MISS`
 * or `BYPASS` (Ferron's X-Ferron-Cache under our name).
 */
#ifndef GW_CACHE_H
#define GW_CACHE_H

#include "config.h"
#include "handler.h"

/** Builds the cache handler of a route (cacheVaryHeaders, cacheIgnoreHeaders,
 *  maximumCacheResponseSize / maximumCachedResponseSize; the process-wide maximumCacheEntries and
 *  maximumCacheMemory limits are applied too). NULL without memory. */
const gw_handler_t *gw_cache_handler_new(const gw_route_t *route, gw_arena_t *arena);

/** The registry's placeholder for `cache` (loadModules); each route gets its own handler from
 *  gw_cache_handler_new. Alone, it caches with default settings. */
extern const gw_handler_t gw_cache_default_handler;

/** Checks a cache property beyond its type (cacheTargetedHeader: field names, not Cache-Control);
 *  returns the offending node with `why` filled in, or NULL. */
const gw_node_t *gw_cache_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen);

/** The response filter that stores, refreshes and invalidates; does nothing for a request the
 *  cache handler did not see. */
extern const gw_filter_t gw_cache_filter;

#endif
