/*
 * HTTP/1.1 server codec: reads and parses request heads, frames request bodies, writes responses
 * (one writev per direction, sendfile for files), keep-alive and pipelining, timeouts, and a
 * lingering close after an error so the client reads the error before a reset.
 *
 * Syscall discipline: a read that fills less than the buffer is taken as "drained" (no read
 * that ends in EAGAIN); EPOLLOUT is armed only after a write returned EAGAIN; an idle connection
 * holds no buffer. A plain-TCP connection joins the epoll set only when it must be waited on (a
 * partial request, keep-alive, a blocked write, a body to read, or an exchange still running after
 * WATCH_DELAY_MS, when a client that goes away must be noticed): a request answered at once and
 * closed costs no epoll_ctl.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "errors.h"
#include "handler.h"
#include "http1_parser.h"
#include "http2.h"
#include "listeners.h"
#include "log.h"
#include "put.h"
#include "worker.h"

#define H1_MAX_IOV 24
#define LINGER_MS 2000
#define WATCH_DELAY_MS 20 /* how long a running exchange goes without noticing its client leave */

enum h1_state { H1_IDLE, H1_HEAD, H1_ACTIVE, H1_LINGER };
enum flush_result { FLUSH_WAIT, FLUSH_DONE, FLUSH_GONE };

typedef struct h1_conn {
    gw_conn_t c;
    char *rbuf;
    uint32_t rlen;
    uint32_t cap;
    gw_req_t *req;
    uint8_t state;
    bool in_process; /* h1_process is on the stack: it picks up pipelined requests */
    bool closed;
    bool fresh; /* nothing parsed yet: the bytes may be an HTTP/2 preface (h2c, or ALPN h2) */
    bool watch_pending; /* the timer is the WATCH_DELAY_MS one: add the fd to epoll when it fires */
} h1_conn_t;

/* Per-request codec state, in the request arena. */
typedef struct h1_req {
    gw_req_t req;
    h1_conn_t *hc;
    uint32_t head_len;  /* bytes of the request head in rbuf */
    uint32_t body_off;  /* first unconsumed body byte in rbuf */
    uint64_t body_left; /* Content-Length bytes not yet taken from rbuf */
    uint32_t delivered; /* input bytes of the piece being delivered to body_cb */
    gw_body_kind_t body_framing; /* the client's body on the wire (req.body_kind: what handlers see) */
    gw_chunked_decoder_t dec;
    bool body_done, body_end_sent, body_busy, continue_sent;
    bool discarding; /* nobody reads the rest of the body: skip it as it arrives */
    bool keep_alive, chunked, suppress_body, head_sent, in_send, proceed_pending, writing;
    bool tunnel; /* a 101 was sent: raw bytes both ways until either side closes */
    bool broken; /* a write failed while the producer was mid-stream: closed from the loop */
    gw_send_state_t state;
    int niov, iov_idx;
    int file_fd;
    uint64_t file_off, file_left;
    int ntail, tail_idx;
    /* the arrays last: they are only read below their counts, so new_request leaves them as they are */
    struct iovec iov[H1_MAX_IOV];
    struct iovec tail[2];
    char chunk_hdr[24];
} h1_req_t;

static void h1_process(h1_conn_t *hc);
static void h1_close(h1_conn_t *hc);
static void on_readable_active(h1_conn_t *hc);
static enum flush_result h1_flush(h1_req_t *r);

static const gw_limits_t *limits(const h1_conn_t *hc)
{
    return &hc->c.worker->cfg->limits;
}

/* ---- the connection's timer and its epoll registration ---- */

/* A pending "watch later" ends when the timer is wanted for something else: the fd joins epoll now. */
static void settle_watch(h1_conn_t *hc)
{
    if (!hc->watch_pending) return;
    hc->watch_pending = false;
    gw_io_arm(&hc->c.io);
}

static void set_timer(h1_conn_t *hc, uint64_t ms)
{
    settle_watch(hc);
    gw_timer_set(hc->c.worker->loop, &hc->c.timer, ms);
}

static void cancel_timer(h1_conn_t *hc)
{
    settle_watch(hc);
    gw_timer_cancel(&hc->c.timer);
}

/* The connection waits for its client (more bytes, or room to write): it must be in epoll. */
static void wait_client(h1_conn_t *hc)
{
    settle_watch(hc);
    gw_io_arm(&hc->c.io);
}

/* A request starts: its timer runs for `rt` ms (0: none). A connection outside epoll joins it only
 * if the exchange is still running after WATCH_DELAY_MS, so that a client leaving is noticed. */
static void start_request_timer(h1_conn_t *hc, uint32_t rt)
{
    if (!hc->c.io.registered && (rt == 0 || rt > WATCH_DELAY_MS)) {
        set_timer(hc, WATCH_DELAY_MS);
        hc->watch_pending = true;
    } else if (rt) {
        set_timer(hc, rt);
    } else {
        cancel_timer(hc);
    }
}

/* ---- buffers ---- */

static bool ensure_rbuf(h1_conn_t *hc)
{
    if (hc->rbuf) return true;
    hc->rbuf = gw_chunk_get(&hc->c.worker->io_pool);
    hc->cap = (uint32_t)hc->c.worker->io_pool.chunk_size;
    return hc->rbuf != NULL;
}

