/*
 * Load balancing: picks the target of a list for one request, skipping targets that active health
 * checks marked down (health.h) and targets over the passive health limit (Ferron: if all are
 * failing, one is used anyway; if all are down by their probes, the probes are ignored). State
 * (round-robin weights) is per worker; least-connections counts are per worker too, so they are
 * exact for that worker and approximate for the process.
 */
#ifndef GW_BALANCER_H
#define GW_BALANCER_H

#include <stdbool.h>

#include "request.h"
#include "target.h"

struct gw_worker;

/**
 * Picks a target of `list` for `req`, never `avoid` when another is available (fail-over).
 * With `health_check`, targets with more than `max_fails` recent failures are skipped.
 */
const gw_target_t *gw_balance_pick(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid,
                                   bool health_check, uint32_t max_fails);

/** Builds the consistent-hash ring of a GW_LB_HASH list (160 points per weight unit). Returns
 *  false without memory. `alloc` allocates config memory. */
bool gw_balance_build_ring(gw_target_list_t *list, void *(*alloc)(void *ctx, size_t n), void *ctx);

/** Frees a worker's balancer state. */
void gw_balance_worker_free(struct gw_worker *w);

#endif
