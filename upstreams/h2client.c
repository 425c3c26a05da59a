/* HTTP/2 client sessions to backends. See h2client.h. */
#include "h2client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "balancer.h"
#include "config.h"
#include "errors.h"
#include "exchange.h"
#include "handler.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

#define WRITE_BATCH 16384 /* frames gathered before one write */
#define MAX_RETRIES 2

typedef struct h2_session h2_session_t;
typedef struct h2_stream h2_stream_t;

struct h2_session {
    gw_pool_t *pool;
    gw_worker_t *worker;
    gw_pool_waiter_t waiter;
    gw_upconn_t *conn; /* NULL while connecting */
    nghttp2_session *ng;
    h2_session_t *next, **pprev; /* the pool's sessions */
    h2_stream_t *streams;        /* attached streams, queued ones (id 0) included */
    uint32_t num_streams;
    bool goaway;    /* the backend said GOAWAY: no new streams */
    bool dead;      /* closed: freed once no handler on the stack uses it */
    bool in_recv;   /* inside nghttp2_session_mem_recv: no sending from callbacks */
    bool flushing;  /* inside session_flush */
    bool again;     /* more to flush after the current pass */
    bool ping_sent; /* idle: a PING went out and its ACK has not come back yet */
    uint64_t idle_since;
    uint32_t window; /* each stream buffers at most this much of its response (proxyHttp2WindowSize) */
    int busy;        /* handlers on the stack */
    uint8_t *obuf;   /* frames not written yet */
    size_t olen, ocap;
};

struct h2_stream {
    gw_req_t *req;
    gw_generator_t gen;
    const gw_target_list_t *list;
    const gw_target_t *target;
    gw_pool_t *pool;
    h2_session_t *s;
    h2_stream_t *next, **pprev;
    int32_t id;
    uint32_t tried;                  /* targets that could not be connected to */
    int retries;                     /* refused streams sent again */
    gw_h2client_fallback_t fallback; /* protocol: auto, when the backend chose HTTP/1.1 */
    nghttp2_nv *nva;
    size_t nnv;
    gw_timer_t timer; /* proxyReadTimeout */
    /* request body */
    bool body_reading, body_proceed, piece_active, piece_last;
    bool req_sent; /* END_STREAM went out with the request */
    gw_slice_t piece;
    size_t piece_off;
    /* response */
    int block_status; /* :status of the header block being received */
    int64_t content_length;
    bool head_done, ended, finished;
    uint8_t *buf;      /* response bytes not yet taken by the client: buf[0..len) */
    size_t cap;        /* the session's window, or less for a shorter announced body */
    size_t len, held;  /* held: given to the client, not yet taken */
    size_t unconsumed; /* received bytes not yet returned to the connection window */
    bool sending, proceeded, waiting;
};

static void session_flush(h2_session_t *s);
static void session_close(h2_session_t *s, const char *err);
static void attach(h2_stream_t *st);
static void hand_to_http1(h2_stream_t *st);

static h2_session_t **sessions_of(gw_pool_t *p)
{
    return (h2_session_t **)gw_pool_h2_slot(p);
}

static const gw_route_t *route_of(const h2_stream_t *st)
{
    return st->req->route;
}

static void session_free(h2_session_t *s)
{
    if (s->ng) nghttp2_session_del(s->ng);
    free(s->obuf);
    free(s);
}

/* Ends a handler's use of the session: frees it if it was closed meanwhile. */
static void session_leave(h2_session_t *s)
{
    if (--s->busy == 0 && s->dead) session_free(s);
}

/* ---- streams leaving their session ---- */

/* Hands the received bytes the client will never take back to the connection window. */
static void return_unconsumed(h2_stream_t *st)
{
    if (st->unconsumed && st->s && st->s->ng) nghttp2_session_consume_connection(st->s->ng, st->unconsumed);
    st->unconsumed = 0;
}

