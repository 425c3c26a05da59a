/*
 * Backend targets parsed from `proxyTo`-style URLs at config load: http://host[:port][/base],
 * https://... and unix:///path/to.sock. Each target gets a small integer id, unique in its
 * config, that indexes the per-worker pool table.
 */
#ifndef GW_TARGET_H
#define GW_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_target {
    uint32_t id;
    bool tls;
    char *unix_path;  /**< unix:///path: set, host NULL */
    char *host;       /**< name or literal (without brackets) */
    uint16_t port;
    char *authority;  /**< for the Host header: host[:port] as written */
    char *base_path;  /**< "" or "/base" (no trailing slash) */
    char *url;        /**< as configured */
} gw_target_t;

/** A list of targets for one route (proxyTo, secureProxyTo...). */
typedef struct gw_target_list {
    gw_target_t **items;
    size_t count;
} gw_target_list_t;

/**
 * Parses `url` into `t` with strings allocated by `alloc(ctx, n)`. Returns NULL on success or a
 * static message for the config error ("expected http://, https:// or unix://", "bad port", ...).
 */
const char *gw_target_parse(gw_target_t *t, const char *url, void *(*alloc)(void *ctx, size_t n), void *ctx);

#endif
