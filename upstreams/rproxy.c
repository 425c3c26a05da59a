/*
 * rproxy: the reverse proxy handler (`proxyTo`, `secureProxyTo`). It borrows a connection from the
 * target's pool, writes the request head and streams the request body (chunked when its length is
 * unknown), parses the response head with the same parser the server uses, and streams the body
 * back with back-pressure: the backend is read again only once the client side asked for more.
 * A backend that dies mid-response becomes an abort, never a clean end.
 */
#include "rproxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "balancer.h"
#include "config.h"
#include "errors.h"
#include "http1_parser.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

#define MAX_RESPONSE_HEADERS 128
#define MAX_RETRIES 2

typedef struct rproxy {
    gw_generator_t gen;
    gw_req_t *req;
    const gw_target_t *target;
    gw_pool_t *pool;
    gw_pool_waiter_t waiter;
    gw_upconn_t *conn;
    int retries;
    const gw_target_list_t *list;
    uint32_t tried; /* connect failures so far, for failing over to another target */
    /* request to the backend */
    char *head;
    size_t head_len, head_off;
    bool body_chunked, body_reading, body_sent;
    gw_slice_t piece;
    size_t piece_off;
    bool piece_last;
    char chunk_hdr[24];
    struct iovec out[4];
    int nout;
    /* response from the backend */
    char *rbuf;
    size_t rlen, rcap;
    bool head_parsed, any_byte, res_done, keep_alive;
    gw_h1_framing_t fr;
    gw_chunked_decoder_t dec;
    uint64_t body_left;
    size_t consumed; /* bytes of rbuf the client side still holds */
    bool sending, proceeded, waiting_proceed;
} rproxy_t;

static void rp_connect(rproxy_t *rp);
static void rp_read(rproxy_t *rp);
static void rp_write(rproxy_t *rp);

static const gw_route_t *route_of(const rproxy_t *rp)
{
    return rp->req->route;
}

/* ---- ending ---- */

static void drop_conn(rproxy_t *rp, bool reusable)
{
    if (!rp->conn) return;
    gw_upconn_t *c = rp->conn;
    rp->conn = NULL;
    gw_pool_release(c, reusable);
}

/* Fails the exchange: an error page if nothing was sent yet, an abort otherwise. */
static void rp_fail(rproxy_t *rp, const char *err)
{
    gw_pool_report(rp->pool, false);
    drop_conn(rp, false);
    if (rp->res_done) return;
    rp->res_done = true;
    gw_log_error("error", "%s (%s)", err, rp->target->url);
    if (!rp->req->res_started) {
        gw_send_error(rp->req, gw_error_status(err));
        return;
    }
    gw_send(rp->req, NULL, 0, GW_SEND_ERROR);
}

static void rp_cleanup(void *arg)
{
    rproxy_t *rp = arg;
    gw_pool_cancel(&rp->waiter);
    drop_conn(rp, false);
    gw_chunk_put(&rp->req->worker->io_pool, rp->rbuf);
    rp->rbuf = NULL;
}

static void rp_stop(gw_generator_t *g, gw_req_t *req)
{
    rproxy_t *rp = (rproxy_t *)g;
    rp->res_done = true;
    gw_pool_cancel(&rp->waiter);
    drop_conn(rp, false); /* the client went away: the backend exchange is cut short */
}

/* A reused connection that fails before any response byte may just have gone stale. */
static bool try_again(rproxy_t *rp)
{
    if (!rp->conn || !rp->conn->reused || rp->any_byte || rp->body_reading || rp->retries >= MAX_RETRIES)
        return false;
    drop_conn(rp, false);
    rp->retries++;
    rp->head_off = 0;
    rp_connect(rp);
    return true;
}

/* ---- the request head ---- */

static bool hop_by_hop(gw_slice_t name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                        "transfer-encoding", "upgrade", "host", "content-length",
                                        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gw_slice_ieq(name, names[i])) return true;
    return false;
}

