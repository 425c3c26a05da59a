/* Per-worker, per-target backend connection pools. See pool.h. */
#include "pool.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "errors.h"
#include "h2client.h"
#include "tls_client.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

struct gw_pool {
    struct gw_worker *worker;
    const gw_target_t *target;
    uint32_t id;  /* the target's id, kept here: a retired pool's target may belong to a freed config */
    bool retired; /* its target left the config: connections close when returned; freed once unused */
    gw_upconn_t *idle;
    uint32_t num_idle;
    uint32_t active; /* connections handed out or being made: for least-connections */
    uint32_t failures;
    uint64_t window_start;
    SSL_SESSION *session;   /* the last TLS session, resumed by new connections */
    uint32_t refusals;      /* connect failures in a row */
    uint64_t backoff_until; /* no new connection attempts before this (loop ms) */
    /* dynamic pools (gw_pool_get_dynamic): the target is owned here, and the pool sits in the
     * worker's LRU list, most recently used first */
    gw_target_t *own_target;
    gw_pool_t *lru_next, *lru_prev;
    void *h2; /* HTTP/2 targets: the sessions on this pool's connections (h2client.c) */
    gw_backend_proto_t learned; /* protocol: auto: what the last TLS handshake chose ... */
    bool learned_any;           /* ... once there was one (before: HTTP/2 is tried) */
    uint32_t response_hint; /* gw_pool_response_hint */
    /* private pools: their own TLS contexts (gw_pool_new_private) */
    gw_tls_client_t *tls;
};

/* Per worker: pools indexed by target id, and the dynamic ones in LRU order. */
typedef struct pool_table {
    gw_pool_t **pools;
    uint32_t cap;
    gw_pool_t *dyn_head, *dyn_tail;
    uint32_t num_dyn;
} pool_table_t;

static const gw_pool_config_t *pool_cfg(const gw_pool_t *p)
{
    return &p->worker->cfg->pool;
}

static bool in_config(const gw_config_t *cfg, uint32_t id)
{
    for (uint32_t i = 0; i < cfg->num_targets; i++)
        if (cfg->targets[i]->id == id) return true;
    return false;
}

gw_pool_t *gw_pool_get(struct gw_worker *w, const gw_target_t *t)
{
    pool_table_t *tab = w->pools;
    if (!tab && !(tab = w->pools = calloc(1, sizeof(*tab)))) return NULL;
    if (t->id >= tab->cap) {
        uint32_t cap = tab->cap ? tab->cap : 8;
        while (cap <= t->id) cap *= 2;
        gw_pool_t **pools = realloc(tab->pools, cap * sizeof(*pools));
        if (!pools) return NULL;
        memset(pools + tab->cap, 0, (cap - tab->cap) * sizeof(*pools));
        tab->pools = pools;
        tab->cap = cap;
    }
    if (!tab->pools[t->id]) {
        gw_pool_t *p = calloc(1, sizeof(*p));
        if (!p) return NULL;
        p->worker = w;
        p->target = t;
        p->id = t->id;
        /* a request of an older config may reach a target the current one no longer has */
        p->retired = !in_config(w->cfg, t->id);
        tab->pools[t->id] = p;
    }
    /* ids are stable across reloads (config_ids.h): the pool, its idle connections and health
     * outlive the config that created them and follow the target of the config in use */
    tab->pools[t->id]->target = t;
    return tab->pools[t->id];
}

static void pool_free(gw_pool_t *p);

static void lru_unlink(pool_table_t *tab, gw_pool_t *p)
{
    if (p->lru_prev)
        p->lru_prev->lru_next = p->lru_next;
    else
        tab->dyn_head = p->lru_next;
    if (p->lru_next)
        p->lru_next->lru_prev = p->lru_prev;
    else
        tab->dyn_tail = p->lru_prev;
    p->lru_next = p->lru_prev = NULL;
}

static void lru_push_front(pool_table_t *tab, gw_pool_t *p)
{
    p->lru_prev = NULL;
    p->lru_next = tab->dyn_head;
    if (tab->dyn_head) tab->dyn_head->lru_prev = p;
    tab->dyn_head = p;
    if (!tab->dyn_tail) tab->dyn_tail = p;
}

