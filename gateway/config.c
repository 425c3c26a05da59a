/*
 * Config loading: YAML tree -> validated, merged, typed gw_config_t. Ferron 1.x semantics (spec
 * §1): global, each host, each location are validated separately; scope and type errors are fatal,
 * unknown properties only warn; merging concatenates lists, key-merges maps, overrides scalars.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_props.h"
#include "module_loader.h"
#include "modules.h"
#include "balancer.h"
#include "tls_client.h"
#include "policy.h"
#include "uri.h"
#include "config_ids.h"
#include "config_include.h"
#include "admin.h"
#include "cache.h"
#include "health.h"
#include "fproxy.h"
#include "proxy_accept.h"
#include "listeners.h"

typedef struct loader {
    gw_config_t *cfg;
    gw_arena_t *arena;
    char *err;
    size_t errlen, errused;
    int nerrors;
    gw_config_warn_fn warn;
    void *warn_ctx;
    const gw_node_t *modules; /* loadModules list, or NULL */
    const gw_node_t *policy_warned[32]; /* policy warnings already given (one per node) */
    size_t num_policy_warned;
} loader_t;

typedef struct config_mem {
    gw_chunk_pool_t pool;
    gw_arena_t arena;
} config_mem_t;

static void add_error(loader_t *ld, const gw_node_t *at, const char *prop, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add_error(loader_t *ld, const gw_node_t *at, const char *prop, const char *fmt, ...)
{
    ld->nerrors++;
    va_list ap;
    va_start(ap, fmt);
    gw_config_error_vappend(ld->err, ld->errlen, &ld->errused, at, ld->cfg->file, prop, fmt, ap);
    va_end(ap);
}

static void add_warning(loader_t *ld, const gw_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_warning(loader_t *ld, const gw_node_t *at, const char *fmt, ...)
{
    if (!ld->warn) return;
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "%s:%d:%d: ", at->file, at->line, at->column);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    ld->warn(ld->warn_ctx, msg);
}

/* ---- validation of one level (global, host, location, errorConfig entry) ---- */

static bool module_loaded(const loader_t *ld, const char *module)
{
    if (!ld->modules || ld->modules->kind != GW_NODE_SEQ) return false; /* a scalar: a type error */
    for (size_t i = 0; i < ld->modules->seq.count; i++) {
        const char *m = gw_node_as_string(ld->modules->seq.items[i]);
        if (m && strcmp(m, module) == 0) return true;
    }
    return false;
}

static const char *scope_name(unsigned scope)
{
    switch (scope) {
    case GW_SCOPE_GLOBAL: return "global";
    case GW_SCOPE_HOST: return "a host";
    case GW_SCOPE_LOCATION: return "a location";
    default: return "errorConfig";
    }
}

/* errorPages: a list of {scode, path} with an absolute path (spec §2.3). */
static void check_error_pages(loader_t *ld, const gw_node_t *list)
{
    for (size_t i = 0; i < list->seq.count; i++) {
        const gw_node_t *en = list->seq.items[i];
        int64_t sc;
        const char *path = gw_node_as_string(gw_yaml_map_get(en, "path"));
        if (!gw_node_as_int(gw_yaml_map_get(en, "scode"), &sc) || sc < 100 || sc > 999)
            add_error(ld, en, "errorPages", "each entry needs an integer 'scode' (100 to 999)");
        if (!path || path[0] != '/') add_error(ld, en, "errorPages", "each entry needs an absolute 'path'");
    }
}

static void check_property(loader_t *ld, const gw_map_entry_t *e, unsigned scope)
{
    const char *name = e->key->scalar.text;
    const gw_prop_def_t *def = gw_prop_find(name);
    if (!def) {
        const char *s = gw_prop_suggest(name);
        if (s)
            add_warning(ld, e->key, "unused configuration property '%s' (did you mean '%s'?)", name, s);
        else
            add_warning(ld, e->key, "unused configuration property '%s'", name);
        return;
    }
    if (!(def->scopes & scope)) {
        add_error(ld, e->key, name, "not allowed in %s", scope_name(scope));
        return;
    }
    char why[160];
    if (!gw_prop_check(def, e->value, why, sizeof(why))) {
        add_error(ld, e->value, name, "%s", why);
        return;
    }
    if (!strcmp(name, "errorPages")) check_error_pages(ld, e->value);
    const gw_node_t *bad = gw_admin_check_property(name, e->value, why, sizeof(why));
    if (!bad) bad = gw_fproxy_check_property(name, e->value, why, sizeof(why));
    if (!bad) bad = gw_proxy_proto_check_property(name, e->value, why, sizeof(why));
    if (!bad) bad = gw_cache_check_property(name, e->value, why, sizeof(why));
    if (bad) add_error(ld, bad, name, "%s", why);
    if (def->module && !module_loaded(ld, def->module))
        add_warning(ld, e->key, "property '%s' is unused: module '%s' is not in loadModules", name, def->module);
    else if (!def->implemented)
        add_warning(ld, e->key, "property '%s' is not supported by this build yet and is ignored", name);
}

static void validate_level(loader_t *ld, const gw_node_t *map, unsigned scope)
{
    for (size_t i = 0; i < map->map.count; i++) check_property(ld, &map->map.entries[i], scope);
}

/* ---- merging (global -> host -> location) ---- */

static gw_node_t *node_copy(loader_t *ld, const gw_node_t *like)
{
    gw_node_t *n = gw_arena_alloc(ld->arena, sizeof(*n));
    if (n) *n = *like;
    return n;
}

static const gw_node_t *merge_seq(loader_t *ld, const gw_node_t *a, const gw_node_t *b)
{
    gw_node_t *n = node_copy(ld, b);
    size_t count = a->seq.count + b->seq.count;
    gw_node_t **items = gw_arena_alloc(ld->arena, (count ? count : 1) * sizeof(*items));
    if (!n || !items) return b;
    for (size_t i = 0; i < a->seq.count; i++) items[i] = a->seq.items[i];
    for (size_t i = 0; i < b->seq.count; i++) items[a->seq.count + i] = b->seq.items[i];
    n->seq.items = items;
    n->seq.count = count;
    return n;
}

static const gw_node_t *merge_map(loader_t *ld, const gw_node_t *a, const gw_node_t *b)
{
    gw_node_t *n = node_copy(ld, b);
    size_t cap = a->map.count + b->map.count;
    gw_map_entry_t *es = gw_arena_alloc(ld->arena, (cap ? cap : 1) * sizeof(*es));
    if (!n || !es) return b;
    size_t count = 0;
    for (size_t i = 0; i < a->map.count; i++)
        if (!gw_yaml_map_get(b, a->map.entries[i].key->scalar.text)) es[count++] = a->map.entries[i];
    for (size_t i = 0; i < b->map.count; i++) es[count++] = b->map.entries[i];
    n->map.entries = es;
    n->map.count = count;
    return n;
}

static const gw_node_t *merge_values(loader_t *ld, const gw_node_t *a, const gw_node_t *b)
{
    if (a->kind == GW_NODE_SEQ && b->kind == GW_NODE_SEQ) return merge_seq(ld, a, b);
    if (a->kind == GW_NODE_MAP && b->kind == GW_NODE_MAP) return merge_map(ld, a, b);
    return b;
}

/* Level keys that describe structure rather than behaviour are not merged into routes. */
static bool structural_key(const char *k)
{
    return !strcmp(k, "domain") || !strcmp(k, "ip") || !strcmp(k, "locations") || !strcmp(k, "errorConfig") ||
           !strcmp(k, "path") || !strcmp(k, "scode");
}

static gw_props_t merge_props(loader_t *ld, const gw_props_t *base, const gw_node_t *level)
{
    size_t cap = base->count + (level ? level->map.count : 0);
    gw_props_t out = {gw_arena_alloc(ld->arena, (cap ? cap : 1) * sizeof(gw_prop_t)), 0};
    if (!out.items) return *base;
    for (size_t i = 0; i < base->count; i++) out.items[out.count++] = base->items[i];
    for (size_t i = 0; level && i < level->map.count; i++) {
        const gw_map_entry_t *e = &level->map.entries[i];
        const char *k = e->key->scalar.text;
        if (structural_key(k) || !gw_prop_find(k)) continue;
        size_t j = 0;
        while (j < out.count && strcmp(out.items[j].name, k) != 0) j++;
        if (j < out.count)
            out.items[j].value = merge_values(ld, out.items[j].value, e->value);
        else
            out.items[out.count++] = (gw_prop_t){k, e->value};
    }
    return out;
}

const gw_node_t *gw_route_prop(const gw_route_t *route, const char *name)
{
    for (size_t i = 0; i < route->props.count; i++)
        if (strcmp(route->props.items[i].name, name) == 0) return route->props.items[i].value;
    return NULL;
}

/* ---- typed route ---- */

static bool prop_bool(const gw_route_t *r, const char *name, bool def)
{
    bool v;
    return gw_node_as_bool(gw_route_prop(r, name), &v) ? v : def;
}

static int64_t prop_int(const gw_props_t *p, const char *name, int64_t def)
{
    gw_route_t r = {.props = *p};
    int64_t v;
    return gw_node_as_int(gw_route_prop(&r, name), &v) ? v : def;
}

static void open_root(loader_t *ld, gw_route_t *r)
{
    const gw_node_t *n = gw_route_prop(r, "wwwroot");
    r->wwwroot = gw_node_as_string(n);
    r->root_fd = -1;
    if (!r->wwwroot) return;
    r->root_fd = open(r->wwwroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->root_fd < 0)
        add_warning(ld, n, "wwwroot '%s' cannot be opened (%s): static files answer 404", r->wwwroot,
                    strerror(errno));
}

static void *arena_alloc_cb(void *ctx, size_t n)
{
    return gw_arena_alloc(ctx, n);
}

/* One target (and so one pool per worker) per distinct URL, however many routes name it. */
static gw_target_t *intern_target(loader_t *ld, gw_target_t *t)
{
    gw_config_t *cfg = ld->cfg;
    for (uint32_t i = 0; i < cfg->num_targets; i++)
        if (strcmp(cfg->targets[i]->url, t->url) == 0 && cfg->targets[i]->insecure == t->insecure &&
            cfg->targets[i]->proto == t->proto)
            return cfg->targets[i]; /* verifying and non-verifying TLS never share connections */
    if (cfg->num_targets % 16 == 0) {
        gw_target_t **grown = gw_arena_alloc(ld->arena, (cfg->num_targets + 16) * sizeof(*grown));
        if (!grown) return t;
        if (cfg->num_targets) memcpy(grown, cfg->targets, cfg->num_targets * sizeof(*grown));
        cfg->targets = grown;
    }
    t->id = gw_identity_target(t); /* stable across reloads: pools and health survive */
    cfg->targets[cfg->num_targets++] = t;
    return t;
}

/* proxyTo-style property: a URL or a list of them -> parsed targets with config-wide ids. */
/* A group's `protocol` against the scheme of one of its URLs: NULL when they fit, else why not. */
static const char *apply_protocol(gw_target_t *t, gw_backend_proto_t proto)
{
    if (proto == GW_PROTO_HTTP1) return NULL;
    if (t->unix_path) return "protocol h2/h2c/auto needs an http://, https:// or h2c:// URL";
    if (proto == GW_PROTO_H2 && !t->tls) return "protocol h2 needs an https:// URL (h2c for plain TCP)";
    if (proto == GW_PROTO_AUTO && !t->tls) return "protocol auto needs an https:// URL (ALPN decides)";
    if (proto == GW_PROTO_H2C && t->tls) return "protocol h2c needs an http:// URL (h2 for https://)";
    t->proto = proto;
    return NULL;
}

/* Parses one backend URL into an interned target; NULL (error reported) when it is invalid. */
static gw_target_t *parse_target(loader_t *ld, const gw_node_t *u, const char *prop, bool insecure,
                                 gw_backend_proto_t proto)
{
    const char *url = gw_node_as_string(u);
    gw_target_t *t = gw_arena_alloc(ld->arena, sizeof(*t));
    const char *err = !url ? "expected a URL" : !t ? "out of memory" : gw_target_parse(t, url, arena_alloc_cb, ld->arena);
    if (!err) err = apply_protocol(t, proto);
    if (err) {
        add_error(ld, u, prop, "%s", err);
        return NULL;
    }
    t->insecure = t->tls && insecure;
    return intern_target(ld, t);
}

static bool list_alloc(loader_t *ld, gw_target_list_t *out, size_t count)
{
    out->items = gw_arena_alloc(ld->arena, (count ? count : 1) * sizeof(*out->items));
    out->weights = gw_arena_alloc(ld->arena, (count ? count : 1) * sizeof(*out->weights));
    out->id = ld->cfg->num_lists++;
    return out->items && out->weights;
}

/* "http://NAME" with NAME a group from `upstreams:` means that group (as nginx's proxy_pass). */
static const gw_target_list_t *named_group(loader_t *ld, const char *url)
{
    if (!url || strncmp(url, "http://", 7) != 0) return NULL;
    const char *name = url + 7;
    for (size_t i = 0; i < ld->cfg->num_groups; i++)
        if (strcmp(ld->cfg->groups[i].name, name) == 0) return &ld->cfg->groups[i];
    return NULL;
}

/* HTTP/2 backends serve the reverse proxy only (authTo, fcgiTo, health probes speak HTTP/1.1),
 * and one list speaks one protocol. */
static void check_protocols(loader_t *ld, const gw_node_t *at, const char *name, const gw_target_list_t *l)
{
    if (!l->count) return;
    bool h2 = l->items[0]->proto != GW_PROTO_HTTP1;
    for (size_t i = 1; i < l->count; i++)
        if ((l->items[i]->proto != GW_PROTO_HTTP1) != h2) {
            add_error(ld, at, name, "cannot mix HTTP/1.1 and HTTP/2 (h2c://) backends in one list");
            return;
        }
    if (h2 && strcmp(name, "proxyTo") != 0 && strcmp(name, "secureProxyTo") != 0)
        add_error(ld, at, name, "HTTP/2 backends (protocol h2/h2c/auto, h2c://) serve proxyTo and secureProxyTo only");
}

/* proxyTo-style property: a URL or a list of them (Ferron: random choice), or one group name. */
static void build_targets(loader_t *ld, const gw_route_t *r, const char *name, gw_target_list_t *out)
{
    const gw_node_t *n = gw_route_prop(r, name);
    if (!n) return;
    size_t count = n->kind == GW_NODE_SEQ ? n->seq.count : 1;
    const gw_target_list_t *group = count == 1 ? named_group(ld, gw_node_as_string(n->kind == GW_NODE_SEQ ? n->seq.items[0] : n)) : NULL;
    if (group) {
        *out = *group; /* shares the group's balancer state */
        check_protocols(ld, n, name, out);
        return;
    }
    if (!list_alloc(ld, out, count)) return;
    for (size_t i = 0; i < count; i++) {
        gw_target_t *t = parse_target(ld, n->kind == GW_NODE_SEQ ? n->seq.items[i] : n, name,
                                      prop_bool(r, "disableProxyCertificateVerification", false), GW_PROTO_HTTP1);
        if (!t) continue;
        out->weights[out->count] = 1;
        out->items[out->count++] = t;
    }
    check_protocols(ld, n, name, out);
    out->id = gw_identity_list(out);
}

/* ---- upstreams: named groups ---- */

static const struct {
    const char *name;
    gw_balance_t kind;
} balance_names[] = {{"random", GW_LB_RANDOM}, {"roundRobin", GW_LB_ROUND_ROBIN},
                     {"leastConnections", GW_LB_LEAST_CONN}, {"twoRandomChoices", GW_LB_TWO_CHOICES},
                     {"hash", GW_LB_HASH}};

static void group_balance(loader_t *ld, gw_target_list_t *g, const gw_node_t *gn)
{
    const gw_node_t *b = gw_yaml_map_get(gn, "balance");
    const char *bs = gw_node_as_string(b);
    g->balance = GW_LB_ROUND_ROBIN;
    bool found = !b;
    for (size_t i = 0; bs && i < sizeof(balance_names) / sizeof(balance_names[0]); i++)
        if (strcmp(bs, balance_names[i].name) == 0) {
            g->balance = balance_names[i].kind;
            found = true;
        }
    if (!found)
        add_error(ld, b, "balance", "expected random, roundRobin, leastConnections, twoRandomChoices or hash");
    const gw_node_t *k = gw_yaml_map_get(gn, "hashKey");
    const char *ks = gw_node_as_string(k);
    if (!ks || strcmp(ks, "ip") == 0) return;
    bool header = strncmp(ks, "header:", 7) == 0, cookie = strncmp(ks, "cookie:", 7) == 0;
    if ((!header && !cookie) || !ks[7]) {
        add_error(ld, k, "hashKey", "expected ip, header:NAME or cookie:NAME");
        return;
    }
    g->hash_key = header ? GW_HASH_HEADER : GW_HASH_COOKIE;
    char *nm = gw_arena_strndup(ld->arena, ks + 7, strlen(ks + 7));
    for (char *p = nm; header && p && *p; p++) *p = (char)tolower((unsigned char)*p);
    g->hash_name = nm;
}

/* protocol: http1 (default), h2 (TLS, ALPN h2), h2c (prior knowledge) or auto (TLS, ALPN h2 or
 * http/1.1) for every server. */
static gw_backend_proto_t group_protocol(loader_t *ld, const gw_node_t *gn)
{
    const gw_node_t *n = gw_yaml_map_get(gn, "protocol");
    const char *s = gw_node_as_string(n);
    if (!n || (s && strcmp(s, "http1") == 0)) return GW_PROTO_HTTP1;
    if (s && strcmp(s, "h2") == 0) return GW_PROTO_H2;
    if (s && strcmp(s, "h2c") == 0) return GW_PROTO_H2C;
    if (s && strcmp(s, "auto") == 0) return GW_PROTO_AUTO;
    add_error(ld, n, "protocol", "expected http1, h2, h2c or auto");
    return GW_PROTO_HTTP1;
}

static void group_server(loader_t *ld, gw_target_list_t *g, const gw_node_t *sn, gw_backend_proto_t proto)
{
    const gw_node_t *url = sn->kind == GW_NODE_MAP ? gw_yaml_map_get(sn, "url") : sn;
    int64_t weight = 1;
    const gw_node_t *w = sn->kind == GW_NODE_MAP ? gw_yaml_map_get(sn, "weight") : NULL;
    if (w && (!gw_node_as_int(w, &weight) || weight < 1 || weight > 1000)) {
        add_error(ld, w, "weight", "expected an integer from 1 to 1000");
        return;
    }
    if (!url) {
        add_error(ld, sn, "servers", "a server needs a 'url'");
        return;
    }
    bool verify = true;
    gw_node_as_bool(gw_yaml_map_get(sn, "tlsVerify"), &verify);
    gw_target_t *t = parse_target(ld, url, "servers", !verify, proto);
    if (!t) return;
    g->weights[g->count] = (uint32_t)weight;
    g->items[g->count++] = t;
}

static void health_error(void *ctx, const gw_node_t *at, const char *prop, const char *msg)
{
    add_error(ctx, at, prop, "%s", msg);
}

/* healthCheck: active probes of the group's servers (health.h) */
static void group_health(loader_t *ld, gw_target_list_t *g, const gw_node_t *gn)
{
    const gw_node_t *hn = gw_yaml_map_get(gn, "healthCheck");
    if (!hn) return;
    if (g->count && g->items[0]->proto != GW_PROTO_HTTP1) {
        add_error(ld, hn, "healthCheck", "active health checks speak HTTP/1.1: not available with protocol h2, h2c or auto");
        return;
    }
    g->health_check = gw_health_check_parse(hn, ld->arena, health_error, ld);
    if (g->health_check && !gw_health_attach(g, ld->arena)) add_error(ld, hn, "healthCheck", "out of memory");
}

static void build_group(loader_t *ld, gw_target_list_t *g, const gw_map_entry_t *e)
{
    g->name = e->key->scalar.text;
    const gw_node_t *servers = gw_yaml_map_get(e->value, "servers");
    if (e->value->kind != GW_NODE_MAP || !servers || servers->kind != GW_NODE_SEQ || !servers->seq.count) {
        add_error(ld, e->key, "upstreams", "group '%s' needs a non-empty 'servers' list", g->name);
        return;
    }
    if (!list_alloc(ld, g, servers->seq.count)) return;
    gw_backend_proto_t proto = group_protocol(ld, e->value);
    for (size_t i = 0; i < servers->seq.count; i++) group_server(ld, g, servers->seq.items[i], proto);
    group_balance(ld, g, e->value);
    group_health(ld, g, e->value);
    g->id = gw_identity_list(g);
    if (g->balance == GW_LB_HASH && !gw_balance_build_ring(g, arena_alloc_cb, ld->arena))
        add_error(ld, e->key, "upstreams", "out of memory");
}

static void build_groups(loader_t *ld, const gw_node_t *root)
{
    const gw_node_t *ups = root ? gw_yaml_map_get(root, "upstreams") : NULL;
    if (!ups) return;
    if (ups->kind != GW_NODE_MAP) {
        add_error(ld, ups, "upstreams", "expected a map of group name -> {servers, balance}");
        return;
    }
    ld->cfg->groups = gw_arena_alloc(ld->arena, (ups->map.count + 1) * sizeof(gw_target_list_t));
    for (size_t i = 0; ld->cfg->groups && i < ups->map.count; i++) {
        gw_target_list_t *g = &ld->cfg->groups[ld->cfg->num_groups++];
        memset(g, 0, sizeof(*g));
        build_group(ld, g, &ups->map.entries[i]);
    }
}

/* A map property (name -> value) or a list property (names) as a header list; names lower-cased. */
static void build_header_list(loader_t *ld, const gw_route_t *r, const char *name, gw_headers_t *out)
{
    const gw_node_t *n = gw_route_prop(r, name);
    size_t count = !n ? 0 : n->kind == GW_NODE_MAP ? n->map.count : n->kind == GW_NODE_SEQ ? n->seq.count : 0;
    for (size_t i = 0; i < count; i++) {
        const gw_node_t *k = n->kind == GW_NODE_MAP ? n->map.entries[i].key : n->seq.items[i];
        const char *v = n->kind == GW_NODE_MAP ? gw_node_as_string(n->map.entries[i].value) : "";
        const char *ks = gw_node_as_string(k);
        if (!ks || !v) continue;
        char *low = gw_arena_strndup(ld->arena, ks, strlen(ks));
        char *val = gw_arena_strndup(ld->arena, v, strlen(v));
        if (!low || !val) return;
        for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
        gw_headers_add(ld->arena, out, (gw_slice_t){low, strlen(low)}, (gw_slice_t){val, strlen(val)});
    }
}

static void build_fauth(loader_t *ld, gw_route_t *r)
{
    build_targets(ld, r, "authTo", &r->fauth.to);
    build_header_list(ld, r, "forwardedAuthCopyHeaders", &r->fauth.copy_headers);
}

/* A list of strings (extensions get a leading dot when written without one). */
static void build_strlist(loader_t *ld, const gw_route_t *r, const char *name, bool dot, gw_strlist_t *out)
{
    const gw_node_t *n = gw_route_prop(r, name);
    if (!n || n->kind != GW_NODE_SEQ || !n->seq.count) return;
    out->items = gw_arena_alloc(ld->arena, n->seq.count * sizeof(*out->items));
    for (size_t i = 0; out->items && i < n->seq.count; i++) {
        const char *v = gw_node_as_string(n->seq.items[i]);
        if (v) out->items[out->count++] = dot && v[0] != '.' ? gw_arena_printf(ld->arena, ".%s", v) : v;
    }
}

/* The spec §3.0 interpreters, then cgiScriptInterpreters: ext -> argv list, or null to remove. */
static void build_interps(loader_t *ld, gw_route_t *r)
{
    static const char *const defaults[][3] = {{".pl", "perl", NULL}, {".py", "python3", NULL}, {".sh", "bash", NULL},
                                              {".ksh", "ksh", NULL},  {".csh", "csh", NULL},     {".rb", "ruby", NULL},
                                              {".php", "php-cgi", NULL}}; /* ext, argv..., NULL */
    const size_t nd = sizeof(defaults) / sizeof(defaults[0]);
    const gw_node_t *m = gw_route_prop(r, "cgiScriptInterpreters");
    size_t extra = m && m->kind == GW_NODE_MAP ? m->map.count : 0;
    gw_cgi_interp_t *in = gw_arena_alloc(ld->arena, (nd + extra) * sizeof(*in));
    if (!in) return;
    for (size_t i = 0; i < nd; i++) in[i] = (gw_cgi_interp_t){defaults[i][0], &defaults[i][1]};
    size_t n = nd;
    for (size_t i = 0; i < extra; i++) {
        const char *ext = gw_node_as_string(m->map.entries[i].key);
        const gw_node_t *v = m->map.entries[i].value;
        if (!ext) continue;
        if (ext[0] != '.') ext = gw_arena_printf(ld->arena, ".%s", ext);
        const char **argv = NULL;
        if (v && v->kind == GW_NODE_SEQ && v->seq.count) {
            argv = gw_arena_alloc(ld->arena, (v->seq.count + 1) * sizeof(*argv));
            for (size_t j = 0; argv && j < v->seq.count; j++) argv[j] = gw_node_as_string(v->seq.items[j]);
            if (argv) argv[v->seq.count] = NULL;
        } else if (v && v->kind == GW_NODE_SCALAR && gw_node_as_string(v)) {
            add_error(ld, v, "cgiScriptInterpreters", "expected a list (interpreter and its arguments) or null");
        }
        size_t k = 0;
        while (k < n && strcasecmp(in[k].ext, ext) != 0) k++;
        in[k] = (gw_cgi_interp_t){ext, argv};
        if (k == n) n++;
    }
    r->cgi.interps = in;
    r->cgi.num_interps = n;
}

/* A URL prefix property: without its trailing slash; NULL when unset. */
static const char *prefix_prop(loader_t *ld, const gw_route_t *r, const char *name)
{
    const char *p = gw_node_as_string(gw_route_prop(r, name));
    if (!p) return NULL;
    size_t n = strlen(p);
    while (n && p[n - 1] == '/') n--;
    return gw_arena_strndup(ld->arena, p, n);
}

/* fcgiTo / scgiTo: one backend, the default when unset. */
static void build_cgi_target(loader_t *ld, const gw_route_t *r, const char *name, gw_target_list_t *out)
{
    const gw_node_t *n = gw_route_prop(r, name);
    if (!list_alloc(ld, out, 1)) return;
    gw_target_t *t = n ? parse_target(ld, n, name, false, GW_PROTO_HTTP1) : NULL;
    if (!n) {
        t = gw_arena_alloc(ld->arena, sizeof(*t));
        if (!t || gw_target_parse(t, "tcp://localhost:4000/", arena_alloc_cb, ld->arena)) return;
        t = intern_target(ld, t);
    }
    if (!t) return;
    out->weights[0] = 1;
    out->items[out->count++] = t;
    out->id = gw_identity_list(out);
}

static void build_cgi(loader_t *ld, gw_route_t *r)
{
    gw_cgi_route_t *c = &r->cgi;
    build_strlist(ld, r, "cgiScriptExtensions", true, &c->cgi_extensions);
    build_interps(ld, r);
    c->max_processes = (uint32_t)prop_int(&r->props, "cgiMaxProcesses", 64);
    c->fcgi_path = prefix_prop(ld, r, "fcgiPath");
    build_strlist(ld, r, "fcgiScriptExtensions", true, &c->fcgi_extensions);
    if (c->fcgi_path || c->fcgi_extensions.count) build_cgi_target(ld, r, "fcgiTo", &c->fcgi_to);
    c->scgi_path = prefix_prop(ld, r, "scgiPath");
    if (c->scgi_path) build_cgi_target(ld, r, "scgiTo", &c->scgi_to);
}

static void build_proxy(loader_t *ld, gw_route_t *r)
{
    gw_proxy_route_t *p = &r->proxy;
    build_targets(ld, r, "proxyTo", &p->to);
    build_targets(ld, r, "secureProxyTo", &p->secure_to);
    p->x_forwarded = !prop_bool(r, "disableProxyXForwarded", false);
    p->health_check = prop_bool(r, "enableLoadBalancerHealthCheck", false);
    p->max_fails = (uint32_t)prop_int(&r->props, "loadBalancerHealthCheckMaximumFails", 3);
    p->read_timeout_ms = (uint32_t)prop_int(&r->props, "proxyReadTimeout", 60000);
    p->intercept_errors = prop_bool(r, "proxyInterceptErrors", false);
    p->keep_host = prop_bool(r, "proxyKeepHost", false);
    p->pp_to_backend = (uint8_t)gw_proxy_proto_version(gw_route_prop(r, "proxyProtocolToBackend"));
    build_header_list(ld, r, "proxySetRequestHeaders", &p->set_request);
    build_header_list(ld, r, "proxyRemoveRequestHeaders", &p->remove_request);
    build_header_list(ld, r, "proxySetResponseHeaders", &p->set_response);
    build_header_list(ld, r, "proxyRemoveResponseHeaders", &p->remove_response);
}

static void build_error_pages(loader_t *ld, gw_route_t *r)
{
    const gw_node_t *list = gw_route_prop(r, "errorPages");
    if (!list || list->kind != GW_NODE_SEQ || !list->seq.count) return;
    gw_error_page_t *pages = gw_arena_alloc(ld->arena, list->seq.count * sizeof(*pages));
    for (size_t i = 0; pages && i < list->seq.count; i++) {
        int64_t sc = 0;
        const char *path = gw_node_as_string(gw_yaml_map_get(list->seq.items[i], "path"));
        gw_node_as_int(gw_yaml_map_get(list->seq.items[i], "scode"), &sc);
        if (path && path[0] == '/') pages[r->num_error_pages++] = (gw_error_page_t){(int)sc, path};
    }
    r->error_pages = pages;
}

/* A policy error; a rule written at global or host level is built into each route below it, so
 * the same located message is reported once. */
static void policy_error(void *ctx, const gw_node_t *at, const char *prop, const char *msg, bool fatal)
{
    loader_t *ld = ctx;
    if (!fatal && at) {
        for (size_t i = 0; i < ld->num_policy_warned; i++)
            if (ld->policy_warned[i] == at) return;
        if (ld->num_policy_warned < 32) ld->policy_warned[ld->num_policy_warned++] = at;
        add_warning(ld, at, "%s: %s", prop, msg);
        return;
    }
    char line[512];
    if (at)
        snprintf(line, sizeof(line), "%s:%d:%d: %s: %s\n", at->file, at->line, at->column, prop, msg);
    else
        snprintf(line, sizeof(line), "%s: %s\n", prop, msg);
    if (ld->errused && strstr(ld->err, line)) return;
    add_error(ld, at, prop, "%s", msg);
}

/* A level's scope, named after its parent's ("host example.com location /api"); `what` is copied. */
static const gw_scope_t *new_scope(loader_t *ld, const gw_scope_t *parent, const gw_node_t *level,
                                   const char *what)
{
    if (!what) return parent; /* out of memory */
    gw_scope_t *sc = gw_arena_alloc(ld->arena, sizeof(*sc));
    const char *name = parent ? gw_arena_printf(ld->arena, "%s %s", parent->name, what)
                              : gw_arena_strndup(ld->arena, what, strlen(what));
    if (!sc || !name) return parent;
    *sc = (gw_scope_t){name, level, parent};
    return sc;
}

static const char *node_text(const gw_node_t *n, const char *none)
{
    const char *s = gw_node_as_string(n);
    return s ? s : none;
}

static void build_route(loader_t *ld, gw_route_t *r, gw_props_t props)
{
    r->props = props;
    open_root(ld, r);
    r->enable_etag = prop_bool(r, "enableETag", true);
    r->allow_double_slashes = prop_bool(r, "allowDoubleSlashes", false);
    r->trailing_slash_redirect = !prop_bool(r, "disableTrailingSlashRedirects", false);
    r->server_admin = gw_node_as_string(gw_route_prop(r, "serverAdministratorEmail"));
    r->max_body_bytes = (uint64_t)prop_int(&props, "maxRequestBodyBytes", 10485760);
    build_proxy(ld, r);
    build_fauth(ld, r);
    build_cgi(ld, r);
    r->enable_compression = prop_bool(r, "enableCompression", true);
    r->enable_listing = prop_bool(r, "enableDirectoryListing", false);
    r->server_header = gw_node_as_string(gw_route_prop(r, "serverHeader"));
    build_error_pages(ld, r);
    r->policy = gw_policy_build(r, ld->arena, policy_error, ld);
    gw_modules_build_chain(r, ld->arena, ld->cfg);
}

/* errorConfig (spec §1): each entry merged onto the route once, here, not per failed request. */
static void build_error_routes(loader_t *ld, gw_route_t *r, const gw_node_t *ec)
{
    if (!ec || ec->kind != GW_NODE_SEQ || !ec->seq.count) return;
    gw_error_route_t *ers = gw_arena_alloc(ld->arena, ec->seq.count * sizeof(*ers));
    size_t n = 0;
    for (size_t i = 0; ers && i < ec->seq.count; i++) {
        const gw_node_t *en = ec->seq.items[i];
        if (en->kind != GW_NODE_MAP) continue;
        int64_t sc = 0;
        gw_node_as_int(gw_yaml_map_get(en, "scode"), &sc);
        memset(&ers[n], 0, sizeof(ers[n]));
        ers[n].scode = (int)sc;
        ers[n].route.domain = r->domain;
        ers[n].route.scope =
            new_scope(ld, r->scope, en, gw_arena_printf(ld->arena, "errorConfig %lld", (long long)sc));
        build_route(ld, &ers[n].route, merge_props(ld, &r->props, en));
        n++;
    }
    r->error_routes = ers;
    r->num_error_routes = n;
}

static void close_route(gw_route_t *r)
{
    gw_policy_free(r->policy);
    if (r->root_fd >= 0) close(r->root_fd);
    r->root_fd = -1;
    for (size_t i = 0; i < r->num_error_routes; i++) close_route((gw_route_t *)&r->error_routes[i].route);
}

/* ---- hosts and locations ---- */

static bool parse_ip(const char *s, struct in6_addr *out)
{
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, sizeof(*out));
        out->s6_addr[10] = out->s6_addr[11] = 0xff;
        memcpy(&out->s6_addr[12], &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

static void host_domain(loader_t *ld, gw_host_t *h, const gw_node_t *hn)
{
    const gw_node_t *d = gw_yaml_map_get(hn, "domain");
    const char *s = gw_node_as_string(d);
    if (!s || strcmp(s, "*") == 0) return;
    if (s[0] == '*' && s[1] == '.') {
        h->wildcard = true;
        s += 2;
    }
    char *low = gw_arena_strndup(ld->arena, s, strlen(s));
    for (char *p = low; p && *p; p++) *p = (char)tolower((unsigned char)*p);
    h->domain = low;
}

static bool host_ip(loader_t *ld, gw_host_t *h, const gw_node_t *hn)
{
    const gw_node_t *ipn = gw_yaml_map_get(hn, "ip");
    const char *s = gw_node_as_string(ipn);
    if (!s) return true;
    h->has_ip = true;
    ld->cfg->hosts_by_ip = true;
    if (parse_ip(s, &h->ip)) return true;
    add_error(ld, ipn, "ip", "'%s' is not an IP address", s);
    return false;
}

static void build_location(loader_t *ld, gw_location_t *loc, const gw_props_t *host_props, const gw_node_t *ln)
{
    const gw_node_t *pn = gw_yaml_map_get(ln, "path");
    const char *p = gw_node_as_string(pn);
    if (!p) {
        add_error(ld, ln, "locations", "a location needs a 'path'");
        p = "/";
    }
    size_t len = strlen(p);
    char *norm = gw_arena_alloc(ld->arena, len * 3 + 3);
    long n = norm ? gw_uri_normalize(p, len, norm, len * 3 + 3, false) : -1;
    if (n < 0) {
        add_error(ld, pn, "path", "'%s' is not a valid path", p);
        n = 0;
    }
    while (n > 0 && norm[n - 1] == '/') n--; /* trailing slashes are ignored when matching */
    norm[n] = '\0';
    loc->path = norm;
    loc->path_len = (size_t)n;
    build_route(ld, &loc->route, merge_props(ld, host_props, ln));
}

static void check_location(loader_t *ld, const gw_node_t *ln)
{
    if (gw_yaml_map_get(ln, "locations")) add_error(ld, ln, "locations", "nested locations are not allowed");
    validate_level(ld, ln, GW_SCOPE_LOCATION);
}

static void build_host(loader_t *ld, gw_host_t *h, const gw_node_t *hn)
{
    validate_level(ld, hn, GW_SCOPE_HOST);
    if (!gw_yaml_map_get(hn, "domain") && !gw_yaml_map_get(hn, "ip"))
        add_error(ld, hn, "hosts", "a host needs a 'domain' or an 'ip'");
    host_domain(ld, h, hn);
    host_ip(ld, h, hn);
    gw_props_t props = merge_props(ld, &ld->cfg->global_route.props, hn);
    const char *domain = h->wildcard ? NULL : h->domain;
    h->route.domain = domain;
    const char *ip = gw_node_as_string(gw_yaml_map_get(hn, "ip"));
    const char *where =
        gw_arena_printf(ld->arena, "host %s%s%s", node_text(gw_yaml_map_get(hn, "domain"), "*"),
                        ip ? " ip " : "", ip ? ip : "");
    h->route.scope = new_scope(ld, ld->cfg->global_route.scope, hn, where);
    build_route(ld, &h->route, props);
    const gw_node_t *ec = gw_yaml_map_get(hn, "errorConfig");
    for (size_t i = 0; ec && ec->kind == GW_NODE_SEQ && i < ec->seq.count; i++)
        if (ec->seq.items[i]->kind == GW_NODE_MAP) validate_level(ld, ec->seq.items[i], GW_SCOPE_ERRORCONFIG);
    build_error_routes(ld, &h->route, ec);
    const gw_node_t *locs = gw_yaml_map_get(hn, "locations");
    if (!locs || locs->kind != GW_NODE_SEQ) return;
    h->locations = gw_arena_alloc(ld->arena, (locs->seq.count + 1) * sizeof(gw_location_t));
    for (size_t i = 0; h->locations && i < locs->seq.count; i++) {
        if (locs->seq.items[i]->kind != GW_NODE_MAP) continue;
        check_location(ld, locs->seq.items[i]);
        gw_location_t *loc = &h->locations[h->num_locations++];
        memset(loc, 0, sizeof(*loc));
        loc->route.domain = domain;
        const char *path = node_text(gw_yaml_map_get(locs->seq.items[i], "path"), "");
        loc->route.scope = new_scope(ld, h->route.scope, locs->seq.items[i],
                                     gw_arena_printf(ld->arena, "location %s", path));
        build_location(ld, loc, &props, locs->seq.items[i]);
        build_error_routes(ld, &loc->route, ec);
    }
}

static void build_hosts(loader_t *ld, const gw_node_t *hosts)
{
    if (hosts->kind != GW_NODE_SEQ) {
        add_error(ld, hosts, "hosts", "expected a list of hosts");
        return;
    }
    ld->cfg->hosts = gw_arena_alloc(ld->arena, (hosts->seq.count + 1) * sizeof(gw_host_t));
    for (size_t i = 0; ld->cfg->hosts && i < hosts->seq.count; i++) {
        const gw_node_t *hn = hosts->seq.items[i];
        if (hn->kind != GW_NODE_MAP) {
            add_error(ld, hn, "hosts", "each host must be a map");
            continue;
        }
        gw_host_t *h = &ld->cfg->hosts[ld->cfg->num_hosts++];
        memset(h, 0, sizeof(*h));
        build_host(ld, h, hn);
    }
}

/* ---- global settings ---- */

static bool parse_listen(const char *s, gw_listen_t *out)
{
    const char *colon = strrchr(s, ':');
    if (!colon) return false;
    char host[64];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof(host)) return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || colon[1] == '\0') return false;
    char *h = host;
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']') return false;
        h[hl - 1] = '\0';
        h++;
    }
    if (!parse_ip(h, &out->addr.sin6_addr)) return false;
    out->addr.sin6_family = AF_INET6;
    out->addr.sin6_port = htons((uint16_t)port);
    return true;
}

