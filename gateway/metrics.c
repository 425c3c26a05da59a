/* Per-thread counters and their Prometheus rendering. See metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Workers are capped at 256 by the registry; the rest is room for the main thread, unit tests and
 * workers replaced over the process's life. A thread beyond the last slot shares the overflow slot
 * (its increments may then be lost, never torn). */
#define SLOTS 1024

static gw_stats_t slots[SLOTS + 1];
static atomic_uint slots_used;
_Thread_local gw_stats_t *gw_stats_current;

gw_stats_t *gw_stats_claim(void)
{
    unsigned i = atomic_fetch_add_explicit(&slots_used, 1, memory_order_relaxed);
    gw_stats_current = &slots[i < SLOTS ? i : SLOTS];
    return gw_stats_current;
}

void gw_metrics_count_request(const gw_req_t *req)
{
    gw_stats_t *s = gw_stats_self();
    int st = req->res.status;
    gw_stat_add(&s->requests_by_class[st >= 100 && st <= 599 ? st / 100 : 0], 1);
    gw_stat_add(&s->requests_by_protocol[req->version == 20 ? 2 : req->version == 10 ? 0 : 1], 1);
    if (req->bytes_sent) gw_stat_add(&s->response_body_bytes, (int64_t)req->bytes_sent);
}

#define NFIELDS (sizeof(gw_stats_t) / sizeof(gw_counter_t))

void gw_metrics_sum(gw_stats_t *out)
{
    /* the struct is a run of counters from requests_by_class to dns_entries (then padding) */
    _Static_assert(offsetof(gw_stats_t, requests_by_class) == 0, "counters first");
    uint64_t acc[NFIELDS];
    memset(acc, 0, sizeof(acc));
    unsigned n = atomic_load_explicit(&slots_used, memory_order_relaxed);
    if (n > SLOTS) n = SLOTS + 1;
    const size_t used = offsetof(gw_stats_t, dns_entries) / sizeof(gw_counter_t) + 1;
    for (unsigned i = 0; i < n; i++) {
        gw_counter_t *f = (gw_counter_t *)&slots[i];
        for (size_t k = 0; k < used; k++) acc[k] += atomic_load_explicit(&f[k], memory_order_relaxed);
    }
    memset(out, 0, sizeof(*out));
    gw_counter_t *o = (gw_counter_t *)out;
    for (size_t k = 0; k < used; k++) atomic_store_explicit(&o[k], acc[k], memory_order_relaxed);
}

typedef struct out {
    char *buf;
    size_t len, used;
    bool full;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    if (o->full) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->len - o->used) {
        o->full = true;
        return;
    }
    o->used += (size_t)n;
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A gauge kept as +1/-1 in unsigned words: the sum read while threads update it may be a hair
 * below zero for a moment; show 0 then. */
static long long gauge(const gw_counter_t *c)
{
    int64_t v = (int64_t)atomic_load_explicit(c, memory_order_relaxed);
    return v < 0 ? 0 : (long long)v;
}

static unsigned long long counter(const gw_counter_t *c)
{
    return (unsigned long long)atomic_load_explicit(c, memory_order_relaxed);
}

size_t gw_metrics_render(const gw_stats_t *s, int draining, char *buf, size_t len)
{
    out_t o = {buf, len, 0, false};
    static const char *const classes[GW_STATS_CLASSES] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const char *const protocols[GW_STATS_PROTOCOLS] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2"};
    family(&o, "gateway_build_info", "gauge", "Version of the gateway (always 1).");
    put(&o, "gateway_build_info{version=\"%s\"} 1\n", GW_VERSION);
    family(&o, "gateway_http_requests_total", "counter",
           "Requests finished, by status class (other: no status, e.g. the client went away first).");
    for (int i = 1; i <= GW_STATS_CLASSES; i++) /* 1xx..5xx, then other */
        put(&o, "gateway_http_requests_total{code=\"%s\"} %llu\n", classes[i % GW_STATS_CLASSES],
            counter(&s->requests_by_class[i % GW_STATS_CLASSES]));
    family(&o, "gateway_http_requests_by_protocol_total", "counter", "Requests finished, by client protocol.");
    for (int i = 0; i < GW_STATS_PROTOCOLS; i++)
        put(&o, "gateway_http_requests_by_protocol_total{protocol=\"%s\"} %llu\n", protocols[i],
            counter(&s->requests_by_protocol[i]));
    family(&o, "gateway_http_response_body_bytes_total", "counter", "Response body bytes sent to clients.");
    put(&o, "gateway_http_response_body_bytes_total %llu\n", counter(&s->response_body_bytes));
    family(&o, "gateway_client_connections_accepted_total", "counter", "Client connections accepted.");
    put(&o, "gateway_client_connections_accepted_total %llu\n", counter(&s->conns_accepted));
    long long open = gauge(&s->conns_open), idle = gauge(&s->conns_idle);
    family(&o, "gateway_client_connections", "gauge",
           "Client connections open, by state (idle: keep-alive, waiting for a request).");
    put(&o, "gateway_client_connections{state=\"active\"} %lld\n", open > idle ? open - idle : 0);
    put(&o, "gateway_client_connections{state=\"idle\"} %lld\n", idle);
    family(&o, "gateway_backend_connections", "gauge",
           "Backend connections, by state (active: in use or being made; idle: pooled for reuse).");
    put(&o, "gateway_backend_connections{state=\"active\"} %lld\n", gauge(&s->pool_active));
    put(&o, "gateway_backend_connections{state=\"idle\"} %lld\n", gauge(&s->pool_idle));
    family(&o, "gateway_backend_connections_reused_total", "counter",
           "Backend checkouts served by an idle pooled connection.");
    put(&o, "gateway_backend_connections_reused_total %llu\n", counter(&s->pool_reused));
    family(&o, "gateway_backend_connects_total", "counter", "New backend connections attempted.");
    put(&o, "gateway_backend_connects_total %llu\n", counter(&s->pool_connects));
    family(&o, "gateway_dns_cache_entries", "gauge", "Names held in the workers' DNS caches.");
    put(&o, "gateway_dns_cache_entries %lld\n", gauge(&s->dns_entries));
    family(&o, "gateway_draining", "gauge", "1 while the answering worker drains for a stop.");
    put(&o, "gateway_draining %d\n", draining ? 1 : 0);
    return o.full ? 0 : o.used;
}
