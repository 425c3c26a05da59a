/* The backend exchange shared by the upstream types, and its HTTP/1.1 codec. See exchange.h. */
#include "exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "acl.h"
#include "ascii.h"
#include "balancer.h"
#include "cgi_response.h"
#include "errors.h"
#include "handler.h"
#include "log.h"
#include "proxy_proto.h"
#include "resbuf.h"
#include "worker.h"

#define MAX_RESPONSE_HEADERS 128
#define MAX_RETRIES 2


static void ex_connect(gw_exchange_t *x);
static void ex_read(gw_exchange_t *x);
static void ex_write(gw_exchange_t *x);

static const gw_route_t *route_of(const gw_exchange_t *x)
{
    return x->req->route;
}

/* Progress: the backend's silence (in a tunnel, the silence both ways) is timed from the last byte. */
static void touch(gw_exchange_t *x)
{
    bool tunnel = x->tunnel || x->raw_tunnel;
    uint32_t ms = tunnel && x->tunnel_idle_ms ? x->tunnel_idle_ms : route_of(x)->proxy.read_timeout_ms;
    gw_timer_set(x->req->worker->loop, &x->conn->timer, ms);
}

/* ---- the read buffer ---- */

/* The response is read into a buffer taken at the first read (an exchange waiting for its backend
 * holds none), as large as the target's recent responses (up to proxyBufferSize): a 64 KiB answer
 * then arrives in one read and leaves in one write. */
static bool take_rbuf(gw_exchange_t *x)
{
    if (x->rbuf) return true;
    gw_worker_t *w = x->req->worker;
    x->rbuf = gw_resbuf_get(w, gw_pool_response_hint(x->pool), w->cfg->pool.buffer_max, &x->rcap);
    return x->rbuf != NULL;
}

static void give_back_rbuf(gw_exchange_t *x)
{
    gw_resbuf_put(x->req->worker, x->rbuf, x->rcap);
    x->rbuf = NULL;
    x->rcap = 0;
}

/* Once the head is out of the way: a Content-Length body larger than the room left gets a buffer
 * that holds it whole (up to proxyBufferSize). The body bytes read so far move; the head's fields
 * were copied out. */
static void fit_body(gw_exchange_t *x)
{
    if (x->body_left <= x->rcap - x->roff || x->consumed) return;
    gw_worker_t *w = x->req->worker;
    size_t want = x->body_left < SIZE_MAX ? (size_t)x->body_left : SIZE_MAX, cap;
    char *buf = gw_resbuf_get(w, want, w->cfg->pool.buffer_max, &cap);
    if (!buf || cap <= x->rcap) { /* no larger buffer to have: the body comes in pieces */
        gw_resbuf_put(w, buf, cap);
        return;
    }
    memcpy(buf, x->rbuf + x->roff, x->rlen - x->roff);
    x->rlen -= x->roff;
    x->ready -= x->roff;
    x->roff = 0;
    give_back_rbuf(x);
    x->rbuf = buf;
    x->rcap = cap;
}

/* The most bytes a response head may take (a larger buffer does not raise it). */
static size_t head_room(const gw_exchange_t *x)
{
    size_t chunk = x->req->worker->io_pool.chunk_size;
    return x->rcap < chunk ? x->rcap : chunk;
}

/* ---- ending ---- */

static void drop_conn(gw_exchange_t *x, bool reusable)
{
    if (!x->conn) return;
    gw_upconn_t *c = x->conn;
    x->conn = NULL;
    gw_pool_release(c, reusable);
}

/* Fails the exchange: an error page if nothing was sent yet, an abort otherwise. */
static void ex_fail(gw_exchange_t *x, const char *err)
{
    gw_pool_report(x->pool, false);
    drop_conn(x, false);
    if (x->res_done) return;
    x->res_done = true;
    gw_log_error("error", "%s (%s)", err, x->target->url);
    if (!x->req->res_started) {
        int status = gw_error_status(err);
        if (status == 499)
            gw_send_error(x->req, status); /* the client is gone: nobody to run errorConfig for */
        else
            gw_req_fail(x->req, status); /* errorConfig, then the error page */
        return;
    }
    gw_send(x->req, NULL, 0, GW_SEND_ERROR);
}

static void ex_cleanup(void *arg)
{
    gw_exchange_t *x = arg;
    gw_pool_cancel(&x->waiter);
    drop_conn(x, false);
    give_back_rbuf(x);
}