static void add_listen(loader_t *ld, const gw_node_t *n, bool tls, const char *name, long def_port)
{
    gw_listen_t *l = &ld->cfg->listens[ld->cfg->num_listens];
    memset(l, 0, sizeof(*l));
    l->tls = tls;
    int64_t port = def_port;
    const char *s = gw_node_as_string(n);
    if (s && strncmp(s, "unix:", 5) == 0) {
        if (s[5] != '/' || strlen(s + 5) >= sizeof(l->unix_path)) {
            add_error(ld, n, name, "expected \"unix:/absolute/path\" (at most %zu bytes)", sizeof(l->unix_path) - 1);
            return;
        }
        snprintf(l->unix_path, sizeof(l->unix_path), "%s", s + 5);
        snprintf(l->text, sizeof(l->text), "%s", s);
    } else if (n && !gw_node_as_int(n, &port)) {
        if (!s || !parse_listen(s, l)) {
            add_error(ld, n, name, "expected a port or \"address:port\"");
            return;
        }
        snprintf(l->text, sizeof(l->text), "%s", s);
    } else {
        l->addr.sin6_family = AF_INET6;
        l->addr.sin6_addr = in6addr_any;
        l->addr.sin6_port = htons((uint16_t)port);
        snprintf(l->text, sizeof(l->text), "[::]:%lld", (long long)port);
    }
    ld->cfg->num_listens++;
}

