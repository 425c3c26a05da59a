/*
 * Backend targets parsed from `proxyTo`-style URLs at config load: http://host[:port][/base],
 * https://..., h2c://host[:port][/base] (HTTP/2 with prior knowledge), tcp://host:port/ (FastCGI,
 * SCGI) and unix:///path/to.sock. Each target gets a small integer id, unique in its
 * config, that indexes the per-worker pool table.
 */
#ifndef GW_TARGET_H
#define GW_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The protocol spoken to an HTTP backend (an upstream group's `protocol`, or the URL scheme). */
typedef enum gw_backend_proto {
    GW_PROTO_HTTP1, /**< HTTP/1.1 (the default) */
    GW_PROTO_H2,    /**< HTTP/2 over TLS, ALPN h2 (https:// targets) */
    GW_PROTO_H2C,   /**< HTTP/2 over plain TCP with prior knowledge (h2c:// or http:// targets) */
    GW_PROTO_AUTO,  /**< HTTP/2 or HTTP/1.1 as the backend's ALPN answer says (https:// targets) */
} gw_backend_proto_t;

typedef struct gw_target {
    uint32_t id;
    gw_backend_proto_t proto;
    bool tls;
    bool insecure;    /**< https without certificate verification (disableProxyCertificateVerification) */
    char *unix_path;  /**< unix:///path: set, host NULL */
    char *host;       /**< name or literal (without brackets) */
    uint16_t port;
    char *authority;  /**< for the Host header: host[:port] as written */
    char *base_path;  /**< "" or "/base" (no trailing slash) */
    char *url;        /**< as configured */
} gw_target_t;

/** How a request picks one target of a list. */
typedef enum gw_balance {
    GW_LB_RANDOM,      /**< Ferron's proxyTo: uniform (weighted) random */
    GW_LB_ROUND_ROBIN, /**< smooth weighted round robin (as nginx) */
    GW_LB_LEAST_CONN,  /**< fewest active connections per weight on this worker */
    GW_LB_TWO_CHOICES, /**< two random targets, the less busy one */
    GW_LB_HASH,        /**< consistent hash (ketama ring) of the client IP, a header or a cookie */
} gw_balance_t;

typedef enum gw_hash_key { GW_HASH_IP, GW_HASH_HEADER, GW_HASH_COOKIE } gw_hash_key_t;

/** A balanced set of targets: a route's proxyTo list or a named group from `upstreams:`. */
typedef struct gw_target_list {
    gw_target_t **items;
    uint32_t *weights;  /**< >= 1 each */
    size_t count;
    uint32_t id;        /**< indexes per-worker balancer state */
    gw_balance_t balance;
    gw_hash_key_t hash_key;
    const char *hash_name; /**< header or cookie name (lower-case for headers) */
    uint32_t *ring;        /**< GW_LB_HASH: sorted point hashes ... */
    uint16_t *ring_target; /**< ... and the target index of each point */
    size_t ring_len;
    const char *name;      /**< group name, or NULL for a plain proxyTo list */
    const struct gw_health_check *health_check; /**< a group's active checks (health.h); NULL: none */
    struct gw_health_cell **health;             /**< with health_check: each item's up/down state */
} gw_target_list_t;

/**
 * Parses `url` into `t` with strings allocated by `alloc(ctx, n)`. Returns NULL on success or a
 * static message for the config error ("expected http://, https://, tcp:// or unix://", "bad port", ...).
 */
const char *gw_target_parse(gw_target_t *t, const char *url, void *(*alloc)(void *ctx, size_t n), void *ctx);

#endif
