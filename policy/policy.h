/*
 * The policy stages of a route, built once at config load from its merged properties and run
 * before the modules, in Ferron's order (spec §3.1):
 *   client address (trustedProxies / enableIPSpoofing)  -> [redirects, not ours]
 *   -> blocklist / allowlist -> rewriteMap -> nonStandardCodes (basic auth, 403, redirects)
 *   -> rateLimit -> modules -> static files.
 * A route without a given property gets no stage for it and pays nothing.
 */
#ifndef GW_POLICY_POLICY_H
#define GW_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct gw_policy gw_policy_t;

/**
 * Receives a configuration problem located at `at` (may be NULL) about property `prop`: an error
 * when `fatal`, else a warning (a user entry that can never log in: it fails closed, and Ferron's
 * own documentation has such entries, which must still load).
 */
typedef void (*gw_policy_err_fn)(void *ctx, const gw_node_t *at, const char *prop, const char *msg,
                                 bool fatal);

/**
 * Builds the policy of a route from its properties (blocklist, allowlist, trustedProxies,
 * enableIPSpoofing, users, htpasswdFile, nonStandardCodes, rewriteMap, enableRewriteLogging,
 * rateLimit) in `arena`. Errors go to err(); the result is NULL when the route has no policy.
 */
gw_policy_t *gw_policy_build(const gw_route_t *route, gw_arena_t *arena, gw_policy_err_fn err, void *ctx);

/** Most stages a policy has (the client-address stage plus four). */
#define GW_POLICY_MAX_STAGES 5

/**
 * The handlers that go before the redirects (the client-address stage) when `early`, or after
 * them; writes up to GW_POLICY_MAX_STAGES into out and returns the count. NULL policy: 0.
 */
size_t gw_policy_stages(const gw_policy_t *p, bool early, const gw_handler_t **out);

/** The route's users (users, htpasswdFile) for other checks (fproxy's Proxy-Authorization); NULL
 *  when the route has no policy. */
const struct gw_userdb *gw_policy_users(const gw_policy_t *p);

/** The route's nonStandardCodes rules (`gateway --explain` matches them); NULL without a policy. */
const struct gw_nonstandard *gw_policy_nonstandard(const gw_policy_t *p);

/** Frees what the policy holds outside the arena (compiled regexes). NULL is ignored. */
void gw_policy_free(gw_policy_t *p);

#endif
