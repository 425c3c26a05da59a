/* Header rules of a route: customHeaders, set/add/remove, HSTS. See response.h. */
#include "response.h"

#include <stdio.h>
#include <string.h>

#include "compress.h"
#include "config_props.h"
#include "loop.h"

typedef struct rule {
    gw_slice_t name;
    gw_slice_t value;
    bool has_path; /* value contains {path} */
} rule_t;

typedef struct rule_list {
    rule_t *items;
    size_t count;
} rule_list_t;

typedef struct headers_filter {
    gw_filter_t base;
    rule_list_t remove, set, add, custom;
    gw_slice_t hsts; /* empty: none */
} headers_filter_t;

static bool token_char(unsigned char c)
{
    return c > 32 && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* A header name is a token; a value may not break the head (no CR, LF or NUL). */
static bool valid_header(const char *name, const char *value)
{
    if (!name || !*name) return false;
    for (const char *p = name; *p; p++)
        if (!token_char((unsigned char)*p)) return false;
    return !value || !strpbrk(value, "\r\n");
}

static rule_list_t map_rules(const gw_route_t *r, const char *prop, gw_arena_t *arena)
{
    rule_list_t l = {0};
    const gw_node_t *m = gw_route_prop(r, prop);
    if (!m || m->kind != GW_NODE_MAP || !m->map.count) return l;
    l.items = gw_arena_alloc(arena, m->map.count * sizeof(*l.items));
    for (size_t i = 0; l.items && i < m->map.count; i++) {
        const char *name = m->map.entries[i].key->scalar.text;
        const char *value = gw_node_as_string(m->map.entries[i].value);
        if (!value) value = "";
        if (!valid_header(name, value)) continue;
        l.items[l.count++] = (rule_t){{name, strlen(name)}, {value, strlen(value)}, strstr(value, "{path}") != NULL};
    }
    return l;
}

static rule_list_t list_rules(const gw_route_t *r, const char *prop, gw_arena_t *arena)
{
    rule_list_t l = {0};
    const gw_node_t *s = gw_route_prop(r, prop);
    if (!s || s->kind != GW_NODE_SEQ || !s->seq.count) return l;
    l.items = gw_arena_alloc(arena, s->seq.count * sizeof(*l.items));
    for (size_t i = 0; l.items && i < s->seq.count; i++) {
        const char *name = gw_node_as_string(s->seq.items[i]);
        if (valid_header(name, NULL)) l.items[l.count++] = (rule_t){{name, strlen(name)}, {NULL, 0}, false};
    }
    return l;
}

static gw_slice_t hsts_value(const gw_route_t *r, gw_arena_t *arena)
{
    int64_t age = 0;
    bool sub = false, preload = false;
    gw_node_as_int(gw_route_prop(r, "hstsMaxAge"), &age);
    gw_node_as_bool(gw_route_prop(r, "hstsIncludeSubDomains"), &sub);
    gw_node_as_bool(gw_route_prop(r, "hstsPreload"), &preload);
    if (age <= 0) return (gw_slice_t){NULL, 0};
    char *v = gw_arena_printf(arena, "max-age=%lld%s%s", (long long)age, sub ? "; includeSubDomains" : "",
                              preload ? "; preload" : "");
    return v ? (gw_slice_t){v, strlen(v)} : (gw_slice_t){NULL, 0};
}

/* The rule's value with every {path} replaced by the request path. */
static gw_slice_t expand(gw_req_t *req, const rule_t *r)
{
    if (!r->has_path) return r->value;
    size_t cap = r->value.len + 1, n = 0;
    for (const char *p = r->value.base; (p = strstr(p, "{path}")); p += 6) cap += req->path.len;
    char *out = gw_arena_alloc(&req->arena, cap);
    if (!out) return r->value;
    const char *p = r->value.base, *end = r->value.base + r->value.len;
    while (p < end) {
        const char *hit = strstr(p, "{path}");
        size_t lit = hit ? (size_t)(hit - p) : (size_t)(end - p);
        memcpy(out + n, p, lit);
        n += lit;
        if (!hit) break;
        memcpy(out + n, req->path.base, req->path.len);
        n += req->path.len;
        p = hit + 6;
    }
    return (gw_slice_t){out, n};
}

static bool has_header(const gw_req_t *req, gw_slice_t name)
{
    for (uint32_t i = 0; i < req->res.headers.count; i++) {
        gw_slice_t n = req->res.headers.items[i].name;
        if (n.len == name.len && strncasecmp(n.base, name.base, n.len) == 0) return true;
    }
    return false;
}

static void headers_setup(const gw_filter_t *self, gw_req_t *req)
{
    const headers_filter_t *f = gw_container_of(self, headers_filter_t, base);
    char name[128];
    for (size_t i = 0; i < f->remove.count; i++) {
        snprintf(name, sizeof(name), "%.*s", (int)f->remove.items[i].name.len, f->remove.items[i].name.base);
        gw_res_remove_header(req, name);
    }
    for (size_t i = 0; i < f->set.count; i++) gw_res_set_header(req, f->set.items[i].name, expand(req, &f->set.items[i]));
    for (size_t i = 0; i < f->add.count; i++) gw_res_add_header(req, f->add.items[i].name, expand(req, &f->add.items[i]));
    for (size_t i = 0; i < f->custom.count; i++)
        if (!has_header(req, f->custom.items[i].name))
            gw_res_add_header(req, f->custom.items[i].name, expand(req, &f->custom.items[i]));
    if (f->hsts.len && req->conn && req->conn->tls && !gw_res_header(req, "strict-transport-security"))
        gw_res_add_header(req, GW_SLICE_LIT("strict-transport-security"), f->hsts);
}

const gw_filter_t *gw_headers_filter_new(const gw_route_t *route, gw_arena_t *arena)
{
    headers_filter_t *f = gw_arena_alloc(arena, sizeof(*f));
    if (!f) return NULL;
    *f = (headers_filter_t){
        .base = {"headers", headers_setup},
        .remove = list_rules(route, "removeResponseHeaders", arena),
        .set = map_rules(route, "setResponseHeaders", arena),
        .add = map_rules(route, "addResponseHeaders", arena),
        .custom = map_rules(route, "customHeaders", arena),
        .hsts = hsts_value(route, arena),
    };
    if (!f->remove.count && !f->set.count && !f->add.count && !f->custom.count && !f->hsts.len) return NULL;
    return &f->base;
}
