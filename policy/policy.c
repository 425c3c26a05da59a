/* Route policy: built from the merged properties, run as handler stages. See policy.h. */
#include "policy.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "basic_auth.h"
#include "config_ids.h"
#include "config_props.h"
#include "nonstandard.h"
#include "password.h"
#include "ratelimit.h"
#include "rewrite.h"
#include "state.h"

#define MAX_XFF_HEADERS 16
#define DEFAULT_REALM "gateway"

typedef struct stage {
    gw_handler_t h;
    const gw_policy_t *p;
} stage_t;

struct gw_policy {
    gw_cidr_list_t trusted;
    bool spoofing;
    gw_cidr_list_t block, allow;
    gw_rewrite_t rewrite;
    gw_userdb_t users;
    gw_nonstandard_t ns;
    gw_ratelimit_t rl;
    bool has_rl;
    stage_t stages[GW_POLICY_MAX_STAGES];
    size_t num_early, num_stages;
    gw_regex_t **regexes; /* to free */
    size_t num_regexes, cap_regexes;
};

typedef struct builder {
    gw_policy_t *p;
    const gw_route_t *route;
    gw_arena_t *arena;
    gw_policy_err_fn err;
    void *ctx;
    bool failed;
} builder_t;

static void fail(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->failed = true;
    if (b->err) b->err(b->ctx, at, prop, msg, true);
}

static void warn(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (b->err) b->err(b->ctx, at, prop, msg, false);
}

static gw_policy_t *policy(const stage_t *s)
{
    return (gw_policy_t *)s->p;
}

/* ---- stages ---- */

static gw_handler_result_t client_stage(const gw_handler_t *self, gw_req_t *req)
{
    const gw_policy_t *p = policy((const stage_t *)self);
    gw_slice_t xff[MAX_XFF_HEADERS];
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers && n < MAX_XFF_HEADERS; i++)
        if (gw_slice_ieq(req->headers[i].name, "x-forwarded-for")) xff[n++] = req->headers[i].value;
    if (!n) return GW_CONTINUE;
    if (p->spoofing) { /* Ferron: the first element, and 400 when it is not an address */
        const char *comma = memchr(xff[0].base, ',', xff[0].len);
        gw_slice_t first = {xff[0].base, comma ? (size_t)(comma - xff[0].base) : xff[0].len};
        if (gw_xff_element_parse(first, &req->client_ip)) return GW_CONTINUE;
        req->res.status = 400;
        return GW_ERROR;
    }
    if (gw_cidr_list_match(&p->trusted, &req->conn->peer.sin6_addr))
        gw_xff_pick(xff, n, &p->trusted, &req->client_ip);
    return GW_CONTINUE;
}

static gw_handler_result_t access_stage(const gw_handler_t *self, gw_req_t *req)
{
    const gw_policy_t *p = policy((const stage_t *)self);
    bool refused = (!gw_cidr_list_empty(&p->block) && gw_cidr_list_match(&p->block, &req->client_ip)) ||
                   (!gw_cidr_list_empty(&p->allow) && !gw_cidr_list_match(&p->allow, &req->client_ip));
    if (!refused) return GW_CONTINUE;
    req->res.status = 403;
    return GW_ERROR;
}

static gw_handler_result_t rewrite_stage(const gw_handler_t *self, gw_req_t *req)
{
    return gw_rewrite_run(&policy((const stage_t *)self)->rewrite, req);
}

static gw_handler_result_t nonstandard_stage(const gw_handler_t *self, gw_req_t *req)
{
    return gw_nonstandard_run(&policy((const stage_t *)self)->ns, req);
}

