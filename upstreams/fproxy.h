/*
 * fproxy: the forward proxy, an adapter on the shared exchange (exchange.c). Absolute-form
 * `http://host[:port]/path` requests are forwarded to that origin through per-worker dynamic pools
 * (keep-alive), hop-by-hop and Proxy-* headers removed; `https://` absolute-form is a 400 (as
 * Ferron). CONNECT host:port opens a raw TCP connection, answers 200 and tunnels bytes both ways:
 * from HTTP/1.1 clients (the connection becomes the tunnel) and from HTTP/2 clients (RFC 9113 8.5:
 * the stream is the tunnel, its flow control the back-pressure; END_STREAM from the client is a
 * half-close towards the target, the target's end of stream ends the stream, a reset or error is
 * RST_STREAM(CONNECT_ERROR)). A tunnel that carries no byte either way for
 * forwardProxyIdleTimeout ms is closed.
 *
 * Destination policy (ours; Ferron had none), checked on the name and on the resolved address, so
 * a name that resolves to a private address is refused like the address itself:
 *  - forwardProxyDeny: host patterns ("*.example.com", "example.com") and IPs/CIDRs refused;
 *  - forwardProxyAllow: when set, only these host patterns or IPs/CIDRs; private, loopback,
 *    link-local, metadata and other special ranges are refused unless an allowed CIDR covers the
 *    resolved address (a host pattern alone never opens them);
 *  - forwardProxyPorts: destination ports (default 80 and 443).
 * A refused destination is a 403 with the reason in the error log.
 */
#ifndef GW_FPROXY_H
#define GW_FPROXY_H

#include "config.h"
#include "handler.h"

/** Without route settings (every destination checked against the defaults). */
extern const gw_handler_t gw_fproxy_handler;

/** The handler with the route's forwardProxy* settings parsed once (in `arena`). Returns a handler
 *  that refuses every forward-proxy request when a setting is invalid (logged), NULL without memory. */
const gw_handler_t *gw_fproxy_handler_new(const gw_route_t *route, gw_arena_t *arena);

/** Checks a forwardProxy* property's entries at load: the bad node (with why) or NULL. */
const gw_node_t *gw_fproxy_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen);

#endif
