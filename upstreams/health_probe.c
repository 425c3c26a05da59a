/* Active health probes, sent by worker 0 only. See health.h. */
#include "health.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "config.h"
#include "errors.h"
#include "http1_parser.h"
#include "log.h"
#include "pool.h"
#include "worker.h"

#define PROBE_MAX_HEADERS 128

/* One server of one group. Its timer starts a probe every interval and, while one is in flight,
 * bounds it by the timeout. */
typedef struct probe {
    gw_timer_t timer;
    gw_pool_waiter_t waiter;
    gw_upconn_t *conn;
    gw_worker_t *worker;
    const gw_target_list_t *group; /* of the worker's current config: probes are remade with it */
    size_t index;
    char *request; /* built once */
    size_t request_len, sent;
    char *rbuf; /* an I/O chunk, only while a probe is in flight */
    size_t rlen;
    bool in_flight, want_out;
} probe_t;

typedef struct probe_set {
    probe_t *probes;
    size_t count;
} probe_set_t;

static const gw_health_check_t *check_of(const probe_t *p)
{
    return p->group->health_check;
}

static const gw_target_t *target_of(const probe_t *p)
{
    return p->group->items[p->index];
}

/* ---- the verdict ---- */

static bool status_expected(const gw_health_check_t *hc, int status)
{
    if (!hc->num_status) return status >= 200 && status <= 299;
    for (size_t i = 0; i < hc->num_status; i++)
        if (hc->status[i] == status) return true;
    return false;
}

/* Counts the result; `fails` in a row mark the server down, `passes` in a row up again. */
static void record(probe_t *p, bool ok, const char *why, int status)
{
    gw_health_cell_t *cell = p->group->health[p->index];
    const gw_health_check_t *hc = check_of(p);
    bool down = gw_health_down(cell);
    if (ok) {
        cell->fails = 0;
        if (down && ++cell->passes >= hc->passes) {
            atomic_store_explicit(&cell->down, false, memory_order_relaxed);
            gw_log_error("notice", "health: %s of group '%s' is up (status %d)", target_of(p)->url,
                         p->group->name, status);
        }
        return;
    }
    cell->passes = 0;
    if (!down && ++cell->fails >= hc->fails) {
        atomic_store_explicit(&cell->down, true, memory_order_relaxed);
        if (status)
            gw_log_error("warn", "health: %s of group '%s' is down (status %d)", target_of(p)->url,
                         p->group->name, status);
        else
            gw_log_error("warn", "health: %s of group '%s' is down (%s)", target_of(p)->url, p->group->name,
                         why);
    }
}

/* Gives back what a probe in flight holds (connection, connection attempt, buffer). */
static void release(probe_t *p)
{
    if (p->conn) {
        gw_upconn_t *c = p->conn;
        p->conn = NULL;
        gw_pool_release(c, false); /* the probe asked for Connection: close */
    } else {
        gw_pool_cancel(&p->waiter);
    }
    gw_chunk_put(&p->worker->io_pool, p->rbuf);
    p->rbuf = NULL;
    p->in_flight = false;
}

static void finish(probe_t *p, bool ok, const char *why, int status)
{
    release(p);
    record(p, ok, why, status);
    gw_timer_set(p->worker->loop, &p->timer, check_of(p)->interval_ms);
}

/* ---- one probe ---- */

/* Judges the response head once it is complete; interim (1xx) heads are skipped. */
static void judge(probe_t *p)
{
    size_t cap = p->worker->io_pool.chunk_size;
    for (;;) {
        gw_header_t headers[PROBE_MAX_HEADERS];
        gw_h1_response_head_t h = {.headers = headers};
        gw_h1_limits_t lim = {cap, PROBE_MAX_HEADERS, cap};
        int n = gw_h1_parse_response(p->rbuf, p->rlen, &h, &lim);
        if (n < 0 || (n == 0 && p->rlen >= cap)) {
            finish(p, false, gw_err_bad_response, 0);
            return;
        }
        if (n == 0) return; /* more bytes */
        if (h.status >= 200) {
            finish(p, status_expected(check_of(p), h.status), NULL, h.status);
            return;
        }
        memmove(p->rbuf, p->rbuf + n, p->rlen - (size_t)n);
        p->rlen -= (size_t)n;
    }
}