/* Is `name` listed in the request's Connection header (then it is hop-by-hop too)? */
static bool named_in_connection(const gw_req_t *req, gw_slice_t name)
{
    const gw_header_t *c = gw_req_header(req, "connection");
    if (!c) return false;
    const char *p = c->value.base, *end = p + c->value.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t') p++;
        if ((size_t)(p - s) == name.len && strncasecmp(s, name.base, name.len) == 0) return true;
    }
    return false;
}

static bool in_list(const gw_headers_t *list, gw_slice_t name)
{
    for (uint32_t i = 0; i < list->count; i++)
        if (list->items[i].name.len == name.len && strncasecmp(list->items[i].name.base, name.base, name.len) == 0)
            return true;
    return false;
}

static size_t head_capacity(const gw_req_t *req, const gw_target_t *t)
{
    size_t n = req->method.len + strlen(t->base_path) + req->path.len + req->query.len + strlen(t->authority) + 256;
    for (size_t i = 0; i < req->num_headers; i++) n += req->headers[i].name.len + req->headers[i].value.len + 4;
    const gw_headers_t *set = &req->route->proxy.set_request;
    for (uint32_t i = 0; i < set->count; i++) n += set->items[i].name.len + set->items[i].value.len + 4;
    return n + 2 * req->authority.len;
}

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_forwarded(char *p, const gw_req_t *req)
{
    char peer[64];
    gw_conn_info_t client = *req->conn;
    if (!IN6_IS_ADDR_UNSPECIFIED(&req->client_ip)) client.peer.sin6_addr = req->client_ip; /* from a trusted proxy */
    gw_conn_peer_text(&client, peer, sizeof(peer));
    p += sprintf(p, "X-Forwarded-For: %s\r\nX-Real-IP: %s\r\nX-Forwarded-Proto: %s\r\n", peer, peer,
                 req->conn->tls ? "https" : "http");
    if (req->authority.len) {
        p = put(p, "X-Forwarded-Host: ", 18);
        p = put(p, req->authority.base, req->authority.len);
        p = put(p, "\r\n", 2);
    }
    return p;
}

static char *put_framing(char *p, rproxy_t *rp)
{
    const gw_req_t *req = rp->req;
    if (req->body_kind == GW_BODY_LENGTH)
        p += sprintf(p, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
    else if (req->body_kind == GW_BODY_CHUNKED) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28); /* length unknown: stream it chunked */
        rp->body_chunked = true;
    }
    return p;
}

static bool build_head(rproxy_t *rp)
{
    gw_req_t *req = rp->req;
    const gw_target_t *t = rp->target;
    char *p = rp->head = gw_arena_alloc(&req->arena, head_capacity(req, t));
    if (!p) return false;
    p = put(p, req->method.base, req->method.len);
    p = put(p, " ", 1);
    p = put(p, t->base_path, strlen(t->base_path));
    p = put(p, req->path.base, req->path.len);
    if (req->has_query) {
        p = put(p, "?", 1);
        p = put(p, req->query.base, req->query.len);
    }
    const gw_proxy_route_t *pr = &route_of(rp)->proxy;
    p = put(p, " HTTP/1.1\r\nHost: ", 17);
    if (pr->keep_host && req->authority.len)
        p = put(p, req->authority.base, req->authority.len);
    else
        p = put(p, t->authority, strlen(t->authority));
    p = put(p, "\r\n", 2);
    for (size_t i = 0; i < req->num_headers; i++) {
        const gw_header_t *h = &req->headers[i];
        if (hop_by_hop(h->name) || named_in_connection(req, h->name) || in_list(&pr->remove_request, h->name) ||
            in_list(&pr->set_request, h->name) || (pr->x_forwarded && gw_slice_ieq(h->name, "x-real-ip")))
            continue;
        p = put(p, h->name.base, h->name.len);
        p = put(p, ": ", 2);
        p = put(p, h->value.base, h->value.len);
        p = put(p, "\r\n", 2);
    }
    for (uint32_t i = 0; i < pr->set_request.count; i++) {
        const gw_header_t *h = &pr->set_request.items[i];
        p = put(p, h->name.base, h->name.len);
        p = put(p, ": ", 2);
        p = put(p, h->value.base, h->value.len);
        p = put(p, "\r\n", 2);
    }
    if (route_of(rp)->proxy.x_forwarded) p = put_forwarded(p, req);
    p = put_framing(p, rp);
    p = put(p, "\r\n", 2);
    rp->head_len = (size_t)(p - rp->head);
    return true;
}