static void ex_stop(gw_generator_t *g, gw_req_t *req)
{
    gw_exchange_t *x = gw_container_of(g, gw_exchange_t, gen);
    x->res_done = true;
    gw_pool_cancel(&x->waiter);
    drop_conn(x, false); /* the client went away: the backend exchange is cut short */
}

/* A reused connection that fails before any response byte may just have gone stale. */
static bool try_again(gw_exchange_t *x)
{
    if (!x->conn || !x->conn->reused || x->any_byte || x->body_reading || x->retries >= MAX_RETRIES)
        return false;
    drop_conn(x, false);
    x->retries++;
    x->head_off = 0;
    ex_connect(x);
    return true;
}

/* ---- the request head ---- */

/* Fields the proxy treats by name. A switch on the length leaves one or two candidates, compared
 * word by word (most fields stop at the switch: no string comparison at all). */
typedef enum field_kind {
    FIELD_OTHER,
    FIELD_HOP,        /* hop-by-hop (RFC 9110 7.6.1) or framing: never passed on as it is */
    FIELD_CONNECTION, /* hop-by-hop, and the fields it lists are too */
    FIELD_UPGRADE,    /* hop-by-hop, but kept in a response that opens a tunnel */
    FIELD_FORWARDED,  /* Host and X-Forwarded-*: the proxy writes its own */
    FIELD_REAL_IP,    /* X-Real-IP: written by the proxy when it writes X-Forwarded-* */
    FIELD_SERVER,     /* a response's Server: ours is sent, as nginx does */
} field_kind_t;

static field_kind_t field_kind(gw_slice_t n)
{
    switch (n.len) {
    case 2:
        return gw_ascii_ieq(n, "te") ? FIELD_HOP : FIELD_OTHER;
    case 4:
        return gw_ascii_ieq(n, "host") ? FIELD_FORWARDED : FIELD_OTHER;
    case 6:
        return gw_ascii_ieq(n, "server") ? FIELD_SERVER : FIELD_OTHER;
    case 7:
        return gw_ascii_ieq(n, "trailer")   ? FIELD_HOP
               : gw_ascii_ieq(n, "upgrade") ? FIELD_UPGRADE
                                            : FIELD_OTHER;
    case 9:
        return gw_ascii_ieq(n, "x-real-ip") ? FIELD_REAL_IP : FIELD_OTHER;
    case 10:
        return gw_ascii_ieq(n, "connection")   ? FIELD_CONNECTION
               : gw_ascii_ieq(n, "keep-alive") ? FIELD_HOP
                                               : FIELD_OTHER;
    case 14:
        return gw_ascii_ieq(n, "content-length") ? FIELD_HOP : FIELD_OTHER;
    case 15:
        return gw_ascii_ieq(n, "x-forwarded-for") ? FIELD_FORWARDED : FIELD_OTHER;
    case 16:
        return gw_ascii_ieq(n, "proxy-connection")   ? FIELD_HOP
               : gw_ascii_ieq(n, "x-forwarded-host") ? FIELD_FORWARDED
                                                     : FIELD_OTHER;
    case 17:
        return gw_ascii_ieq(n, "transfer-encoding")   ? FIELD_HOP
               : gw_ascii_ieq(n, "x-forwarded-proto") ? FIELD_FORWARDED
                                                      : FIELD_OTHER;
    default:
        return FIELD_OTHER;
    }
}

static bool is_connection(gw_slice_t name)
{
    return gw_ascii_ieq(name, "connection"); /* the length first: most fields end there */
}

/* Is `name` one of the comma-separated tokens of `list` (a Connection header value)? */
static bool token_listed(gw_slice_t list, gw_slice_t name)
{
    const char *p = list.base, *end = p + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ',' || *p == '\t')) p++;
        const char *s = p;
        while (p < end && *p != ',' && *p != ' ' && *p != '\t') p++;
        if ((size_t)(p - s) == name.len && strncasecmp(s, name.base, name.len) == 0) return true;
    }
    return false;
}

/* Is `name` in a configured list (ASCII case-insensitive)? Lengths are compared first. */
static bool in_list(const gw_headers_t *list, gw_slice_t name)
{
    for (uint32_t i = 0; i < list->count; i++)
        if (list->items[i].name.len == name.len && strncasecmp(list->items[i].name.base, name.base, name.len) == 0)
            return true;
    return false;
}

size_t gw_exchange_head_capacity(const gw_req_t *req, size_t extra)
{
    size_t n = req->method.len + req->path.len + req->query.len + extra + 256;
    for (size_t i = 0; i < req->num_headers; i++) n += req->headers[i].name.len + req->headers[i].value.len + 4;
    const gw_headers_t *set = &req->route->proxy.set_request;
    for (uint32_t i = 0; i < set->count; i++) n += set->items[i].name.len + set->items[i].value.len + 4;
    return n + 2 * req->authority.len;
}