static void receive(probe_t *p)
{
    size_t cap = p->worker->io_pool.chunk_size;
    ssize_t n = gw_upconn_read(p->conn, p->rbuf + p->rlen, cap - p->rlen);
    if (n == -EAGAIN) return;
    if (n <= 0) {
        finish(p, false, gw_err_backend_closed, 0);
        return;
    }
    p->rlen += (size_t)n;
    while (p->rlen < cap && gw_upconn_pending(p->conn)) { /* TLS: take what is decrypted */
        ssize_t more = gw_upconn_read(p->conn, p->rbuf + p->rlen, cap - p->rlen);
        if (more <= 0) break;
        p->rlen += (size_t)more;
    }
    judge(p);
}

/* Writes the request; returns false when the probe ended. */
static bool send_request(probe_t *p)
{
    if (gw_upconn_send_all(p->conn, p->request, p->request_len, &p->sent, &p->want_out) == 0)
        return true;
    finish(p, false, gw_err_backend_closed, 0);
    return false;
}

static void on_event(gw_upconn_t *c, uint32_t events)
{
    probe_t *p = c->owner;
    if ((events & EPOLLOUT) && !send_request(p)) return;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) receive(p);
}

static void on_conn(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err)
{
    probe_t *p = w->data;
    if (err) {
        finish(p, false, err, 0);
        return;
    }
    p->conn = c;
    c->owner = p;
    c->on_event = on_event;
    c->on_timeout = NULL; /* the probe's own timer bounds it */
    send_request(p);
}

static void start(probe_t *p)
{
    p->in_flight = true;
    p->sent = p->rlen = 0;
    p->want_out = false;
    p->rbuf = gw_chunk_get(&p->worker->io_pool);
    gw_pool_t *pool = gw_pool_get(p->worker, target_of(p));
    if (!p->rbuf || !pool) {
        finish(p, false, gw_err_no_memory, 0);
        return;
    }
    gw_timer_set(p->worker->loop, &p->timer, check_of(p)->timeout_ms);
    /* a new connection each time: a probe also tests that the server accepts connections, and
     * it is sent even while requests back off from a refusing server (finding out it is back is
     * its job) */
    p->waiter = (gw_pool_waiter_t){.cb = on_conn, .data = p, .fresh = true, .probe = true};
    gw_pool_acquire(pool, &p->waiter);
}

static void on_timer(gw_timer_t *t)
{
    probe_t *p = gw_container_of(t, probe_t, timer);
    if (p->in_flight)
        finish(p, false, "no response head within the timeout", 0);
    else
        start(p);
}

/* ---- the worker's set of probes ---- */

static bool probe_init(probe_t *p, gw_worker_t *w, const gw_target_list_t *g, size_t index)
{
    const gw_health_check_t *hc = g->health_check;
    const gw_target_t *t = g->items[index];
    *p = (probe_t){.worker = w, .group = g, .index = index};
    gw_timer_init(&p->timer, on_timer);
    const char *host = hc->host ? hc->host : t->authority;
    size_t cap = strlen(hc->path) + strlen(host) + 128;
    p->request = malloc(cap);
    if (!p->request) return false;
    int n = snprintf(p->request, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gateway-health-check\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     hc->path, host);
    p->request_len = n > 0 ? (size_t)n : 0;
    /* the first probes soon, spread over a tenth of the interval rather than all at once */
    gw_timer_set(w->loop, &p->timer, (uint64_t)index * (hc->interval_ms / 10) / g->count);
    return true;
}

static size_t probes_needed(const gw_config_t *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->num_groups; i++)
        if (cfg->groups[i].health_check && cfg->groups[i].health) n += cfg->groups[i].count;
    return n;
}

void gw_health_probes_start(gw_worker_t *w)
{
    if (w->id != 0 || w->health) return; /* one prober for the process (see health.h) */
    size_t n = probes_needed(w->cfg);
    if (!n) return;
    probe_set_t *set = calloc(1, sizeof(*set));
    probe_t *probes = calloc(n, sizeof(*probes));
    if (!set || !probes) {
        free(set);
        free(probes);
        gw_log_error("error", "health: out of memory: no active health checks");
        return;
    }
    set->probes = probes;
    w->health = set;
    for (size_t i = 0; i < w->cfg->num_groups; i++) {
        const gw_target_list_t *g = &w->cfg->groups[i];
        if (!g->health_check || !g->health) continue;
        for (size_t k = 0; k < g->count; k++)
            if (probe_init(&probes[set->count], w, g, k)) set->count++;
    }
}

void gw_health_probes_stop(gw_worker_t *w)
{
    probe_set_t *set = w->health;
    if (!set) return;
    for (size_t i = 0; i < set->count; i++) {
        probe_t *p = &set->probes[i];
        gw_timer_cancel(&p->timer);
        if (p->in_flight) release(p);
        free(p->request);
    }
    free(set->probes);
    free(set);
    w->health = NULL;
}
