/*
 * Built-in operational endpoints, answered on every listener before a route's own handlers:
 *  - healthPath (default /healthz): 200 while the process runs (liveness);
 *  - readyPath (default /readyz): 200, or 503 while the answering worker drains for a stop
 *    (readiness: a load balancer stops sending new requests during the graceful drain);
 *  - metricsPath (default: off): the counters of metrics.h in the Prometheus text format.
 * Only clients whose connection comes from an address in adminAllow (default: loopback) see them;
 * for anyone else these paths are ordinary paths of the route (the request goes on down the
 * chain), so a site keeps its own /healthz for the outside world. The peer address of the
 * connection is what is checked, never X-Forwarded-For. A path set to null or "" is switched off.
 *
 * With adminListen set, they are answered on that listener alone (still to peers in adminAllow
 * only), through a route of their own where every other request gets 404 and no site route is
 * reached; the public listeners then never answer them, so a public port cannot expose metrics.
 */
#ifndef GW_ADMIN_H
#define GW_ADMIN_H

#include <stdio.h>

#include "config.h"

/** The route's admin handler (global properties, merged into every route); NULL when all three
 *  endpoints are off. Allocated in `arena`. */
const gw_handler_t *gw_admin_handler_new(const gw_route_t *route, gw_arena_t *arena);

/** True when adminListen is set: the public routes leave the admin endpoints out of their chain. */
bool gw_admin_has_own_listener(const gw_route_t *route);

/**
 * The route of requests on the adminListen listener: the global properties, the admin handler
 * alone (404 for anything else), no policy, filters or error pages. Built for every config, so a
 * connection accepted before a reload removed adminListen still finds one. NULL without memory.
 */
const gw_route_t *gw_admin_route_new(const gw_route_t *global, gw_arena_t *arena);

/**
 * Checks the value of an admin property (healthPath, readyPath, metricsPath, adminAllow) beyond its
 * type. Returns NULL when it is fine or not an admin property, else the node at fault, with the
 * reason written to why.
 */
const gw_node_t *gw_admin_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen);

/** Prints the gateway's version and the versions of the libraries it runs with (--version). */
void gw_admin_print_version(FILE *f);

#endif
