/* Requests to the ACME CA on worker 0's loop. See acme_fetch.h. */
#include "acme_fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>

#include <openssl/x509.h>

#include "errors.h"
#include "http1_parser.h"
#include "http_cond.h"
#include "log.h"
#include "pool.h"
#include "tls_client.h"
#include "worker.h"

#define HEAD_MAX 16384 /* status line and headers of an answer */
#define HEADERS_MAX 64
#define CHUNK_LINE_MAX 4096

/* Worker 0's state (w->acme): one exchange at a time, as the ACME thread asks one at a time. */
typedef struct fetch {
    gw_worker_t *worker;
    gw_tls_client_t *tls;
    gw_pool_t *pool; /* to `origin`; remade when a URL names another one */
    gw_target_t origin;
    char host[256], authority[300]; /* origin's strings */
    gw_acme_job_t *job;             /* in flight, else NULL */
    gw_pool_waiter_t waiter;
    gw_upconn_t *conn;
    gw_timer_t timer; /* bounds the whole exchange by automaticTLSTimeout */
    size_t sent;
    bool want_out;
    bool retried; /* a kept-alive connection the CA had closed was replaced once */
    /* the answer: the head is parsed in place, then buf holds the (decoded) body */
    char *buf;
    size_t len, cap, received;
    bool head_done;
    gw_h1_framing_t framing;
    gw_chunked_decoder_t dec;
} fetch_t;

/* ---- ending an exchange ---- */

static void reset_answer(fetch_t *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = f->received = 0;
    f->head_done = false;
    f->dec = (gw_chunked_decoder_t){0};
}

/* Gives the connection back (kept only after a complete answer) or stops the connection attempt. */
static void drop_connection(fetch_t *f, bool reusable)
{
    if (f->conn) {
        gw_upconn_t *c = f->conn;
        f->conn = NULL;
        if (f->want_out) gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP); /* what the pool keeps armed */
        f->want_out = false;
        gw_pool_release(c, reusable && f->sent == f->job->request_len);
    } else {
        gw_pool_cancel(&f->waiter);
    }
}

/* Ends the exchange and hands the job back: `err` NULL for an answer (in job->res). */
static void finish(fetch_t *f, const char *err, bool reusable)
{
    gw_acme_job_t *job = f->job;
    gw_timer_cancel(&f->timer);
    drop_connection(f, reusable && !err);
    reset_answer(f);
    job->ok = err == NULL;
    if (err) snprintf(job->err, sizeof(job->err), "%s", err);
    f->job = NULL;
    gw_acme_job_done(job);
}

/* "host:port: what (detail)" */
static void fail(fetch_t *f, const char *what, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s:%u: %s%s%s%s", f->job->host, (unsigned)f->job->port, what,
             detail ? " (" : "", detail ? detail : "", detail ? ")" : "");
    finish(f, msg, false);
}

/* ---- the answer ---- */

static void copy_value(gw_slice_t v, char *out, size_t cap)
{
    if (v.len >= cap) return; /* longer than any nonce or URL we use: left out */
    memcpy(out, v.base, v.len);
    out[v.len] = '\0';
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); -1 when absent or invalid. */
static long retry_after(gw_slice_t v)
{
    long secs = 0;
    size_t i = 0;
    for (; i < v.len && v.base[i] >= '0' && v.base[i] <= '9'; i++)
        secs = secs < 100000000 ? secs * 10 + (v.base[i] - '0') : secs; /* saturates: acme.c caps it */
    if (v.len && i == v.len) return secs;
    int64_t at;
    if (!gw_http_date_parse(v, &at)) return -1;
    int64_t in = at - (int64_t)time(NULL);
    return in > 0 ? (long)in : 0;
}

static void take_headers(fetch_t *f, const gw_h1_response_head_t *h)
{
    gw_acme_response_t *res = &f->job->res;
    res->status = h->status;
    for (size_t i = 0; i < h->num_headers; i++) {
        gw_slice_t name = h->headers[i].name, value = h->headers[i].value;
        if (gw_slice_ieq(name, "replay-nonce")) copy_value(value, res->nonce, sizeof(res->nonce));
        if (gw_slice_ieq(name, "location")) copy_value(value, res->location, sizeof(res->location));
        if (gw_slice_ieq(name, "retry-after")) res->retry_after = retry_after(value);
    }
}

/* The answer is complete: the body moves to the job. */
static void complete(fetch_t *f, bool reusable)
{
    gw_acme_response_t *res = &f->job->res;
    f->buf[f->len] = '\0'; /* reserve() always leaves room for it */
    res->body = f->buf;
    res->body_len = f->len;
    f->buf = NULL;
    finish(f, NULL, reusable && f->framing.keep_alive && f->framing.body != GW_BODY_CLOSE);
}