/* The value of the first Connection field of `hs` (empty when there is none). */
static gw_slice_t first_connection(const gw_header_t *hs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_connection(hs[i].name)) return hs[i].value;
    return (gw_slice_t){"", 0};
}

/* Does the proxy leave the client's field out of the backend request? */
static bool drop_request_header(gw_slice_t name, gw_slice_t listed, const gw_proxy_route_t *pr)
{
    switch (field_kind(name)) {
    case FIELD_OTHER:
    case FIELD_SERVER:
        break;
    case FIELD_REAL_IP:
        if (pr->x_forwarded) return true;
        break;
    default:
        return true;
    }
    return (listed.len && token_listed(listed, name)) || in_list(&pr->remove_request, name) ||
           in_list(&pr->set_request, name);
}

char *gw_exchange_put_client_headers(char *p, const gw_req_t *req, const gw_proxy_route_t *pr)
{
    /* the fields the client's Connection field names are hop-by-hop too */
    gw_slice_t listed = first_connection(req->headers, req->num_headers);
    for (size_t i = 0; i < req->num_headers; i++) {
        const gw_header_t *h = &req->headers[i];
        if (drop_request_header(h->name, listed, pr)) continue;
        p = gw_put(p, h->name.base, h->name.len);
        p = gw_put(p, ": ", 2);
        p = gw_put(p, h->value.base, h->value.len);
        p = gw_put(p, "\r\n", 2);
    }
    for (uint32_t i = 0; i < pr->set_request.count; i++) {
        const gw_header_t *h = &pr->set_request.items[i];
        p = gw_put(p, h->name.base, h->name.len);
        p = gw_put(p, ": ", 2);
        p = gw_put(p, h->value.base, h->value.len);
        p = gw_put(p, "\r\n", 2);
    }
    return p;
}

char *gw_exchange_put_forwarded(char *p, const gw_req_t *req)
{
    bool relayed = !IN6_IS_ADDR_UNSPECIFIED(&req->client_ip); /* named by a trusted proxy */
    p = GW_PUT_LIT(p, "X-Forwarded-For: ");
    const char *peer = p; /* printed in place (the head's capacity has room for the longest) */
    size_t n = gw_ip_text(relayed ? &req->client_ip : &req->conn->peer.sin6_addr, p, INET6_ADDRSTRLEN);
    p = gw_put(GW_PUT_LIT(p + n, "\r\nX-Real-IP: "), peer, n);
    p = req->conn->tls ? GW_PUT_LIT(p, "\r\nX-Forwarded-Proto: https\r\n")
                       : GW_PUT_LIT(p, "\r\nX-Forwarded-Proto: http\r\n");
    if (req->authority.len) {
        p = gw_put(p, "X-Forwarded-Host: ", 18);
        p = gw_put(p, req->authority.base, req->authority.len);
        p = gw_put(p, "\r\n", 2);
    }
    return p;
}

char *gw_exchange_put_framing(gw_exchange_t *x, char *p)
{
    const gw_req_t *req = x->req;
    if (req->body_kind == GW_BODY_LENGTH)
        p = GW_PUT_LIT(gw_put_u64(GW_PUT_LIT(p, "Content-Length: "), req->content_length), "\r\n");
    else if (req->body_kind == GW_BODY_CHUNKED) {
        p = gw_put(p, "Transfer-Encoding: chunked\r\n", 28); /* length unknown: stream it chunked */
        x->body_chunked = true;
    }
    return p;
}

/* ---- writing the request ---- */

static void arm(gw_exchange_t *x)
{
    bool want_write = x->head_off < x->head_len || x->nout;
    uint32_t ev = (x->waiting_proceed ? 0 : EPOLLIN | EPOLLRDHUP) | (want_write ? EPOLLOUT : 0);
    gw_io_modify(&x->conn->io, ev);
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st);