/* A target made at run time: "host:port" (IPv6 literals in brackets), plain TCP, no base path. */
static gw_target_t *dynamic_target(const char *host, uint16_t port)
{
    size_t hl = strlen(host);
    bool v6 = memchr(host, ':', hl) != NULL;
    size_t auth_cap = hl + 16, url_cap = auth_cap + 8;
    gw_target_t *t = calloc(1, sizeof(*t) + hl + 1 + auth_cap + url_cap + 1);
    if (!t) return NULL;
    char *mem = (char *)(t + 1);
    t->host = memcpy(mem, host, hl + 1);
    t->authority = mem + hl + 1;
    snprintf(t->authority, auth_cap, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    t->url = t->authority + auth_cap;
    /* from host and port again, not from t->authority: the two live in one allocation and
     * FORTIFY's restrict checks cannot tell they do not overlap */
    snprintf(t->url, url_cap, v6 ? "tcp://[%s]:%u" : "tcp://%s:%u", host, (unsigned)port);
    t->base_path = t->url + url_cap;
    t->port = port;
    t->id = UINT32_MAX;
    return t;
}

gw_pool_t *gw_pool_get_dynamic(struct gw_worker *w, const char *host, uint16_t port)
{
    pool_table_t *tab = w->pools;
    if (!tab && !(tab = w->pools = calloc(1, sizeof(*tab)))) return NULL;
    for (gw_pool_t *p = tab->dyn_head; p; p = p->lru_next) {
        if (p->target->port != port || strcmp(p->target->host, host) != 0) continue;
        if (p != tab->dyn_head) {
            lru_unlink(tab, p);
            lru_push_front(tab, p);
        }
        return p;
    }
    if (tab->num_dyn >= GW_POOL_MAX_DYNAMIC) {
        /* evict the least recently used pool that nothing uses (its idle connections close) */
        gw_pool_t *victim = tab->dyn_tail;
        while (victim && victim->active) victim = victim->lru_prev;
        if (!victim) return NULL;
        lru_unlink(tab, victim);
        tab->num_dyn--;
        pool_free(victim);
    }
    gw_pool_t *p = calloc(1, sizeof(*p));
    gw_target_t *t = p ? dynamic_target(host, port) : NULL;
    if (!t) {
        free(p);
        return NULL;
    }
    p->worker = w;
    p->target = p->own_target = t;
    lru_push_front(tab, p);
    tab->num_dyn++;
    return p;
}

gw_pool_t *gw_pool_new_private(struct gw_worker *w, const gw_target_t *t, gw_tls_client_t *tls)
{
    gw_pool_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->worker = w;
    p->target = t;
    p->id = t->id;
    p->tls = tls;
    return p;
}

void gw_pool_free_private(gw_pool_t *p)
{
    if (p) pool_free(p);
}

const gw_target_t *gw_pool_target(const gw_pool_t *p)
{
    return p->target;
}

void **gw_pool_h2_slot(gw_pool_t *p)
{
    return &p->h2;
}

/* ---- connections ---- */

static void upconn_close(gw_upconn_t *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* one non-blocking close_notify, best effort */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    gw_timer_cancel(&c->timer);
    gw_io_stop(&c->io);
    close(c->io.fd);
    free(c);
}

static void idle_unlink(gw_upconn_t *c)
{
    if (c->next) c->next->pprev = c->pprev;
    *c->pprev = c->next;
    c->next = NULL;
    c->pprev = NULL;
    c->idle = false;
    c->pool->num_idle--;
    GW_STAT(pool_idle, -1);
}

static void on_upconn_io(gw_io_t *io, uint32_t events);
static void finish_connect(gw_upconn_t *c, const char *err);

/* An idle TLS connection may receive session tickets: read them; anything else ends it. */
static bool idle_tls_still_open(gw_upconn_t *c)
{
    char b[256];
    int r = SSL_read(c->ssl, b, sizeof(b));
    if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ) return true;
    ERR_clear_error();
    return false;
}
static void on_upconn_timer(gw_timer_t *t);