/* n raw body bytes arrived at buf[len..]. False once the exchange ended. */
static bool take_body(fetch_t *f, size_t n)
{
    if (f->framing.body == GW_BODY_CHUNKED) {
        size_t raw = n;
        long used = gw_chunked_decode(&f->dec, f->buf + f->len, &n, CHUNK_LINE_MAX, GW_ACME_MAX_BODY);
        if (used < 0) {
            fail(f, used == -413 ? "answer too large" : "malformed chunked answer", NULL);
            return false;
        }
        f->len += n;
        if (!f->dec.done) return true;
        complete(f, (size_t)used == raw);
        return false;
    }
    f->len += n;
    if (f->framing.body == GW_BODY_LENGTH && f->len >= f->framing.content_length) {
        bool exact = f->len == f->framing.content_length;
        f->len = f->framing.content_length;
        complete(f, exact);
        return false;
    }
    if (f->len > GW_ACME_MAX_BODY) {
        fail(f, "answer too large", NULL);
        return false;
    }
    return true;
}

/* Parses the head once it is complete (interim 1xx heads are skipped). False once the exchange ended. */
static bool take_head(fetch_t *f)
{
    for (;;) {
        gw_header_t headers[HEADERS_MAX];
        gw_h1_response_head_t h = {.headers = headers};
        gw_h1_limits_t lim = {HEAD_MAX, HEADERS_MAX, HEAD_MAX};
        int n = gw_h1_parse_response(f->buf, f->len, &h, &lim);
        if (n < 0 || (n == 0 && f->len >= HEAD_MAX)) {
            fail(f, "malformed HTTP answer", NULL);
            return false;
        }
        if (n == 0) return true; /* more bytes */
        if (h.status < 200) {
            memmove(f->buf, f->buf + n, f->len - (size_t)n);
            f->len -= (size_t)n;
            continue;
        }
        gw_slice_t method = f->job->head ? (gw_slice_t){"HEAD", 4} : (gw_slice_t){"GET", 3};
        if (gw_h1_response_framing(&h, method, &f->framing) != 0) {
            fail(f, "malformed HTTP answer framing", NULL);
            return false;
        }
        if (f->framing.body == GW_BODY_LENGTH && f->framing.content_length > GW_ACME_MAX_BODY) {
            fail(f, "answer too large", NULL);
            return false;
        }
        take_headers(f, &h);
        size_t rest = f->len - (size_t)n;
        memmove(f->buf, f->buf + n, rest);
        f->len = 0;
        f->head_done = true;
        if (f->framing.body == GW_BODY_NONE) {
            complete(f, rest == 0);
            return false;
        }
        return take_body(f, rest);
    }
}

/* Room for the next read, plus the NUL the body gets; false when the answer is too large. */
static bool reserve(fetch_t *f)
{
    size_t want = f->len + 4096 + 1;
    if (want <= f->cap) return true;
    size_t cap = f->cap ? f->cap * 2 : 16384;
    while (cap < want)
        cap *= 2;
    if (cap > HEAD_MAX + GW_ACME_MAX_BODY + 8192) cap = HEAD_MAX + GW_ACME_MAX_BODY + 8192;
    if (cap < want) return false;
    char *nb = realloc(f->buf, cap);
    if (!nb) return false;
    f->buf = nb;
    f->cap = cap;
    return true;
}

/* ---- the exchange ---- */

static void on_conn(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err);

static void acquire(fetch_t *f, bool fresh)
{
    /* probe: the ACME thread backs off by itself, the pool's back-off after a refusal must not
     * fail its next attempt unasked */
    f->waiter = (gw_pool_waiter_t){.cb = on_conn, .data = f, .fresh = fresh, .probe = true};
    gw_pool_acquire(f->pool, &f->waiter);
}

/* The CA closed a kept-alive connection before answering (it may have timed it out just then):
 * the request goes once more on a new connection. */
static bool retry_stale(fetch_t *f)
{
    if (f->received || f->retried || !f->conn || !f->conn->reused) return false;
    f->retried = true;
    drop_connection(f, false);
    reset_answer(f);
    f->sent = 0;
    acquire(f, true);
    return true;
}

static void on_closed(fetch_t *f, ssize_t n)
{
    if (f->head_done && f->framing.body == GW_BODY_CLOSE) {
        complete(f, false);
        return;
    }
    if (retry_stale(f)) return;
    fail(f, "connection closed before the answer was complete", n == 0 ? "end of stream" : strerror((int)-n));
}

static void receive(fetch_t *f)
{
    for (;;) {
        if (!reserve(f)) {
            fail(f, "answer too large", NULL);
            return;
        }
        ssize_t n = gw_upconn_read(f->conn, f->buf + f->len, f->cap - f->len - 1);
        if (n == -EAGAIN) return;
        if (n <= 0) {
            on_closed(f, n);
            return;
        }
        f->received += (size_t)n;
        bool going_on;
        if (f->head_done) {
            going_on = take_body(f, (size_t)n);
        } else {
            f->len += (size_t)n;
            going_on = take_head(f);
        }
        if (!going_on) return;
    }
}

