/* Request helpers, the response/body stream front ends and dispatch (error pages: error_pages.c). */
#include "request.h"

#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include "config.h"
#include "errors.h"
#include "handler.h"
#include "loop.h"
#include "module_loader.h"
#include "static.h"
#include "uri.h"
#include "worker.h"
#include "request_id.h"

static const struct {
    const char *name;
    gw_method_t id;
} methods[] = {
    {"GET", GW_M_GET},         {"HEAD", GW_M_HEAD},       {"POST", GW_M_POST},   {"PUT", GW_M_PUT},
    {"DELETE", GW_M_DELETE},   {"OPTIONS", GW_M_OPTIONS}, {"PATCH", GW_M_PATCH}, {"CONNECT", GW_M_CONNECT},
    {"TRACE", GW_M_TRACE},
};

gw_method_t gw_method_intern(gw_slice_t m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (gw_slice_eq(m, methods[i].name)) return methods[i].id;
    return GW_M_OTHER;
}

const gw_header_t *gw_headers_find(const gw_header_t *list, size_t count, const char *name, size_t len)
{
    char first = (char)(name[0] | 0x20); /* a cheap first-letter test spares most strncasecmp calls */
    for (size_t i = 0; i < count; i++)
        if (list[i].name.len == len && len && (list[i].name.base[0] | 0x20) == first &&
            strncasecmp(list[i].name.base, name, len) == 0)
            return &list[i];
    return NULL;
}

bool gw_headers_add(gw_arena_t *arena, gw_headers_t *list, gw_slice_t name, gw_slice_t value)
{
    if (list->count == list->cap) {
        uint32_t cap = list->cap ? list->cap * 2 : 8;
        gw_header_t *items = gw_arena_alloc(arena, cap * sizeof(*items));
        if (!items) return false;
        if (list->count) memcpy(items, list->items, list->count * sizeof(*items));
        list->items = items;
        list->cap = cap;
    }
    list->items[list->count++] = (gw_header_t){name, value};
    return true;
}

bool gw_res_add_header(gw_req_t *req, gw_slice_t name, gw_slice_t value)
{
    return gw_headers_add(&req->arena, &req->res.headers, name, value);
}

void gw_start_response(gw_req_t *req, gw_generator_t *gen)
{
    const gw_config_t *cfg = req->cfg;
    for (size_t i = 0; cfg && i < cfg->num_modules; i++)
        if (cfg->modules[i].def->response_filter)
            cfg->modules[i].def->response_filter(cfg->modules[i].state, (gw_mod_request_t *)req);
    const gw_route_t *r = req->route;
    for (size_t i = 0; r && i < r->num_filters; i++) r->filters[i]->on_setup(r->filters[i], req);
    req->gen = gen;
    req->res_started = true;
}

void gw_req_push_ostream(gw_req_t *req, gw_ostream_t *os)
{
    gw_ostream_t **pp = &req->ostreams;
    while (*pp) pp = &(*pp)->next;
    os->next = NULL;
    *pp = os;
}

void gw_ostream_next(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    if (self->next)
        self->next->send(self->next, req, bufs, n, state);
    else
        req->codec->send(req, bufs, n, state);
}

void gw_send(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    if (state != GW_SEND_IN_PROGRESS) req->res_done = true;
    if (req->ostreams)
        req->ostreams->send(req->ostreams, req, bufs, n, state);
    else
        req->codec->send(req, bufs, n, state);
}

/* ---- files through a filter chain: read in pieces, each sent when the chain asks for more ---- */

typedef struct gw_file_pump {
    gw_generator_t gen;      /* stands in for the handler's generator while the file flows */
    gw_generator_t *handler; /* the handler's own generator */
    int fd;
    uint64_t off, left;
    gw_send_state_t final_state;
    char *chunk;
    size_t chunk_size;
} gw_file_pump_t;