static void release_rbuf(h1_conn_t *hc)
{
    gw_chunk_put(&hc->c.worker->io_pool, hc->rbuf);
    hc->rbuf = NULL;
    hc->rlen = 0;
}

/* Reads into the free tail of rbuf. Returns bytes read, 0 at EOF, or -errno. */
static ssize_t fill(h1_conn_t *hc)
{
    if (!ensure_rbuf(hc)) return -ENOMEM;
    if (hc->rlen >= hc->cap) return -ENOBUFS;
    ssize_t n = hc->c.xprt->read(&hc->c, hc->rbuf + hc->rlen, hc->cap - hc->rlen);
    if (n > 0) hc->rlen += (uint32_t)n;
    return n;
}

/* ---- response head ---- */

static size_t head_size(const gw_req_t *req)
{
    size_t n = 128 + 64; /* status line, server, date, framing and connection headers */
    for (uint32_t i = 0; i < req->res.headers.count; i++)
        n += req->res.headers.items[i].name.len + req->res.headers.items[i].value.len + 4;
    return n;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static bool discard_body(h1_req_t *r);

static void decide_framing(h1_req_t *r)
{
    gw_req_t *req = &r->req;
    int s = req->res.status;
    /* switching protocols, or a 2xx to CONNECT (RFC 9110 9.3.6, without Content-Length or
     * Transfer-Encoding): the connection becomes a tunnel */
    if ((s == 101 && req->upgrade) || (s >= 200 && s < 300 && req->method_id == GW_M_CONNECT)) {
        r->tunnel = true;
        r->keep_alive = false;
        req->res.content_length = -2;
        /* the client's bytes from now on are the tunnel's */
        req->body_kind = r->body_framing = GW_BODY_TUNNEL;
        r->body_done = false;
        /* a tunnel lasts as long as bytes move either way: its producer times its idleness (the
         * exchange); this connection's timer only watches a client that stops reading */
        cancel_timer(r->hc);
        return;
    }
    bool no_body = s < 200 || s == 204 || s == 304;
    r->suppress_body = no_body || req->method_id == GW_M_HEAD;
    if (no_body) req->res.content_length = -2; /* no length header at all */
    if (req->res.content_length == -1 && !r->suppress_body) {
        if (req->version >= 11)
            r->chunked = true;
        else
            r->keep_alive = false; /* HTTP/1.0: the close ends the body */
    }
    if (r->hc->c.worker->draining) r->keep_alive = false;
    /* a response before the whole body arrived: we close afterwards, so say so (RFC 9112 §9.6),
     * unless the rest of a sized body is already buffered and can be skipped */
    if (!req->body_cb && !r->body_done) discard_body(r); /* nobody will read it: skip what is here */
    if (!r->body_done && !req->body_cb) r->keep_alive = false;
}

/* The chunk-size line for `len` body bytes into r->chunk_hdr; its length. */
static size_t chunk_header(h1_req_t *r, uint64_t len)
{
    return (size_t)(GW_PUT_LIT(gw_put_hex(r->chunk_hdr, len), "\r\n") - r->chunk_hdr);
}

static char *put_str(char *p, const char *s)
{
    return put(p, s, strlen(s));
}

/* A status code (1..999) in decimal; the usual three digits without the general number writer. */
static char *put_status(char *p, int status)
{
    if (status < 100) return gw_put_u64(p, (uint64_t)status);
    p[0] = (char)('0' + status / 100);
    p[1] = (char)('0' + status / 10 % 10);
    p[2] = (char)('0' + status % 10);
    return p + 3;
}

/* ETag and Vary have the length of Date too: the first letter spares them the compare. */
static bool is_date_field(gw_slice_t name)
{
    return name.len == 4 && (name.base[0] | 0x20) == 'd' && gw_slice_ieq(name, "date");
}

static bool build_head(h1_req_t *r)
{
    gw_req_t *req = &r->req;
    decide_framing(r);
    const char *server = req->route && req->route->server_header ? req->route->server_header : "gateway";
    size_t server_len = strlen(server);
    char *buf = gw_arena_alloc(&req->arena, head_size(req) + server_len);
    if (!buf) return false;
    char *p = put(buf, "HTTP/1.1 ", 9);
    p = put_status(p, req->res.status > 0 && req->res.status < 1000 ? req->res.status : 500);
    p = put(p, " ", 1);
    p = put_str(p, gw_status_reason(req->res.status));
    if (server_len) {
        p = put(p, "\r\nServer: ", 10);
        p = put(p, server, server_len);
    }
    p = put(p, "\r\n", 2);
    bool has_date = false; /* a proxied or cached response keeps its origin's Date */
    for (uint32_t i = 0; i < req->res.headers.count; i++) {
        const gw_header_t *h = &req->res.headers.items[i];
        has_date |= is_date_field(h->name);
        p = put(p, h->name.base, h->name.len);
        p = put(p, ": ", 2);
        p = put(p, h->value.base, h->value.len);
        p = put(p, "\r\n", 2);
    }
    if (!has_date) {
        p = put(p, "Date: ", 6);
        p = put_str(p, gw_worker_date(r->hc->c.worker));
        p = put(p, "\r\n", 2);
    }
    if (req->res.content_length >= 0) {
        p = put(p, "Content-Length: ", 16);
        p = gw_put_u64(p, (uint64_t)req->res.content_length);
        p = put(p, "\r\n", 2);
    } else if (r->chunked) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (r->tunnel) {
        if (req->method_id != GW_M_CONNECT) /* a CONNECT tunnel announces nothing */
            p = put(p, "Connection: upgrade\r\n", 21);
    } else if (!r->keep_alive)
        p = put(p, "Connection: close\r\n", 19);
    else if (req->version == 10)
        p = put(p, "Connection: keep-alive\r\n", 24);
    p = put(p, "\r\n", 2);
    r->iov[r->niov++] = (struct iovec){buf, (size_t)(p - buf)};
    r->head_sent = true;
    return true;
}

/* ---- response body ---- */

static void add_iov(h1_req_t *r, const void *base, size_t len)
{
    if (len) r->iov[r->niov++] = (struct iovec){(void *)base, len};
}

static size_t total_len(const gw_slice_t *bufs, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++) t += bufs[i].len;
    return t;
}