/* While idle the session wakes for its next PING or the end of proxyKeepaliveTimeout. */
static void arm_idle_timer(h2_session_t *s)
{
    const gw_pool_config_t *pc = &s->worker->cfg->pool;
    uint64_t idle_for = gw_loop_now(s->worker->loop) - s->idle_since;
    uint64_t left = idle_for < pc->idle_timeout_ms ? pc->idle_timeout_ms - idle_for : 0;
    uint64_t next = pc->h2_ping_ms && pc->h2_ping_ms < left ? pc->h2_ping_ms : left;
    gw_timer_set(s->worker->loop, &s->conn->timer, next);
}

static void session_idle(h2_session_t *s)
{
    if (s->dead || s->num_streams) return;
    if (s->goaway) {
        session_close(s, NULL);
        return;
    }
    if (!s->conn) return;
    s->idle_since = gw_loop_now(s->worker->loop);
    s->ping_sent = false;
    arm_idle_timer(s);
}

/* The stream no longer belongs to its session; `reset`: cancel it at the backend if still open. */
static void detach(h2_stream_t *st, bool reset)
{
    h2_session_t *s = st->s;
    gw_timer_cancel(&st->timer);
    if (!s) return;
    return_unconsumed(st);
    if (st->next) st->next->pprev = st->pprev;
    *st->pprev = st->next;
    st->next = NULL;
    st->pprev = NULL;
    st->s = NULL;
    s->num_streams--;
    if (st->id > 0 && s->ng && !s->dead) {
        nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
        if (reset && nghttp2_session_find_stream(s->ng, st->id))
            nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
    s->busy++; /* closing an idle session that got a GOAWAY must not free it under us */
    session_idle(s);
    if (!s->dead) session_flush(s);
    session_leave(s);
}

/* Fails the stream: an error page if nothing was sent yet, an abort otherwise. */
static void fail_stream(h2_stream_t *st, const char *err)
{
    if (st->finished) return;
    st->finished = true;
    detach(st, true);
    gw_pool_report(st->pool, false);
    gw_log_error("error", "%s (%s)", err, st->target->url);
    gw_req_t *req = st->req;
    if (!req->res_started) {
        int status = gw_error_status(err);
        if (status == 499)
            gw_send_error(req, status);
        else
            gw_req_fail(req, status);
        return;
    }
    gw_send(req, NULL, 0, GW_SEND_ERROR);
}

/* A stream the backend refused (GOAWAY, REFUSED_STREAM) or a session that could not be made:
 * sent again elsewhere while nothing of it has been used. */
static bool retry(h2_stream_t *st, bool other_target)
{
    if (st->head_done || st->body_reading || st->finished || st->retries >= MAX_RETRIES) return false;
    if (other_target) {
        if (++st->tried >= st->list->count) return false;
        gw_pool_report(st->pool, false);
        const gw_proxy_route_t *pr = &route_of(st)->proxy;
        st->target = gw_balance_pick(st->req, st->list, st->target, pr->health_check, pr->max_fails);
        st->pool = gw_pool_get(st->req->worker, st->target);
        if (!st->pool) return false;
    } else {
        st->retries++;
    }
    detach(st, false);
    st->id = 0;
    st->nva = NULL; /* rebuilt for the new target */
    attach(st);
    return true;
}

/* ---- the response towards the client ---- */

/* Hands buffered body bytes to the client side until it must wait. */
static void deliver(h2_stream_t *st)
{
    while (!st->finished && !st->waiting && st->head_done) {
        if (!st->len && !st->ended) return;
        gw_slice_t piece = {(const char *)st->buf, st->len};
        bool final = st->ended;
        st->held = st->len;
        if (final) {
            st->finished = true;
            gw_pool_report(st->pool, true);
            detach(st, !st->req_sent); /* a request body the backend no longer wants is cut */
        }
        st->proceeded = false;
        st->sending = true;
        gw_send(st->req, &piece, piece.len ? 1 : 0, final ? GW_SEND_FINAL : GW_SEND_IN_PROGRESS);
        if (final) return; /* the request may be gone now */
        st->sending = false;
        if (!st->proceeded) {
            st->waiting = true; /* back-pressure: the backend's window stays shut */
            return;
        }
    }
}

static void st_proceed(gw_generator_t *g, gw_req_t *req)
{
    (void)req;
    h2_stream_t *st = gw_container_of(g, h2_stream_t, gen);
    size_t took = st->held;
    memmove(st->buf, st->buf + took, st->len - took);
    st->len -= took;
    st->held = 0;
    h2_session_t *s = st->s;
    if (s && s->ng && took) {
        nghttp2_session_consume(s->ng, st->id, took); /* the window opens as the client reads */
        st->unconsumed -= took;
    }
    if (st->sending) {
        st->proceeded = true;
        return;
    }
    st->waiting = false;
    if (s) s->busy++;
    deliver(st);
    if (s) {
        if (!s->dead) session_flush(s);
        session_leave(s);
    }
}

static void st_stop(gw_generator_t *g, gw_req_t *req)
{
    (void)req;
    h2_stream_t *st = gw_container_of(g, h2_stream_t, gen);
    st->finished = true; /* the client went away: the backend stream is cancelled */
    detach(st, true);
}

static void st_cleanup(void *arg)
{
    h2_stream_t *st = arg;
    st->finished = true;
    detach(st, true);
    free(st->buf);
    st->buf = NULL;
}

static void on_read_timeout(gw_timer_t *t)
{
    fail_stream(gw_container_of(t, h2_stream_t, timer), gw_err_io_timeout);
}

static void touch(h2_stream_t *st)
{
    gw_timer_set(st->req->worker->loop, &st->timer, route_of(st)->proxy.read_timeout_ms);
}

/* ---- the response head and trailers ---- */

static bool in_list(const gw_headers_t *list, gw_slice_t name)
{
    for (uint32_t i = 0; i < list->count; i++)
        if (list->items[i].name.len == name.len &&
            strncasecmp(list->items[i].name.base, name.base, name.len) == 0)
            return true;
    return false;
}

/* Connection-level fields never appear in HTTP/2; the backend's Server is replaced by ours. */
static bool dropped(const h2_stream_t *st, gw_slice_t name)
{
    const gw_proxy_route_t *pr = &route_of(st)->proxy;
    return gw_slice_ieq(name, "server") || in_list(&pr->remove_response, name) ||
           in_list(&pr->set_response, name);
}

static bool grpc_status_field(gw_slice_t name)
{
    return gw_slice_ieq(name, "grpc-status") || gw_slice_ieq(name, "grpc-message") ||
           gw_slice_ieq(name, "grpc-status-details-bin");
}

/* A head that ends the stream (gRPC's "trailers-only" answer): its status fields become trailers,
 * so the client still reads them at the end of the stream. */
static void status_to_trailers(gw_req_t *req)
{
    gw_headers_t *h = &req->res.headers;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        if (grpc_status_field(h->items[i].name))
            gw_headers_add(&req->arena, &req->res.trailers, h->items[i].name, h->items[i].value);
        else
            h->items[kept++] = h->items[i];
    }
    h->count = kept;
}

