/*
 * PROXY protocol on the client side (`proxyProtocol`): the stage between accept and the codec.
 * A peer in `proxyProtocolTrusted` must start with a v1 or v2 header, whose source address then
 * becomes the connection's peer (logs, access rules, X-Forwarded-For, rate limits); any other peer
 * must not send one. Either breach closes the connection. The header is read with MSG_PEEK and
 * then consumed to its exact length, so TLS and HTTP start on the very next byte; a header that
 * is not all there waits (edge-triggered, bounded by headerReadTimeout) without blocking.
 */
#ifndef GW_PROXY_ACCEPT_H
#define GW_PROXY_ACCEPT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "yaml_tree.h"

struct gw_worker;

/**
 * Takes a newly accepted TCP connection of a listener (TLS or not) when cfg->proxy_protocol.on:
 * reads and checks the header, then hands the connection to gw_worker_dispatch. The fd and the
 * worker's connection count are owned from here (a refused connection is closed and uncounted).
 */
void gw_proxy_accept(struct gw_worker *w, bool tls, int fd, const struct sockaddr_in6 *peer,
                     const struct sockaddr_in6 *local);

/**
 * Load-time check of proxyProtocolTrusted entries and of proxyProtocolToBackend's value: the
 * offending node (why filled in) or NULL.
 */
const gw_node_t *gw_proxy_proto_check_property(const char *name, const gw_node_t *value, char *why,
                                               size_t whylen);

/** Builds the listener settings from the global level `g` (values already checked). False without
 *  memory. */
bool gw_proxy_proto_config_build(const gw_node_t *g, gw_arena_t *arena, gw_pp_config_t *out);

/** proxyProtocolToBackend of a route's properties: 0 (none), 1 or 2. */
int gw_proxy_proto_version(const gw_node_t *value);

#endif