/* ---- writing the request ---- */

static void arm(rproxy_t *rp)
{
    bool want_write = rp->head_off < rp->head_len || (rp->piece.len && rp->nout);
    uint32_t ev = (rp->waiting_proceed ? 0 : EPOLLIN | EPOLLRDHUP) | (want_write ? EPOLLOUT : 0);
    gw_io_modify(&rp->conn->io, ev);
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st);

/* Queues the current body piece (with chunk framing) into rp->out. */
static void frame_piece(rproxy_t *rp)
{
    rp->nout = 0;
    if (rp->body_chunked && rp->piece.len) {
        int n = snprintf(rp->chunk_hdr, sizeof(rp->chunk_hdr), "%zx\r\n", rp->piece.len);
        rp->out[rp->nout++] = (struct iovec){rp->chunk_hdr, (size_t)n};
    }
    if (rp->piece.len) rp->out[rp->nout++] = (struct iovec){(void *)rp->piece.base, rp->piece.len};
    if (rp->body_chunked && rp->piece.len) rp->out[rp->nout++] = (struct iovec){"\r\n", 2};
    if (rp->body_chunked && rp->piece_last) rp->out[rp->nout++] = (struct iovec){"0\r\n\r\n", 5};
}

static ssize_t write_iov(rproxy_t *rp, struct iovec *iov, int n)
{
    ssize_t w;
    do
        w = writev(rp->conn->io.fd, iov, n);
    while (w < 0 && errno == EINTR);
    return w;
}

static void advance(struct iovec *iov, int *n, size_t w)
{
    int i = 0;
    while (i < *n && w >= iov[i].iov_len) w -= iov[i++].iov_len;
    memmove(iov, iov + i, (size_t)(*n - i) * sizeof(*iov));
    *n -= i;
    if (*n) {
        iov[0].iov_base = (char *)iov[0].iov_base + w;
        iov[0].iov_len -= w;
    }
}

/* Writes what is pending; returns false when the exchange ended (failed or retried). */
static bool flush_out(rproxy_t *rp)
{
    while (rp->head_off < rp->head_len) {
        struct iovec iov = {rp->head + rp->head_off, rp->head_len - rp->head_off};
        ssize_t w = write_iov(rp, &iov, 1);
        if (w < 0 && errno == EAGAIN) return true;
        if (w < 0) {
            if (!try_again(rp)) rp_fail(rp, gw_err_backend_closed);
            return false;
        }
        rp->head_off += (size_t)w;
    }
    while (rp->nout) {
        ssize_t w = write_iov(rp, rp->out, rp->nout);
        if (w < 0 && errno == EAGAIN) return true;
        if (w < 0) {
            rp_fail(rp, gw_err_backend_closed);
            return false;
        }
        advance(rp->out, &rp->nout, (size_t)w);
    }
    return true;
}

static void rp_write(rproxy_t *rp)
{
    bool had_piece = rp->nout > 0;
    if (!flush_out(rp) || !rp->conn) return;
    if (rp->head_off < rp->head_len || rp->nout) {
        arm(rp);
        return;
    }
    if (rp->req->body_kind != GW_BODY_NONE && !rp->body_reading && !rp->body_sent) {
        rp->body_reading = true;
        gw_req_read_body(rp->req, on_body, rp);
        return;
    }
    if (had_piece) {
        rp->piece = (gw_slice_t){NULL, 0};
        if (rp->piece_last)
            rp->body_sent = true;
        else
            gw_req_body_proceed(rp->req); /* written: the client side may read more */
    }
    if (rp->conn) arm(rp);
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    rproxy_t *rp = ctx;
    if (st == GW_BODY_ABORT) {
        rp_fail(rp, gw_err_client_closed);
        return;
    }
    if (!rp->conn) return;
    rp->piece = data;
    rp->piece_last = st == GW_BODY_END;
    frame_piece(rp);
    if (!rp->nout) { /* an empty last piece of a sized body */
        rp->body_sent = rp->piece_last;
        if (!rp->piece_last) gw_req_body_proceed(req);
        return;
    }
    rp_write(rp);
}

