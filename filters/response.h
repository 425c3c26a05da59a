/*
 * Response shaping that is not a file or a body: header rules (Ferron's customHeaders, our own
 * set/add/remove lists, HSTS), the HTTPS and www redirects, directory listings and error pages.
 * Everything a route needs is decided when the config is loaded; a request only applies it.
 */
#ifndef GW_RESPONSE_H
#define GW_RESPONSE_H

#include "config.h"
#include "handler.h"

/**
 * The header filter of a route, or NULL when the route has no header rule. Applied to every
 * response (error pages included), in this order: removeResponseHeaders, setResponseHeaders
 * (replace), addResponseHeaders (append), customHeaders (only when absent, Ferron), then
 * Strict-Transport-Security on TLS connections (hstsMaxAge > 0). "{path}" in a value is replaced by
 * the request path.
 */
const gw_filter_t *gw_headers_filter_new(const gw_route_t *route, gw_arena_t *arena);

/**
 * The redirect handler of a route (spec §3.0: it runs before everything else), or NULL when
 * neither applies: 301 to https://host[:sport]/path?query for plain-HTTP requests when `secure` is
 * on and `disableToHTTPSRedirect` is not; 301 to www.<host> when `wwwredirect` is on and the Host
 * is exactly the host's domain.
 */
const gw_handler_t *gw_redirect_handler_new(const gw_route_t *route, gw_arena_t *arena);

/** Sends an HTML listing of directory `dfd` (takes the fd): names HTML-escaped and URL-encoded,
 *  sizes, sorted by name, directories first. Returns GW_DONE or GW_ERROR with res.status set. */
gw_handler_result_t gw_listing_send(gw_req_t *req, int dfd);

#endif