static void pump_file(gw_req_t *req, gw_file_pump_t *p)
{
    if (!p->left) {
        req->gen = p->handler; /* the file is done: give the stream back to the handler */
        if (p->handler && p->handler->proceed && p->final_state == GW_SEND_IN_PROGRESS)
            p->handler->proceed(p->handler, req);
        return;
    }
    size_t want = p->left < p->chunk_size ? (size_t)p->left : p->chunk_size;
    ssize_t n = pread(p->fd, p->chunk, want, (off_t)p->off);
    if (n <= 0) {
        req->res_done = true;
        req->ostreams->send(req->ostreams, req, NULL, 0, GW_SEND_ERROR); /* the file shrank: abort */
        return;
    }
    p->off += (uint64_t)n;
    p->left -= (uint64_t)n;
    gw_slice_t piece = {p->chunk, (size_t)n};
    gw_send_state_t st = p->left ? GW_SEND_IN_PROGRESS : p->final_state;
    req->ostreams->send(req->ostreams, req, &piece, 1, st);
}

static void file_pump_proceed(gw_generator_t *g, gw_req_t *req)
{
    pump_file(req, gw_container_of(g, gw_file_pump_t, gen));
}

static void file_pump_stop(gw_generator_t *g, gw_req_t *req)
{
    gw_file_pump_t *p = gw_container_of(g, gw_file_pump_t, gen);
    if (p->handler && p->handler->stop) p->handler->stop(p->handler, req);
}

void gw_send_file(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state)
{
    if (state != GW_SEND_IN_PROGRESS) req->res_done = true;
    if (!req->ostreams) {
        req->codec->send_file(req, fd, off, len, state);
        return;
    }
    gw_file_pump_t *p = req->file_pump;
    if (!p) {
        p = req->file_pump = gw_arena_alloc(&req->arena, sizeof(*p));
        if (p) p->chunk = gw_arena_alloc(&req->arena, p->chunk_size = 16384);
        if (!p || !p->chunk) {
            req->ostreams->send(req->ostreams, req, NULL, 0, GW_SEND_ERROR);
            return;
        }
        p->gen = (gw_generator_t){file_pump_proceed, file_pump_stop};
    }
    p->handler = req->gen;
    p->fd = fd;
    p->off = off;
    p->left = len;
    p->final_state = state;
    req->gen = &p->gen;
    pump_file(req, p);
}

void gw_send_informational(gw_req_t *req, int status, const gw_header_t *h, size_t n)
{
    req->codec->send_informational(req, status, h, n);
}

void gw_send_inline(gw_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.content_length = (int64_t)len;
    if (content_type) gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){content_type, strlen(content_type)});
    char *copy = len ? gw_arena_strndup(&req->arena, body, len) : NULL;
    gw_slice_t b = {copy, copy ? len : 0};
    gw_start_response(req, NULL);
    gw_send(req, &b, b.len ? 1 : 0, GW_SEND_FINAL);
}

void gw_req_read_body(gw_req_t *req, gw_body_cb cb, void *ctx)
{
    if (req->body_emptied) { /* the errorConfig re-run: the end at once, the codec is not involved */
        cb(req, ctx, (gw_slice_t){NULL, 0}, GW_BODY_END);
        return;
    }
    req->body_cb = cb;
    req->body_ctx = ctx;
    if (req->body_source)
        req->body_source(req);
    else
        req->codec->body_resume(req);
}

void gw_req_body_proceed(gw_req_t *req)
{
    if (req->body_emptied) return; /* the empty body's end was its only piece */
    if (req->body_source)
        req->body_source(req);
    else
        req->codec->body_resume(req);
}

bool gw_req_defer(gw_req_t *req, void (*fn)(void *arg), void *arg)
{
    gw_req_cleanup_t *c = gw_arena_alloc(&req->arena, sizeof(*c));
    if (!c) return false;
    *c = (gw_req_cleanup_t){req->cleanups, fn, arg};
    req->cleanups = c;
    return true;
}

