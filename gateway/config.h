/*
 * The typed configuration: built once from the YAML tree, validated against the property registry
 * (config_props.c), with Ferron 1.x's global -> host -> location merge done at load time so that a
 * request only pays for a host lookup and a prefix match. A loaded config is immutable.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "acl.h"
#include "dns.h"
#include "handler.h"
#include "pool.h"
#include "target.h"
#include "yaml_tree.h"

/** One merged property: name -> value node (from the file or made by merging). */
typedef struct gw_prop {
    const char *name;
    const gw_node_t *value;
} gw_prop_t;

/** The properties in effect for a route, after merging. */
typedef struct gw_props {
    gw_prop_t *items;
    size_t count;
} gw_props_t;

/** A listening address from `port` / `sport`. */
typedef struct gw_listen {
    struct sockaddr_in6 addr; /**< IPv4 stored v4-mapped; [::] means dual stack */
    bool tls;
    char text[160];      /**< as shown in logs (with what an adminListen listener is for) */
    char unix_path[108]; /**< `port: "unix:/path"`: a Unix-socket listener; "" for TCP */
    bool admin; /**< adminListen: answers the admin endpoints alone (admin.h), never PROXY protocol */
} gw_listen_t;

/** Limits on what a client may send; each is a global property. */
typedef struct gw_limits {
    uint32_t max_head_bytes;     /**< maxRequestHeaderBytes */
    uint32_t max_headers;        /**< maxRequestHeaders */
    uint32_t max_target_bytes;   /**< maxRequestTargetBytes */
    uint32_t header_timeout_ms;  /**< headerReadTimeout */
    uint32_t keepalive_timeout_ms; /**< keepaliveTimeout */
    uint32_t send_timeout_ms;    /**< sendTimeout: a client that stops reading */
    uint32_t request_timeout_ms; /**< timeout (Ferron): whole request, 0 = none */
    uint32_t max_connections;    /**< maxConnections, whole process */
    uint32_t graceful_timeout_ms; /**< gracefulShutdownTimeout */
    uint32_t graceful_idle_ms;    /**< gracefulIdleTimeout: an idle HTTP/1.1 connection's last chance at a stop */
    uint32_t file_cache_entries;  /**< openFileCacheEntries, per worker; 0 = off */
    uint32_t file_cache_inline_bytes; /**< openFileCacheInlineBytes */
    uint32_t file_cache_validity_ms;  /**< openFileCacheValidity */
    uint32_t file_cache_encoded_bytes; /**< compressionCacheMaxBytes, per worker */
} gw_limits_t;

/** PROXY protocol on the TCP listeners (proxy_accept.h); global properties. */
typedef struct gw_pp_config {
    bool on;                /**< proxyProtocol */
    uint32_t max_bytes;     /**< proxyProtocolMaxBytes: the longest header accepted */
    gw_cidr_list_t trusted; /**< proxyProtocolTrusted: the peers that must (and alone may) send one */
} gw_pp_config_t;

/** Reverse-proxy settings of a route (rproxy). */
typedef struct gw_proxy_route {
    gw_target_list_t to;        /**< proxyTo */
    gw_target_list_t secure_to; /**< secureProxyTo: used for TLS clients when set */
    bool x_forwarded;           /**< !disableProxyXForwarded */
    bool health_check;          /**< enableLoadBalancerHealthCheck */
    uint32_t max_fails;         /**< loadBalancerHealthCheckMaximumFails */
    uint32_t read_timeout_ms;   /**< proxyReadTimeout: first byte and between bytes */
    bool intercept_errors;      /**< proxyInterceptErrors: our error page for backend statuses >= 400 */
    bool keep_host;             /**< proxyKeepHost: send the client's Host instead of the backend's */
    gw_headers_t set_request;   /**< proxySetRequestHeaders: replace (or add) these to the backend */
    gw_headers_t remove_request; /**< proxyRemoveRequestHeaders: names only */
    gw_headers_t set_response;  /**< proxySetResponseHeaders: replace (or add) these to the client */
    gw_headers_t remove_response; /**< proxyRemoveResponseHeaders: names only */
    uint8_t pp_to_backend;        /**< proxyProtocolToBackend: 0 none, 1 or 2 (every upstream type) */
} gw_proxy_route_t;