static void add_trailers(h1_req_t *r)
{
    gw_req_t *req = &r->req;
    if (!req->res.trailers.count) {
        add_iov(r, "0\r\n\r\n", 5);
        return;
    }
    size_t n = 8;
    for (uint32_t i = 0; i < req->res.trailers.count; i++)
        n += req->res.trailers.items[i].name.len + req->res.trailers.items[i].value.len + 4;
    char *buf = gw_arena_alloc(&req->arena, n), *p = buf;
    if (!buf) return;
    p = put(p, "0\r\n", 3);
    for (uint32_t i = 0; i < req->res.trailers.count; i++) {
        const gw_header_t *h = &req->res.trailers.items[i];
        p = put(p, h->name.base, h->name.len);
        p = put(p, ": ", 2);
        p = put(p, h->value.base, h->value.len);
        p = put(p, "\r\n", 2);
    }
    p = put(p, "\r\n", 2);
    add_iov(r, buf, (size_t)(p - buf));
}

/* Queues body slices with chunk framing when needed; returns false when they do not fit. */
static bool queue_body(h1_req_t *r, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    if (r->niov + (int)n + 4 > H1_MAX_IOV) return false;
    size_t len = r->suppress_body ? 0 : total_len(bufs, n);
    if (len && r->chunked) {
        add_iov(r, r->chunk_hdr, chunk_header(r, len));
    }
    for (size_t i = 0; len && i < n; i++) add_iov(r, bufs[i].base, bufs[i].len);
    if (len && r->chunked) add_iov(r, "\r\n", 2);
    if (state == GW_SEND_FINAL && r->chunked) add_trailers(r);
    r->req.bytes_sent += len;
    return true;
}

static void h1_finish(h1_req_t *r);

/* Runs the write loop and, for a producer that wants more, its proceed() without recursion. */
static void pump(h1_req_t *r)
{
    if (r->in_send) return; /* the outer pump sends what a nested gw_send queued */
    r->in_send = true;
    for (;;) {
        enum flush_result fr = h1_flush(r);
        if (fr == FLUSH_GONE) return;
        if (fr == FLUSH_WAIT || !r->proceed_pending) break;
        r->proceed_pending = false;
        if (r->req.gen && r->req.gen->proceed) r->req.gen->proceed(r->req.gen, &r->req);
        if (r->niov == r->iov_idx && !r->file_left && r->state == GW_SEND_IN_PROGRESS) break;
    }
    r->in_send = false;
}

static void h1_send(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    h1_req_t *r = (h1_req_t *)req;
    if (r->broken) return; /* the close is on its way */
    if (r->niov == r->iov_idx) r->niov = r->iov_idx = 0;
    if (!r->head_sent && !build_head(r)) state = GW_SEND_ERROR;
    if (state != GW_SEND_ERROR && !queue_body(r, bufs, n, state)) state = GW_SEND_ERROR;
    r->state = state;
    pump(r);
}

static void h1_send_file(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state)
{
    h1_req_t *r = (h1_req_t *)req;
    if (r->broken) return; /* the close is on its way */
    if (r->niov == r->iov_idx) r->niov = r->iov_idx = 0;
    if (!r->head_sent && !build_head(r)) state = GW_SEND_ERROR;
    if (!r->suppress_body && len) {
        if (r->chunked) add_iov(r, r->chunk_hdr, chunk_header(r, len));
        r->file_fd = fd;
        r->file_off = off;
        r->file_left = len;
        r->ntail = r->tail_idx = 0;
        if (r->chunked) r->tail[r->ntail++] = (struct iovec){"\r\n", 2};
        if (r->chunked && state == GW_SEND_FINAL) r->tail[r->ntail++] = (struct iovec){"0\r\n\r\n", 5};
        req->bytes_sent += len;
    } else if (state == GW_SEND_FINAL && r->chunked) {
        add_trailers(r);
    }
    r->state = state;
    pump(r);
}

static void h1_send_informational(gw_req_t *req, int status, const gw_header_t *h, size_t n)
{
    h1_req_t *r = (h1_req_t *)req;
    if (req->version < 11 || r->head_sent) return;
    char buf[1024];
    int len = snprintf(buf, sizeof(buf), "HTTP/1.1 %d %s\r\n", status, gw_status_reason(status));
    for (size_t i = 0; i < n && len < (int)sizeof(buf) - 4; i++)
        len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%.*s: %.*s\r\n", (int)h[i].name.len,
                        h[i].name.base, (int)h[i].value.len, h[i].value.base);
    if (len > (int)sizeof(buf) - 3) return; /* too large to be worth sending; it is only a hint */
    len += snprintf(buf + len, sizeof(buf) - (size_t)len, "\r\n");
    struct iovec iov = {buf, (size_t)len};
    r->hc->c.xprt->writev(&r->hc->c, &iov, 1, false); /* best effort: a hint, small, rarely blocks */
}