/* ---- the response ---- */

static bool drop_response_header(gw_slice_t name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                        "transfer-encoding", "upgrade", "content-length"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gw_slice_ieq(name, names[i])) return true;
    return false;
}

/* Copies the backend's headers into the arena, names lower-cased (HTTP/2 needs them so). */
static bool copy_headers(rproxy_t *rp, const gw_h1_response_head_t *h)
{
    gw_req_t *req = rp->req;
    const gw_proxy_route_t *pr = &route_of(rp)->proxy;
    for (size_t i = 0; i < h->num_headers; i++) {
        gw_slice_t name = h->headers[i].name;
        if (drop_response_header(name) || in_list(&pr->remove_response, name) || in_list(&pr->set_response, name))
            continue;
        char *n = gw_arena_strndup(&req->arena, h->headers[i].name.base, h->headers[i].name.len);
        char *v = gw_arena_strndup(&req->arena, h->headers[i].value.base, h->headers[i].value.len);
        if (!n || !v) return false;
        for (char *p = n; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        if (!gw_res_add_header(req, (gw_slice_t){n, h->headers[i].name.len}, (gw_slice_t){v, h->headers[i].value.len}))
            return false;
    }
    for (uint32_t i = 0; i < pr->set_response.count; i++)
        if (!gw_res_add_header(req, pr->set_response.items[i].name, pr->set_response.items[i].value)) return false;
    return true;
}

static void shift_rbuf(rproxy_t *rp, size_t used)
{
    memmove(rp->rbuf, rp->rbuf + used, rp->rlen - used);
    rp->rlen -= used;
}

/* Parses the response head; returns 1 when done, 0 for more bytes, -1 when the exchange ended. */
static int parse_head(rproxy_t *rp)
{
    gw_header_t headers[MAX_RESPONSE_HEADERS];
    gw_h1_response_head_t h = {.headers = headers};
    gw_h1_limits_t lim = {rp->rcap, MAX_RESPONSE_HEADERS, rp->rcap};
    int n = gw_h1_parse_response(rp->rbuf, rp->rlen, &h, &lim);
    if (n == 0 && rp->rlen < rp->rcap) return 0;
    if (n <= 0 || gw_h1_response_framing(&h, rp->req->method, &rp->fr) != 0) {
        rp_fail(rp, gw_err_bad_response);
        return -1;
    }
    if (h.status < 200) { /* 100 Continue and other interim responses are not forwarded */
        shift_rbuf(rp, (size_t)n);
        return rp->rlen ? parse_head(rp) : 0;
    }
    gw_req_t *req = rp->req;
    if (h.status >= 400 && route_of(rp)->proxy.intercept_errors) {
        rp->res_done = true; /* proxyInterceptErrors: our own page instead of the backend's */
        gw_pool_report(rp->pool, true);
        drop_conn(rp, false);
        gw_send_error(req, h.status);
        return -1;
    }
    req->res.status = h.status;
    if (!copy_headers(rp, &h)) {
        rp_fail(rp, gw_err_no_memory);
        return -1;
    }
    rp->keep_alive = rp->fr.keep_alive;
    rp->body_left = rp->fr.content_length;
    req->res.content_length = rp->fr.body == GW_BODY_LENGTH ? (int64_t)rp->fr.content_length
                              : rp->fr.body == GW_BODY_NONE   ? 0
                                                              : -1;
    if (req->method_id == GW_M_HEAD && rp->fr.body == GW_BODY_NONE) {
        const gw_header_t *cl = NULL;
        for (size_t i = 0; i < h.num_headers && !cl; i++)
            if (gw_slice_ieq(h.headers[i].name, "content-length")) cl = &h.headers[i];
        if (cl) req->res.content_length = strtoll(cl->value.base, NULL, 10); /* HEAD keeps the length */
    }
    shift_rbuf(rp, (size_t)n);
    rp->head_parsed = true;
    gw_start_response(req, &rp->gen);
    return 1;
}

/* Takes the next body piece from rbuf; returns its state or -1 on a framing error. */
static int next_piece(rproxy_t *rp, gw_slice_t *out)
{
    *out = (gw_slice_t){rp->rbuf, 0};
    switch (rp->fr.body) {
    case GW_BODY_NONE:
        return GW_SEND_FINAL;
    case GW_BODY_LENGTH: {
        size_t take = rp->rlen < rp->body_left ? rp->rlen : (size_t)rp->body_left;
        rp->body_left -= take;
        out->len = rp->consumed = take;
        return rp->body_left ? GW_SEND_IN_PROGRESS : GW_SEND_FINAL;
    }
    case GW_BODY_CHUNKED: {
        size_t dlen = rp->rlen;
        long used = gw_chunked_decode(&rp->dec, rp->rbuf, &dlen, 4096, UINT64_MAX);
        if (used < 0) return -1;
        memmove(rp->rbuf + dlen, rp->rbuf + used, rp->rlen - (size_t)used);
        rp->rlen -= (size_t)used - dlen;
        out->len = rp->consumed = dlen;
        return rp->dec.done ? GW_SEND_FINAL : GW_SEND_IN_PROGRESS;
    }
    default:
        out->len = rp->consumed = rp->rlen;
        return GW_SEND_IN_PROGRESS;
    }
}

/* Hands buffered body bytes to the client side; returns once it must wait (proceed or socket). */
static void deliver(rproxy_t *rp)
{
    while (!rp->res_done && !rp->waiting_proceed) {
        gw_slice_t piece;
        int st = next_piece(rp, &piece);
        if (st < 0) {
            rp_fail(rp, gw_err_bad_response);
            return;
        }
        if (!piece.len && st == GW_SEND_IN_PROGRESS) return; /* need bytes from the backend */
        if (st == GW_SEND_FINAL) {
            rp->res_done = true;
            gw_pool_report(rp->pool, true);
            /* the backend connection can serve another request only if both messages ended */
            bool reusable = rp->keep_alive && (rp->req->body_kind == GW_BODY_NONE || rp->body_sent) &&
                            rp->rlen == rp->consumed;
            drop_conn(rp, reusable);
        }
        rp->proceeded = false;
        rp->sending = true;
        gw_send(rp->req, &piece, piece.len ? 1 : 0, (gw_send_state_t)st);
        if (st == GW_SEND_FINAL) return; /* the request may be gone now */
        rp->sending = false;
        if (!rp->proceeded) {
            rp->waiting_proceed = true; /* back-pressure: stop reading the backend */
            if (rp->conn) arm(rp);
            return;
        }
    }
}

static void rp_proceed(gw_generator_t *g, gw_req_t *req)
{
    rproxy_t *rp = (rproxy_t *)g;
    shift_rbuf(rp, rp->consumed);
    rp->consumed = 0;
    if (rp->sending) {
        rp->proceeded = true; /* the codec wrote it at once: deliver() goes on */
        return;
    }
    rp->waiting_proceed = false;
    deliver(rp);
    if (rp->conn && !rp->waiting_proceed && !rp->res_done) arm(rp);
}

static void on_eof(rproxy_t *rp)
{
    if (!rp->head_parsed) {
        if (!try_again(rp)) rp_fail(rp, rp->any_byte ? gw_err_bad_response : gw_err_backend_closed);
        return;
    }
    if (rp->fr.body == GW_BODY_CLOSE && !rp->rlen) {
        rp->res_done = true;
        drop_conn(rp, false);
        gw_send(rp->req, NULL, 0, GW_SEND_FINAL);
        return;
    }
    rp_fail(rp, gw_err_backend_closed); /* cut off mid-body: the client sees an abort */
}

static void rp_read(rproxy_t *rp)
{
    if (rp->rlen >= rp->rcap) return;
    ssize_t n;
    do
        n = read(rp->conn->io.fd, rp->rbuf + rp->rlen, rp->rcap - rp->rlen);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
        if (n < 0 && !rp->head_parsed && try_again(rp)) return;
        on_eof(rp);
        return;
    }
    rp->any_byte = true;
    rp->rlen += (size_t)n;
    gw_timer_set(rp->req->worker->loop, &rp->conn->timer, route_of(rp)->proxy.read_timeout_ms);
    if (!rp->head_parsed && parse_head(rp) <= 0) return;
    deliver(rp);
}