static gw_handler_result_t ratelimit_stage(const gw_handler_t *self, gw_req_t *req)
{
    const gw_ratelimit_t *rl = &policy((const stage_t *)self)->rl;
    uint8_t key[1 + 256];
    size_t len;
    const gw_header_t *h = rl->key == GW_RL_KEY_HEADER ? gw_req_header(req, rl->header) : NULL;
    if (h) {
        len = h->value.len > 256 ? 256 : h->value.len;
        key[0] = 'h';
        memcpy(key + 1, h->value.base, len);
    } else if (rl->key == GW_RL_KEY_USER && req->remote_user) {
        len = strlen(req->remote_user);
        len = len > 256 ? 256 : len;
        key[0] = 'u';
        memcpy(key + 1, req->remote_user, len);
    } else {
        len = sizeof(req->client_ip);
        key[0] = 'a';
        memcpy(key + 1, &req->client_ip, len);
    }
    uint32_t retry;
    if (gw_ratelimit_take(rl, key, len + 1, gw_policy_clock(), &retry)) return GW_CONTINUE;
    char *v = gw_arena_printf(&req->arena, "%u", retry);
    if (v) gw_res_add_header(req, GW_SLICE_LIT("retry-after"), (gw_slice_t){v, strlen(v)});
    req->res.status = 429;
    return GW_ERROR;
}

/* ---- building ---- */

static bool keep_regex(builder_t *b, gw_regex_t *re)
{
    gw_policy_t *p = b->p;
    if (p->num_regexes == p->cap_regexes) {
        size_t cap = p->cap_regexes ? p->cap_regexes * 2 : 8;
        gw_regex_t **r = realloc(p->regexes, cap * sizeof(*r));
        if (!r) {
            gw_regex_free(re);
            return false;
        }
        p->regexes = r;
        p->cap_regexes = cap;
    }
    p->regexes[p->num_regexes++] = re;
    return true;
}

static gw_regex_t *compile(builder_t *b, const gw_node_t *n, const char *prop)
{
    const char *pat = gw_node_as_string(n);
    char why[200];
    gw_regex_t *re = pat ? gw_regex_compile(pat, why, sizeof(why)) : NULL;
    if (!pat)
        fail(b, n, prop, "expected a regular expression");
    else if (!re)
        fail(b, n, prop, "%s", why);
    return re && keep_regex(b, re) ? re : NULL;
}

static const char **string_list(builder_t *b, const gw_node_t *n, const char *prop, size_t *count)
{
    *count = 0;
    if (!n) return NULL;
    if (n->kind != GW_NODE_SEQ) {
        fail(b, n, prop, "expected a list of strings");
        return NULL;
    }
    const char **items = gw_arena_alloc(b->arena, (n->seq.count + 1) * sizeof(*items));
    for (size_t i = 0; items && i < n->seq.count; i++) {
        items[i] = gw_node_as_string(n->seq.items[i]);
        if (!items[i]) fail(b, n->seq.items[i], prop, "expected a string");
    }
    *count = items ? n->seq.count : 0;
    return items;
}

static void cidr_list(builder_t *b, const gw_node_t *n, const char *prop, gw_cidr_list_t *out)
{
    size_t count, bad;
    const char **items = string_list(b, n, prop, &count);
    if (!count || !items) return;
    if (!gw_cidr_list_build(out, b->arena, items, count, &bad)) {
        fail(b, n->seq.items[bad], prop, "'%s' is not an IP address or CIDR prefix",
             items[bad] ? items[bad] : "");
        memset(out, 0, sizeof(*out));
    }
}

static bool map_bool(builder_t *b, const gw_node_t *m, const char *key, const char *prop)
{
    const gw_node_t *n = gw_yaml_map_get(m, key);
    bool v = false;
    if (n && !gw_node_as_bool(n, &v)) fail(b, n, prop, "%s: expected a boolean (true or false)", key);
    return v;
}

static const char *map_string(builder_t *b, const gw_node_t *m, const char *key, const char *prop,
                              bool required)
{
    const gw_node_t *n = gw_yaml_map_get(m, key);
    const char *s = gw_node_as_string(n);
    if (!s && (n || required)) fail(b, n ? n : m, prop, "%s: expected a string", key);
    return s;
}

/* ---- users ---- */

typedef struct user_vec {
    builder_t *b;
    gw_user_t *items;
    size_t count, cap;
    const gw_node_t *at;
    const char *prop;
} user_vec_t;

static void add_user(void *ctx, const char *name, const char *hash)
{
    user_vec_t *v = ctx;
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        gw_user_t *items = gw_arena_alloc(v->b->arena, cap * sizeof(*items));
        if (!items) return;
        if (v->count) memcpy(items, v->items, v->count * sizeof(*items));
        v->items = items;
        v->cap = cap;
    }
    const char *why = gw_password_check_format(hash);
    if (why) warn(v->b, v->at, v->prop, "user '%s' can never log in: %s", name, why);
    v->items[v->count++] = (gw_user_t){gw_arena_strndup(v->b->arena, name, strlen(name)),
                                       gw_arena_strndup(v->b->arena, hash, strlen(hash))};
}