static int64_t parse_length(const uint8_t *v, size_t n)
{
    int64_t x = 0;
    if (!n || n > 18) return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static void add_field(h2_stream_t *st, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    gw_req_t *req = st->req;
    gw_slice_t n = {(const char *)name, nlen};
    if (!st->head_done && gw_slice_ieq(n, "content-length")) {
        st->content_length = parse_length(value, vlen);
        return;
    }
    if (!st->head_done && dropped(st, n)) return;
    char *nc = gw_arena_strndup(&req->arena, (const char *)name, nlen);
    char *vc = gw_arena_strndup(&req->arena, (const char *)value, vlen);
    if (!nc || !vc) return;
    gw_slice_t ns = {nc, nlen}, vs = {vc, vlen};
    if (st->head_done)
        gw_headers_add(&req->arena, &req->res.trailers, ns, vs);
    else
        gw_res_add_header(req, ns, vs);
}

static void start_response(h2_stream_t *st, bool end_stream)
{
    gw_req_t *req = st->req;
    const gw_proxy_route_t *pr = &route_of(st)->proxy;
    st->head_done = true;
    req->upstream = st->target->url; /* for the access log */
    req->upstream_ms = gw_loop_now(req->worker->loop) - req->start_ms;
    if (st->block_status >= 400 && pr->intercept_errors) {
        st->finished = true; /* proxyInterceptErrors: our own page instead of the backend's */
        gw_pool_report(st->pool, true);
        detach(st, true);
        gw_req_fail(req, st->block_status);
        return;
    }
    for (uint32_t i = 0; i < pr->set_response.count; i++)
        gw_res_add_header(req, pr->set_response.items[i].name, pr->set_response.items[i].value);
    req->res.status = st->block_status;
    req->res.content_length = st->content_length;
    if (end_stream && req->method_id != GW_M_HEAD) {
        status_to_trailers(req);
        if (!req->res.trailers.count) req->res.content_length = 0;
    }
    st->ended = end_stream;
    gw_start_response(req, &st->gen);
    deliver(st);
}

/* ---- nghttp2 callbacks ---- */

static h2_stream_t *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    (void)u;
    h2_stream_t *st = stream_of(ng, f->hd.stream_id);
    if (st && !st->head_done) st->block_status = 0;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
    (void)flags;
    (void)u;
    h2_stream_t *st = stream_of(ng, f->hd.stream_id);
    if (!st || st->finished) return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        st->block_status = valuelen == 3 ? (int)parse_length(value, 3) : 0;
        return 0;
    }
    if (name[0] == ':' || (!st->head_done && st->block_status < 200)) return 0; /* 1xx: not forwarded */
    add_field(st, name, namelen, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    h2_session_t *s = u;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        s->goaway = true; /* in-flight streams finish; new ones go to another session */
        return 0;
    }
    if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
        s->ping_sent = false;
        return 0;
    }
    h2_stream_t *st = f->hd.stream_id ? stream_of(ng, f->hd.stream_id) : NULL;
    if (!st || st->finished) return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && !st->head_done) {
        if (st->block_status >= 200)
            start_response(st, end);
        else if (end || st->block_status < 100)
            fail_stream(st, gw_err_bad_response);
        return 0;
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && end) {
        st->ended = true;
        if (!st->waiting && !st->sending) deliver(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                         void *u)
{
    (void)flags;
    h2_stream_t *st = stream_of(ng, id);
    if (!st || st->finished || !st->head_done) {
        nghttp2_session_consume(ng, id, len); /* nobody reads it: the windows stay open */
        return 0;
    }
    h2_session_t *s = u;
    if (!st->buf) {
        bool short_body = st->content_length > 0 && (uint64_t)st->content_length < s->window;
        st->cap = short_body ? (size_t)st->content_length : s->window;
        st->buf = malloc(st->cap);
    }
    if (!st->buf || st->len + len > st->cap) {
        nghttp2_session_consume(ng, id, len);
        fail_stream(st, st->buf ? gw_err_bad_response : gw_err_no_memory);
        return 0;
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    st->unconsumed += len;
    touch(st);
    if (!st->waiting && !st->sending) deliver(st);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *u)
{
    (void)u;
    h2_stream_t *st = stream_of(ng, id);
    if (!st || st->finished) return 0;
    if (st->ended) { /* the whole response is here; the client side still takes it */
        detach(st, false);
        return 0;
    }
    if (error_code == NGHTTP2_REFUSED_STREAM && retry(st, false)) return 0;
    fail_stream(st, gw_err_backend_closed); /* reset or cut short: never a clean end */
    return 0;
}

/* ---- the request towards the backend ---- */

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *u)
{
    (void)ng;
    (void)id;
    (void)u;
    h2_stream_t *st = src->ptr;
    if (!st->piece_active) return NGHTTP2_ERR_DEFERRED;
    size_t left = st->piece.len - st->piece_off;
    size_t n = left < length ? left : length;
    memcpy(buf, st->piece.base + st->piece_off, n);
    st->piece_off += n;
    if (st->piece_off < st->piece.len) return (ssize_t)n;
    st->piece_active = false;
    touch(st); /* the read timeout runs from the backend's last sign of life or ours */
    if (st->piece_last) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        st->req_sent = true;
    } else
        st->body_proceed = true; /* framed: the client side may read more, once nghttp2 returned */
    return (ssize_t)n;
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t state)
{
    h2_stream_t *st = ctx;
    if (state == GW_BODY_ABORT) {
        fail_stream(st, req->body_error ? req->body_error : gw_err_client_closed);
        return;
    }
    if (!st->s || st->finished) return;
    st->piece = data;
    st->piece_off = 0;
    st->piece_last = state == GW_BODY_END;
    st->piece_active = true;
    h2_session_t *s = st->s;
    nghttp2_session_resume_data(s->ng, st->id);
    session_flush(s);
}