/* adminListen: a plain listener answering the admin endpoints alone (admin.h); it must not take
 * the clients of a public listener. Appended after the public listeners. */
static void add_admin_listen(loader_t *ld, const gw_node_t *g)
{
    const gw_node_t *n = gw_yaml_map_get(g, "adminListen");
    const char *s = n ? gw_node_as_string(n) : NULL;
    if (!s || !s[0]) return; /* null or "": off */
    size_t at = ld->cfg->num_listens;
    add_listen(ld, n, false, "adminListen", 0);
    if (ld->cfg->num_listens == at) return; /* reported */
    gw_listen_t *a = &ld->cfg->listens[at];
    for (size_t i = 0; i < at; i++) {
        if (!gw_listen_overlap(a, &ld->cfg->listens[i])) continue;
        add_error(ld, n, "adminListen", "'%s' collides with the public listener %s (give it its own address)",
                  s, ld->cfg->listens[i].text);
        ld->cfg->num_listens = at;
        return;
    }
    a->admin = true;
    size_t len = strlen(a->text);
    snprintf(a->text + len, sizeof(a->text) - len, " for the admin endpoints");
}

static uint32_t global_u32(const gw_node_t *g, const char *name, uint32_t def)
{
    int64_t v;
    return gw_node_as_int(gw_yaml_map_get(g, name), &v) ? (uint32_t)v : def;
}