static ssize_t write_iov(gw_exchange_t *x, struct iovec *iov, int n)
{
    ssize_t w = gw_upconn_writev(x->conn, iov, n); /* plain or TLS */
    if (w < 0) {
        errno = (int)-w;
        return -1;
    }
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
static bool flush_out(gw_exchange_t *x)
{
    while (x->head_off < x->head_len) {
        struct iovec iov = {x->head + x->head_off, x->head_len - x->head_off};
        ssize_t w = write_iov(x, &iov, 1);
        if (w < 0 && errno == EAGAIN) return true;
        if (w < 0) {
            if (!try_again(x)) ex_fail(x, gw_err_backend_closed);
            return false;
        }
        x->head_off += (size_t)w;
    }
    while (x->nout) {
        ssize_t w = write_iov(x, x->out, x->nout);
        if (w < 0 && errno == EAGAIN) return true;
        if (w < 0) {
            ex_fail(x, gw_err_backend_closed);
            return false;
        }
        advance(x->out, &x->nout, (size_t)w);
        touch(x);
    }
    return true;
}

/* The client's request is all written. In a tunnel that is the client's half-close (HTTP/2
 * END_STREAM on a CONNECT stream): the backend reads end of stream and may still answer. */
static void end_of_request(gw_exchange_t *x)
{
    x->body_sent = true;
    if (x->tunnel && x->conn) gw_upconn_shutdown_write(x->conn);
}

static void ex_write(gw_exchange_t *x)
{
    for (;;) {
        if (!flush_out(x) || !x->conn) return;
        if (x->head_off < x->head_len || x->nout) {
            arm(x);
            return;
        }
        if (!x->piece_active || x->piece_off >= x->piece.len) break;
        x->codec->frame_body(x); /* the rest of a piece larger than one frame */
    }
    if (x->send_body && x->req->body_kind != GW_BODY_NONE && !x->body_reading && !x->body_sent) {
        x->body_reading = true;
        gw_req_read_body(x->req, on_body, x);
        return;
    }
    if (x->piece_active) {
        x->piece_active = false;
        x->piece = (gw_slice_t){NULL, 0};
        if (x->piece_last)
            end_of_request(x);
        else
            gw_req_body_proceed(x->req); /* written: the client side may read more */
    }
    if (x->conn) arm(x);
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    gw_exchange_t *x = ctx;
    if (st == GW_BODY_ABORT) {
        ex_fail(x, req->body_error ? req->body_error : gw_err_client_closed);
        return;
    }
    if (!x->conn) return;
    x->piece = data;
    x->piece_off = 0;
    x->piece_last = st == GW_BODY_END;
    x->piece_active = true;
    x->codec->frame_body(x);
    ex_write(x);
}

/* ---- the HTTP/1.1 codec ---- */

/* The piece as it is, in chunks when the length is unknown. */
static void h1_frame_body(gw_exchange_t *x)
{
    gw_slice_t d = {x->piece.base + x->piece_off, x->piece.len - x->piece_off};
    x->piece_off = x->piece.len;
    x->nout = 0;
    if (x->body_chunked && d.len) {
        char *end = GW_PUT_LIT(gw_put_hex(x->chunk_hdr, d.len), "\r\n");
        x->out[x->nout++] = (struct iovec){x->chunk_hdr, (size_t)(end - x->chunk_hdr)};
    }
    if (d.len) x->out[x->nout++] = (struct iovec){(void *)d.base, d.len};
    if (x->body_chunked && d.len) x->out[x->nout++] = (struct iovec){"\r\n", 2};
    if (x->body_chunked && x->piece_last) x->out[x->nout++] = (struct iovec){"0\r\n\r\n", 5};
}

static bool h1_decode(gw_exchange_t *x)
{
    if (!x->head_parsed) {
        x->ready = x->rlen; /* the head is parsed from the raw bytes */
        return true;
    }
    char *raw = x->rbuf + x->ready;
    size_t avail = x->rlen - x->ready;
    switch (x->fr.body) {
    case GW_BODY_NONE:
        x->msg_done = true;
        return true;
    case GW_BODY_LENGTH: {
        size_t take = avail < x->body_left ? avail : (size_t)x->body_left;
        x->body_left -= take;
        x->ready += take;
        x->msg_done = !x->body_left;
        return true;
    }
    case GW_BODY_CHUNKED: {
        size_t dlen = avail;
        long used = gw_chunked_decode(&x->dec, raw, &dlen, 4096, UINT64_MAX);
        if (used < 0) return false;
        memmove(raw + dlen, raw + used, avail - (size_t)used);
        x->rlen -= (size_t)used - dlen;
        x->ready += dlen;
        x->msg_done = x->dec.done;
        return true;
    }
    default: /* until the backend closes */
        x->ready = x->rlen;
        x->msg_done = x->eof;
        return true;
    }
}

/* Drops `used` payload bytes from the front. Only the offset moves (a 64 KiB body is not shifted
 * behind its head); the buffer starts over once it is all used. */
static void shift_rbuf(gw_exchange_t *x, size_t used)
{
    x->roff += used;
    if (x->roff == x->rlen) x->roff = x->rlen = x->ready = 0;
}

/* Makes room at the end of a full buffer by moving what is left to its start; false if nothing may
 * move (nothing was used yet, or the client side still holds a piece of it). */
static bool compact_rbuf(gw_exchange_t *x)
{
    if (!x->roff || x->consumed) return false;
    memmove(x->rbuf, x->rbuf + x->roff, x->rlen - x->roff);
    x->rlen -= x->roff;
    x->ready -= x->roff;
    x->roff = 0;
    return true;
}

/* A HEAD response keeps the length the backend announced. */
static int64_t head_length(const gw_h1_response_head_t *h)
{
    for (size_t i = 0; i < h->num_headers; i++)
        if (gw_slice_ieq(h->headers[i].name, "content-length")) return strtoll(h->headers[i].value.base, NULL, 10);
    return 0;
}

static int h1_parse_head(gw_exchange_t *x, gw_h1_response_head_t *h)
{
    for (;;) {
        gw_h1_limits_t lim = {head_room(x), MAX_RESPONSE_HEADERS, head_room(x)};
        int n = gw_h1_parse_response(x->rbuf + x->roff, x->ready - x->roff, h, &lim);
        if (n <= 0) return n < 0 ? -1 : 0;
        if (gw_h1_response_framing(h, x->req->method, &x->fr) != 0) return -1;
        if (h->status == 101 && x->req->upgrade) { /* WebSocket & co: raw bytes both ways from here */
            x->tunnel = true;
            x->keep_alive = false;
            x->fr.body = GW_BODY_CLOSE;
            x->res_length = -1;
            x->ready = x->roff + (size_t)n;
            return n;
        }
        if (h->status >= 200) {
            x->keep_alive = x->fr.keep_alive;
            x->body_left = x->fr.content_length;
            x->res_length = x->fr.body == GW_BODY_LENGTH ? (int64_t)x->fr.content_length
                            : x->fr.body == GW_BODY_NONE  ? 0
                                                          : -1;
            if (x->req->method_id == GW_M_HEAD && x->fr.body == GW_BODY_NONE) x->res_length = head_length(h);
            x->ready = x->roff + (size_t)n; /* what follows the head is raw body, decoded with its framing */
            return n;
        }
        shift_rbuf(x, (size_t)n); /* 100 Continue and other interim responses are not forwarded */
        h->num_headers = 0;
    }
}

const gw_backend_codec_t gw_http1_backend_codec = {h1_frame_body, h1_decode, h1_parse_head};

int gw_exchange_parse_cgi_head(gw_exchange_t *x, gw_h1_response_head_t *h)
{
    int n = gw_cgi_parse_head(x->rbuf + x->roff, x->ready - x->roff, h, MAX_RESPONSE_HEADERS);
    if (n == 0 && (x->msg_done || x->eof)) return -1; /* the response ended inside its head */
    x->res_length = -1;
    return n;
}

/* ---- the response ---- */

/* The value of the last Connection field of `hs` (empty when there is none). */
static gw_slice_t last_connection(const gw_header_t *hs, size_t n)
{
    gw_slice_t v = {"", 0};
    for (size_t i = 0; i < n; i++)
        if (is_connection(hs[i].name)) v = hs[i].value;
    return v;
}

/* Does the backend's field stay out of the response? Hop-by-hop fields (with those its Connection
 * field lists), framing, and the backend's Server (ours is sent, as nginx does) do. */
static bool drop_response_header(const gw_exchange_t *x, gw_slice_t name, gw_slice_t listed)
{
    switch (field_kind(name)) {
    case FIELD_UPGRADE:
        if (!x->tunnel) return true;
        break; /* a 101's Upgrade goes to the client, although its Connection lists it */
    case FIELD_HOP:
    case FIELD_CONNECTION:
    case FIELD_SERVER:
        return true;
    default:
        if (listed.len && token_listed(listed, name)) return true;
        break;
    }
    const gw_proxy_route_t *pr = &route_of(x)->proxy;
    return in_list(&pr->remove_response, name) || in_list(&pr->set_response, name);
}

/* Copies the backend's headers into the arena (the head's bytes in rbuf are reused), names lower-cased. */
static bool copy_headers(gw_exchange_t *x, const gw_h1_response_head_t *h)
{
    gw_req_t *req = x->req;
    const gw_proxy_route_t *pr = &route_of(x)->proxy;
    gw_slice_t listed = last_connection(h->headers, h->num_headers);
    for (size_t i = 0; i < h->num_headers; i++) {
        gw_slice_t name = h->headers[i].name;
        if (drop_response_header(x, name, listed)) continue;
        gw_slice_t value = h->headers[i].value;
        char *n = gw_arena_alloc(&req->arena, name.len + value.len + 2); /* both NUL-terminated */
        if (!n) return false;
        gw_ascii_lower_copy(n, name.base, name.len); /* HTTP/2 needs names lower-case */
        n[name.len] = '\0';
        char *v = n + name.len + 1;
        memcpy(v, value.base, value.len);
        v[value.len] = '\0';
        if (!gw_res_add_header(req, (gw_slice_t){n, name.len}, (gw_slice_t){v, value.len})) return false;
    }
    for (uint32_t i = 0; i < pr->set_response.count; i++)
        if (!gw_res_add_header(req, pr->set_response.items[i].name, pr->set_response.items[i].value)) return false;
    return true;
}

/* Parses the response head; returns 1 when done, 0 for more bytes, -1 when the exchange ended. */
static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st);