/* Lower-cases a header name in place. */
static void lower(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z') p[i] = (char)(p[i] + 32);
}

static nghttp2_nv nv(const char *n, size_t nl, const char *v, size_t vl)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, nl, vl, NGHTTP2_NV_FLAG_NONE};
}

/* Does the client accept trailers (TE: trailers, which HTTP/2 lets through and gRPC needs)? */
static bool te_trailers(const gw_req_t *req)
{
    const gw_header_t *te = gw_req_header(req, "te");
    return te && memmem(te->value.base, te->value.len, "trailers", 8);
}

/* :path under the target's base path. */
static gw_slice_t backend_path(const h2_stream_t *st)
{
    const gw_req_t *req = st->req;
    size_t bl = strlen(st->target->base_path), n = bl + req->path.len + 1 + req->query.len;
    char *p = gw_arena_alloc(&st->req->arena, n);
    if (!p) return (gw_slice_t){NULL, 0};
    char *e = gw_put(p, st->target->base_path, bl);
    e = gw_put(e, req->path.base, req->path.len);
    if (req->has_query) {
        e = gw_put(e, "?", 1);
        e = gw_put(e, req->query.base, req->query.len);
    }
    return (gw_slice_t){p, (size_t)(e - p)};
}

/* The client's headers as the HTTP/1.1 engine filters them (hop-by-hop, route rules,
 * X-Forwarded-*), split into name/value pairs after the pseudo-headers. */