static void on_conn_event(gw_upconn_t *c, uint32_t events)
{
    rproxy_t *rp = c->owner;
    if (events & EPOLLOUT) {
        rp_write(rp);
        if (!rp->conn) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) rp_read(rp);
}

static void on_conn_timeout(gw_upconn_t *c)
{
    rp_fail(c->owner, gw_err_io_timeout);
}

/* ---- connecting ---- */

static const gw_target_t *pick_target(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid);

/* A connection that could not be made carried nothing: try another target of the list. */
static bool fail_over(rproxy_t *rp)
{
    if (++rp->tried >= rp->list->count) return false;
    gw_pool_report(rp->pool, false);
    rp->target = pick_target(rp->req, rp->list, rp->target);
    rp->pool = gw_pool_get(rp->req->worker, rp->target);
    rp->head_off = 0;
    if (!rp->pool || !build_head(rp)) return false;
    rp_connect(rp);
    return true;
}

static void on_conn(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err)
{
    rproxy_t *rp = w->data;
    if (err) {
        if (!fail_over(rp)) rp_fail(rp, err);
        return;
    }
    rp->conn = c;
    c->owner = rp;
    c->on_event = on_conn_event;
    c->on_timeout = on_conn_timeout;
    gw_timer_set(rp->req->worker->loop, &c->timer, route_of(rp)->proxy.read_timeout_ms);
    rp_write(rp);
}