/* ---- writing ---- */

static void arm_write(h1_req_t *r, bool on)
{
    h1_conn_t *hc = r->hc;
    r->writing = on;
    uint32_t ev = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0);
    gw_io_modify(&hc->c.io, ev);
    if (on)
        set_timer(hc, limits(hc)->send_timeout_ms);
    else if (r->tunnel)
        cancel_timer(hc);
}

static void advance_iov(struct iovec *iov, int *idx, int n, size_t w)
{
    while (*idx < n && w >= iov[*idx].iov_len) w -= iov[(*idx)++].iov_len;
    if (*idx < n) {
        iov[*idx].iov_base = (char *)iov[*idx].iov_base + w;
        iov[*idx].iov_len -= w;
    }
}

/* Writes file bytes: sendfile on plain TCP, else read into a chunk and write (TLS). */
static ssize_t write_file(h1_req_t *r)
{
    gw_conn_t *c = &r->hc->c;
    size_t want = r->file_left > (1u << 30) ? (1u << 30) : (size_t)r->file_left;
    if (c->xprt->sendfile) {
        off_t off = (off_t)r->file_off;
        ssize_t w = c->xprt->sendfile(c, r->file_fd, &off, want);
        if (w == 0) return -EIO; /* the file shrank under us: the body cannot be completed */
        return w;
    }
    char *chunk = gw_chunk_get(&c->worker->io_pool);
    if (!chunk) return -ENOMEM;
    size_t cl = c->worker->io_pool.chunk_size < want ? c->worker->io_pool.chunk_size : want;
    ssize_t n = pread(r->file_fd, chunk, cl, (off_t)r->file_off);
    ssize_t w = n > 0 ? c->xprt->writev(c, &(struct iovec){chunk, (size_t)n}, 1, false) : (n == 0 ? -EIO : -errno);
    gw_chunk_put(&c->worker->io_pool, chunk);
    return w;
}

/* One pass of writing; returns <0 on error, 0 when blocked, 1 when everything queued was written. */
static int write_some(h1_req_t *r)
{
    gw_conn_t *c = &r->hc->c;
    /* The last bytes before a close are held (MSG_MORE) for the close's FIN to carry: one segment
     * fewer per closed connection, sent and received. h1_finish closes (or shuts down) right after
     * a final flush without keep-alive, so nothing waits on the hold. */
    bool fin_follows = r->state == GW_SEND_FINAL && !r->keep_alive;
    while (r->iov_idx < r->niov) {
        bool more = r->file_left > 0 || fin_follows;
        ssize_t w = c->xprt->writev(c, r->iov + r->iov_idx, r->niov - r->iov_idx, more);
        if (w < 0) return w == -EAGAIN ? 0 : -1;
        advance_iov(r->iov, &r->iov_idx, r->niov, (size_t)w);
    }
    while (r->file_left) {
        ssize_t w = write_file(r);
        if (w < 0) return w == -EAGAIN ? 0 : -1;
        r->file_off += (uint64_t)w;
        r->file_left -= (uint64_t)w;
    }
    while (r->tail_idx < r->ntail) {
        ssize_t w = c->xprt->writev(c, r->tail + r->tail_idx, r->ntail - r->tail_idx, fin_follows);
        if (w < 0) return w == -EAGAIN ? 0 : -1;
        advance_iov(r->tail, &r->tail_idx, r->ntail, (size_t)w);
    }
    return 1;
}

static enum flush_result h1_flush(h1_req_t *r)
{
    if (r->broken) return FLUSH_WAIT;
    int rc = write_some(r);
    if (rc < 0 && r->state == GW_SEND_IN_PROGRESS) {
        /* the client is gone while a producer is mid-stream (maybe on the stack of this very
         * gw_send): the request must outlive this call, so the close happens from the loop, and
         * the producer learns it through its stop() */
        r->broken = true;
        set_timer(r->hc, 0);
        return FLUSH_WAIT;
    }
    if (rc < 0 || r->state == GW_SEND_ERROR) {
        /* an abort is never turned into a clean end: the client sees the connection close */
        h1_close(r->hc);
        return FLUSH_GONE;
    }
    if (rc == 0) {
        if (!r->writing) arm_write(r, true);
        return FLUSH_WAIT;
    }
    if (r->writing) arm_write(r, false);
    r->niov = r->iov_idx = 0;
    r->ntail = r->tail_idx = 0;
    if (r->state == GW_SEND_FINAL) {
        h1_finish(r);
        return FLUSH_GONE;
    }
    r->proceed_pending = true;
    return FLUSH_DONE;
}

/* ---- request body ---- */