static bool build_request(h2_stream_t *st)
{
    gw_req_t *req = st->req;
    const gw_proxy_route_t *pr = &route_of(st)->proxy;
    const gw_target_t *t = st->target;
    char *text = gw_arena_alloc(&req->arena, gw_exchange_head_capacity(req, 64));
    gw_slice_t path = backend_path(st);
    if (!text || !path.base) return false;
    char *end = gw_exchange_put_client_headers(text, req, pr);
    if (pr->x_forwarded) end = gw_exchange_put_forwarded(end, req);
    size_t lines = 0;
    for (const char *p = text; p < end; p++)
        lines += *p == '\n';
    nghttp2_nv *v = st->nva = gw_arena_alloc(&req->arena, (lines + 7) * sizeof(*v));
    char *cl = gw_arena_alloc(&req->arena, 24);
    if (!v || !cl) return false;
    size_t n = 0;
    v[n++] = nv(":method", 7, req->method.base, req->method.len);
    v[n++] = nv(":scheme", 7, t->tls ? "https" : "http", t->tls ? 5 : 4);
    bool client_host = pr->keep_host && req->authority.len;
    v[n++] = client_host ? nv(":authority", 10, req->authority.base, req->authority.len)
                         : nv(":authority", 10, t->authority, strlen(t->authority));
    v[n++] = nv(":path", 5, path.base, path.len);
    for (char *p = text; p < end;) {
        char *eol = memchr(p, '\r', (size_t)(end - p));
        char *colon = memchr(p, ':', (size_t)(eol - p));
        lower(p, (size_t)(colon - p));
        v[n++] = nv(p, (size_t)(colon - p), colon + 2, (size_t)(eol - colon - 2));
        p = eol + 2;
    }
    if (te_trailers(req)) v[n++] = nv("te", 2, "trailers", 8);
    if (req->body_kind == GW_BODY_LENGTH) {
        int k = snprintf(cl, 24, "%llu", (unsigned long long)req->content_length);
        v[n++] = nv("content-length", 14, cl, (size_t)k);
    }
    st->nnv = n;
    return true;
}