/** Forward-auth settings of a route (fauth). */
typedef struct gw_fauth_route {
    gw_target_list_t to;       /**< authTo (one target) */
    gw_headers_t copy_headers; /**< forwardedAuthCopyHeaders: names, lower-case */
} gw_fauth_route_t;

/** A list of strings from the config (arena). */
typedef struct gw_strlist {
    const char **items;
    size_t count;
} gw_strlist_t;

/** An interpreter for CGI scripts of one extension (cgiScriptInterpreters). */
typedef struct gw_cgi_interp {
    const char *ext;         /**< with its dot: ".php" */
    const char *const *argv; /**< argv prefix, NULL-terminated; NULL: none (the file runs itself) */
} gw_cgi_interp_t;

/** CGI, FastCGI and SCGI settings of a route (filters/cgi.c, upstreams/fcgi.c, upstreams/scgi.c). */
typedef struct gw_cgi_route {
    gw_strlist_t cgi_extensions;     /**< cgiScriptExtensions, with their dots */
    const gw_cgi_interp_t *interps;  /**< the defaults of spec §3.0 with cgiScriptInterpreters applied */
    size_t num_interps;
    uint32_t max_processes;          /**< cgiMaxProcesses: CGI programs running at once (whole process) */
    gw_target_list_t fcgi_to;        /**< fcgiTo (default tcp://localhost:4000/); empty: fcgi inactive */
    const char *fcgi_path;           /**< fcgiPath without a trailing slash ("" for "/"); NULL: none */
    gw_strlist_t fcgi_extensions;    /**< fcgiScriptExtensions, with their dots */
    gw_target_list_t scgi_to;        /**< scgiTo (default tcp://localhost:4000/); empty: scgi inactive */
    const char *scgi_path;           /**< scgiPath without a trailing slash ("" for "/"); NULL: none */
} gw_cgi_route_t;

/**
 * A level of the file a route's properties come from (global, a host, a location, an errorConfig
 * entry), innermost first. Its name says where it is without file positions ("host example.com
 * location /api"), so it stays the same when a reload adds or moves other levels.
 */
typedef struct gw_scope {
    const char *name;
    const gw_node_t *level;        /**< the level's YAML map */
    const struct gw_scope *parent; /**< NULL for global */
} gw_scope_t;

/** Everything a request needs once its host and location are known. */
typedef struct gw_route {
    gw_props_t props;         /**< merged properties, for modules that read their own */
    const gw_scope_t *scope;  /**< where the route is written (NULL only in unit tests' hand-made routes) */
    const char *wwwroot;      /**< NULL: no static files */
    int root_fd;              /**< O_PATH directory fd of wwwroot, -1 when none or missing */
    bool enable_etag;
    bool allow_double_slashes;
    bool trailing_slash_redirect; /**< !disableTrailingSlashRedirects */
    const char *server_admin;
    uint64_t max_body_bytes;  /**< maxRequestBodyBytes */
    const gw_handler_t *const *handlers;
    size_t num_handlers;
    struct gw_policy *policy; /**< access rules, auth, rewrites, rate limits (policy/); NULL: none */
    gw_proxy_route_t proxy;
    gw_fauth_route_t fauth;
    gw_cgi_route_t cgi;
    const gw_filter_t *const *filters; /**< response filters, in set-up order */
    size_t num_filters;
    /* response shaping (filters/: compression, listings, error pages, redirects) */
    bool enable_compression;  /**< enableCompression: dynamic gzip/br and precompressed siblings */
    bool enable_listing;      /**< enableDirectoryListing */
    const char *domain;       /**< the host's exact domain (wwwredirect); NULL: global or wildcard */
    const char *server_header; /**< serverHeader: NULL = the product name, "" = no Server header */
    const struct gw_error_page *error_pages; /**< errorPages, in file order */
    size_t num_error_pages;
    const struct gw_error_route *error_routes; /**< errorConfig merged onto this route; none on those */
    size_t num_error_routes;
    uint16_t metrics_host; /**< the host's label for the requests-by-host counters (metrics_hosts.h) */
} gw_route_t;

/** An `errorPages` entry: the file sent for one status code. */
typedef struct gw_error_page {
    int scode;
    const char *path; /**< absolute path */
} gw_error_page_t;