/* After a 101: the head goes out at once (the backend may say nothing until the client does), then
 * the client's bytes flow to the backend as the tunnel's request side. Returns false when the
 * request ended meanwhile. */
static bool open_tunnel(gw_exchange_t *x)
{
    x->proceeded = false;
    x->sending = true;
    gw_send(x->req, NULL, 0, GW_SEND_IN_PROGRESS);
    x->sending = false;
    if (!x->proceeded) x->waiting_proceed = true;
    x->body_reading = true;
    x->body_sent = false;
    gw_req_read_body(x->req, on_body, x);
    return true;
}

static int parse_head(gw_exchange_t *x)
{
    gw_header_t headers[MAX_RESPONSE_HEADERS];
    gw_h1_response_head_t h = {.headers = headers};
    int n = x->codec->decode(x) ? x->codec->parse_head(x, &h) : -1;
    if (n == 0 && x->rlen - x->roff < head_room(x) && !x->eof) return 0;
    if (n <= 0) {
        ex_fail(x, gw_err_bad_response);
        return -1;
    }
    if (x->target) { /* for the access log (logFormat extended/json) */
        x->req->upstream = x->target->url;
        x->req->upstream_ms = gw_loop_now(x->req->worker->loop) - x->req->start_ms;
    }
    if (x->ops->on_head && x->ops->on_head(x, &h) == GW_EXCHANGE_CONSUME) {
        x->consume = true; /* the adapter took what it needed from the head */
        shift_rbuf(x, (size_t)n);
        x->head_parsed = true;
        return 1;
    }
    gw_req_t *req = x->req;
    if (h.status >= 400 && route_of(x)->proxy.intercept_errors) {
        x->res_done = true; /* proxyInterceptErrors: our own page instead of the backend's */
        gw_pool_report(x->pool, true);
        drop_conn(x, false);
        gw_req_fail(req, h.status); /* errorConfig, then the error page */
        return -1;
    }
    req->res.status = h.status;
    if (!copy_headers(x, &h)) {
        ex_fail(x, gw_err_no_memory);
        return -1;
    }
    req->res.content_length = x->res_length;
    shift_rbuf(x, (size_t)n);
    x->head_parsed = true;
    fit_body(x);
    gw_start_response(req, &x->gen);
    if (x->tunnel) return open_tunnel(x) ? 1 : -1;
    return 1;
}

