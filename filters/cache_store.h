/*
 * The shared response store: one per process, used by every worker. A hash table split into
 * shards, each with its own mutex held only for the few pointer operations of a lookup, insert or
 * removal — never while a response is sent. Entries are immutable once inserted: a refreshed
 * response (a 304) is a new entry that replaces the old one. Each hit takes one reference
 * (an atomic increment under the shard lock) and drops it when its request ends, so an entry that
 * is evicted or replaced while a hit is being sent stays readable until that hit is done; no entry
 * is moved on a hit, a CLOCK reference bit is set instead and the eviction hand clears it.
 * The store also tracks fetches in flight per key, so that concurrent misses wait for one backend
 * response (request collapsing) and are woken on their own worker.
 */
#ifndef GW_CACHE_STORE_H
#define GW_CACHE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slice.h"
#include "http1_parser.h"

/** A stored response. Everything but the reference count and the CLOCK bit is read-only once the
 *  entry is in the table. */
typedef struct gw_cache_entry {
    atomic_uint refs;
    atomic_uchar referenced; /**< CLOCK bit: set on each hit, cleared by the eviction hand */
    bool linked;             /**< in the table (shard lock) */
    uint64_t hash;
    struct gw_cache_entry *next;                   /**< bucket chain (shard lock) */
    struct gw_cache_entry *ring_prev, *ring_next;  /**< CLOCK ring (shard lock) */
    size_t size;              /**< bytes accounted against the memory bound */
    gw_slice_t key;           /**< "scheme://host/path?query" */
    gw_slice_t vary_names;    /**< lower-case names, comma-separated: the response's Vary plus cacheVaryHeaders */
    gw_slice_t vary_values;   /**< the request's values for them, normalised (see cache.c) */
    int status;
    gw_header_t *headers;     /**< stored header fields, names lower-case, values NUL-terminated */
    uint32_t num_headers;
    uint32_t num_sent;        /**< headers[0..num_sent) go to clients; the rest are targeted fields
                                   (RFC 9213) kept only to decide freshness again after a 304 */
    const char *body;
    size_t body_len;
    /* freshness (seconds) */
    int64_t response_time;    /**< when the response (or its last validation) arrived */
    int64_t initial_age;      /**< corrected initial age at response_time */
    int64_t lifetime;         /**< freshness lifetime */
    int64_t date;             /**< Date of the response (or response_time) */
    int64_t last_modified;    /**< -1: none */
    unsigned res_flags;       /**< GW_CC_* of the response; proxy-revalidate also set for s-maxage */
    int64_t swr, sie;         /**< stale-while-revalidate / stale-if-error windows, -1: none */
    bool auth_ok;             /**< may answer a request with Authorization (§3.5) */
    const char *etag;         /**< NUL-terminated, or NULL */
} gw_cache_entry_t;

/** What an entry is made of; gw_cache_entry_new copies everything but `body`, which it takes. */
typedef struct gw_cache_entry_spec {
    gw_slice_t key, vary_names, vary_values;
    int status;
    const gw_header_t *headers;
    uint32_t num_headers;
    char *body; /**< malloc'd; owned by the entry from now on (also on failure) */
    size_t body_len;
    int64_t response_time, initial_age, lifetime, date, last_modified, swr, sie;
    unsigned res_flags;
    bool auth_ok;
    uint32_t num_targeted; /**< the last headers are targeted fields, stored but never sent */
} gw_cache_entry_spec_t;

/** Builds an entry (one reference, the caller's). NULL without memory. */
gw_cache_entry_t *gw_cache_entry_new(const gw_cache_entry_spec_t *spec);

/** Takes another reference (the caller already holds one). */
void gw_cache_entry_ref(gw_cache_entry_t *e);

/** Drops a reference; the last one frees the entry. NULL is ignored. */
void gw_cache_entry_unref(gw_cache_entry_t *e);

/** A stored header by (lower-case) name, or NULL. */
const gw_header_t *gw_cache_entry_header(const gw_cache_entry_t *e, const char *name);

/** Process-wide limits; 0 = unlimited. May be changed at any time (reload). */
void gw_cache_set_limits(uint64_t max_entries, uint64_t max_bytes);

/** FNV-1a of a key. */
uint64_t gw_cache_hash(gw_slice_t key);

/** Decides whether a stored variant suits the request (Vary); called under the shard lock. */
typedef bool (*gw_cache_match_fn)(const gw_cache_entry_t *e, void *ctx);

/**
 * The most recent entry for `key` that `match` accepts, with a reference the caller drops with
 * gw_cache_entry_unref; NULL when none. `*variants` (may be NULL) receives whether any entry
 * exists for the key at all (to tell a Vary miss from a URI miss).
 */
gw_cache_entry_t *gw_cache_lookup(uint64_t hash, gw_slice_t key, gw_cache_match_fn match, void *ctx, bool *variants);

/**
 * Makes `e` visible (the table takes the caller's reference), replacing an entry of the same key
 * and variant, then evicts (CLOCK) until the limits hold. An entry larger than the memory bound
 * is not inserted (its reference is dropped). Returns whether it was inserted.
 */
bool gw_cache_insert(gw_cache_entry_t *e);

/** Removes every variant stored for `key` (invalidation after an unsafe method). */
void gw_cache_invalidate(uint64_t hash, gw_slice_t key);

/** Entries and bytes currently stored. */
void gw_cache_stats(uint64_t *entries, uint64_t *bytes);

/* ---- fetches in flight (request collapsing) ---- */

/** A request waiting for another one's fetch of the same key. */
typedef struct gw_cache_waiter {
    struct gw_cache_waiter *next;
    bool queued;                                  /**< still in a fetch's list (shard lock) */
    void (*wake)(struct gw_cache_waiter *w);      /**< called once, from any thread, unlocked */
} gw_cache_waiter_t;

typedef enum gw_cache_collapse {
    GW_COLLAPSE_LEAD,  /**< no fetch was in flight: the caller's is now, end it with gw_cache_fetch_done */
    GW_COLLAPSE_WAIT,  /**< `w` waits for the fetch in flight */
    GW_COLLAPSE_NONE,  /**< no memory: go ahead without collapsing */
} gw_cache_collapse_t;

/** Joins the fetch in flight for `key`, or starts one. `w` NULL: never wait (only lead or none). */
gw_cache_collapse_t gw_cache_collapse(uint64_t hash, gw_slice_t key, gw_cache_waiter_t *w);

/** Whether a fetch for `key` is in flight. */
bool gw_cache_fetching(uint64_t hash, gw_slice_t key);

/** Ends the fetch the caller leads for `key`: its waiters are woken. */
void gw_cache_fetch_done(uint64_t hash, gw_slice_t key);

/** Takes `w` out of its fetch's list; false when it was already woken (or is being woken). */
bool gw_cache_waiter_cancel(uint64_t hash, gw_cache_waiter_t *w);

#endif