static gw_upconn_t *upconn_new(gw_pool_t *p, int fd)
{
    gw_upconn_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->pool = p;
    gw_timer_init(&c->timer, on_upconn_timer);
    if (gw_io_start(p->worker->loop, &c->io, fd, EPOLLOUT, on_upconn_io) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static const char *connect_error(int e)
{
    if (e == ECONNREFUSED || e == ENOENT || e == ECONNRESET) return gw_err_connect_refused;
    if (e == EHOSTUNREACH || e == ENETUNREACH || e == EADDRNOTAVAIL) return gw_err_unreachable;
    if (e == ETIMEDOUT) return gw_err_connect_timeout;
    return gw_err_unreachable;
}

/* A target that refuses is left alone for a while: 100 ms doubling up to proxyBackoffMax, with
 * jitter so that workers and replicas do not retry in step. */
static void note_refusal(gw_pool_t *p)
{
    uint32_t max = pool_cfg(p)->backoff_max_ms;
    if (!max) return;
    uint32_t shift = p->refusals < 16 ? p->refusals : 16;
    uint64_t delay = 100ull << shift;
    if (delay > max) delay = max;
    p->refusals++;
    p->worker->rng ^= p->worker->rng << 13;
    p->worker->rng ^= p->worker->rng >> 7;
    p->worker->rng ^= p->worker->rng << 17;
    p->backoff_until = gw_loop_now(p->worker->loop) + delay / 2 + p->worker->rng % (delay / 2 + 1);
}

bool gw_pool_backing_off(gw_pool_t *p)
{
    return p->backoff_until && gw_loop_now(p->worker->loop) < p->backoff_until;
}

/* The waiter no longer counts as an active connection attempt (failed or cancelled). */
static void uncount(gw_pool_waiter_t *w)
{
    if (w->counted) {
        w->counted = false;
        w->pool->active--;
        GW_STAT(pool_active, -1);
    }
}

static void hand_over(gw_pool_waiter_t *w, gw_upconn_t *c)
{
    w->counted = false; /* the connection carries the count until gw_pool_release */
    w->cb(w, c, NULL);
}

static void finish_connect(gw_upconn_t *c, const char *err)
{
    gw_pool_waiter_t *w = c->waiter;
    c->waiter = NULL;
    w->connecting = NULL;
    gw_timer_cancel(&c->timer);
    if (err) {
        gw_pool_report(c->pool, false);
        note_refusal(c->pool);
        upconn_close(c);
        uncount(w);
        w->cb(w, NULL, err);
        return;
    }
    /* read interest stays on for the connection's whole life: in the pool it means "closed by the
     * backend", with an owner "response bytes"; no epoll_ctl per borrow and return */
    gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP);
    c->pool->refusals = 0;
    c->pool->backoff_until = 0;
    hand_over(w, c);
}

static gw_tls_client_t *tls_client(gw_pool_t *p)
{
    gw_worker_t *w = p->worker;
    if (p->tls) return p->tls;
    if (!w->tls_client) {
        char err[256];
        w->tls_client = gw_tls_client_new(w->cfg->proxy_ca_file, err, sizeof(err));
        if (!w->tls_client) gw_log_error("error", "backend TLS: %s", err);
    }
    return w->tls_client;
}

/* protocol: auto: the backend's ALPN answer decides which engine its next requests use. */
static void learn_protocol(gw_pool_t *p, SSL *ssl)
{
    const uint8_t *alpn;
    unsigned len;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    p->learned = len == 2 && memcmp(alpn, "h2", 2) == 0 ? GW_PROTO_H2 : GW_PROTO_HTTP1;
    p->learned_any = true;
}

bool gw_pool_speaks_h2(const gw_pool_t *p)
{
    gw_backend_proto_t proto = p->target->proto;
    if (proto == GW_PROTO_AUTO) return !p->learned_any || p->learned == GW_PROTO_H2;
    return proto == GW_PROTO_H2 || proto == GW_PROTO_H2C;
}

/* One step of the TLS handshake; the connect timer still runs. */
static void handshake(gw_upconn_t *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        gw_pool_t *p = c->pool;
        if (!SSL_session_reused(c->ssl)) {
            if (p->session) SSL_SESSION_free(p->session);
            p->session = SSL_get1_session(c->ssl);
        }
        if (p->target->proto == GW_PROTO_AUTO) learn_protocol(p, c->ssl);
        finish_connect(c, NULL);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        gw_io_modify(&c->io, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
        return;
    }
    ERR_clear_error();
    c->waiter->tls_verify = SSL_get_verify_result(c->ssl); /* why, for a caller that reports it */
    finish_connect(c, gw_err_tls);
}

/* Writes the waiter's preamble (a PROXY header) ahead of everything, TLS included. False while
 * part of it waits for room (EPOLLOUT stays armed and brings us back) or when the connect failed. */
static bool send_preamble(gw_upconn_t *c)
{
    const gw_pool_waiter_t *w = c->waiter;
    while (c->preamble_off < w->preamble_len) {
        size_t left = w->preamble_len - c->preamble_off;
        ssize_t n = send(c->io.fd, w->preamble + c->preamble_off, left, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return false;
        if (n <= 0) {
            finish_connect(c, connect_error(n < 0 ? errno : ECONNRESET));
            return false;
        }
        c->preamble_off += (size_t)n;
    }
    c->single_use = w->preamble_len > 0;
    return true;
}

static void connected(gw_upconn_t *c)
{
    gw_pool_t *p = c->pool;
    if (!send_preamble(c)) return;
    if (!p->target->tls) {
        finish_connect(c, NULL);
        return;
    }
    gw_tls_client_t *tc = tls_client(p);
    c->ssl = tc ? gw_tls_client_ssl(tc, p->target, c->io.fd, p->session) : NULL;
    if (!c->ssl) {
        finish_connect(c, gw_err_tls);
        return;
    }
    handshake(c);
}

static void on_upconn_io(gw_io_t *io, uint32_t events)
{
    gw_upconn_t *c = gw_container_of(io, gw_upconn_t, io);
    if (c->waiter && c->ssl) {
        handshake(c);
        return;
    }
    if (c->waiter) {
        int e = 0;
        socklen_t len = sizeof(e);
        if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = errno;
        if (e)
            finish_connect(c, connect_error(e));
        else
            connected(c);
        return;
    }
    if (c->idle && c->ssl && idle_tls_still_open(c)) return;
    if (c->idle) {
        /* an idle connection that becomes readable was closed by the backend (or it sent
         * something unasked for): either way it cannot be reused */
        idle_unlink(c);
        upconn_close(c);
        return;
    }
    if (c->on_event) c->on_event(c, events);
}

static void on_upconn_timer(gw_timer_t *t)
{
    gw_upconn_t *c = gw_container_of(t, gw_upconn_t, timer);
    if (c->waiter) {
        finish_connect(c, gw_err_connect_timeout);
        return;
    }
    if (c->idle) {
        idle_unlink(c);
        upconn_close(c);
        return;
    }
    if (c->on_timeout) c->on_timeout(c);
}

static int open_socket(const gw_target_t *t, const struct sockaddr_in6 *addr)
{
    int fd = socket(t->unix_path ? AF_UNIX : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc;
    if (t->unix_path) {
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        if (strlen(t->unix_path) >= sizeof(un.sun_path)) {
            close(fd);
            return -ENAMETOOLONG;
        }
        strcpy(un.sun_path, t->unix_path);
        rc = connect(fd, (struct sockaddr *)&un, sizeof(un));
    } else {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
    }
    if (rc != 0 && errno != EINPROGRESS && errno != EAGAIN) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static void start_connect(gw_pool_waiter_t *w, const struct sockaddr_in6 *addr)
{
    gw_pool_t *p = w->pool;
    GW_STAT(pool_connects, 1);
    int fd = open_socket(p->target, addr);
    if (fd < 0) {
        gw_pool_report(p, false);
        note_refusal(p);
        uncount(w);
        w->cb(w, NULL, connect_error(-fd));
        return;
    }
    gw_upconn_t *c = upconn_new(p, fd);
    if (!c) {
        close(fd);
        uncount(w);
        w->cb(w, NULL, gw_err_no_memory);
        return;
    }
    c->waiter = w;
    w->connecting = c;
    gw_timer_set(p->worker->loop, &c->timer, pool_cfg(p)->connect_timeout_ms);
}

static void on_resolved(gw_dns_query_t *q, const char *err, const struct sockaddr_in6 *addrs, size_t n)
{
    gw_pool_waiter_t *w = q->data;
    w->resolving = false;
    if (err || !n) {
        uncount(w);
        w->cb(w, NULL, gw_err_dns);
        return;
    }
    start_connect(w, &addrs[0]);
}

void gw_pool_acquire(gw_pool_t *p, gw_pool_waiter_t *w)
{
    w->pool = p;
    w->connecting = NULL;
    w->resolving = false;
    w->counted = true;
    p->active++;
    GW_STAT(pool_active, 1);
    if (p->idle && !w->fresh && !w->preamble_len) {
        gw_upconn_t *c = p->idle; /* LIFO: the most recently used is the least likely to be stale */
        GW_STAT(pool_reused, 1);
        idle_unlink(c);
        gw_timer_cancel(&c->timer);
        /* still armed for reading: the owner's arm() finds nothing to change */
        hand_over(w, c);
        return;
    }
    if (!w->probe && gw_pool_backing_off(p)) {
        uncount(w);
        w->cb(w, NULL, gw_err_connect_refused); /* refused a moment ago: fail fast */
        return;
    }
    if (p->target->unix_path) {
        start_connect(w, NULL);
        return;
    }
    w->resolving = true;
    w->dns.cb = on_resolved;
    w->dns.data = w;
    gw_dns_resolve(p->worker->dns, &w->dns, p->target->host, p->target->port);
}

void gw_pool_cancel(gw_pool_waiter_t *w)
{
    if (w->pool) uncount(w);
    if (w->resolving) gw_dns_cancel(&w->dns);
    w->resolving = false;
    if (w->connecting) {
        gw_upconn_t *c = w->connecting;
        w->connecting = NULL;
        c->waiter = NULL;
        upconn_close(c);
    }
}

void gw_pool_release(gw_upconn_t *c, bool reusable)
{
    gw_pool_t *p = c->pool;
    p->active--;
    GW_STAT(pool_active, -1);
    c->on_event = NULL;
    c->on_timeout = NULL;
    c->owner = NULL;
    bool keep = reusable && !c->single_use && !p->retired;
    if (!keep || p->num_idle >= pool_cfg(p)->max_idle || p->worker->draining) {
        upconn_close(c);
        return;
    }
    c->reused = true;
    c->idle = true;
    c->next = p->idle;
    if (p->idle) p->idle->pprev = &c->next;
    c->pprev = &p->idle;
    p->idle = c;
    p->num_idle++;
    GW_STAT(pool_idle, 1);
    gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP); /* notice a backend close at once */
    gw_timer_set(p->worker->loop, &c->timer, pool_cfg(p)->idle_timeout_ms);
}

ssize_t gw_upconn_read(gw_upconn_t *c, void *buf, size_t len)
{
    if (!c->ssl) {
        ssize_t n;
        do
            n = read(c->io.fd, buf, len);
        while (n < 0 && errno == EINTR);
        return n < 0 ? -errno : n;
    }
    int r = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return -EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    return e == SSL_ERROR_SYSCALL && r == 0 ? 0 : -EIO;
}

ssize_t gw_upconn_writev(gw_upconn_t *c, const struct iovec *iov, int n)
{
    if (!c->ssl) {
        ssize_t w;
        do
            w = writev(c->io.fd, iov, n);
        while (w < 0 && errno == EINTR);
        return w < 0 ? -errno : w;
    }
    ssize_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!iov[i].iov_len) continue;
        int r = SSL_write(c->ssl, iov[i].iov_base, iov[i].iov_len > INT32_MAX ? INT32_MAX : (int)iov[i].iov_len);
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (total) return total;
            return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? -EAGAIN : -EPIPE;
        }
        total += r;
        if ((size_t)r < iov[i].iov_len) break;
    }
    return total;
}