/* Opens the stream on its (connected) session. */
static void submit(h2_stream_t *st)
{
    h2_session_t *s = st->s;
    gw_req_t *req = st->req;
    bool body = req->body_kind != GW_BODY_NONE;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    if (!st->nva && !build_request(st)) {
        fail_stream(st, gw_err_no_memory);
        return;
    }
    int32_t id = nghttp2_submit_request(s->ng, NULL, st->nva, st->nnv, body ? &dp : NULL, st);
    if (id < 0) {
        fail_stream(st, gw_err_internal);
        return;
    }
    st->id = id;
    st->req_sent = !body;
    touch(st);
    if (body && !st->body_reading) {
        st->body_reading = true;
        gw_req_read_body(req, on_body, st);
    }
}

/* ---- sessions: I/O ---- */

/* Writes what is gathered; false when the connection failed (the session is closed). */
static bool write_out(h2_session_t *s)
{
    while (s->olen) {
        struct iovec iov = {s->obuf, s->olen};
        ssize_t w = gw_upconn_writev(s->conn, &iov, 1);
        if (w == -EAGAIN) return true;
        if (w <= 0) {
            session_close(s, gw_err_backend_closed);
            return false;
        }
        memmove(s->obuf, s->obuf + w, s->olen - (size_t)w);
        s->olen -= (size_t)w;
    }
    return true;
}

static bool gather(h2_session_t *s, const uint8_t *data, size_t n)
{
    if (s->olen + n > s->ocap) {
        size_t cap = (s->olen + n) * 2;
        uint8_t *nb = realloc(s->obuf, cap);
        if (!nb) return false;
        s->obuf = nb;
        s->ocap = cap;
    }
    memcpy(s->obuf + s->olen, data, n);
    s->olen += n;
    return true;
}

/* Lets streams whose body piece went into frames ask the client side for the next one. */
static void body_proceeds(h2_session_t *s)
{
    for (h2_stream_t *st = s->streams; st; st = st->next)
        if (st->body_proceed) {
            st->body_proceed = false;
            s->again = true;
            gw_req_body_proceed(st->req); /* may deliver the next piece at once: on_body */
            return;                       /* the list may have changed: the next pass looks again */
        }
}

/* Gathers frames up to a batch: 1 when the batch is full (more may follow), 0 when nghttp2 has
 * nothing more to send now, -1 when the session failed. */
static int gather_frames(h2_session_t *s)
{
    while (s->olen < WRITE_BATCH) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s->ng, &data);
        if (n < 0 || (n > 0 && !gather(s, data, (size_t)n))) {
            session_close(s, gw_err_internal);
            return -1;
        }
        if (n == 0) return 0;
    }
    return 1;
}

/* One pass: frames gathered and written; false when writing must wait or the session failed. */
static bool flush_pass(h2_session_t *s)
{
    int more;
    do {
        more = gather_frames(s);
        if (more < 0 || !write_out(s) || s->olen) return false;
    } while (more);
    body_proceeds(s);
    return true;
}

static void session_flush(h2_session_t *s)
{
    if (!s->conn || s->dead || s->in_recv || s->flushing) {
        s->again = true;
        return;
    }
    s->busy++;
    s->flushing = true;
    do {
        s->again = false;
        if (!flush_pass(s)) break;
    } while (s->again);
    s->flushing = false;
    if (!s->dead) {
        gw_io_modify(&s->conn->io, EPOLLIN | EPOLLRDHUP | (s->olen ? EPOLLOUT : 0));
        if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng) && !s->olen)
            session_close(s, NULL);
    }
    session_leave(s);
}

static void session_read(h2_session_t *s)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t n = gw_upconn_read(s->conn, buf, sizeof(buf));
        if (n == -EAGAIN) return;
        if (n <= 0) {
            session_close(s, gw_err_backend_closed);
            return;
        }
        s->in_recv = true;
        ssize_t rv = nghttp2_session_mem_recv(s->ng, buf, (size_t)n);
        s->in_recv = false;
        if (rv < 0 || s->dead) {
            if (!s->dead) session_close(s, gw_err_bad_response);
            return;
        }
    }
}

static void on_conn_event(gw_upconn_t *c, uint32_t events)
{
    h2_session_t *s = c->owner;
    s->busy++;
    if ((events & EPOLLOUT) && !write_out(s)) {
        session_leave(s);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) session_read(s);
    if (!s->dead) session_flush(s);
    session_leave(s);
}

