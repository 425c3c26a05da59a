/* Health, readiness and metrics endpoints; version report. See admin.h. */
#include "admin.h"

#include <string.h>

#include <ares.h>
#include <nghttp2/nghttp2.h>
#include <openssl/base.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "acl.h"
#include "config_props.h"
#include "health.h"
#include "metrics.h"
#include "worker.h"

/* The exposition's size depends on the host labels and upstream servers in use: start with room
 * for the fixed series and double until it fits. */
#define METRICS_BUF_MIN 16384
#define METRICS_BUF_MAX (8u << 20)

typedef struct admin_handler {
    gw_handler_t base;
    gw_slice_t health, ready, metrics; /* empty: off */
    gw_cidr_list_t allow;
} admin_handler_t;

static const char *const default_allow[] = {"127.0.0.0/8", "::1"};

/* Runs for every request of the host: the length, then the last byte, tell most paths apart from
 * an admin path (such as /f1k.txt from /healthz) without a call to memcmp. */
static bool path_is(gw_slice_t path, gw_slice_t want)
{
    return want.len && path.len == want.len && path.base[want.len - 1] == want.base[want.len - 1] &&
           memcmp(path.base, want.base, want.len) == 0;
}

static void no_store(gw_req_t *req)
{
    gw_res_add_header(req, GW_SLICE_LIT("cache-control"), GW_SLICE_LIT("no-store"));
}

/* The whole exposition in the request's arena; 0 without memory. */
static size_t render_metrics(gw_req_t *req, const gw_metrics_view_t *v, char **out)
{
    for (size_t cap = METRICS_BUF_MIN; cap <= METRICS_BUF_MAX; cap *= 2) {
        char *buf = gw_arena_alloc(&req->arena, cap);
        if (!buf) return 0;
        size_t n = gw_metrics_render(v, buf, cap);
        if (n && gw_health_render_metrics(req->cfg, buf, cap, &n)) {
            *out = buf;
            return n;
        }
    }
    return 0;
}

static gw_handler_result_t answer_metrics(gw_req_t *req)
{
    gw_metrics_view_t v;
    char *buf = NULL;
    size_t n = 0;
    if (gw_metrics_collect(&v, &req->arena)) {
        v.draining = req->worker && req->worker->draining;
        n = render_metrics(req, &v, &buf);
    }
    if (!n) {
        req->res.status = 500;
        return GW_ERROR;
    }
    no_store(req);
    gw_send_inline(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, n);
    return GW_DONE;
}

static gw_handler_result_t admin_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const admin_handler_t *h = (const admin_handler_t *)self;
    int which = path_is(req->path, h->health) ? 1 : path_is(req->path, h->ready) ? 2
                : path_is(req->path, h->metrics) ? 3 : 0;
    if (!which || !req->conn || !gw_cidr_list_match(&h->allow, &req->conn->peer.sin6_addr)) return GW_CONTINUE;
    if (req->method_id != GW_M_GET && req->method_id != GW_M_HEAD) {
        gw_res_add_header(req, GW_SLICE_LIT("allow"), GW_SLICE_LIT("GET, HEAD"));
        req->res.status = 405;
        return GW_ERROR;
    }
    if (which == 3) return answer_metrics(req);
    no_store(req);
    if (which == 2 && req->worker && req->worker->draining) {
        gw_send_inline(req, 503, "text/plain; charset=utf-8", "draining\n", 9);
        return GW_DONE;
    }
    gw_send_inline(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
    return GW_DONE;
}

/* The property's path: its default when absent, empty when set to null or "". */
static gw_slice_t prop_path(const gw_route_t *route, const char *name, const char *def)
{
    const gw_node_t *n = gw_route_prop(route, name);
    const char *s = n ? gw_node_as_string(n) : def;
    if (!s || s[0] != '/') return (gw_slice_t){NULL, 0};
    return (gw_slice_t){s, strlen(s)};
}

const gw_handler_t *gw_admin_handler_new(const gw_route_t *route, gw_arena_t *arena)
{
    admin_handler_t *h = gw_arena_alloc(arena, sizeof(*h));
    if (!h) return NULL;
    memset(h, 0, sizeof(*h));
    h->base = (gw_handler_t){"admin", admin_on_request};
    h->health = prop_path(route, "healthPath", "/healthz");
    h->ready = prop_path(route, "readyPath", "/readyz");
    h->metrics = prop_path(route, "metricsPath", NULL);
    if (!h->health.len && !h->ready.len && !h->metrics.len) return NULL;
    const gw_node_t *list = gw_route_prop(route, "adminAllow");
    size_t bad;
    if (list && list->kind == GW_NODE_SEQ) {
        /* checked at load (gw_admin_check_property): a bad list cannot get here */
        if (!gw_cidr_list_from_seq(&h->allow, arena, list)) return NULL;
    } else if (!gw_cidr_list_build(&h->allow, arena, default_allow, 2, &bad)) {
        return NULL;
    }
    return &h->base;
}

bool gw_admin_has_own_listener(const gw_route_t *route)
{
    const gw_node_t *n = gw_route_prop(route, "adminListen");
    const char *s = n ? gw_node_as_string(n) : NULL;
    return s && s[0];
}

const gw_route_t *gw_admin_route_new(const gw_route_t *global, gw_arena_t *arena)
{
    gw_route_t *r = gw_arena_alloc(arena, sizeof(*r));
    const gw_handler_t **chain = gw_arena_alloc(arena, sizeof(*chain));
    if (!r || !chain) return NULL;
    memset(r, 0, sizeof(*r));
    r->props = global->props;
    r->scope = global->scope;
    r->root_fd = -1;
    r->max_body_bytes = global->max_body_bytes;
    r->server_header = global->server_header;
    r->metrics_host = global->metrics_host;
    r->handlers = chain;
    const gw_handler_t *admin = gw_admin_handler_new(global, arena);
    if (admin) chain[r->num_handlers++] = admin;
    return r;
}

const gw_node_t *gw_admin_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen)
{
    if (!strcmp(name, "healthPath") || !strcmp(name, "readyPath") || !strcmp(name, "metricsPath")) {
        const char *s = gw_node_as_string(value);
        if (!s || !s[0]) return NULL; /* switched off */
        if (s[0] == '/' && !strpbrk(s, "?# \t")) return NULL;
        snprintf(why, whylen, "'%s' is not a path (it must start with '/'; null or \"\" switches it off)", s);
        return value;
    }
    if (!strcmp(name, "adminAllow")) return gw_cidr_seq_check(value, why, whylen);
    return NULL;
}

void gw_admin_print_version(FILE *f)
{
    const nghttp2_info *ng = nghttp2_version(0);
    fprintf(f, "gateway %s\n", GW_VERSION);
    fprintf(f, "  nghttp2    %s (built with %s)\n", ng ? ng->version_str : "?", NGHTTP2_VERSION);
    fprintf(f, "  BoringSSL  %s, API version %d\n", OPENSSL_VERSION_TEXT, (int)BORINGSSL_API_VERSION);
    fprintf(f, "  c-ares     %s (built with %s)\n", ares_version(NULL), ARES_VERSION_STR);
    fprintf(f, "  libyaml    %s\n", yaml_get_version_string());
}