/* Gets the next piece of body data available in rbuf without reading from the socket. */
static gw_slice_t next_body_piece(h1_req_t *r, int *err)
{
    h1_conn_t *hc = r->hc;
    char *p = hc->rbuf + r->body_off;
    size_t avail = hc->rlen - r->body_off;
    *err = 0;
    if (r->body_framing == GW_BODY_TUNNEL) { /* everything that arrives, as it arrives */
        r->delivered = (uint32_t)avail;
        return (gw_slice_t){p, avail};
    }
    if (r->body_framing == GW_BODY_LENGTH) {
        size_t take = avail < r->body_left ? avail : (size_t)r->body_left;
        r->body_left -= take;
        r->delivered = (uint32_t)take;
        r->body_done = r->body_left == 0;
        return (gw_slice_t){p, take};
    }
    size_t dlen = avail;
    long used = gw_chunked_decode(&r->dec, p, &dlen, 4096, r->req.route->max_body_bytes);
    if (used < 0) {
        *err = (int)-used;
        return (gw_slice_t){NULL, 0};
    }
    /* decoded data sits at p[0..dlen); input bytes p[used..avail) belong to the next request */
    memmove(p + dlen, p + used, avail - (size_t)used);
    hc->rlen -= (uint32_t)((size_t)used - dlen);
    r->delivered = (uint32_t)dlen;
    r->body_done = r->dec.done;
    return (gw_slice_t){p, dlen};
}

/* The consumer acknowledged the last piece: drop its bytes from rbuf. */
static void consume_piece(h1_req_t *r)
{
    h1_conn_t *hc = r->hc;
    char *p = hc->rbuf + r->body_off;
    memmove(p, p + r->delivered, hc->rlen - r->body_off - r->delivered);
    hc->rlen -= r->delivered;
    r->delivered = 0;
    r->body_busy = false;
}

static void send_continue(h1_req_t *r)
{
    r->continue_sent = true;
    if (!r->req.expect_continue || r->req.res_started || r->body_done) return;
    struct iovec iov = {"HTTP/1.1 100 Continue\r\n\r\n", 25};
    r->hc->c.xprt->writev(&r->hc->c, &iov, 1, false);
}

static void h1_body_resume(gw_req_t *req)
{
    h1_req_t *r = (h1_req_t *)req;
    if (!req->body_cb || r->body_end_sent) return;
    if (r->body_busy) consume_piece(r);
    if (!r->continue_sent) send_continue(r);
    if (r->body_framing == GW_BODY_NONE) r->body_done = true;
    int err = 0;
    gw_slice_t piece = r->body_done ? (gw_slice_t){NULL, 0} : next_body_piece(r, &err);
    if (err) {
        r->body_end_sent = true;
        r->keep_alive = false;
        req->body_error = err == 413 ? gw_err_body_too_large : gw_err_bad_request_body;
        req->body_cb(req, req->body_ctx, piece, GW_BODY_ABORT);
        return;
    }
    if (!piece.len && !r->body_done) {
        /* wait for the socket; reading may have been paused while the buffer was full */
        gw_io_modify(&r->hc->c.io, EPOLLIN | EPOLLRDHUP | (r->writing ? EPOLLOUT : 0));
        gw_conn_t *c = &r->hc->c;
        if (c->xprt->pending && c->xprt->pending(c)) on_readable_active(r->hc); /* TLS holds input */
        return;
    }
    r->body_busy = true;
    if (r->body_done) r->body_end_sent = true;
    req->body_cb(req, req->body_ctx, piece, r->body_done ? GW_BODY_END : GW_BODY_MORE);
}

/* After the response: skip a body nobody read if it is already buffered, else close. */
static bool discard_body(h1_req_t *r)
{
    /* the last piece is never acknowledged by a consumer that had all of it: drop its bytes too,
     * or they would be read as the start of the next request */
    if (r->body_busy) consume_piece(r);
    if (r->body_done || r->body_framing == GW_BODY_NONE) return true;
    for (int guard = 0; guard < 64 && !r->body_done; guard++) {
        int err = 0;
        gw_slice_t piece = next_body_piece(r, &err);
        if (err) return false;
        r->body_busy = true;
        consume_piece(r);
        if (!piece.len && !r->body_done) return false;
    }
    return r->body_done;
}

/* Skips the body as it arrives, keeping the socket armed for it (reading stops when rbuf fills). */
static void skip_arriving_body(h1_req_t *r)
{
    if (discard_body(r)) return;
    gw_conn_t *c = &r->hc->c;
    gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP | (r->writing ? EPOLLOUT : 0));
    if (c->xprt->pending && c->xprt->pending(c)) on_readable_active(r->hc); /* TLS holds input */
}

/* The errorConfig re-run reads an empty body instead (request.c): the client's is skipped as it
 * comes, so a response after all of it arrived keeps the connection (decide_framing, h1_finish). */
static void h1_body_discard(gw_req_t *req)
{
    h1_req_t *r = (h1_req_t *)req;
    r->discarding = true;
    skip_arriving_body(r);
}

/* ---- request lifecycle ---- */

static const gw_codec_ops_t h1_ops = {"HTTP/1.1", h1_send, h1_send_file, h1_send_informational,
                                      h1_body_resume, h1_body_discard};
static const gw_codec_ops_t h10_ops = {"HTTP/1.0", h1_send, h1_send_file, h1_send_informational,
                                       h1_body_resume, h1_body_discard};