/* The idle timer: a session without streams is closed after proxyKeepaliveTimeout, or as soon as
 * a PING goes unanswered for proxyHttp2PingInterval (no request is put on a dead backend). */
static void on_conn_timeout(gw_upconn_t *c)
{
    h2_session_t *s = c->owner;
    if (s->num_streams) return;
    const gw_pool_config_t *pc = &s->worker->cfg->pool;
    if (gw_loop_now(s->worker->loop) - s->idle_since >= pc->idle_timeout_ms) {
        session_close(s, NULL);
        return;
    }
    if (s->ping_sent) {
        gw_log_error("warn", "HTTP/2 backend did not answer a PING (%s)", gw_pool_target(s->pool)->url);
        session_close(s, gw_err_io_timeout);
        return;
    }
    s->ping_sent = nghttp2_submit_ping(s->ng, NGHTTP2_FLAG_NONE, NULL) == 0;
    arm_idle_timer(s);
    session_flush(s);
}

/* ---- sessions: life ---- */

/* Takes the session off its pool's list: no new stream will find it. */
static void unlink_session(h2_session_t *s)
{
    if (!s->pprev) return;
    if (s->next) s->next->pprev = s->pprev;
    *s->pprev = s->next;
    s->pprev = NULL;
}

/* Closes the session: streams still waiting for their response fail (`err`), the others already
 * have everything they need. */
static void session_close(h2_session_t *s, const char *err)
{
    if (s->dead) return;
    s->busy++;
    s->dead = true;
    unlink_session(s);
    while (s->streams) {
        h2_stream_t *st = s->streams;
        bool sent = st->id > 0; /* a sent request may have been acted on: never sent twice */
        detach(st, false);
        if (sent || !retry(st, false)) fail_stream(st, err ? err : gw_err_backend_closed);
    }
    if (s->conn) {
        if (!err && s->ng && !s->in_recv) { /* a graceful close: GOAWAY, best effort */
            nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
            const uint8_t *data;
            ssize_t n;
            while ((n = nghttp2_session_mem_send(s->ng, &data)) > 0 && gather(s, data, (size_t)n)) {
            }
            struct iovec iov = {s->obuf, s->olen};
            if (s->olen) gw_upconn_writev(s->conn, &iov, 1);
        }
        gw_pool_release(s->conn, false);
        s->conn = NULL;
    } else {
        gw_pool_cancel(&s->waiter);
    }
    session_leave(s);
}

static bool alpn_is_h2(const gw_upconn_t *c)
{
    if (!c->ssl) return true; /* h2c: prior knowledge */
    const uint8_t *p;
    unsigned len;
    SSL_get0_alpn_selected(c->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

static bool session_start(h2_session_t *s)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option *opt;
    int rv = nghttp2_option_new(&opt);
    if (rv == 0) {
        nghttp2_option_set_no_auto_window_update(opt, 1); /* windows open as the client reads */
        rv = nghttp2_session_client_new2(&s->ng, cb, s, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    const gw_pool_config_t *pc = &s->worker->cfg->pool;
    s->window = pc->h2_window;
    /* the connection window covers every stream's at once: one slow client never stalls the others */
    uint64_t conn_window = (uint64_t)pc->h2_window * pc->h2_max_streams;
    if (conn_window > INT32_MAX) conn_window = INT32_MAX;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->window}};
    return nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 2) == 0 &&
           nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window) == 0;
}

/* The connection (its handshake chose http/1.1) goes back to the pool for the HTTP/1.1 engine,
 * which then takes every stream queued here. */
static void session_hand_over(h2_session_t *s, gw_upconn_t *c)
{
    s->dead = true;
    unlink_session(s);
    gw_pool_release(c, true);
    while (s->streams)
        hand_to_http1(s->streams);
}