static void build_users(builder_t *b)
{
    user_vec_t v = {.b = b, .prop = "users"};
    const gw_node_t *users = gw_route_prop(b->route, "users");
    for (size_t i = 0; users && users->kind == GW_NODE_SEQ && i < users->seq.count; i++) {
        const gw_node_t *u = users->seq.items[i];
        const char *name = gw_node_as_string(gw_yaml_map_get(u, "name"));
        const char *pass = gw_node_as_string(gw_yaml_map_get(u, "pass"));
        v.at = gw_yaml_map_get(u, "pass") ? gw_yaml_map_get(u, "pass") : u;
        if (name && pass)
            add_user(&v, name, pass);
        else
            warn(b, u, "users", "an entry needs 'name' and 'pass' strings: ignored");
    }
    const gw_node_t *files = gw_route_prop(b->route, "htpasswdFile");
    v.prop = "htpasswdFile";
    size_t nf = 0;
    const gw_node_t *single = files && files->kind == GW_NODE_SCALAR ? files : NULL;
    const char **paths = single ? NULL : string_list(b, files, "htpasswdFile", &nf);
    for (size_t i = 0; i < (single ? 1 : nf); i++) {
        const char *path = single ? gw_node_as_string(single) : paths[i];
        char why[300];
        v.at = single ? single : files->seq.items[i];
        if (path && gw_htpasswd_read(path, add_user, &v, why, sizeof(why)) < 0)
            fail(b, v.at, "htpasswdFile", "%s", why);
    }
    b->p->users = (gw_userdb_t){v.items, v.count, {0}, NULL};
    gw_userdb_seal(&b->p->users);
    int64_t clients = GW_BRUTE_DEFAULT_CLIENTS; /* range checked by the config */
    if (v.count && gw_node_as_int(gw_route_prop(b->route, "bruteForceMaxClients"), &clients))
        gw_brute_configure((size_t)clients);
}

const gw_userdb_t *gw_policy_users(const gw_policy_t *p)
{
    return p ? &p->users : NULL;
}

const gw_nonstandard_t *gw_policy_nonstandard(const gw_policy_t *p)
{
    return p ? &p->ns : NULL;
}

/* ---- nonStandardCodes ---- */

static const char *challenge(builder_t *b, const char *realm)
{
    char esc[512];
    size_t n = 0;
    for (const char *s = realm; *s && n + 2 < sizeof(esc); s++) {
        if (*s == '"' || *s == '\\') esc[n++] = '\\';
        esc[n++] = *s;
    }
    esc[n] = '\0';
    return gw_arena_printf(b->arena, "Basic realm=\"%s\", charset=\"UTF-8\"", esc);
}

static void build_ns_rule(builder_t *b, const gw_node_t *m, gw_ns_rule_t *r)
{
    const char *P = "nonStandardCodes";
    int64_t code = 0;
    const gw_node_t *sc = gw_yaml_map_get(m, "scode");
    if (!gw_node_as_int(sc, &code) || code < 100 || code > 599)
        fail(b, sc ? sc : m, P, "scode: expected a status code");
    r->scode = (int)code;
    r->url = map_string(b, m, "url", P, false);
    const gw_node_t *rx = gw_yaml_map_get(m, "regex");
    if (rx) r->re = compile(b, rx, P);
    if (!r->url && !rx) fail(b, m, P, "needs a 'url' or a 'regex'");
    r->location = map_string(b, m, "location", P, false);
    if (code >= 300 && code < 400 && !r->location) fail(b, m, P, "a %d rule needs a 'location'", (int)code);
    const char *realm = map_string(b, m, "realm", P, false);
    r->challenge = challenge(b, realm ? realm : DEFAULT_REALM);
    r->user_list = string_list(b, gw_yaml_map_get(m, "userList"), P, &r->num_user_list);
    cidr_list(b, gw_yaml_map_get(m, "users"), P, &r->ips);
    r->brute_protect = !map_bool(b, m, "disableBruteProtection", P);
}