/* Writes the request; false when the exchange ended. */
static bool send_request(fetch_t *f)
{
    gw_acme_job_t *job = f->job;
    int rc = gw_upconn_send_all(f->conn, job->request, job->request_len, &f->sent, &f->want_out);
    if (rc < 0 && !retry_stale(f)) fail(f, "cannot send the request", strerror(-rc));
    return rc == 0;
}

static void on_event(gw_upconn_t *c, uint32_t events)
{
    fetch_t *f = c->owner;
    if ((events & EPOLLOUT) && !send_request(f)) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) receive(f);
}

static void on_conn(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err)
{
    fetch_t *f = w->data;
    if (err == gw_err_tls && w->tls_verify != X509_V_OK) {
        fail(f, "TLS handshake failed: certificate verify failed",
             X509_verify_cert_error_string(w->tls_verify));
        return;
    }
    if (err) {
        fail(f, err == gw_err_dns ? "the name did not resolve through the resolver" : err, NULL);
        return;
    }
    f->conn = c;
    c->owner = f;
    c->on_event = on_event;
    c->on_timeout = NULL;            /* the exchange's own timer bounds it */
    if (send_request(f)) receive(f); /* an answer may already wait (TLS read ahead) */
}

static void on_timer(gw_timer_t *t)
{
    fetch_t *f = gw_container_of(t, fetch_t, timer);
    char detail[64];
    snprintf(detail, sizeof(detail), "%u ms", f->job->timeout_ms);
    fail(f, "no answer within automaticTLSTimeout", detail);
}

/* ---- worker 0's state ---- */

static fetch_t *fetch_get(gw_worker_t *w, const char *ca_file, char *err, size_t errlen)
{
    if (w->acme) return w->acme;
    fetch_t *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* the ACME settings stay as they were at start until a restart (gw_acme_same_settings) */
    if (!(f->tls = gw_tls_client_new(ca_file, err, errlen))) {
        free(f);
        return NULL;
    }
    f->worker = w;
    gw_timer_init(&f->timer, on_timer);
    w->acme = f;
    return f;
}

/* The pool to host:port, made anew when the previous request went elsewhere. */
static bool use_origin(fetch_t *f, const char *host, uint16_t port)
{
    if (f->pool && f->origin.port == port && !strcmp(f->host, host)) return true;
    gw_pool_free_private(f->pool); /* no connection of it is in use: one exchange at a time */
    snprintf(f->host, sizeof(f->host), "%s", host);
    snprintf(f->authority, sizeof(f->authority), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             (unsigned)port);
    f->origin = (gw_target_t){.id = UINT32_MAX,
                              .proto = GW_PROTO_HTTP1,
                              .tls = true,
                              .host = f->host,
                              .port = port,
                              .authority = f->authority,
                              .base_path = f->host + strlen(f->host),
                              .url = f->authority};
    f->pool = gw_pool_new_private(f->worker, &f->origin, f->tls);
    return f->pool != NULL;
}

static void start(gw_worker_t *w, gw_acme_job_t *job)
{
    char err[256] = "";
    fetch_t *f = fetch_get(w, job->ca_file, err, sizeof(err));
    if (f && f->job) finish(f, "abandoned for a newer request", false); /* not expected: one at a time */
    if (!f || !use_origin(f, job->host, job->port)) {
        job->ok = false;
        snprintf(job->err, sizeof(job->err), "%s", err[0] ? err : "out of memory");
        gw_acme_job_done(job);
        return;
    }
    f->job = job;
    f->sent = 0;
    f->retried = f->want_out = false;
    reset_answer(f);
    gw_timer_set(w->loop, &f->timer, job->timeout_ms);
    acquire(f, false);
}

static void on_start_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    start(gw_loop_data(loop), gw_container_of(msg, gw_acme_job_t, start_msg));
}

static void on_cancel_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    gw_worker_t *w = gw_loop_data(loop);
    gw_acme_job_t *job = gw_container_of(msg, gw_acme_job_t, cancel_msg);
    fetch_t *f = w->acme;
    if (f && f->job == job) finish(f, "cancelled", false);
    gw_acme_job_release(job); /* the message's reference */
}

static void post(gw_loop_t *loop, gw_acme_job_t *job, gw_msg_t *msg, void (*fn)(gw_loop_t *, gw_msg_t *))
{
    pthread_mutex_lock(&job->lock);
    job->refs++;
    pthread_mutex_unlock(&job->lock);
    msg->fn = fn;
    gw_loop_post(loop, msg);
}

void gw_acme_fetch_post(gw_loop_t *loop, gw_acme_job_t *job)
{
    post(loop, job, &job->start_msg, on_start_msg);
}

void gw_acme_fetch_post_cancel(gw_loop_t *loop, gw_acme_job_t *job)
{
    post(loop, job, &job->cancel_msg, on_cancel_msg);
}

void gw_acme_fetch_free(gw_worker_t *w)
{
    fetch_t *f = w->acme;
    if (!f) return;
    if (f->job) finish(f, "the gateway is stopping", false);
    gw_pool_free_private(f->pool);
    gw_tls_client_free(f->tls);
    free(f);
    w->acme = NULL;
}
