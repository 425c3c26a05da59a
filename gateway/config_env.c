/* Environment overrides of `global` (spec §1). See config_include.h. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_include.h"

/* Variable suffix (after FERRON_ or GATEWAY_) -> global property. */
static const struct {
    const char *var, *prop;
} scalars[] = {
    {"PORT", "port"},
    {"SPORT", "sport"},
    {"LOG_FILE_PATH", "logFilePath"},
    {"ERROR_LOG_FILE_PATH", "errorLogFilePath"},
    {"CERT", "cert"},
    {"KEY", "key"},
    {"TLS_MIN_VERSION", "tlsMinVersion"},
    {"TLS_MAX_VERSION", "tlsMaxVersion"},
    {"SECURE", "secure"},
    {"ENABLE_HTTP2", "enableHTTP2"},
    {"ENABLE_HTTP3", "enableHTTP3"},
    {"DISABLE_NON_ENCRYPTED_SERVER", "disableNonEncryptedServer"},
    {"ENABLE_OCSP_STAPLING", "enableOCSPStapling"},
    {"ENABLE_DIRECTORY_LISTING", "enableDirectoryListing"},
    {"ENABLE_COMPRESSION", "enableCompression"},
}, http2[] = {
    {"HTTP2_INITIAL_WINDOW_SIZE", "initialWindowSize"},
    {"HTTP2_MAX_FRAME_SIZE", "maxFrameSize"},
    {"HTTP2_MAX_CONCURRENT_STREAMS", "maxConcurrentStreams"},
    {"HTTP2_MAX_HEADER_LIST_SIZE", "maxHeaderListSize"},
    {"HTTP2_ENABLE_CONNECT_PROTOCOL", "enableConnectProtocol"},
}, lists[] = {
    {"LOAD_MODULES", "loadModules"},
    {"BLOCKLIST", "blocklist"},
};

static const char *const prefixes[] = {"FERRON_", "GATEWAY_"}; /* later wins */

typedef struct env_ctx {
    gw_include_ctx_t *c;
    const char *(*get)(const char *);
} env_ctx_t;