static h1_req_t *new_request(h1_conn_t *hc)
{
    gw_arena_t arena;
    gw_arena_init(&arena, &hc->c.worker->io_pool);
    h1_req_t *r = gw_arena_alloc(&arena, sizeof(*r));
    if (!r) return NULL;
    memset(r, 0, offsetof(h1_req_t, iov));
    r->req.arena = arena;
    r->hc = hc;
    r->file_fd = -1;
    r->keep_alive = true;
    r->req.codec = &h1_ops;
    r->req.conn = &hc->c.info;
    r->req.worker = hc->c.worker;
    gw_worker_attach_cfg(hc->c.worker, &r->req); /* req.cfg, counted until gw_req_dispose */
    r->req.res.content_length = -1;
    r->req.start_ms = gw_loop_now(hc->c.worker->loop);
    hc->req = &r->req;
    hc->state = H1_ACTIVE;
    return r;
}

/* The Host value lower-cased. Most clients send it so (the parser says when): then the header's own
 * bytes serve, as they live as long as the request; an absent Host stays an empty string, never NULL. */
static void lower_authority(h1_req_t *r, gw_slice_t host, bool already_lower)
{
    if (host.len && already_lower) {
        r->req.authority = host;
        return;
    }
    char *low = gw_arena_strndup(&r->req.arena, host.base, host.len);
    if (!low) return;
    for (size_t i = 0; i < host.len; i++)
        if (low[i] >= 'A' && low[i] <= 'Z') low[i] = (char)(low[i] + 32);
    r->req.authority = (gw_slice_t){low, host.len};
}

/* A head the parser refused: answer with its status and close after a lingering read. */
static void reject(h1_conn_t *hc, int status)
{
    h1_req_t *r = new_request(hc);
    if (!r) {
        h1_close(hc);
        return;
    }
    r->keep_alive = false;
    r->req.method = GW_SLICE_LIT("-");
    r->req.target = GW_SLICE_LIT("-");
    r->req.version = 11;
    r->req.route = &hc->c.worker->cfg->global_route;
    r->head_len = hc->rlen;
    r->body_done = true;
    gw_send_error(&r->req, status);
}

static void start_request(h1_conn_t *hc, const gw_h1_request_head_t *head, int head_len)
{
    h1_req_t *r = new_request(hc);
    gw_h1_framing_t fr;
    if (!r) {
        h1_close(hc);
        return;
    }
    gw_req_t *req = &r->req;
    req->method = head->method;
    req->method_id = gw_method_intern(head->method);
    req->target = head->target;
    req->version = head->minor_version ? 11 : 10;
    req->codec = head->minor_version ? &h1_ops : &h10_ops;
    req->headers = gw_arena_alloc(&req->arena, head->num_headers * sizeof(gw_header_t) + 1);
    if (req->headers) memcpy(req->headers, head->headers, head->num_headers * sizeof(gw_header_t));
    req->num_headers = req->headers ? head->num_headers : 0;
    r->head_len = r->body_off = (uint32_t)head_len;
    int err = gw_h1_request_framing(head, &fr);
    if (err == 0) {
        r->keep_alive = fr.keep_alive;
        req->upgrade = fr.upgrade && req->version == 11;
        req->body_kind = r->body_framing = fr.body;
        req->content_length = fr.content_length;
        r->body_left = fr.content_length;
        r->body_done = fr.body == GW_BODY_NONE;
        req->expect_continue = fr.expect_continue;
        lower_authority(r, fr.host, fr.host_lower);
    }
    start_request_timer(hc, limits(hc)->request_timeout_ms);
    if (err) {
        r->keep_alive = false;
        req->route = &hc->c.worker->cfg->global_route;
        gw_send_error(req, -err);
        return;
    }
    gw_req_dispatch(req);
}

static void enter_idle(h1_conn_t *hc)
{
    hc->state = H1_IDLE;
    if (!hc->rlen) release_rbuf(hc);
    gw_worker_set_idle(hc->c.worker, &hc->c, true);
    wait_client(hc);
    set_timer(hc, limits(hc)->keepalive_timeout_ms);
}

static void enter_linger(h1_conn_t *hc)
{
    hc->state = H1_LINGER;
    release_rbuf(hc); /* a closing connection holds no buffer; what arrives is read and dropped */
    shutdown(hc->c.io.fd, SHUT_WR);
    wait_client(hc);
    set_timer(hc, LINGER_MS);
}

/* The response was written: log, dispose, and go on with keep-alive, pipelining or close. */
static void h1_finish(h1_req_t *r)
{
    h1_conn_t *hc = r->hc;
    gw_req_t *req = &r->req;
    gw_log_access(hc->c.worker->access_log, req, gw_loop_wall(hc->c.worker->loop));
    bool complete = discard_body(r);
    bool keep = r->keep_alive && complete && !hc->c.worker->draining;
    uint32_t used = r->body_off;
    gw_req_dispose(req);
    hc->req = NULL;
    gw_arena_t arena = req->arena;
    gw_arena_reset(&arena); /* r is gone from here on */
    if (!keep) {
        /* linger only when the client may still be sending: closing with unread data would make
         * the kernel reset the connection and could destroy the response before it is read */
        if (complete && hc->rlen == used)
            h1_close(hc);
        else
            enter_linger(hc);
        return;
    }
    hc->rlen -= used;
    if (hc->rlen) memmove(hc->rbuf, hc->rbuf + used, hc->rlen);
    if (!hc->rlen) {
        enter_idle(hc);
        return;
    }
    hc->state = H1_HEAD; /* a pipelined request is already buffered */
    set_timer(hc, limits(hc)->header_timeout_ms);
    if (!hc->in_process) h1_process(hc);
}