static void build_pool_config(const gw_node_t *g, gw_pool_config_t *p)
{
    p->connect_timeout_ms = global_u32(g, "proxyConnectTimeout", 10000);
    p->idle_timeout_ms = global_u32(g, "proxyKeepaliveTimeout", 30000);
    p->max_idle = global_u32(g, "proxyKeepaliveConnections", 32);
    p->health_window_ms = global_u32(g, "loadBalancerHealthCheckWindow", 5000);
    p->backoff_max_ms = global_u32(g, "proxyBackoffMax", 10000);
    p->h2_max_streams = global_u32(g, "proxyHttp2MaxConcurrentStreams", 100);
    p->h2_window = global_u32(g, "proxyHttp2WindowSize", 65535);
    p->h2_ping_ms = global_u32(g, "proxyHttp2PingInterval", 10000);
    p->buffer_max = global_u32(g, "proxyBufferSize", 262144);
}

/* One `resolver` entry in c-ares' csv syntax: "ipv4", "ipv4:port", "ipv6", "[ipv6]" or "[ipv6]:port". */
static bool resolver_entry_ok(const char *s, size_t len)
{
    const char *end = s + len, *host = s, *host_end = end, *port = NULL;
    const char *colon = memchr(s, ':', len);
    bool v6 = s[0] == '[' || (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)));
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || (close + 1 < end && close[1] != ':')) return false;
        host = s + 1;
        host_end = close;
        if (close + 1 < end) port = close + 2;
    } else if (colon && !v6) {
        host_end = colon;
        port = colon + 1;
    }
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    size_t hl = (size_t)(host_end - host);
    if (!hl || hl >= sizeof(text)) return false;
    memcpy(text, host, hl);
    text[hl] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) != 1) return false;
    if (!port) return true;
    long p = 0;
    for (const char *c = port; c < end; c++)
        if (*c < '0' || *c > '9' || (p = p * 10 + (*c - '0')) > 65535) return false;
    return p > 0;
}