static char *copy(gw_include_ctx_t *c, const char *s, size_t n)
{
    char *p = c->alloc(c->alloc_ctx, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* A located node made from variable `var` ("$VAR:1:1" in messages). */
static gw_node_t *node(gw_include_ctx_t *c, const char *var, gw_node_kind_t kind)
{
    gw_node_t *n = c->alloc(c->alloc_ctx, sizeof(*n));
    if (!n) return NULL;
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = n->column = 1;
    char where[160];
    snprintf(where, sizeof(where), "$%s", var);
    n->file = copy(c, where, strlen(where));
    return n;
}

static gw_node_t *scalar(gw_include_ctx_t *c, const char *var, const char *text, size_t len)
{
    gw_node_t *n = node(c, var, GW_NODE_SCALAR);
    if (!n || !(n->scalar.text = copy(c, text, len))) return NULL;
    n->scalar.len = len;
    return n;
}

/* "a, b,c" -> a list of scalars. */
static gw_node_t *csv_list(gw_include_ctx_t *c, const char *var, const char *v)
{
    gw_node_t *n = node(c, var, GW_NODE_SEQ);
    size_t cap = 1;
    for (const char *p = v; *p; p++) cap += *p == ',';
    if (!n || !(n->seq.items = c->alloc(c->alloc_ctx, cap * sizeof(gw_node_t *)))) return NULL;
    for (const char *p = v; *p;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *s = p, *t = e;
        while (s < t && isspace((unsigned char)*s)) s++;
        while (t > s && isspace((unsigned char)t[-1])) t--;
        gw_node_t *item = t > s ? scalar(c, var, s, (size_t)(t - s)) : NULL;
        if (item) n->seq.items[n->seq.count++] = item;
        p = *e ? e + 1 : e;
    }
    return n;
}

/* map[key] := value (replaced or appended); `map` is a node we made or may copy. */
static gw_node_t *map_set(gw_include_ctx_t *c, const gw_node_t *map, gw_node_t *key, gw_node_t *value)
{
    if (!key || !value) return (gw_node_t *)map;
    size_t count = map ? map->map.count : 0;
    gw_node_t *n = map ? c->alloc(c->alloc_ctx, sizeof(*n)) : node(c, key->file + 1, GW_NODE_MAP);
    gw_map_entry_t *es = c->alloc(c->alloc_ctx, (count + 1) * sizeof(*es));
    if (!n || !es) return (gw_node_t *)map;
    if (map) *n = *map;
    size_t k = 0;
    bool replaced = false;
    for (size_t i = 0; i < count; i++) {
        es[k] = map->map.entries[i];
        if (!strcmp(es[k].key->scalar.text, key->scalar.text)) {
            es[k].value = value;
            replaced = true;
        }
        k++;
    }
    if (!replaced) es[k++] = (gw_map_entry_t){key, value};
    n->map.entries = es;
    n->map.count = k;
    return n;
}

static gw_node_t *set_prop(env_ctx_t *e, gw_node_t *map, const char *var, const char *prop, gw_node_t *value)
{
    return map_set(e->c, map, scalar(e->c, var, prop, strlen(prop)), value);
}

/* FERRON_SNI_HOSTS=a.example.com,*.b.example.com with FERRON_SNI_a_example_com_CERT/_KEY. */
static gw_node_t *sni_hosts(env_ctx_t *e, gw_node_t *g, const char *pfx)
{
    char var[256];
    snprintf(var, sizeof(var), "%sSNI_HOSTS", pfx);
    const char *hosts = e->get(var);
    if (!hosts) return g;
    gw_node_t *list = csv_list(e->c, var, hosts);
    gw_node_t *sni = (gw_node_t *)gw_yaml_map_get(g, "sni");
    if (sni && sni->kind != GW_NODE_MAP) sni = NULL;
    for (size_t i = 0; list && i < list->seq.count; i++) {
        const char *h = list->seq.items[i]->scalar.text;
        char mangled[200];
        size_t k = 0;
        for (const char *p = h; *p && k + 9 < sizeof(mangled); p++) {
            if (*p == '*') {
                memcpy(mangled + k, "WILDCARD", 8);
                k += 8;
            } else {
                mangled[k++] = *p == '.' ? '_' : *p;
            }
        }
        mangled[k] = '\0';
        gw_node_t *entry = NULL;
        for (int which = 0; which < 2; which++) {
            char v[300];
            snprintf(v, sizeof(v), "%sSNI_%s_%s", pfx, mangled, which ? "KEY" : "CERT");
            const char *val = e->get(v);
            if (val) entry = set_prop(e, entry, v, which ? "key" : "cert", scalar(e->c, v, val, strlen(val)));
        }
        if (entry) sni = map_set(e->c, sni, scalar(e->c, var, h, strlen(h)), entry);
    }
    return sni ? set_prop(e, g, var, "sni", sni) : g;
}

/* FERRON_ENV_VARS=A,B with FERRON_ENV_A, FERRON_ENV_B -> environmentVariables. */
static gw_node_t *env_vars(env_ctx_t *e, gw_node_t *g, const char *pfx)
{
    char var[256];
    snprintf(var, sizeof(var), "%sENV_VARS", pfx);
    const char *names = e->get(var);
    if (!names) return g;
    gw_node_t *list = csv_list(e->c, var, names);
    gw_node_t *map = (gw_node_t *)gw_yaml_map_get(g, "environmentVariables");
    if (map && map->kind != GW_NODE_MAP) map = NULL;
    for (size_t i = 0; list && i < list->seq.count; i++) {
        const char *name = list->seq.items[i]->scalar.text;
        char v[300];
        snprintf(v, sizeof(v), "%sENV_%s", pfx, name);
        const char *val = e->get(v);
        if (val) map = map_set(e->c, map, scalar(e->c, v, name, strlen(name)), scalar(e->c, v, val, strlen(val)));
    }
    return map ? set_prop(e, g, var, "environmentVariables", map) : g;
}

static gw_node_t *apply_prefix(env_ctx_t *e, gw_node_t *g, const char *pfx)
{
    char var[128];
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        snprintf(var, sizeof(var), "%s%s", pfx, scalars[i].var);
        const char *v = e->get(var);
        if (v) g = set_prop(e, g, var, scalars[i].prop, scalar(e->c, var, v, strlen(v)));
    }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        snprintf(var, sizeof(var), "%s%s", pfx, lists[i].var);
        const char *v = e->get(var);
        if (v) g = set_prop(e, g, var, lists[i].prop, csv_list(e->c, var, v));
    }
    gw_node_t *h2 = (gw_node_t *)gw_yaml_map_get(g, "http2Settings");
    bool h2_set = false;
    if (h2 && h2->kind != GW_NODE_MAP) h2 = NULL;
    for (size_t i = 0; i < sizeof(http2) / sizeof(http2[0]); i++) {
        snprintf(var, sizeof(var), "%s%s", pfx, http2[i].var);
        const char *v = e->get(var);
        if (!v) continue;
        h2 = set_prop(e, h2, var, http2[i].prop, scalar(e->c, var, v, strlen(v)));
        h2_set = true;
    }
    if (h2_set) g = set_prop(e, g, var, "http2Settings", h2);
    g = sni_hosts(e, g, pfx);
    return env_vars(e, g, pfx);
}

bool gw_config_apply_env(gw_include_ctx_t *c, gw_yaml_doc_t *doc, const char *(*getenv_fn)(const char *))
{
    env_ctx_t e = {c, getenv_fn};
    if (doc->root && doc->root->kind != GW_NODE_MAP) return true; /* reported by the loader */
    gw_node_t *g = doc->root ? gw_yaml_map_get(doc->root, "global") : NULL;
    if (g && g->kind != GW_NODE_MAP) return true;
    gw_node_t *ng = g;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) ng = apply_prefix(&e, ng, prefixes[i]);
    if (ng == g) return true;
    gw_node_t *key = scalar(c, "environment", "global", 6);
    doc->root = map_set(c, doc->root, key, ng);
    return true;
}
