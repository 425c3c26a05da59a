/*
 * Process counters for /metrics (Prometheus text format), kept per thread.
 *
 * Every thread that counts something (in practice: each worker) owns one slot of a static array and
 * is the only writer of it. A write is a relaxed atomic load and store of a word, which compiles to
 * plain loads and stores (no locked instruction, no shared cache line: slots are 64-byte aligned),
 * so the request path never touches a shared atomic. The metrics handler, on any worker, sums every
 * slot with relaxed loads: a sum may miss an increment made a moment ago, never a torn value.
 * Slots live for the whole process (a thread that exits leaves its counters behind, which keeps the
 * counters monotonic), so reading another worker's slot can never touch freed memory.
 *
 * Gauges (connections, idle connections, DNS entries) are kept as +1/-1 counts by the thread that
 * owns the object: a connection is opened and closed on the same worker, so a thread's gauge is
 * exact for that thread and the sum is exact for the process.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "request.h"

/** A text buffer that Prometheus exposition is appended to; `full` once something did not fit
 *  (the caller then retries with a larger buffer). */
typedef struct gw_metrics_out {
    char *buf;
    size_t len, used;
    bool full;
} gw_metrics_out_t;

/** Appends printf-formatted text to `o`, or marks it full. */
void gw_metrics_put(gw_metrics_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Status classes counted: 1xx..5xx and anything else (index 0). */
#define GW_STATS_CLASSES 6
/** Protocols counted: HTTP/1.0, HTTP/1.1, HTTP/2. */
#define GW_STATS_PROTOCOLS 3
/** Upper bounds (ms) of the request duration histogram's buckets; one more bucket holds the rest. */
#define GW_LATENCY_BOUNDS_MS 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
#define GW_LATENCY_BUCKETS 13

/** How the response cache answered (filters/cache.c): the order of gw_stats_t.cache. */
enum { GW_CACHE_HIT, GW_CACHE_STALE, GW_CACHE_MISS, GW_CACHE_BYPASS, GW_CACHE_RESULTS };
/** How a client TLS handshake ended (tls.c): the order of gw_stats_t.tls_handshakes. */
enum { GW_TLS_HS_FULL, GW_TLS_HS_RESUMED, GW_TLS_HS_FAILED, GW_TLS_HS_RESULTS };

typedef _Atomic uint64_t gw_counter_t;

typedef struct gw_stats {
    _Alignas(64) gw_counter_t requests_by_class[GW_STATS_CLASSES];
    gw_counter_t requests_by_protocol[GW_STATS_PROTOCOLS];
    gw_counter_t response_body_bytes;
    gw_counter_t conns_accepted;              /**< client connections accepted */
    gw_counter_t conns_open;                  /**< gauge: client connections open */
    gw_counter_t conns_idle;                  /**< gauge: of those, idle keep-alive connections */
    gw_counter_t pool_active;                 /**< gauge: backend connections in use or being made */
    gw_counter_t pool_idle;                   /**< gauge: idle pooled backend connections */
    gw_counter_t pool_reused;                 /**< checkouts served by an idle pooled connection */
    gw_counter_t pool_connects;               /**< new backend connections attempted */
    gw_counter_t dns_entries;                 /**< gauge: names in the DNS caches */
    gw_counter_t latency[GW_LATENCY_BUCKETS]; /**< requests per duration bucket (not cumulative) */
    gw_counter_t latency_ms_sum;              /**< total duration of the requests counted, in ms */
    gw_counter_t cache[GW_CACHE_RESULTS];
    gw_counter_t tls_handshakes[GW_TLS_HS_RESULTS];
    /* the counters above are summed as one run of words (gw_metrics_sum); this is not a counter */
    gw_counter_t *_Atomic by_host; /**< requests by host label and status class (metrics_hosts.h),
                                        allocated by the owning thread on its first request */
} gw_stats_t;

extern _Thread_local gw_stats_t *gw_stats_current;

/** Gives the calling thread its slot (first use only; see gw_stats_self). */
gw_stats_t *gw_stats_claim(void);

/** The calling thread's slot. */
static inline gw_stats_t *gw_stats_self(void)
{
    gw_stats_t *s = gw_stats_current;
    return s ? s : gw_stats_claim();
}

/** Adds `d` (may be negative, for gauges) to one of the calling thread's counters. */
static inline void gw_stat_add(gw_counter_t *c, int64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
                          memory_order_relaxed);
}

/** Shorthand: GW_STAT(pool_idle, +1). */
#define GW_STAT(field, d) gw_stat_add(&gw_stats_self()->field, (d))

/** Counts a finished request (status class, protocol, host, duration, body bytes); the access-log
 *  path calls it with the request's duration as logged. */
void gw_metrics_count_request(const gw_req_t *req, uint64_t elapsed_ms);

/** Counts how the response cache answered, from the X-Gateway-Cache and Cache-Status it set. */
void gw_metrics_count_cache(const char *xcache, const char *cache_status);

/** Counts a client TLS handshake that ended (GW_TLS_HS_*). */
static inline void gw_metrics_count_tls_handshake(int result)
{
    GW_STAT(tls_handshakes[result], 1);
}

/** A reload ended (main thread): it put a new configuration in service, or failed and changed nothing. */
void gw_metrics_count_reload(bool ok);

/** The generation of the configuration in service (main thread: at start and after each reload). */
void gw_metrics_set_generation(uint64_t generation);

/** What a scrape shows: every slot summed, plus the process-wide values. */
typedef struct gw_metrics_view {
    gw_stats_t sum;
    uint64_t *by_host; /**< num_hosts * GW_STATS_CLASSES sums; NULL: not counted */
    size_t num_hosts;  /**< host labels in use (metrics_hosts.h) */
    uint64_t reloads_ok, reloads_failed, generation;
    bool draining; /**< the answering worker's state */
} gw_metrics_view_t;

/** The sum of every slot. */
void gw_metrics_sum(gw_stats_t *out);

/** Fills `v` (by_host in `arena`); false without memory. */
bool gw_metrics_collect(gw_metrics_view_t *v, gw_arena_t *arena);

/**
 * Renders the Prometheus text exposition (format 0.0.4) of `v` into buf. Returns the length
 * written, or 0 when buf is too small.
 */
size_t gw_metrics_render(const gw_metrics_view_t *v, char *buf, size_t len);

#endif
