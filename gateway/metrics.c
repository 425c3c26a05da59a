/* Per-thread counters and their Prometheus rendering. See metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics_hosts.h"

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

static const uint32_t latency_bounds_ms[GW_LATENCY_BUCKETS - 1] = {GW_LATENCY_BOUNDS_MS};

/* The bucket of a duration: a few compares against a small table, most requests stop at the first. */
static unsigned latency_bucket(uint64_t ms)
{
    unsigned i = 0;
    while (i < GW_LATENCY_BUCKETS - 1 && ms > latency_bounds_ms[i])
        i++;
    return i;
}

/* The thread's requests-by-host counters, allocated on its first request (never on a later one). */
static gw_counter_t *host_counters(gw_stats_t *s)
{
    gw_counter_t *c = atomic_load_explicit(&s->by_host, memory_order_relaxed);
    if (c) return c;
    size_t cap = gw_metrics_hosts_capacity();
    if (!cap || !(c = calloc(cap * GW_STATS_CLASSES, sizeof(*c)))) return NULL;
    /* release: scrapes read it from now on; a thread sharing the overflow slot may have won */
    gw_counter_t *none = NULL;
    if (atomic_compare_exchange_strong_explicit(&s->by_host, &none, c, memory_order_release,
                                                memory_order_acquire))
        return c;
    free(c);
    return none;
}

void gw_metrics_count_request(const gw_req_t *req, uint64_t elapsed_ms)
{
    gw_stats_t *s = gw_stats_self();
    int st = req->res.status;
    unsigned cls = st >= 100 && st <= 599 ? (unsigned)st / 100 : 0;
    gw_stat_add(&s->requests_by_class[cls], 1);
    gw_stat_add(&s->requests_by_protocol[req->version == 20 ? 2 : req->version == 10 ? 0 : 1], 1);
    if (req->bytes_sent) gw_stat_add(&s->response_body_bytes, (int64_t)req->bytes_sent);
    gw_stat_add(&s->latency[latency_bucket(elapsed_ms)], 1);
    gw_stat_add(&s->latency_ms_sum, (int64_t)elapsed_ms);
    gw_counter_t *hosts = host_counters(s);
    if (hosts)
        gw_stat_add(&hosts[(size_t)(req->route ? req->route->metrics_host : 0) * GW_STATS_CLASSES + cls], 1);
}

void gw_metrics_count_cache(const char *xcache, const char *cache_status)
{
    /* a HIT whose Cache-Status says fwd= was a stored response the backend was asked about first:
     * revalidated by a 304, or served stale on a backend error */
    int r = xcache[0] == 'H' ? (cache_status && strstr(cache_status, "fwd=") ? GW_CACHE_STALE : GW_CACHE_HIT)
            : xcache[0] == 'M' ? GW_CACHE_MISS
                               : GW_CACHE_BYPASS;
    GW_STAT(cache[r], 1);
}

/* Process-wide, written by the main thread alone. */
static atomic_uint_fast64_t reloads_ok, reloads_failed, generation;

void gw_metrics_count_reload(bool ok)
{
    atomic_fetch_add_explicit(ok ? &reloads_ok : &reloads_failed, 1, memory_order_relaxed);
}

void gw_metrics_set_generation(uint64_t g)
{
    atomic_store_explicit(&generation, g, memory_order_relaxed);
}

#define NFIELDS (offsetof(gw_stats_t, by_host) / sizeof(gw_counter_t))

void gw_metrics_sum(gw_stats_t *out)
{
    /* the struct starts with a run of counters, up to by_host */
    _Static_assert(offsetof(gw_stats_t, requests_by_class) == 0, "counters first");
    uint64_t acc[NFIELDS];
    memset(acc, 0, sizeof(acc));
    unsigned n = atomic_load_explicit(&slots_used, memory_order_relaxed);
    if (n > SLOTS) n = SLOTS + 1;
    for (unsigned i = 0; i < n; i++) {
        gw_counter_t *f = (gw_counter_t *)&slots[i];
        for (size_t k = 0; k < NFIELDS; k++)
            acc[k] += atomic_load_explicit(&f[k], memory_order_relaxed);
    }
    memset(out, 0, sizeof(*out));
    gw_counter_t *o = (gw_counter_t *)out;
    for (size_t k = 0; k < NFIELDS; k++)
        atomic_store_explicit(&o[k], acc[k], memory_order_relaxed);
}