static void rp_connect(rproxy_t *rp)
{
    rp->waiter.cb = on_conn;
    rp->waiter.data = rp;
    gw_pool_acquire(rp->pool, &rp->waiter);
}

static const gw_target_t *pick_target(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid)
{
    const gw_proxy_route_t *pr = &req->route->proxy;
    return gw_balance_pick(req, list, avoid, pr->health_check, pr->max_fails);
}

static gw_handler_result_t rproxy_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_proxy_route_t *pr = &req->route->proxy;
    const gw_target_list_t *list = req->conn->tls && pr->secure_to.count ? &pr->secure_to : &pr->to;
    if (!list->count) return GW_CONTINUE;
    rproxy_t *rp = gw_arena_alloc(&req->arena, sizeof(*rp));
    if (!rp) return GW_ERROR;
    memset(rp, 0, sizeof(*rp));
    rp->gen = (gw_generator_t){rp_proceed, rp_stop};
    rp->req = req;
    rp->list = list;
    rp->target = pick_target(req, list, NULL);
    rp->pool = gw_pool_get(req->worker, rp->target);
    rp->rbuf = gw_chunk_get(&req->worker->io_pool);
    rp->rcap = req->worker->io_pool.chunk_size;
    if (!rp->pool || !rp->rbuf || !build_head(rp) || !gw_req_defer(req, rp_cleanup, rp)) {
        gw_chunk_put(&req->worker->io_pool, rp->rbuf);
        req->res.status = 500;
        return GW_ERROR;
    }
    rp_connect(rp);
    return GW_DONE;
}

const gw_handler_t gw_rproxy_handler = {"rproxy", rproxy_on_request};