static bool try_parse(h1_conn_t *hc)
{
    const gw_limits_t *l = limits(hc);
    gw_h1_limits_t pl = {l->max_head_bytes, l->max_headers, l->max_target_bytes};
    gw_h1_request_head_t head = {.headers = hc->c.worker->hdr_scratch};
    int n = gw_h1_parse_request(hc->rbuf, hc->rlen, &head, &pl);
    if (n == 0 && hc->rlen < hc->cap) {
        wait_client(hc); /* the rest of the head */
        return false;
    }
    if (n <= 0) {
        reject(hc, n == 0 ? 431 : -n);
        return true;
    }
    start_request(hc, &head, n);
    return true;
}

/* Parses and runs every complete request in the buffer (pipelining), one at a time. */
static void h1_process(h1_conn_t *hc)
{
    hc->in_process = true;
    while (!hc->closed && hc->state == H1_HEAD && hc->rlen)
        if (!try_parse(hc)) break;
    hc->in_process = false;
    if (hc->closed) h1_close(hc);
}

/* ---- events ---- */

static void on_readable_active(h1_conn_t *hc)
{
    h1_req_t *r = (h1_req_t *)hc->req;
    if (hc->rlen >= hc->cap) {
        gw_io_modify(&hc->c.io, r->writing ? EPOLLOUT : 0); /* full: stop reading until it drains */
        return;
    }
    ssize_t n = fill(hc);
    if (n == 0 || (n < 0 && n != -EAGAIN)) {
        h1_close(hc); /* the client went away: the request is cancelled */
        return;
    }
    if (r->req.body_cb && !r->body_busy)
        h1_body_resume(&r->req);
    else if (r->discarding)
        skip_arriving_body(r);
}

/* The connection speaks HTTP/2: the h2 codec takes the socket, the transport and the bytes read. */
static void handoff_to_h2(h1_conn_t *hc)
{
    gw_worker_t *w = hc->c.worker;
    gw_worker_untrack(w, &hc->c);
    gw_timer_cancel(&hc->c.timer);
    gw_io_stop(&hc->c.io);
    gw_h2_takeover(&hc->c, hc->rbuf, hc->rlen); /* closes the connection itself if it fails */
    release_rbuf(hc);
    gw_chunk_put(&w->conn_pool, hc);
}

static void on_readable(h1_conn_t *hc)
{
    if (hc->state == H1_ACTIVE) {
        on_readable_active(hc);
        return;
    }
    if (hc->state == H1_LINGER) {
        char sink[4096]; /* discard what the client still sends */
        ssize_t d = hc->c.xprt->read(&hc->c, sink, sizeof(sink));
        if (d == 0 || (d < 0 && d != -EAGAIN)) h1_close(hc);
        return;
    }
    ssize_t n = fill(hc);
    if (n == 0 || (n < 0 && n != -EAGAIN)) {
        h1_close(hc);
        return;
    }
    if (n < 0) {
        if (!hc->rlen) release_rbuf(hc);
        wait_client(hc);
        return;
    }
    if (hc->fresh) {
        int h2 = gw_h2_detect(&hc->c, hc->rbuf, hc->rlen);
        if (h2 < 0) { /* a partial preface: wait for the rest */
            wait_client(hc);
            return;
        }
        if (h2 > 0) {
            handoff_to_h2(hc);
            return;
        }
        hc->fresh = false;
    }
    if (hc->state == H1_IDLE) {
        gw_worker_set_idle(hc->c.worker, &hc->c, false);
        hc->state = H1_HEAD;
        set_timer(hc, limits(hc)->header_timeout_ms);
    }
    h1_process(hc);
}

static void on_io(gw_io_t *io, uint32_t events)
{
    h1_conn_t *hc = gw_container_of(io, h1_conn_t, c.io);
    if ((events & EPOLLOUT) && hc->state == H1_ACTIVE) {
        h1_req_t *r = (h1_req_t *)hc->req;
        if (r->writing) {
            pump(r);
            return; /* the request may be gone; input is seen on the next wake-up */
        }
    }
    /* EPOLLOUT outside a response: the TLS handshake waited for room for its flight (tls.c) */
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) || ((events & EPOLLOUT) && hc->state != H1_ACTIVE))
        on_readable(hc);
}

static void on_timeout(gw_timer_t *t)
{
    h1_conn_t *hc = gw_container_of(t, h1_conn_t, c.timer);
    if (hc->watch_pending) { /* the exchange outlasted WATCH_DELAY_MS: watch the client from now */
        hc->watch_pending = false;
        uint32_t rt = limits(hc)->request_timeout_ms;
        if (gw_io_arm(&hc->c.io) != 0)
            h1_close(hc);
        else if (rt)
            gw_timer_set(hc->c.worker->loop, &hc->c.timer, rt - WATCH_DELAY_MS);
        return;
    }
    if (hc->state == H1_ACTIVE && ((h1_req_t *)hc->req)->broken) {
        h1_close(hc);
        return;
    }
    if (hc->state == H1_HEAD && hc->rlen) {
        reject(hc, 408); /* a slow client: tell it, then close */
        return;
    }
    if (hc->state == H1_ACTIVE && !hc->req->res_started) {
        h1_req_t *r = (h1_req_t *)hc->req;
        r->keep_alive = false;
        gw_send_error(hc->req, 408);
        return;
    }
    h1_close(hc);
}