/* Appends one comma-separated `resolver` string (entries trimmed and checked) to the csv. */
static void resolver_append(loader_t *ld, const gw_node_t *n, char *csv, size_t *used)
{
    const char *s = gw_node_as_string(n);
    for (const char *p = s; p && *p;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        while (p < e && isspace((unsigned char)*p)) p++;
        const char *t = e;
        while (t > p && isspace((unsigned char)t[-1])) t--;
        if (t > p && resolver_entry_ok(p, (size_t)(t - p))) {
            if (*used) csv[(*used)++] = ',';
            memcpy(csv + *used, p, (size_t)(t - p));
            *used += (size_t)(t - p);
        } else if (t > p) {
            add_error(ld, n, "resolver", "'%.*s' is not \"ip[:port]\" (IPv6 with a port: \"[ip]:port\")",
                      (int)(t - p), p);
        }
        p = comma ? comma + 1 : e;
    }
    csv[*used] = '\0';
}

/* `resolver` (a string or a list of "ip[:port]", each possibly comma-separated) as one csv. */
static const char *build_resolver(loader_t *ld, const gw_node_t *r)
{
    if (!r || gw_yaml_is_null(r)) return NULL;
    size_t cap = 1, used = 0;
    size_t count = r->kind == GW_NODE_SEQ ? r->seq.count : 1;
    for (size_t i = 0; i < count; i++) {
        const char *s = gw_node_as_string(r->kind == GW_NODE_SEQ ? r->seq.items[i] : r);
        cap += (s ? strlen(s) : 0) + 1;
    }
    char *csv = gw_arena_alloc(ld->arena, cap);
    if (!csv) return NULL;
    csv[0] = '\0';
    for (size_t i = 0; i < count; i++) resolver_append(ld, r->kind == GW_NODE_SEQ ? r->seq.items[i] : r, csv, &used);
    return used ? csv : NULL;
}