static void sum_hosts(uint64_t *acc, size_t cells)
{
    unsigned n = atomic_load_explicit(&slots_used, memory_order_relaxed);
    if (n > SLOTS) n = SLOTS + 1;
    for (unsigned i = 0; i < n; i++) {
        gw_counter_t *c = atomic_load_explicit(&slots[i].by_host, memory_order_acquire);
        for (size_t k = 0; c && k < cells; k++)
            acc[k] += atomic_load_explicit(&c[k], memory_order_relaxed);
    }
}

bool gw_metrics_collect(gw_metrics_view_t *v, gw_arena_t *arena)
{
    memset(v, 0, sizeof(*v));
    gw_metrics_sum(&v->sum);
    v->reloads_ok = atomic_load_explicit(&reloads_ok, memory_order_relaxed);
    v->reloads_failed = atomic_load_explicit(&reloads_failed, memory_order_relaxed);
    v->generation = atomic_load_explicit(&generation, memory_order_relaxed);
    v->num_hosts = gw_metrics_hosts_capacity();
    if (!v->num_hosts) return true;
    size_t cells = v->num_hosts * GW_STATS_CLASSES;
    v->by_host = gw_arena_alloc(arena, cells * sizeof(*v->by_host));
    if (!v->by_host) return false;
    memset(v->by_host, 0, cells * sizeof(*v->by_host));
    sum_hosts(v->by_host, cells);
    return true;
}

typedef gw_metrics_out_t out_t;

void gw_metrics_put(out_t *o, const char *fmt, ...)
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
    gw_metrics_put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
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

/* A label value with \, " and newline escaped, as the text format wants. */
static void put_label(out_t *o, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            gw_metrics_put(o, "\\%c", *v);
        else if (*v == '\n')
            gw_metrics_put(o, "\\n");
        else
            gw_metrics_put(o, "%c", *v);
    }
}

static const char *const classes[GW_STATS_CLASSES] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};

static void render_requests(out_t *o, const gw_stats_t *s)
{
    static const char *const protocols[GW_STATS_PROTOCOLS] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2"};
    family(o, "gateway_http_requests_total", "counter",
           "Requests finished, by status class (other: no status, e.g. the client went away first).");
    for (int i = 1; i <= GW_STATS_CLASSES; i++) /* 1xx..5xx, then other */
        gw_metrics_put(o, "gateway_http_requests_total{code=\"%s\"} %llu\n", classes[i % GW_STATS_CLASSES],
            counter(&s->requests_by_class[i % GW_STATS_CLASSES]));
    family(o, "gateway_http_requests_by_protocol_total", "counter", "Requests finished, by client protocol.");
    for (int i = 0; i < GW_STATS_PROTOCOLS; i++)
        gw_metrics_put(o, "gateway_http_requests_by_protocol_total{protocol=\"%s\"} %llu\n", protocols[i],
            counter(&s->requests_by_protocol[i]));
    family(o, "gateway_http_response_body_bytes_total", "counter", "Response body bytes sent to clients.");
    gw_metrics_put(o, "gateway_http_response_body_bytes_total %llu\n", counter(&s->response_body_bytes));
}

/* Only the host and class pairs that saw a request: a counter appears with its first request. */
static void render_hosts(out_t *o, const gw_metrics_view_t *v)
{
    family(o, "gateway_http_requests_by_host_total", "counter",
           "Requests finished, by the matched host's domain (default: no host matched; other: hosts beyond "
           "metricsMaxHosts) and status class.");
    for (size_t h = 0; v->by_host && h < v->num_hosts; h++) {
        const char *name = gw_metrics_host_name(h);
        for (int i = 1; name && i <= GW_STATS_CLASSES; i++) {
            uint64_t n = v->by_host[h * GW_STATS_CLASSES + (size_t)(i % GW_STATS_CLASSES)];
            if (!n) continue;
            gw_metrics_put(o, "gateway_http_requests_by_host_total{host=\"");
            put_label(o, name);
            gw_metrics_put(o, "\",code=\"%s\"} %llu\n", classes[i % GW_STATS_CLASSES], (unsigned long long)n);
        }
    }
}

/* Buckets are kept apart per slot and made cumulative here, as the format wants. */
static void render_latency(out_t *o, const gw_stats_t *s)
{
    family(o, "gateway_http_request_duration_seconds", "histogram",
           "Time from a request's first byte to its logging, in the loop clock's milliseconds.");
    unsigned long long acc = 0;
    for (int i = 0; i < GW_LATENCY_BUCKETS - 1; i++) {
        acc += counter(&s->latency[i]);
        gw_metrics_put(o, "gateway_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
            latency_bounds_ms[i] / 1000.0, acc);
    }
    acc += counter(&s->latency[GW_LATENCY_BUCKETS - 1]);
    gw_metrics_put(o, "gateway_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", acc);
    gw_metrics_put(o, "gateway_http_request_duration_seconds_sum %.3f\n", (double)counter(&s->latency_ms_sum) / 1000.0);
    gw_metrics_put(o, "gateway_http_request_duration_seconds_count %llu\n", acc);
}