void gw_req_dispose(gw_req_t *req)
{
    if (req->gen && !req->res_done && req->gen->stop) req->gen->stop(req->gen, req);
    req->gen = NULL;
    while (req->cleanups) {
        gw_req_cleanup_t *c = req->cleanups;
        req->cleanups = c->next;
        c->fn(c->arg);
    }
    if (req->cfg_held) gw_worker_detach_cfg(req->worker, req);
}

/* ---- dispatch ---- */

/* Splits the target into path and query and normalises the path once (spec §3.4). */
/* absolute-form http://authority/path: the authority replaces Host (RFC 9112 §3.2.2). */
static int absolute_form(gw_req_t *req, gw_slice_t *t)
{
    const char *colon = memchr(t->base, ':', t->len);
    if (!colon || colon + 3 > t->base + t->len || colon[1] != '/' || colon[2] != '/') return 400;
    const char *auth = colon + 3, *end = t->base + t->len;
    const char *sep = memchr(auth, '/', (size_t)(end - auth));
    const char *q = memchr(auth, '?', (size_t)(end - auth));
    if (q && (!sep || q < sep)) sep = q;
    if (!sep) sep = end;
    if (sep == auth) return 400;
    char *low = gw_arena_strndup(&req->arena, auth, (size_t)(sep - auth));
    if (!low) return 500;
    for (char *p = low; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    req->authority = (gw_slice_t){low, (size_t)(sep - auth)};
    *t = sep < end && *sep == '/' ? (gw_slice_t){sep, (size_t)(end - sep)} : GW_SLICE_LIT("/");
    if (sep < end && *sep == '?') { /* "http://host?q": path "/" with the query */
        char *with = gw_arena_printf(&req->arena, "/%.*s", (int)(end - sep), sep);
        if (!with) return 500;
        *t = (gw_slice_t){with, strlen(with)};
    }
    return 0;
}

static int prepare_path(gw_req_t *req, bool double_slashes)
{
    gw_slice_t t = req->target;
    if (req->method_id == GW_M_CONNECT) { /* authority-form: no path to normalise */
        req->path = GW_SLICE_LIT("/");
        req->query = (gw_slice_t){"", 0};
        return 0;
    }
    if (t.len && t.base[0] != '/' && !gw_slice_eq(t, "*")) {
        int err = absolute_form(req, &t);
        if (err) return err;
    }
    const char *q = memchr(t.base, '?', t.len);
    size_t plen = q ? (size_t)(q - t.base) : t.len;
    req->has_query = q != NULL;
    req->query = q ? (gw_slice_t){q + 1, t.len - plen - 1} : (gw_slice_t){"", 0};
    size_t cap = plen * 3 + 2;
    char *out = gw_arena_alloc(&req->arena, cap);
    if (!out) return 500;
    long n = gw_uri_normalize(t.base, plen, out, cap, double_slashes);
    if (n < 0) return 400;
    req->path = (gw_slice_t){out, (size_t)n};
    return 0;
}

/* Runs the route's handlers; returns 0 when one answered, else the error status to send. */
/* Runs the route's handlers from `from`; returns 0 when one answers (or suspended itself to go on
 * later with gw_req_continue), else the error status to answer with. */
static int run_handlers(gw_req_t *req, size_t from)
{
    const gw_route_t *r = req->route;
    for (size_t i = from; i < r->num_handlers; i++) {
        /* the end of the chain (default handler checks, spec §3.1): a forward-proxy request that
         * no module (fproxy) took */
        if (req->method_id == GW_M_CONNECT && r->handlers[i] == &gw_static_handler) return 501;
        req->chain_pos = (uint16_t)i;
        gw_handler_result_t res = r->handlers[i]->on_request(r->handlers[i], req);
        if (res == GW_DONE) return 0;
        if (res == GW_ERROR) return req->res.status >= 400 ? req->res.status : 500;
    }
    return 404;
}

static void run_chain_from(gw_req_t *req, size_t from)
{
    int status = run_handlers(req, from);
    if (status) gw_req_fail(req, status);
}

/* The request headers with the body framing (and an Expect for it) replaced by Content-Length: 0. */
static bool headers_for_empty_body(gw_req_t *req)
{
    gw_header_t *h = gw_arena_alloc(&req->arena, (req->num_headers + 1) * sizeof(*h));
    if (!h) return false;
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        gw_slice_t name = req->headers[i].name;
        if (!gw_slice_ieq(name, "content-length") && !gw_slice_ieq(name, "transfer-encoding") &&
            !gw_slice_ieq(name, "expect"))
            h[n++] = req->headers[i];
    }
    h[n++] = (gw_header_t){GW_SLICE_LIT("content-length"), GW_SLICE_LIT("0")};
    req->headers = h;
    req->num_headers = n;
    return true;
}