static bool connection_reusable(const gw_exchange_t *x)
{
    /* the backend connection can serve another request only if both messages ended */
    return x->keep_alive && !x->eof && (x->req->body_kind == GW_BODY_NONE || !x->send_body || x->body_sent) &&
           x->rlen == x->ready;
}

/* The response ended: its connection goes back to the pool (or is closed). */
static void response_complete(gw_exchange_t *x)
{
    gw_pool_report(x->pool, true);
    gw_pool_note_response(x->pool, x->read_total);
    drop_conn(x, connection_reusable(x));
}

/* A response the adapter consumed: its body is read and dropped, then the adapter goes on. */
static void drop_body(gw_exchange_t *x)
{
    for (;;) {
        if (!x->codec->decode(x)) {
            ex_fail(x, gw_err_bad_response);
            return;
        }
        if (x->msg_done) {
            response_complete(x);
            x->consume = false;
            x->ops->on_consumed(x);
            return;
        }
        bool progress = x->ready > x->roff;
        shift_rbuf(x, x->ready - x->roff);
        if (!progress) break;
    }
    if (x->eof) ex_fail(x, gw_err_backend_closed);
}

/* Hands decoded body bytes to the client side; returns once it must wait (proceed or socket).
 * Returns false when the exchange ended: the request (and x, in its arena) may be gone. */