static void build_nonstandard(builder_t *b, const gw_node_t *list)
{
    gw_nonstandard_t *ns = &b->p->ns;
    ns->rules = gw_arena_alloc(b->arena, list->seq.count * sizeof(*ns->rules));
    if (!ns->rules) return;
    memset(ns->rules, 0, list->seq.count * sizeof(*ns->rules));
    for (size_t i = 0; i < list->seq.count; i++)
        build_ns_rule(b, list->seq.items[i], &ns->rules[ns->count++]);
    ns->users = &b->p->users;
}

/* ---- rewriteMap ---- */

static void build_rewrite(builder_t *b, const gw_node_t *list)
{
    const char *P = "rewriteMap";
    gw_rewrite_t *rw = &b->p->rewrite;
    rw->rules = gw_arena_alloc(b->arena, list->seq.count * sizeof(*rw->rules));
    if (!rw->rules) return;
    for (size_t i = 0; i < list->seq.count; i++) {
        const gw_node_t *m = list->seq.items[i];
        gw_rewrite_rule_t r = {0};
        const gw_node_t *rx = gw_yaml_map_get(m, "regex");
        if (!rx)
            fail(b, m, P, "needs a 'regex'");
        else
            r.re = compile(b, rx, P);
        r.replacement = map_string(b, m, "replacement", P, true);
        r.is_not_file = map_bool(b, m, "isNotFile", P);
        r.is_not_dir = map_bool(b, m, "isNotDirectory", P);
        r.allow_double_slashes = map_bool(b, m, "allowDoubleSlashes", P);
        r.last = map_bool(b, m, "last", P);
        if (r.re && r.replacement) rw->rules[rw->count++] = r;
    }
    bool log = false;
    gw_node_as_bool(gw_route_prop(b->route, "enableRewriteLogging"), &log);
    rw->log = log;
}

/* ---- rateLimit ---- */

/* The level that writes the route's rateLimit: the route's own, or the nearest one it inherits from. */
static const gw_scope_t *rule_scope(const gw_route_t *r)
{
    for (const gw_scope_t *sc = r->scope; sc; sc = sc->parent)
        if (sc->level && gw_yaml_map_get(sc->level, "rateLimit")) return sc;
    return r->scope;
}

/*
 * Which buckets a rule uses, as a stable identity (config_ids.h) so that they survive a reload: a
 * named zone is shared by every rule naming it; an unnamed one belongs to the level that writes it
 * (routes inheriting the rule share it). The rule's own settings are part of the identity: a
 * changed rule starts with fresh buckets.
 */
static uint64_t rl_zone(builder_t *b, const gw_ratelimit_t *rl, const char *zone)
{
    const gw_scope_t *sc = zone ? NULL : rule_scope(b->route);
    const char *owner = zone ? zone : sc ? sc->name : "";
    const char *id =
        gw_arena_printf(b->arena, "rateLimit %s %s\n%u/%ums burst %u key %d %s", zone ? "zone" : "at", owner,
                        rl->requests, rl->per_ms, rl->burst, (int)rl->key, rl->header ? rl->header : "");
    if (!id) {
        fail(b, NULL, "rateLimit", "out of memory");
        return 0;
    }
    return gw_identity_of(id, strlen(id));
}

static void rl_key(builder_t *b, const gw_node_t *m, gw_ratelimit_t *rl)
{
    const char *key = map_string(b, m, "key", "rateLimit", false);
    if (!key || !strcmp(key, "ip"))
        rl->key = GW_RL_KEY_IP;
    else if (!strcmp(key, "user"))
        rl->key = GW_RL_KEY_USER;
    else if (!strncmp(key, "header:", 7) && key[7]) {
        rl->key = GW_RL_KEY_HEADER;
        rl->header = key + 7;
    } else
        fail(b, gw_yaml_map_get(m, "key"), "rateLimit", "key: expected ip, user or header:<name>");
}