/** An `errorConfig` entry merged onto a route (spec §1); scode 0 matches every error status. */
typedef struct gw_error_route {
    int scode;
    gw_route_t route;
} gw_error_route_t;

typedef struct gw_location {
    const char *path; /**< normalised, without trailing slash ("" for "/") */
    size_t path_len;
    gw_route_t route;
} gw_location_t;

typedef struct gw_host {
    const char *domain; /**< lower-cased; NULL = any */
    bool wildcard;      /**< "*.example.com": domain holds "example.com" */
    bool has_ip;
    struct in6_addr ip; /**< local address to match, v4-mapped for IPv4 */
    gw_route_t route;
    gw_location_t *locations;
    size_t num_locations;
} gw_host_t;

typedef struct gw_config {
    char *file;
    gw_listen_t *listens;
    size_t num_listens;
    unsigned workers;
    gw_limits_t limits;
    gw_pp_config_t proxy_protocol;
    gw_pool_config_t pool;
    gw_dns_config_t dns; /**< resolver settings; dns.servers is a csv in the arena, NULL: resolv.conf */
    gw_target_t **targets; /**< distinct backend targets; ids are stable identities (config_ids.h) */
    uint32_t num_targets;
    uint32_t num_lists;        /**< target lists (their ids are stable identities, config_ids.h) */
    gw_target_list_t *groups;  /**< named groups from the top-level `upstreams:` */
    size_t num_groups;
    char *log_file;
    uint8_t log_format;  /**< logFormat: GW_LOG_COMBINED, GW_LOG_EXTENDED or GW_LOG_JSON */
    bool request_id;     /**< requestId: X-Request-ID passed through (when sane) or generated */
    char *proxy_ca_file; /**< proxyCaFile: CA bundle for backend TLS; NULL = the system store */
    const char *const *env_vars; /**< environmentVariables as "NAME=value", for CGI programs of this config */
    size_t num_env_vars;
    char *error_log_file;
    gw_route_t global_route; /**< for requests no host matches */
    const gw_route_t *admin_route; /**< for every request on an adminListen connection (admin.h) */
    gw_host_t *hosts;
    size_t num_hosts;
    bool hosts_by_ip; /**< some host has `ip`: routing needs each connection's local address */
    struct gw_loaded_module *modules; /**< dlopen'd modules from loadModules */
    size_t num_modules;
    gw_yaml_doc_t doc;         /**< doc.root is the tree after `include` and environment overrides */
    gw_yaml_doc_t *included;   /**< documents loaded by `include` (their nodes are in the tree) */
    size_t num_included;
    void *arena; /**< private: everything above lives here */
} gw_config_t;

enum { GW_LOG_COMBINED, GW_LOG_EXTENDED, GW_LOG_JSON };

/** Receives warnings (unused properties, features not built in) while loading. */
typedef void (*gw_config_warn_fn)(void *ctx, const char *msg);

/**
 * Loads and validates `path`. On failure returns NULL and writes every error found, one per line,
 * each as "file:line:column: property: what is wrong", to err. Warnings go to `warn` (may be NULL).
 */
gw_config_t *gw_config_load(const char *path, char *err, size_t errlen, gw_config_warn_fn warn, void *warn_ctx);

/** Same from memory (tests); `name` is used in messages. */
gw_config_t *gw_config_load_string(const char *name, const char *yaml, char *err, size_t errlen,
                                   gw_config_warn_fn warn, void *warn_ctx);

/** Frees a config and closes the directory fds it opened. */
void gw_config_free(gw_config_t *cfg);

/**
 * Picks the route for a request: the first host whose domain matches `host` (lower-case; a port
 * is ignored, unlike Ferron 1.x) and whose ip matches `local`, then the first of its locations
 * matching `path` on a segment boundary. Never NULL.
 */
const gw_route_t *gw_config_route(const gw_config_t *cfg, gw_slice_t host, const struct in6_addr *local,
                                  gw_slice_t path);

/** The errorConfig route of `route` for an error `status`: the first entry whose scode matches or
 *  has none; NULL when none does (or `route` is itself an error route). See error_pages.c. */
const gw_route_t *gw_error_route(const gw_route_t *route, int status);

/** The merged value node of property `name` on a route, or NULL. */
const gw_node_t *gw_route_prop(const gw_route_t *route, const char *name);

#endif