/* The request as the errorConfig re-run sees it (spec §1): a copy with an empty body and
 * Content-Length: 0. Handlers reading it get the end at once; the codec drops what the client still
 * sends, the way it does for any body nobody reads. A request without a body is left as it is. */
static bool empty_request_body(gw_req_t *req)
{
    if (req->body_kind == GW_BODY_NONE) return true;
    if (!headers_for_empty_body(req)) return false;
    req->codec->body_discard(req);
    req->body_cb = NULL; /* the first run's reader, if any, gets nothing more */
    req->body_ctx = NULL;
    req->body_source = NULL;
    req->body_source_ctx = NULL;
    req->body_emptied = true;
    req->body_kind = GW_BODY_LENGTH;
    req->content_length = 0;
    req->expect_continue = false;
    return true;
}

void gw_req_fail(gw_req_t *req, int status)
{
    const gw_route_t *er = req->in_error_route ? NULL : gw_error_route(req->route, status);
    if (er && empty_request_body(req)) {
        /* errorConfig (spec §1): the whole chain once more on the merged route, from a clean
         * response; one level only (error routes have no error routes of their own) */
        req->route = er;
        req->in_error_route = true;
        req->res.status = 0;
        req->res.content_length = -1;
        req->res.headers.count = 0;
        status = run_handlers(req, 0);
        if (!status) return;
    }
    gw_send_error(req, status);
}

void gw_req_continue(gw_req_t *req)
{
    run_chain_from(req, (size_t)req->chain_pos + 1);
}

static void run_chain(gw_req_t *req)
{
    run_chain_from(req, 0);
}

int gw_req_route(gw_req_t *req)
{
    int err = prepare_path(req, false);
    if (req->conn->admin) { /* adminListen: its own route, never a site's (admin.h) */
        req->route = req->cfg->admin_route;
        return err;
    }
    /* the local address only matters, and is only looked up, when some host is bound to one */
    const struct in6_addr *local = req->cfg->hosts_by_ip ? &gw_conn_local(req->conn)->sin6_addr : NULL;
    req->route = gw_config_route(req->cfg, req->authority, local, req->path.base ? req->path : GW_SLICE_LIT("/"));
    if (!err && req->route->allow_double_slashes) {
        /* the route keeps "//": normalise again without collapsing them, and route that path */
        err = prepare_path(req, true);
        if (!err) req->route = gw_config_route(req->cfg, req->authority, local, req->path);
    }
    return err;
}

void gw_req_dispatch(gw_req_t *req)
{
    req->client_ip = req->conn->peer.sin6_addr; /* policy may replace it (trusted X-Forwarded-For) */
    if (req->cfg->request_id) gw_request_id_assign(req);
    int err = gw_req_route(req);
    if (err) {
        gw_send_error(req, err);
        return;
    }
    if (req->body_kind == GW_BODY_LENGTH && req->content_length > req->route->max_body_bytes) {
        gw_send_error(req, 413);
        return;
    }
    run_chain(req);
}
