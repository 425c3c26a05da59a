/* The healthCheck map of an upstream group. See health.h. */
#include "health.h"

#include <stdio.h>
#include <string.h>

#include "config_props.h"

typedef struct parser {
    gw_health_check_t *hc;
    gw_arena_t *arena;
    gw_health_err_fn err;
    void *ctx;
    bool ok;
} parser_t;

static void fail(parser_t *p, const gw_node_t *at, const char *prop, const char *msg)
{
    p->ok = false;
    p->err(p->ctx, at, prop, msg);
}

/* Bytes that would break the probe's request line or Host header. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f) return false;
    return true;
}

static uint32_t as_u32(const gw_node_t *v)
{
    int64_t x = 0;
    gw_node_as_int(v, &x); /* the registry checked type and range */
    return (uint32_t)x;
}

static void parse_status(parser_t *p, const gw_node_t *v)
{
    size_t n = v->kind == GW_NODE_SEQ ? v->seq.count : 1;
    uint16_t *codes = gw_arena_alloc(p->arena, (n ? n : 1) * sizeof(*codes));
    if (!codes || !n) {
        fail(p, v, "healthCheck.expectedStatus",
             !codes ? "out of memory" : "expected a status code or a list of them");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const gw_node_t *item = v->kind == GW_NODE_SEQ ? v->seq.items[i] : v;
        int64_t code;
        if (!gw_node_as_int(item, &code) || code < 100 || code > 599) {
            fail(p, item, "healthCheck.expectedStatus", "expected a status code from 100 to 599");
            return;
        }
        codes[i] = (uint16_t)code;
    }
    p->hc->status = codes;
    p->hc->num_status = n;
}

static void parse_text(parser_t *p, const gw_node_t *v, const char *prop, const char **out)
{
    const char *s = gw_node_as_string(v);
    bool is_path = !strcmp(prop, "healthCheck.path");
    if (!s || !*s || !header_safe(s) || (is_path && s[0] != '/')) {
        fail(p, v, prop,
             is_path ? "expected an absolute path without spaces, e.g. /healthz"
                     : "expected a host name without spaces");
        return;
    }
    *out = s;
}

static void parse_entry(parser_t *p, const gw_map_entry_t *e)
{
    const char *key = e->key->scalar.text;
    char name[64];
    snprintf(name, sizeof(name), "healthCheck.%s", key);
    const gw_prop_def_t *def = strlen(key) < 40 ? gw_prop_find(name) : NULL;
    char why[160];
    if (!def) {
        snprintf(
            why, sizeof(why),
            "unknown key '%.40s' (expected path, interval, timeout, expectedStatus, fails, passes or host)",
            key);
        fail(p, e->key, "healthCheck", why);
        return;
    }
    if (!gw_prop_check(def, e->value, why, sizeof(why))) {
        fail(p, e->value, def->name, why);
        return;
    }
    gw_health_check_t *hc = p->hc;
    if (!strcmp(key, "path"))
        parse_text(p, e->value, def->name, &hc->path);
    else if (!strcmp(key, "host"))
        parse_text(p, e->value, def->name, &hc->host);
    else if (!strcmp(key, "expectedStatus"))
        parse_status(p, e->value);
    else if (!strcmp(key, "interval"))
        hc->interval_ms = as_u32(e->value);
    else if (!strcmp(key, "timeout"))
        hc->timeout_ms = as_u32(e->value);
    else if (!strcmp(key, "fails"))
        hc->fails = as_u32(e->value);
    else if (!strcmp(key, "passes"))
        hc->passes = as_u32(e->value);
}

gw_health_check_t *gw_health_check_parse(const gw_node_t *n, gw_arena_t *arena, gw_health_err_fn err,
                                         void *ctx)
{
    gw_health_check_t *hc = gw_arena_alloc(arena, sizeof(*hc));
    parser_t p = {hc, arena, err, ctx, true};
    if (!hc) {
        fail(&p, n, "healthCheck", "out of memory");
        return NULL;
    }
    const gw_prop_def_t *def = gw_prop_find("healthCheck");
    char why[160];
    if (!gw_prop_check(def, n, why, sizeof(why))) {
        fail(&p, n, "healthCheck", why);
        return NULL;
    }
    /* the defaults the registry shows in --help */
    *hc = (gw_health_check_t){.interval_ms = 5000, .timeout_ms = 2000, .fails = 2, .passes = 1};
    for (size_t i = 0; i < n->map.count; i++)
        parse_entry(&p, &n->map.entries[i]);
    if (p.ok && !hc->path)
        fail(&p, n, "healthCheck", "'path' is required (the URL path probed, e.g. /healthz)");
    return p.ok ? hc : NULL;
}