static bool deliver(gw_exchange_t *x)
{
    if (x->consume) {
        drop_body(x);
        return false;
    }
    if (!x->rbuf) return true; /* nothing read yet (a tunnel just opened) */
    while (!x->res_done && !x->waiting_proceed) {
        if (!x->codec->decode(x)) {
            ex_fail(x, gw_err_bad_response);
            return false;
        }
        gw_slice_t piece = {x->rbuf + x->roff, x->ready - x->roff};
        bool final = x->msg_done;
        if (!piece.len && !final) {
            if (!x->eof) return true;
            ex_fail(x, gw_err_backend_closed); /* cut off mid-body: the client sees an abort */
            return false;
        }
        x->consumed = piece.len;
        if (final) {
            x->res_done = true;
            response_complete(x);
        }
        x->proceeded = false;
        x->sending = true;
        gw_send(x->req, &piece, piece.len ? 1 : 0, final ? GW_SEND_FINAL : GW_SEND_IN_PROGRESS);
        if (final) return false; /* the request may be gone now */
        x->sending = false;
        if (!x->proceeded) {
            x->waiting_proceed = true; /* back-pressure: stop reading the backend */
            if (x->conn) arm(x);
            return true;
        }
    }
    return !x->res_done;
}

static void ex_proceed(gw_generator_t *g, gw_req_t *req)
{
    gw_exchange_t *x = gw_container_of(g, gw_exchange_t, gen);
    shift_rbuf(x, x->consumed);
    x->consumed = 0;
    if (x->sending) {
        x->proceeded = true; /* the codec wrote it at once: deliver() goes on */
        return;
    }
    x->waiting_proceed = false;
    if (!deliver(x)) return;
    if (x->conn && !x->waiting_proceed && gw_upconn_pending(x->conn)) {
        ex_read(x); /* TLS kept decrypted bytes that no epoll event will announce */
        return;
    }
    if (x->conn && !x->waiting_proceed) {
        if (!x->rlen) give_back_rbuf(x); /* waiting for the backend: no buffer held meanwhile */
        arm(x);
    }
}

/* The backend closed: what was read is still delivered (the connection is given up at once). */
static void on_eof(gw_exchange_t *x)
{
    if (!x->head_parsed && try_again(x)) return;
    x->eof = true;
    drop_conn(x, false);
    if (!x->head_parsed) {
        if (!x->any_byte) {
            ex_fail(x, gw_err_backend_closed);
            return;
        }
        if (parse_head(x) <= 0) return; /* a head cut short by the close fails here */
    }
    if (!x->waiting_proceed) deliver(x);
}

static void ex_read(gw_exchange_t *x)
{
    if (!take_rbuf(x)) {
        ex_fail(x, gw_err_no_memory);
        return;
    }
    if (x->rlen >= x->rcap && !compact_rbuf(x)) return;
    ssize_t n = gw_upconn_read(x->conn, x->rbuf + x->rlen, x->rcap - x->rlen);
    if (n == -EAGAIN) return;
    if (n <= 0) {
        if (n < 0 && !x->head_parsed && try_again(x)) return;
        if (n < 0 && x->tunnel) { /* a reset is no end of stream: the client sees an abort */
            ex_fail(x, gw_err_backend_closed);
            return;
        }
        on_eof(x);
        return;
    }
    x->rlen += (size_t)n;
    x->read_total += (size_t)n;
    while (x->rlen < x->rcap && gw_upconn_pending(x->conn)) { /* TLS: take what is decrypted */
        ssize_t more = gw_upconn_read(x->conn, x->rbuf + x->rlen, x->rcap - x->rlen);
        if (more <= 0) break;
        x->rlen += (size_t)more;
        x->read_total += (size_t)more;
    }
    x->any_byte = true;
    touch(x);
    if (!x->head_parsed && parse_head(x) <= 0) return;
    if (!x->waiting_proceed) deliver(x);
}

static void on_conn_event(gw_upconn_t *c, uint32_t events)
{
    gw_exchange_t *x = c->owner;
    if (events & EPOLLOUT) {
        ex_write(x);
        if (!x->conn) return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) ex_read(x);
}

static void on_conn_timeout(gw_upconn_t *c)
{
    ex_fail(c->owner, gw_err_io_timeout);
}

/* ---- connecting ---- */