static void h1_close(h1_conn_t *hc)
{
    if (hc->in_process) {
        hc->closed = true; /* h1_process finishes the close when it unwinds */
        return;
    }
    gw_worker_t *w = hc->c.worker;
    if (hc->req) {
        gw_req_t *req = hc->req;
        if (!req->res_done && req->res.status == 0) req->res.status = 499;
        gw_log_access(w->access_log, req, gw_loop_wall(w->loop));
        gw_req_dispose(req);
        gw_arena_t arena = req->arena;
        gw_arena_reset(&arena);
        hc->req = NULL;
    }
    if (hc->state == H1_IDLE) gw_worker_set_idle(w, &hc->c, false);
    gw_worker_untrack(w, &hc->c);
    gw_timer_cancel(&hc->c.timer);
    hc->c.xprt->dispose(&hc->c);
    gw_io_close(&hc->c.io); /* closing the fd removes it from epoll: no EPOLL_CTL_DEL */
    release_rbuf(hc);
    gw_chunk_put(&w->conn_pool, hc);
    gw_worker_conn_closed(w);
}

void gw_conn_drain(gw_conn_t *c)
{
    if (c->drain) {
        c->drain(c); /* another codec (HTTP/2) */
        return;
    }
    h1_conn_t *hc = (h1_conn_t *)c;
    if (hc->state != H1_IDLE) return; /* busy ones close after their response */
    /* the client may have sent its next request already: one more is answered, with Connection:
     * close, if it comes within gracefulIdleTimeout; the keep-alive timer closes the connection */
    uint32_t ms = limits(hc)->graceful_idle_ms;
    if (ms)
        set_timer(hc, ms);
    else
        h1_close(hc);
}

/* Forced close at worker exit (the graceful timeout ran out). */
static void h1_abort(gw_conn_t *c)
{
    h1_close((h1_conn_t *)c);
}

static void h1_start(gw_worker_t *w, int fd, const struct sockaddr_in6 *peer,
                     const struct sockaddr_in6 *local, const gw_transport_ops_t *xprt, void *xprt_ctx,
                     bool admin);

void gw_h1_accept(gw_worker_t *w, int fd, const struct sockaddr_in6 *peer, const struct sockaddr_in6 *local)
{
    h1_start(w, fd, peer, local, &gw_tcp_transport, NULL, false);
}

void gw_h1_accept_admin(gw_worker_t *w, int fd, const struct sockaddr_in6 *peer,
                        const struct sockaddr_in6 *local)
{
    h1_start(w, fd, peer, local, &gw_tcp_transport, NULL, true);
}

void gw_h1_start(gw_worker_t *w, int fd, const struct sockaddr_in6 *peer, const struct sockaddr_in6 *local,
                 const gw_transport_ops_t *xprt, void *xprt_ctx)
{
    h1_start(w, fd, peer, local, xprt, xprt_ctx, false);
}

/* A connection that could not be set up: its transport and socket are let go. Apart from h1_start
 * so that the common path does not build the transient gw_conn_t. */
static void refuse_start(gw_worker_t *w, int fd, const gw_transport_ops_t *xprt, void *xprt_ctx)
{
    gw_conn_t tmp = {.xprt = xprt, .xprt_ctx = xprt_ctx};
    xprt->dispose(&tmp);
    close(fd);
    gw_worker_conn_closed(w);
}

static void h1_start(gw_worker_t *w, int fd, const struct sockaddr_in6 *peer,
                     const struct sockaddr_in6 *local, const gw_transport_ops_t *xprt, void *xprt_ctx,
                     bool admin)
{
    h1_conn_t *hc = gw_chunk_get(&w->conn_pool);
    if (!hc) {
        refuse_start(w, fd, xprt, xprt_ctx);
        return;
    }
    memset(hc, 0, sizeof(*hc));
    hc->c.worker = w;
    hc->c.xprt = xprt;
    hc->c.xprt_ctx = xprt_ctx;
    hc->c.info.peer = *peer;
    hc->c.info.local = *local;
    hc->c.info.fd = fd;
    /* a wildcard listener's connection: its own address is looked up if something needs it */
    hc->c.info.local_pending = local->sin6_family == AF_INET6 && gw_listen_is_wildcard(&local->sin6_addr);
    hc->c.info.tls = xprt != &gw_tcp_transport;
    hc->c.info.admin = admin;
    hc->fresh = true;
    gw_timer_init(&hc->c.timer, on_timeout);
    /* plain TCP joins epoll when it must wait (wait_client); TLS handshakes wait at once */
    int rc = xprt == &gw_tcp_transport ? gw_io_start_lazy(w->loop, &hc->c.io, fd, EPOLLIN | EPOLLRDHUP, on_io)
                                       : gw_io_start(w->loop, &hc->c.io, fd, EPOLLIN | EPOLLRDHUP, on_io);
    if (rc != 0) {
        gw_chunk_put(&w->conn_pool, hc);
        refuse_start(w, fd, xprt, xprt_ctx);
        return;
    }
    hc->state = H1_HEAD;
    hc->c.abort = h1_abort;
    gw_worker_track(w, &hc->c);
    set_timer(hc, limits(hc)->header_timeout_ms);
    on_readable(hc); /* TCP_DEFER_ACCEPT: the request is usually here already */
}

/** Size of the connection struct, for the worker's connection pool. */
size_t gw_h1_conn_size(void)
{
    return sizeof(h1_conn_t);
}