bool gw_upconn_shutdown_write(gw_upconn_t *c)
{
    return !c->ssl && shutdown(c->io.fd, SHUT_WR) == 0;
}

bool gw_upconn_pending(const gw_upconn_t *c)
{
    return c->ssl && SSL_pending(c->ssl) > 0;
}

int gw_upconn_send_all(gw_upconn_t *c, const char *buf, size_t len, size_t *sent, bool *want_out)
{
    while (*sent < len) {
        struct iovec iov = {(void *)(buf + *sent), len - *sent};
        ssize_t w = gw_upconn_writev(c, &iov, 1);
        if (w == -EAGAIN) {
            *want_out = true;
            gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
            return 0;
        }
        if (w < 0) return (int)w;
        *sent += (size_t)w;
    }
    if (*want_out) {
        *want_out = false;
        gw_io_modify(&c->io, EPOLLIN | EPOLLRDHUP);
    }
    return 0;
}

void gw_pool_report(gw_pool_t *p, bool ok)
{
    uint64_t now = gw_loop_now(p->worker->loop);
    if (now - p->window_start > pool_cfg(p)->health_window_ms) {
        p->window_start = now;
        p->failures = 0;
    }
    if (!ok) p->failures++;
}

size_t gw_pool_response_hint(const gw_pool_t *p)
{
    return p->response_hint;
}

