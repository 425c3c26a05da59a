/*
 * Asynchronous DNS for backends: one c-ares channel per worker wired into the worker's epoll loop
 * (socket-state callback + a timer), a per-worker cache with single-flight waiters, negative
 * caching, expiry = record TTL clamped to configured bounds, and stale answers served for a bounded
 * time when the resolver fails. Literal IP addresses never touch the resolver. No call here blocks
 * on the network (c-ares reads /etc/hosts on a cache miss, and resolv.conf in gw_dns_new).
 *
 * Failures: NXDOMAIN / no address is cached for negative_ttl_ms. A resolver failure (timeout,
 * SERVFAIL, refused) on an expired answer that is less than stale_ms past its expiry answers with
 * the old addresses, and keeps answering with them at once (no new query) for negative_ttl_ms,
 * never beyond the stale window; without such an answer the failure is cached for negative_ttl_ms.
 *
 * One resolver per loop thread; nothing here is thread-safe.
 */
#ifndef GW_DNS_H
#define GW_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

typedef struct gw_dns gw_dns_t;
typedef struct gw_dns_query gw_dns_query_t;

/** Resolver settings (global properties; see config_props.c). */
typedef struct gw_dns_config {
    const char *servers;      /**< "ip[:port],ip[:port]" (c-ares csv syntax), NULL = /etc/resolv.conf */
    uint32_t min_ttl_ms;      /**< dnsMinTtl: answers are cached at least this long */
    uint32_t max_ttl_ms;      /**< dnsMaxTtl: and at most this long */
    uint32_t negative_ttl_ms; /**< dnsNegativeTtl: NXDOMAIN / no address cached this long */
    uint32_t stale_ms;        /**< dnsStaleTime: an expired answer is still used this long if a refresh fails */
    uint32_t timeout_ms;      /**< dnsTimeout: first try; c-ares doubles it on each retry, so one server
                                   fails after timeout_ms * (2^tries - 1). 0 = c-ares default */
    uint32_t tries;           /**< dnsTries, per server; 0 = c-ares default */
    uint32_t max_entries;     /**< dnsCacheEntries per worker, LRU; exceeded only by names in flight */
} gw_dns_config_t;

/** Up to this many addresses are returned for one name. */
#define GW_DNS_MAX_ADDRS 8

/**
 * Called once per gw_dns_resolve (unless cancelled first). On success err is NULL and addrs[0..n)
 * (n >= 1) are IPv6 socket addresses (IPv4 as v4-mapped) with sin6_port set to the requested port:
 * IPv4 first, then IPv6, each family in the resolver's order, without duplicates. addrs is only
 * valid during the call. On failure err is gw_err_dns (errors.h), addrs is NULL and n is 0.
 * May run synchronously inside gw_dns_resolve (cache hit, literal address, hosts file, bad name)
 * and inside gw_dns_free. The callback may resolve again (with q too), cancel other queries, or free
 * the resolver.
 */
typedef void (*gw_dns_cb)(gw_dns_query_t *q, const char *err, const struct sockaddr_in6 *addrs, size_t n);

/** A waiter, embedded in the caller's state; contents private except `cb` and `data`. */
struct gw_dns_query {
    gw_dns_cb cb;
    void *data;
    /* private */
    gw_dns_query_t *next, **pprev;
    struct gw_dns_entry *entry;
    uint16_t port;
};

/**
 * Creates a resolver bound to `loop` (cfg->servers is copied; the rest too). Returns NULL with a
 * message in err (c-ares cannot start, or cfg->servers is not valid csv).
 */
gw_dns_t *gw_dns_new(gw_loop_t *loop, const gw_dns_config_t *cfg, char *err, size_t errlen);

/**
 * Frees the resolver; pending queries are completed with gw_err_dns first (their callbacks run
 * inside this call, and any gw_dns_resolve they make fails at once). NULL is ignored. Called from
 * inside one of this resolver's callbacks, the free happens when that callback's caller returns.
 */
void gw_dns_free(gw_dns_t *dns);

/**
 * Resolves `name` (A and AAAA) for `port`. Literal IPv4/IPv6 addresses ("::1", "[::1]",
 * "fe80::1%eth0") and cache hits answer at once (synchronously); concurrent lookups of one name
 * (case-insensitive) share one query to the resolver. A name with characters other than letters,
 * digits, '-', '_' and '.' fails at once. `dns` may be NULL: literals still work, names fail.
 * q->cb and q->data must be set; q must not already be waiting (cancel it first).
 */
void gw_dns_resolve(gw_dns_t *dns, gw_dns_query_t *q, const char *name, uint16_t port);

/**
 * Forgets a waiter whose owner goes away before the answer (no callback afterwards). A no-op for a
 * query that was already answered or cancelled; q must have been passed to gw_dns_resolve (or be
 * zeroed). The lookup itself goes on and still fills the cache.
 */
void gw_dns_cancel(gw_dns_query_t *q);

#endif
