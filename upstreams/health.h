/*
 * Active health checks of named upstream groups (`healthCheck:` in a group of `upstreams:`).
 *
 * One worker probes, all workers read. Worker 0 alone sends the probes (a GET of `path` to every
 * server of every group that has a healthCheck, through the same pools, resolver and backend TLS as
 * requests) and publishes each server's up/down state in a process-wide cell: an atomic flag
 * written only on a change and read with a relaxed load by every balancing decision. Probing from
 * every worker would multiply the probe traffic by the worker count and let workers disagree about
 * a server for a whole interval; one prober costs the others nothing but that load.
 *
 * Cells are keyed by stable identity (group name + server URL, config_ids.h) and never freed before
 * the process ends, so a reload that keeps a group's server keeps its state, and a worker reading a
 * cell of a config that is being replaced never touches freed memory.
 *
 * A server starts up (as nginx's and HAProxy's checks do): `fails` failed probes in a row mark it
 * down, `passes` good ones mark it up again. A down server is skipped by every balancing method;
 * when every server of a group is down the balancer ignores the probes and falls back to passive
 * health (see balancer.c).
 */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "target.h"
#include "yaml_tree.h"

struct gw_worker;
struct gw_config;

/** A group's healthCheck settings (config memory). */
typedef struct gw_health_check {
    const char *path;       /**< request target of the probe, sent as is */
    const char *host;       /**< Host header; NULL: the server's authority */
    uint32_t interval_ms;   /**< from the end of one probe to the start of the next */
    uint32_t timeout_ms;    /**< connect + response head */
    uint32_t fails;         /**< failed probes in a row that mark a server down */
    uint32_t passes;        /**< good probes in a row that mark it up again */
    const uint16_t *status; /**< expected status codes; none: any 2xx */
    size_t num_status;
} gw_health_check_t;

/** One server's state in one group, shared by every worker and every config generation. */
typedef struct gw_health_cell {
    atomic_bool down;       /**< written by the probing worker on a change, read by all */
    uint32_t fails, passes; /**< consecutive probe results: the probing worker's alone */
} gw_health_cell_t;

/** True when the server's probes marked it down. */
static inline bool gw_health_down(const gw_health_cell_t *c)
{
    return atomic_load_explicit(&c->down, memory_order_relaxed);
}

/** Reports a config error at `at` (config.c locates it as file:line:column). */
typedef void (*gw_health_err_fn)(void *ctx, const gw_node_t *at, const char *prop, const char *msg);

/**
 * Parses the healthCheck map `n` of a group into arena memory; NULL after reporting errors through
 * `err`. Keys are checked against the registry entries "healthCheck.KEY" (type, range, default).
 */
gw_health_check_t *gw_health_check_parse(const gw_node_t *n, gw_arena_t *arena, gw_health_err_fn err,
                                         void *ctx);

/**
 * Attaches the state cells of every server to `group` (group->health, one per item). Called at
 * config load on the main thread. Returns false without memory.
 */
bool gw_health_attach(gw_target_list_t *group, gw_arena_t *arena);

/** Frees every cell (process exit, once no worker runs). */
void gw_health_cells_clear(void);

/** Starts probing the groups of the worker's current config (worker 0 only; others: nothing). */
void gw_health_probes_start(struct gw_worker *w);

/** Stops the worker's probes: before it adopts another config, when it drains, at exit. */
void gw_health_probes_stop(struct gw_worker *w);

/**
 * Appends the gauges of healthy servers per checked group of `cfg` (Prometheus text) to
 * buf[*used..len). Returns false when they do not fit.
 */
bool gw_health_render_metrics(const struct gw_config *cfg, char *buf, size_t len, size_t *used);

#endif
