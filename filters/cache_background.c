/* Client-less requests for background revalidation. See cache_background.h. */
#include "cache_background.h"

#include <string.h>

#include "conn.h"
#include "handler.h"
#include "loop.h"
#include "worker.h"

typedef struct bg_req {
    gw_req_t req;     /* first: the codec callbacks get the request */
    gw_conn_t conn;   /* in the worker's list of connections (released at exit); conn.info: the client's */
    gw_timer_t timer; /* runs the pending steps from the loop, never inside a handler's call */
    bool start, proceed, done, body_ended;
} bg_req_t;

static void finish(bg_req_t *b)
{
    gw_worker_t *w = b->req.worker;
    gw_worker_untrack(w, &b->conn);
    gw_req_dispose(&b->req);
    gw_timer_cancel(&b->timer); /* after: a producer stopped by dispose may still have sent */
    gw_arena_t arena = b->req.arena;
    gw_arena_reset(&arena); /* b is gone from here on */
}

static void on_timer(gw_timer_t *t)
{
    bg_req_t *b = gw_container_of(t, bg_req_t, timer);
    gw_req_t *req = &b->req;
    if (b->done) {
        finish(b);
    } else if (b->start) {
        b->start = false;
        gw_req_continue(req);
    } else {
        /* what the producer sends from its proceed is taken at once: one timer per burst, not per piece */
        while (b->proceed && !b->done && req->gen && req->gen->proceed) {
            b->proceed = false;
            req->gen->proceed(req->gen, req);
        }
    }
}

static void schedule(bg_req_t *b)
{
    if (!gw_timer_active(&b->timer)) gw_timer_set(b->req.worker->loop, &b->timer, 0);
}

/* ---- the codec: the response is dropped as fast as it comes ---- */

static void bg_send(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    (void)bufs;
    (void)n;
    bg_req_t *b = (bg_req_t *)req;
    if (state == GW_SEND_IN_PROGRESS)
        b->proceed = true;
    else
        b->done = true;
    schedule(b);
}

static void bg_send_file(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state)
{
    (void)fd;
    (void)off;
    (void)len;
    bg_send(req, NULL, 0, state);
}

static void bg_send_informational(gw_req_t *req, int status, const gw_header_t *h, size_t n)
{
    (void)req;
    (void)status;
    (void)h;
    (void)n;
}

static void bg_body_resume(gw_req_t *req)
{
    bg_req_t *b = (bg_req_t *)req;
    if (!req->body_cb || b->body_ended) return;
    b->body_ended = true;
    req->body_cb(req, req->body_ctx, (gw_slice_t){NULL, 0}, GW_BODY_END);
}

static void bg_body_discard(gw_req_t *req)
{
    (void)req;
}

static const gw_codec_ops_t bg_codec = {"HTTP/1.1",     bg_send,        bg_send_file, bg_send_informational,
                                        bg_body_resume, bg_body_discard};

static void bg_abort(gw_conn_t *c)
{
    finish(gw_container_of(c, bg_req_t, conn));
}

/* ---- the copy of the client's request ---- */

static gw_slice_t dup(gw_arena_t *a, gw_slice_t s, bool *ok)
{
    char *c = gw_arena_strndup(a, s.base ? s.base : "", s.len);
    if (!c) *ok = false;
    return (gw_slice_t){c ? c : "", c ? s.len : 0};
}

static bool header_dropped(gw_slice_t name)
{
    static const char *const names[] = {
        "if-match",      "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range",
        "cache-control", "pragma",        "content-length",    "transfer-encoding",   "expect",   "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gw_slice_ieq(name, names[i])) return true;
    return false;
}

static bool copy_request(gw_req_t *r, const gw_req_t *client)
{
    bool ok = true;
    r->method = GW_SLICE_LIT("GET");
    r->method_id = GW_M_GET;
    r->version = 11;
    r->target = dup(&r->arena, client->target, &ok);
    r->authority = dup(&r->arena, client->authority, &ok);
    r->path = dup(&r->arena, client->path, &ok);
    r->query = dup(&r->arena, client->query, &ok);
    r->has_query = client->has_query;
    r->headers = gw_arena_alloc(&r->arena, (client->num_headers + 1) * sizeof(*r->headers));
    if (!r->headers) return false;
    for (size_t i = 0; i < client->num_headers; i++) {
        const gw_header_t *h = &client->headers[i];
        if (header_dropped(h->name)) continue;
        r->headers[r->num_headers++] =
            (gw_header_t){dup(&r->arena, h->name, &ok), dup(&r->arena, h->value, &ok)};
    }
    r->body_kind = GW_BODY_NONE;
    r->client_ip = client->client_ip;
    r->route = client->route;
    r->chain_pos = client->chain_pos;
    r->res.content_length = -1;
    return ok;
}

gw_req_t *gw_cache_bg_new(const gw_req_t *client)
{
    gw_worker_t *w = client->worker;
    if (!client->route || client->cfg != w->cfg || client->in_error_route) return NULL;
    gw_arena_t arena;
    gw_arena_init(&arena, &w->io_pool);
    bg_req_t *b = gw_arena_alloc(&arena, sizeof(*b));
    if (!b) return NULL;
    memset(b, 0, sizeof(*b));
    b->req.arena = arena;
    if (!copy_request(&b->req, client)) {
        arena = b->req.arena;
        gw_arena_reset(&arena);
        return NULL;
    }
    b->req.codec = &bg_codec;
    b->req.worker = w;
    b->req.conn = &b->conn.info;
    b->req.start_ms = gw_loop_now(w->loop);
    b->conn.worker = w;
    b->conn.info = *client->conn;
    b->conn.abort = bg_abort;
    gw_timer_init(&b->timer, on_timer);
    gw_worker_attach_cfg(w, &b->req); /* the same config as the client's: checked above */
    gw_worker_track(w, &b->conn);
    return &b->req;
}

void gw_cache_bg_start(gw_req_t *bg)
{
    bg_req_t *b = (bg_req_t *)bg;
    b->start = true;
    schedule(b);
}

void gw_cache_bg_drop(gw_req_t *bg)
{
    finish((bg_req_t *)bg);
}
