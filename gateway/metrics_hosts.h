/*
 * Host labels of gateway_http_requests_by_host_total: a process-wide table of names, so a host keeps
 * its label (and its counters stay monotonic) across reloads however the hosts are reordered.
 *
 * The main thread gives every route of a config it puts in service the index of its host's label
 * (gw_route_t.metrics_host) before any worker sees the config; a request then costs one array
 * index. Index 0 is "default" (no host matched; also every route of a config never put in service,
 * e.g. in `gateway -t` or unit tests), indexes 1..max are hosts in the order they first appeared,
 * and the last one is "other": hosts beyond `metricsMaxHosts` share it, so the label set stays
 * bounded whatever the configuration does. Names are copied and kept for the process's life.
 */
#ifndef GW_METRICS_HOSTS_H
#define GW_METRICS_HOSTS_H

#include <stddef.h>

struct gw_config;

/** Sizes the table for the `metricsMaxHosts` of the config the process starts with (main thread,
 *  before any worker runs; later calls change nothing: a reload keeps the size). */
void gw_metrics_hosts_init(const struct gw_config *cfg);

/** Gives every route of `cfg` its host's label (main thread, before the workers see cfg). */
void gw_metrics_hosts_assign(struct gw_config *cfg);

/** Every label the table can hold, "default" and "other" included: the counters per slot (any
 *  thread; 0 before gw_metrics_hosts_init). */
size_t gw_metrics_hosts_capacity(void);

/** The name of label `i` (< capacity), or NULL while it is unused (any thread). */
const char *gw_metrics_host_name(size_t i);

#endif