static void build_dns_config(loader_t *ld, const gw_node_t *g, gw_dns_config_t *d)
{
    d->servers = build_resolver(ld, gw_yaml_map_get(g, "resolver"));
    d->min_ttl_ms = global_u32(g, "dnsMinTtl", 1000);
    d->max_ttl_ms = global_u32(g, "dnsMaxTtl", 3600000);
    d->negative_ttl_ms = global_u32(g, "dnsNegativeTtl", 5000);
    d->stale_ms = global_u32(g, "dnsStaleTime", 60000);
    d->timeout_ms = global_u32(g, "dnsTimeout", 1000);
    d->tries = global_u32(g, "dnsTries", 2);
    d->max_entries = global_u32(g, "dnsCacheEntries", 1024);
    if (d->min_ttl_ms > d->max_ttl_ms)
        add_error(ld, gw_yaml_map_get(g, "dnsMinTtl"), "dnsMinTtl", "%u is larger than dnsMaxTtl (%u)",
                  d->min_ttl_ms, d->max_ttl_ms);
}

static void build_limits(const gw_node_t *g, gw_limits_t *l)
{
    l->max_head_bytes = global_u32(g, "maxRequestHeaderBytes", 16384);
    l->max_headers = global_u32(g, "maxRequestHeaders", 100);
    l->max_target_bytes = global_u32(g, "maxRequestTargetBytes", 8192);
    l->header_timeout_ms = global_u32(g, "headerReadTimeout", 30000);
    l->keepalive_timeout_ms = global_u32(g, "keepaliveTimeout", 60000);
    l->send_timeout_ms = global_u32(g, "sendTimeout", 60000);
    l->max_connections = global_u32(g, "maxConnections", 16384);
    l->graceful_timeout_ms = global_u32(g, "gracefulShutdownTimeout", 30000);
    l->graceful_idle_ms = global_u32(g, "gracefulIdleTimeout", 1000);
    l->file_cache_entries = global_u32(g, "openFileCacheEntries", 256);
    l->file_cache_inline_bytes = global_u32(g, "openFileCacheInlineBytes", 16384);
    l->file_cache_validity_ms = global_u32(g, "openFileCacheValidity", 1000);
    l->file_cache_encoded_bytes = global_u32(g, "compressionCacheMaxBytes", 16777216);
    const gw_node_t *t = gw_yaml_map_get(g, "timeout");
    l->request_timeout_ms = t && gw_yaml_is_null(t) ? 0 : global_u32(g, "timeout", 300000);
}