static void on_connected(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err)
{
    h2_session_t *s = w->data;
    s->busy++;
    if (err) {
        s->dead = true; /* every queued stream tries another target, or fails */
        unlink_session(s);
        while (s->streams) {
            h2_stream_t *st = s->streams;
            detach(st, false);
            if (!retry(st, true)) fail_stream(st, err);
        }
        session_leave(s);
        return;
    }
    if (!alpn_is_h2(c) && !gw_pool_speaks_h2(s->pool)) { /* protocol: auto chose http/1.1 */
        session_hand_over(s, c);
        session_leave(s);
        return;
    }
    s->conn = c;
    c->owner = s;
    c->on_event = on_conn_event;
    c->on_timeout = on_conn_timeout;
    if (!alpn_is_h2(c) || !session_start(s)) {
        session_close(s, alpn_is_h2(c) ? gw_err_no_memory : gw_err_bad_response);
        session_leave(s);
        return;
    }
    for (h2_stream_t *st = s->streams, *next; st; st = next) {
        next = st->next;
        submit(st);
    }
    session_flush(s);
    session_leave(s);
}

/* Room for another stream: the peer's limit (100 until its SETTINGS say otherwise), ours. */
static bool has_room(h2_session_t *s)
{
    uint32_t limit = s->worker->cfg->pool.h2_max_streams;
    if (s->ng) {
        uint32_t peer = nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (peer < limit) limit = peer;
    }
    return !s->goaway && !s->dead && s->num_streams < limit;
}

static h2_session_t *session_new(gw_pool_t *pool, gw_worker_t *worker)
{
    h2_session_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->pool = pool;
    s->worker = worker;
    h2_session_t **head = sessions_of(pool);
    s->next = *head;
    if (*head) (*head)->pprev = &s->next;
    s->pprev = head;
    *head = s;
    return s;
}

/* protocol: auto and the backend chose HTTP/1.1: the request goes to the HTTP/1.1 engine. */
static void hand_to_http1(h2_stream_t *st)
{
    st->finished = true; /* nothing of ours runs for this request any more */
    detach(st, false);
    if (!st->fallback(st->req, st->pool)) gw_req_fail(st->req, 500);
}

/* Puts the stream on a session of its pool with room, or on a new one. */
static void attach(h2_stream_t *st)
{
    if (!gw_pool_speaks_h2(st->pool)) {
        hand_to_http1(st);
        return;
    }
    h2_session_t *s = *sessions_of(st->pool);
    while (s && !has_room(s))
        s = s->next;
    bool fresh = !s;
    if (fresh && !(s = session_new(st->pool, st->req->worker))) {
        fail_stream(st, gw_err_no_memory);
        return;
    }
    st->s = s;
    st->next = s->streams;
    if (s->streams) s->streams->pprev = &st->next;
    st->pprev = &s->streams;
    s->streams = st;
    s->num_streams++;
    if (s->conn) gw_timer_cancel(&s->conn->timer); /* no longer idle */
    if (fresh) {
        s->busy++;
        s->waiter.cb = on_connected;
        s->waiter.data = s;
        s->waiter.fresh = true;
        gw_pool_acquire(st->pool, &s->waiter);
        session_leave(s);
        return;
    }
    if (s->ng) {
        s->busy++;
        submit(st);
        if (!s->dead) session_flush(s);
        session_leave(s);
    }
}

bool gw_h2client_start(gw_req_t *req, const gw_target_list_t *list, gw_h2client_fallback_t fallback)
{
    h2_stream_t *st = gw_arena_alloc(&req->arena, sizeof(*st));
    if (!st) return false;
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->gen = (gw_generator_t){st_proceed, st_stop};
    st->list = list;
    st->fallback = fallback;
    st->content_length = -1;
    const gw_proxy_route_t *pr = &req->route->proxy;
    st->target = gw_balance_pick(req, list, NULL, pr->health_check, pr->max_fails);
    st->pool = gw_pool_get(req->worker, st->target);
    gw_timer_init(&st->timer, on_read_timeout);
    if (!st->pool || !gw_req_defer(req, st_cleanup, st)) return false;
    attach(st);
    return true;
}

void gw_h2client_pool_free(void *sessions)
{
    while (sessions) {
        h2_session_t *s = sessions;
        sessions = s->next;
        s->busy++;
        session_close(s, gw_err_backend_closed);
        session_leave(s);
    }
}