void gw_pool_note_response(gw_pool_t *p, size_t bytes)
{
    uint32_t b = bytes < UINT32_MAX ? (uint32_t)bytes : UINT32_MAX;
    if (b >= p->response_hint)
        p->response_hint = b;
    else
        p->response_hint -= (p->response_hint - b) / 8; /* one small answer does not shrink it */
}

uint32_t gw_pool_active(const gw_pool_t *p)
{
    return p->active;
}

uint32_t gw_pool_recent_failures(gw_pool_t *p)
{
    uint64_t now = gw_loop_now(p->worker->loop);
    return now - p->window_start > pool_cfg(p)->health_window_ms ? 0 : p->failures;
}

static void close_idle(gw_pool_t *p)
{
    while (p->idle) {
        gw_upconn_t *c = p->idle;
        idle_unlink(c);
        upconn_close(c);
    }
}

static void pool_free(gw_pool_t *p)
{
    if (p->h2) gw_h2client_pool_free(p->h2);
    close_idle(p);
    if (p->session) SSL_SESSION_free(p->session);
    free(p->own_target);
    free(p);
}

void gw_pools_retain(struct gw_worker *w, const gw_config_t *cfg)
{
    pool_table_t *tab = w->pools;
    bool *kept = tab ? calloc(tab->cap, sizeof(*kept)) : NULL;
    if (!kept) return; /* no pools yet, or no memory: idle connections then wait for their timeout */
    for (uint32_t i = 0; i < cfg->num_targets; i++)
        if (cfg->targets[i]->id < tab->cap) kept[cfg->targets[i]->id] = true;
    for (uint32_t i = 0; i < tab->cap; i++) {
        gw_pool_t *p = tab->pools[i];
        if (!p) continue;
        p->retired = !kept[i]; /* a target a later reload brings back is live again */
        if (p->retired) close_idle(p);
    }
    free(kept);
}

void gw_pools_free_retired(struct gw_worker *w)
{
    pool_table_t *tab = w->pools;
    for (uint32_t i = 0; tab && i < tab->cap; i++) {
        gw_pool_t *p = tab->pools[i];
        if (!p || !p->retired || p->active) continue; /* active: cannot happen once no request holds it */
        tab->pools[i] = NULL;
        pool_free(p);
    }
}

void gw_pools_free(struct gw_worker *w)
{
    pool_table_t *tab = w->pools;
    if (!tab) return;
    for (uint32_t i = 0; i < tab->cap; i++)
        if (tab->pools[i]) pool_free(tab->pools[i]);
    while (tab->dyn_head) {
        gw_pool_t *p = tab->dyn_head;
        lru_unlink(tab, p);
        pool_free(p);
    }
    free(tab->pools);
    free(tab);
    w->pools = NULL;
}