static void build_proxy_protocol(loader_t *ld, const gw_node_t *g)
{
    gw_pp_config_t *pc = &ld->cfg->proxy_protocol;
    if (!gw_proxy_proto_config_build(g, ld->arena, pc))
        add_error(ld, gw_yaml_map_get(g, "proxyProtocolTrusted"), "proxyProtocolTrusted", "out of memory");
    else if (pc->on && gw_cidr_list_empty(&pc->trusted))
        add_error(ld, gw_yaml_map_get(g, "proxyProtocol"), "proxyProtocol",
                  "needs proxyProtocolTrusted: the IPs/CIDRs of the load balancers that send the header");
}

/* Automatic TLS: the CA's URL must be https (RFC 8555 §6.1) and its CA file usable. */
static void check_acme(loader_t *ld, const gw_node_t *g)
{
    const gw_node_t *dir = gw_yaml_map_get(g, "automaticTLSDirectory");
    const gw_node_t *ca = gw_yaml_map_get(g, "automaticTLSCaFile");
    const char *url = gw_node_as_string(dir), *ca_file = gw_node_as_string(ca);
    if (url && strncmp(url, "https://", 8) != 0)
        add_error(ld, dir, "automaticTLSDirectory", "'%s' is not an https:// URL", url);
    const char *ca_err = ca_file ? gw_tls_client_check_ca(ca_file) : NULL;
    if (ca_err) add_error(ld, ca, "automaticTLSCaFile", "%s", ca_err);
    bool http01 = false, plain_off = false;
    const gw_node_t *h = gw_yaml_map_get(g, "useAutomaticTLSHTTPChallenge");
    gw_node_as_bool(h, &http01);
    gw_node_as_bool(gw_yaml_map_get(g, "disableNonEncryptedServer"), &plain_off);
    if (http01 && plain_off)
        add_warning(ld, h, "useAutomaticTLSHTTPChallenge needs the plain HTTP listener, which disableNonEncryptedServer "
                           "turns off: HTTP-01 validations will fail");
}

static char *global_string(loader_t *ld, const gw_node_t *g, const char *name)
{
    const char *s = gw_node_as_string(gw_yaml_map_get(g, name));
    return s ? gw_arena_strndup(ld->arena, s, strlen(s)) : NULL;
}

/* A name that is not built in is a shared object in modulesDir (module.h). */
static void load_module(loader_t *ld, const gw_node_t *n, const char *name, const gw_node_t *g)
{
    gw_config_t *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->num_modules; i++)
        if (strcmp(cfg->modules[i].name, name) == 0) return; /* listed twice: loaded once */
    char err[512];
    const char *dir = gw_node_as_string(gw_yaml_map_get(g, "modulesDir"));
    if (gw_module_load(&cfg->modules[cfg->num_modules], dir, name, g, err, sizeof(err)) != 0)
        add_error(ld, n, "loadModules", "%s", err);
    else
        cfg->num_modules++;
}

static void check_modules(loader_t *ld, const gw_node_t *mods, const gw_node_t *g)
{
    if (!mods || mods->kind != GW_NODE_SEQ || !mods->seq.count) return;
    ld->cfg->modules = calloc(mods->seq.count, sizeof(gw_loaded_module_t));
    for (size_t i = 0; ld->cfg->modules && i < mods->seq.count; i++) {
        const gw_node_t *n = mods->seq.items[i];
        const char *name = gw_node_as_string(n);
        gw_module_status_t st = name ? gw_module_status(name) : GW_MODULE_UNKNOWN;
        if (!name)
            add_error(ld, n, "loadModules", "expected a module name");
        else if (st == GW_MODULE_UNKNOWN)
            load_module(ld, n, name, g);
        else if (st == GW_MODULE_NOT_BUILT)
            add_warning(ld, n, "module '%s' is not in this build yet: requests it would answer fall through", name);
    }
}

static void build_log_format(loader_t *ld, const gw_node_t *g)
{
    const gw_node_t *n = gw_yaml_map_get(g, "logFormat");
    const char *s = gw_node_as_string(n);
    if (!s || !strcmp(s, "combined"))
        ld->cfg->log_format = GW_LOG_COMBINED;
    else if (!strcmp(s, "extended"))
        ld->cfg->log_format = GW_LOG_EXTENDED;
    else if (!strcmp(s, "json"))
        ld->cfg->log_format = GW_LOG_JSON;
    else
        add_error(ld, n, "logFormat", "expected combined, extended or json");
}

/* environmentVariables as "NAME=value" strings: each CGI program gets those of its request's config. */
static void build_env_vars(loader_t *ld, const gw_node_t *g)
{
    const gw_node_t *m = gw_yaml_map_get(g, "environmentVariables");
    if (!m || m->kind != GW_NODE_MAP || !m->map.count) return; /* a wrong type is reported by validation */
    const char **vars = gw_arena_alloc(ld->arena, m->map.count * sizeof(*vars));
    for (size_t i = 0; vars && i < m->map.count; i++) {
        const gw_node_t *k = m->map.entries[i].key;
        const char *name = k->scalar.text, *value = gw_node_as_string(m->map.entries[i].value);
        if (!name[0] || strchr(name, '=')) {
            add_error(ld, k, "environmentVariables", "'%s' is not a variable name (empty or with '=')", name);
            continue;
        }
        const char *var = gw_arena_printf(ld->arena, "%s=%s", name, value ? value : "");
        if (var) vars[ld->cfg->num_env_vars++] = var;
    }
    ld->cfg->env_vars = vars;
}