static void render_connections(out_t *o, const gw_stats_t *s)
{
    family(o, "gateway_client_connections_accepted_total", "counter", "Client connections accepted.");
    gw_metrics_put(o, "gateway_client_connections_accepted_total %llu\n", counter(&s->conns_accepted));
    long long open = gauge(&s->conns_open), idle = gauge(&s->conns_idle);
    family(o, "gateway_client_connections", "gauge",
           "Client connections open, by state (idle: keep-alive, waiting for a request).");
    gw_metrics_put(o, "gateway_client_connections{state=\"active\"} %lld\n", open > idle ? open - idle : 0);
    gw_metrics_put(o, "gateway_client_connections{state=\"idle\"} %lld\n", idle);
    family(o, "gateway_backend_connections", "gauge",
           "Backend connections, by state (active: in use or being made; idle: pooled for reuse).");
    gw_metrics_put(o, "gateway_backend_connections{state=\"active\"} %lld\n", gauge(&s->pool_active));
    gw_metrics_put(o, "gateway_backend_connections{state=\"idle\"} %lld\n", gauge(&s->pool_idle));
    family(o, "gateway_backend_connections_reused_total", "counter",
           "Backend checkouts served by an idle pooled connection.");
    gw_metrics_put(o, "gateway_backend_connections_reused_total %llu\n", counter(&s->pool_reused));
    family(o, "gateway_backend_connects_total", "counter", "New backend connections attempted.");
    gw_metrics_put(o, "gateway_backend_connects_total %llu\n", counter(&s->pool_connects));
    family(o, "gateway_dns_cache_entries", "gauge", "Names held in the workers' DNS caches.");
    gw_metrics_put(o, "gateway_dns_cache_entries %lld\n", gauge(&s->dns_entries));
}

static void render_cache_and_tls(out_t *o, const gw_stats_t *s)
{
    static const char *const cache[GW_CACHE_RESULTS] = {"hit", "stale", "miss", "bypass"};
    static const char *const tls[GW_TLS_HS_RESULTS] = {"full", "resumed", "failed"};
    family(
        o, "gateway_cache_requests_total", "counter",
        "Requests the response cache answered or forwarded, by result (stale: a stored response used after "
        "asking the backend: revalidated, or served on a backend error).");
    for (int i = 0; i < GW_CACHE_RESULTS; i++)
        gw_metrics_put(o, "gateway_cache_requests_total{result=\"%s\"} %llu\n", cache[i], counter(&s->cache[i]));
    family(o, "gateway_tls_handshakes_total", "counter",
           "Client TLS handshakes ended, by result (full, resumed: completed; failed: a protocol error or an "
           "alert from the client).");
    for (int i = 0; i < GW_TLS_HS_RESULTS; i++)
        gw_metrics_put(o, "gateway_tls_handshakes_total{result=\"%s\"} %llu\n", tls[i], counter(&s->tls_handshakes[i]));
}

static void render_process(out_t *o, const gw_metrics_view_t *v)
{
    family(o, "gateway_build_info", "gauge", "Version of the gateway (always 1).");
    gw_metrics_put(o, "gateway_build_info{version=\"%s\"} 1\n", GW_VERSION);
    family(o, "gateway_config_reloads_total", "counter",
           "Configuration reloads (SIGHUP), by result (failure: the running configuration stayed).");
    gw_metrics_put(o, "gateway_config_reloads_total{result=\"success\"} %llu\n", (unsigned long long)v->reloads_ok);
    gw_metrics_put(o, "gateway_config_reloads_total{result=\"failure\"} %llu\n", (unsigned long long)v->reloads_failed);
    family(o, "gateway_config_generation", "gauge",
           "Generation of the configuration in service (1 at start).");
    gw_metrics_put(o, "gateway_config_generation %llu\n", (unsigned long long)v->generation);
    family(o, "gateway_draining", "gauge", "1 while the answering worker drains for a stop.");
    gw_metrics_put(o, "gateway_draining %d\n", v->draining ? 1 : 0);
}

size_t gw_metrics_render(const gw_metrics_view_t *v, char *buf, size_t len)
{
    out_t o = {buf, len, 0, false};
    render_process(&o, v);
    render_requests(&o, &v->sum);
    render_hosts(&o, v);
    render_latency(&o, &v->sum);
    render_connections(&o, &v->sum);
    render_cache_and_tls(&o, &v->sum);
    return o.full ? 0 : o.used;
}