static void build_ratelimit(builder_t *b, const gw_node_t *m)
{
    gw_ratelimit_t *rl = &b->p->rl;
    int64_t req = 0, burst = 0;
    const gw_node_t *rn = gw_yaml_map_get(m, "requests"), *bn = gw_yaml_map_get(m, "burst");
    if (!gw_node_as_int(rn, &req) || req < 0 || req > 100000000) {
        fail(b, rn ? rn : m, "rateLimit", "requests: expected a number of requests");
        return;
    }
    if (bn && (!gw_node_as_int(bn, &burst) || burst < 1 || burst > 100000000))
        fail(b, bn, "rateLimit", "burst: expected a positive number");
    const gw_node_t *pn = gw_yaml_map_get(m, "per");
    uint32_t per = 1000;
    if (pn && (!gw_node_as_string(pn) || !gw_duration_parse(gw_node_as_string(pn), &per)))
        fail(b, pn, "rateLimit", "per: expected a duration such as 1s, 500ms, 1m");
    rl_key(b, m, rl);
    rl->requests = (uint32_t)req;
    rl->per_ms = per;
    rl->burst = (uint32_t)(burst ? burst : req);
    rl->zone = rl_zone(b, rl, map_string(b, m, "zone", "rateLimit", false));
    b->p->has_rl = req > 0;
}

/* ---- assembly ---- */

static void add_stage(gw_policy_t *p, const char *name,
                      gw_handler_result_t (*fn)(const gw_handler_t *, gw_req_t *))
{
    p->stages[p->num_stages++] = (stage_t){{name, fn}, p};
}

static void build_lists(builder_t *b)
{
    gw_policy_t *p = b->p;
    const gw_route_t *r = b->route;
    cidr_list(b, gw_route_prop(r, "trustedProxies"), "trustedProxies", &p->trusted);
    gw_node_as_bool(gw_route_prop(r, "enableIPSpoofing"), &p->spoofing);
    cidr_list(b, gw_route_prop(r, "blocklist"), "blocklist", &p->block);
    cidr_list(b, gw_route_prop(r, "allowlist"), "allowlist", &p->allow);
}

static void assemble(gw_policy_t *p)
{
    if (p->spoofing || !gw_cidr_list_empty(&p->trusted)) add_stage(p, "client-address", client_stage);
    p->num_early = p->num_stages;
    if (!gw_cidr_list_empty(&p->block) || !gw_cidr_list_empty(&p->allow))
        add_stage(p, "access-list", access_stage);
    if (p->rewrite.count) add_stage(p, "rewriteMap", rewrite_stage);
    if (p->ns.count) add_stage(p, "nonStandardCodes", nonstandard_stage);
    if (p->has_rl) add_stage(p, "rateLimit", ratelimit_stage);
}

gw_policy_t *gw_policy_build(const gw_route_t *route, gw_arena_t *arena, gw_policy_err_fn err, void *ctx)
{
    gw_policy_t *p = gw_arena_alloc(arena, sizeof(*p));
    if (!p) return NULL;
    memset(p, 0, sizeof(*p));
    builder_t b = {p, route, arena, err, ctx, false};
    build_lists(&b);
    build_users(&b);
    const gw_node_t *ns = gw_route_prop(route, "nonStandardCodes");
    if (ns && ns->kind == GW_NODE_SEQ && ns->seq.count) build_nonstandard(&b, ns);
    const gw_node_t *rw = gw_route_prop(route, "rewriteMap");
    if (rw && rw->kind == GW_NODE_SEQ && rw->seq.count) build_rewrite(&b, rw);
    const gw_node_t *rl = gw_route_prop(route, "rateLimit");
    if (rl && rl->kind == GW_NODE_MAP) build_ratelimit(&b, rl);
    assemble(p);
    if (p->num_stages == 0 && !p->num_regexes && !p->users.count) return NULL; /* users: fproxy may ask */
    return p;
}

size_t gw_policy_stages(const gw_policy_t *p, bool early, const gw_handler_t **out)
{
    if (!p) return 0;
    size_t from = early ? 0 : p->num_early, to = early ? p->num_early : p->num_stages;
    for (size_t i = from; i < to; i++)
        out[i - from] = &p->stages[i].h;
    return to - from;
}

void gw_policy_free(gw_policy_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->num_regexes; i++)
        gw_regex_free(p->regexes[i]);
    free(p->regexes);
    p->regexes = NULL;
    p->num_regexes = p->cap_regexes = 0;
}