static void build_global(loader_t *ld, const gw_node_t *g)
{
    gw_config_t *cfg = ld->cfg;
    ld->modules = gw_yaml_map_get(g, "loadModules"); /* before validation: module properties need it */
    validate_level(ld, g, GW_SCOPE_GLOBAL);
    if (gw_yaml_map_get(g, "locations")) add_error(ld, gw_yaml_map_get(g, "locations"), "locations", "not allowed in global");
    check_modules(ld, ld->modules, g);
    cfg->listens = gw_arena_alloc(ld->arena, 3 * sizeof(gw_listen_t)); /* port, sport, adminListen */
    add_listen(ld, gw_yaml_map_get(g, "port"), false, "port", 80);
    bool secure = false, plain_off = false, acme = false;
    gw_node_as_bool(gw_yaml_map_get(g, "secure"), &secure);
    gw_node_as_bool(gw_yaml_map_get(g, "disableNonEncryptedServer"), &plain_off);
    gw_node_as_bool(gw_yaml_map_get(g, "enableAutomaticTLS"), &acme);
    bool have_cert = gw_yaml_map_get(g, "cert") && gw_yaml_map_get(g, "key");
    if (secure && !have_cert && !acme) {
        add_error(ld, gw_yaml_map_get(g, "secure"), "secure", "needs cert and key (the default certificate) or enableAutomaticTLS");
        secure = false;
    }
    if (secure) {
        add_listen(ld, gw_yaml_map_get(g, "sport"), true, "sport", 443);
        if (plain_off && cfg->num_listens == 2) { /* HTTPS only */
            cfg->listens[0] = cfg->listens[1];
            cfg->num_listens = 1;
        }
    }
    add_admin_listen(ld, g);
    int64_t w = 0;
    gw_node_as_int(gw_yaml_map_get(g, "workers"), &w);
    cfg->workers = (unsigned)w;
    build_limits(g, &cfg->limits);
    build_proxy_protocol(ld, g);
    build_pool_config(g, &cfg->pool);
    build_dns_config(ld, g, &cfg->dns);
    cfg->log_file = global_string(ld, g, "logFilePath");
    build_log_format(ld, g);
    gw_node_as_bool(gw_yaml_map_get(g, "requestId"), &cfg->request_id);
    cfg->proxy_ca_file = global_string(ld, g, "proxyCaFile");
    const char *ca_err = cfg->proxy_ca_file ? gw_tls_client_check_ca(cfg->proxy_ca_file) : NULL;
    if (ca_err) add_error(ld, gw_yaml_map_get(g, "proxyCaFile"), "proxyCaFile", "%s", ca_err);
    check_acme(ld, g);
    cfg->error_log_file = global_string(ld, g, "errorLogFilePath");
    build_env_vars(ld, g);
    cfg->global_route.scope = new_scope(ld, NULL, g, "global");
    build_route(ld, &cfg->global_route, merge_props(ld, &(gw_props_t){0}, g));
    cfg->admin_route = gw_admin_route_new(&cfg->global_route, ld->arena);
    if (!cfg->admin_route) add_error(ld, g, "adminListen", "out of memory");
}

static void check_top_level(loader_t *ld, const gw_node_t *root)
{
    for (size_t i = 0; i < root->map.count; i++) {
        const gw_map_entry_t *e = &root->map.entries[i];
        const char *k = e->key->scalar.text;
        if (!strcmp(k, "include")) /* file loads have merged and removed it (config_include.c) */
            add_error(ld, e->key, "include", "only resolved when the configuration is loaded from a file");
        else if (strcmp(k, "global") != 0 && strcmp(k, "hosts") != 0 && strcmp(k, "upstreams") != 0)
            add_warning(ld, e->key, "unused top-level key '%s' (expected global, hosts, upstreams)", k);
    }
}

static void build_config(loader_t *ld)
{
    const gw_node_t *root = ld->cfg->doc.root;
    static const gw_node_t empty_map = {.kind = GW_NODE_MAP};
    if (root && root->kind != GW_NODE_MAP) {
        add_error(ld, root, "config", "the file must be a map with 'global' and 'hosts'");
        return;
    }
    if (root) check_top_level(ld, root);
    build_groups(ld, root); /* before any route names a group */
    const gw_node_t *g = root ? gw_yaml_map_get(root, "global") : NULL;
    if (g && g->kind != GW_NODE_MAP) {
        add_error(ld, g, "global", "expected a map");
        g = NULL;
    }
    build_global(ld, g ? g : &empty_map);
    const gw_node_t *hosts = root ? gw_yaml_map_get(root, "hosts") : NULL;
    if (hosts && !gw_yaml_is_null(hosts)) build_hosts(ld, hosts);
}

/* ---- public ---- */

static gw_config_t *config_new(const char *name)
{
    config_mem_t *mem = calloc(1, sizeof(*mem));
    if (!mem) return NULL;
    gw_chunk_pool_init(&mem->pool, 8192, 0);
    gw_arena_init(&mem->arena, &mem->pool);
    gw_config_t *cfg = gw_arena_alloc(&mem->arena, sizeof(*cfg));
    if (!cfg) {
        free(mem);
        return NULL;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->arena = mem;
    cfg->file = gw_arena_strndup(&mem->arena, name, strlen(name));
    return cfg;
}

static gw_config_t *finish_load(gw_config_t *cfg, bool parsed, char *err, size_t errlen, gw_config_warn_fn warn,
                                void *warn_ctx)
{
    if (!parsed) {
        gw_config_free(cfg);
        return NULL;
    }
    loader_t ld = {.cfg = cfg, .arena = &((config_mem_t *)cfg->arena)->arena, .err = err, .errlen = errlen,
                   .warn = warn, .warn_ctx = warn_ctx};
    if (errlen) err[0] = '\0';
    build_config(&ld);
    if (ld.nerrors) {
        gw_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

/* `include` files merged in, then environment overrides (spec §1); errors located as usual. */
static bool expand_tree(gw_config_t *cfg, const char *path, char *err, size_t errlen)
{
    gw_include_ctx_t ic = {.alloc = arena_alloc_cb, .alloc_ctx = &((config_mem_t *)cfg->arena)->arena,
                           .err = err, .errlen = errlen};
    if (errlen) err[0] = '\0';
    bool ok = gw_config_apply_includes(&ic, &cfg->doc, path) && gw_config_apply_env(&ic, &cfg->doc, env_get);
    cfg->included = ic.docs;
    cfg->num_included = ic.num_docs;
    return ok;
}

gw_config_t *gw_config_load(const char *path, char *err, size_t errlen, gw_config_warn_fn warn, void *warn_ctx)
{
    gw_config_t *cfg = config_new(path);
    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    bool ok = gw_yaml_load(path, &cfg->doc, err, errlen) && expand_tree(cfg, path, err, errlen);
    return finish_load(cfg, ok, err, errlen, warn, warn_ctx);
}

gw_config_t *gw_config_load_string(const char *name, const char *yaml, char *err, size_t errlen,
                                   gw_config_warn_fn warn, void *warn_ctx)
{
    gw_config_t *cfg = config_new(name);
    if (!cfg) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    bool ok = gw_yaml_load_string(name, yaml, strlen(yaml), &cfg->doc, err, errlen);
    return finish_load(cfg, ok, err, errlen, warn, warn_ctx);
}

void gw_config_free(gw_config_t *cfg)
{
    if (!cfg) return;
    close_route(&cfg->global_route);
    for (size_t i = 0; i < cfg->num_hosts; i++) {
        close_route(&cfg->hosts[i].route);
        for (size_t j = 0; j < cfg->hosts[i].num_locations; j++) close_route(&cfg->hosts[i].locations[j].route);
    }
    for (size_t i = 0; i < cfg->num_modules; i++) gw_module_unload(&cfg->modules[i]);
    free(cfg->modules);
    gw_yaml_free(&cfg->doc);
    gw_config_free_includes(cfg->included, cfg->num_included);
    config_mem_t *mem = cfg->arena;
    gw_arena_reset(&mem->arena);
    gw_chunk_pool_clear(&mem->pool);
    free(mem);
}