static const gw_target_t *pick_target(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid);

/* A connection that could not be made carried nothing: try another target of the list. */
static bool fail_over(gw_exchange_t *x)
{
    if (++x->tried >= x->list->count) return false;
    gw_pool_report(x->pool, false);
    x->target = pick_target(x->req, x->list, x->target);
    x->pool = gw_pool_get(x->req->worker, x->target);
    x->head_off = 0;
    if (!x->pool || !x->ops->build_head(x)) return false;
    ex_connect(x);
    return true;
}

/* CONNECT: the backend connection is made, so the client hears 200 and the tunnel opens at once
 * (the response "head" is ours; everything after it is the backend's raw bytes). */
static void open_raw_tunnel(gw_exchange_t *x)
{
    gw_req_t *req = x->req;
    x->tunnel = true;
    x->head_parsed = true;
    x->any_byte = true; /* nothing may be retried from here */
    x->keep_alive = false;
    x->fr.body = GW_BODY_CLOSE;
    x->res_length = -1;
    req->res.status = 200;
    req->res.content_length = -1;
    gw_start_response(req, &x->gen);
    open_tunnel(x);
    if (x->conn) arm(x);
}

static void on_conn(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err)
{
    gw_exchange_t *x = w->data;
    if (err) {
        if (!fail_over(x)) ex_fail(x, err);
        return;
    }
    x->conn = c;
    c->owner = x;
    c->on_event = on_conn_event;
    c->on_timeout = on_conn_timeout;
    touch(x);
    if (x->raw_tunnel) {
        open_raw_tunnel(x);
        return;
    }
    ex_write(x);
}

static void ex_connect(gw_exchange_t *x)
{
    x->waiter.cb = on_conn;
    x->waiter.data = x;
    gw_pool_acquire(x->pool, &x->waiter);
}

static const gw_target_t *pick_target(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid)
{
    const gw_proxy_route_t *pr = &req->route->proxy;
    return gw_balance_pick(req, list, avoid, pr->health_check, pr->max_fails);
}

/* proxyProtocolToBackend: each new backend connection starts with a PROXY header naming the client
 * (the address X-Forwarded-For names) and the local address it reached us on. */
static bool use_proxy_protocol(gw_exchange_t *x)
{
    const gw_req_t *req = x->req;
    int version = req->route->proxy.pp_to_backend;
    if (!version || !req->conn) return true;
    uint8_t *buf = gw_arena_alloc(&x->req->arena, GW_PP_WRITE_MAX);
    if (!buf) return false;
    struct sockaddr_in6 src = {.sin6_family = AF_INET6, .sin6_addr = req->client_ip};
    if (!memcmp(&req->client_ip, &req->conn->peer.sin6_addr, sizeof(req->client_ip)))
        src.sin6_port = req->conn->peer.sin6_port; /* the port only belongs to the peer itself */
    x->waiter.preamble = buf;
    x->waiter.preamble_len = gw_pp_write(version, &src, gw_conn_local(req->conn), buf);
    return x->waiter.preamble_len > 0;
}

bool gw_exchange_init(gw_exchange_t *x, gw_req_t *req, const gw_exchange_ops_t *ops, const gw_target_list_t *list)
{
    x->ops = ops;
    x->codec = ops->codec ? ops->codec : &gw_http1_backend_codec;
    x->res_length = -1;
    x->gen = (gw_generator_t){ex_proceed, ex_stop};
    x->req = req;
    x->list = list;
    x->target = pick_target(req, list, NULL);
    x->pool = gw_pool_get(req->worker, x->target);
    return x->pool && use_proxy_protocol(x) && gw_req_defer(req, ex_cleanup, x);
}

bool gw_exchange_init_pool(gw_exchange_t *x, gw_req_t *req, const gw_exchange_ops_t *ops, gw_pool_t *pool)
{
    static const gw_target_list_t single = {.count = 1};
    x->ops = ops;
    x->codec = ops->codec ? ops->codec : &gw_http1_backend_codec;
    x->res_length = -1;
    x->gen = (gw_generator_t){ex_proceed, ex_stop};
    x->req = req;
    x->list = &single; /* fail_over() finds no other target */
    x->target = gw_pool_target(pool);
    x->pool = pool;
    return use_proxy_protocol(x) && gw_req_defer(req, ex_cleanup, x);
}

void gw_exchange_start(gw_exchange_t *x)
{
    if (!x->ops->build_head(x)) {
        ex_fail(x, gw_err_no_memory);
        return;
    }
    ex_connect(x);
}
