/*
 * HTTP caching rules (RFC 9111) as pure functions over header values: the Cache-Control parser,
 * freshness lifetime and age, whether a response may be stored by a shared cache, and whether a
 * stored response may answer a request as it is, only after validation, or not at all. Nothing
 * here touches a connection or the store, so every rule is unit-tested on its own.
 */
#ifndef GW_CACHE_POLICY_H
#define GW_CACHE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "slice.h"

/** Cache-Control directives (bits of gw_cc_t.flags). */
enum {
    GW_CC_NO_STORE = 1u << 0,
    GW_CC_NO_CACHE = 1u << 1,        /**< unqualified no-cache */
    GW_CC_PRIVATE = 1u << 2,         /**< unqualified private */
    GW_CC_PUBLIC = 1u << 3,
    GW_CC_MUST_REVALIDATE = 1u << 4,
    GW_CC_PROXY_REVALIDATE = 1u << 5,
    GW_CC_ONLY_IF_CACHED = 1u << 6,
    GW_CC_NO_TRANSFORM = 1u << 7,
    GW_CC_MUST_UNDERSTAND = 1u << 8,
    GW_CC_IMMUTABLE = 1u << 9,
    GW_CC_MAX_STALE_ANY = 1u << 10,  /**< max-stale without a value: any staleness */
    GW_CC_NO_CACHE_FIELDS = 1u << 11, /**< no-cache="a, b": fields_no_cache lists them */
    GW_CC_PRIVATE_FIELDS = 1u << 12,  /**< private="a, b": fields_private lists them */
    GW_CC_INVALID = 1u << 13,        /**< a delta-seconds directive had a bad value */
};

/** Parsed Cache-Control (request or response). Delta-seconds are -1 when absent. */
typedef struct gw_cc {
    unsigned flags;
    int64_t max_age, s_maxage, max_stale, min_fresh, stale_while_revalidate, stale_if_error;
    gw_slice_t fields_no_cache; /**< the quoted list of no-cache="..." (without quotes) */
    gw_slice_t fields_private;  /**< the quoted list of private="..." */
} gw_cc_t;

/** Resets `cc` to "no directive". */
void gw_cc_init(gw_cc_t *cc);

/**
 * Adds the directives of one Cache-Control field value (call once per field line; lines combine
 * as one list). Names are case-insensitive; values may be quoted; unknown directives are ignored;
 * a duplicated delta-seconds directive keeps the smallest value (the conservative reading of
 * RFC 9111 §4.2.1); a malformed delta-seconds value makes the directive count as 0 for max-age
 * and s-maxage (stale), and be ignored otherwise. Values saturate at 2^31 (§1.2.2).
 */
void gw_cc_parse(gw_cc_t *cc, gw_slice_t value);

/** Adds one directive (`name`, and its unquoted value when `has_value`) with gw_cc_parse's rules;
 *  also used for the members of targeted fields (cache_targeted.h). */
void gw_cc_apply(gw_cc_t *cc, gw_slice_t name, gw_slice_t value, bool has_value);

/** Whether a comma-separated field-name list (e.g. a Vary value) contains `name`, case-insensitive. */
bool gw_cc_list_has(gw_slice_t list, gw_slice_t name);

/** Whether a status code is heuristically cacheable (RFC 9110 §15.1). */
bool gw_cache_status_heuristic(int status);

/** What the cache knows about a response to compute its freshness. Times in seconds, -1: absent. */
typedef struct gw_cache_times {
    int64_t date;          /**< Date (response_time when absent or invalid) */
    int64_t expires;       /**< Expires; an invalid value counts as "already expired" (INT64_MIN) */
    int64_t last_modified; /**< Last-Modified */
    int64_t age;           /**< Age header, -1 when absent */
    int64_t request_time;  /**< when the request left for the backend */
    int64_t response_time; /**< when the response head arrived */
} gw_cache_times_t;

/** Heuristic lifetimes: a fraction of the time since Last-Modified, capped (RFC 9111 §4.2.2). */
#define GW_CACHE_HEURISTIC_PERCENT 10
#define GW_CACHE_HEURISTIC_MAX 86400
/** Ferron's default lifetime for a response that is cacheable (public) but carries no expiry. */
#define GW_CACHE_PUBLIC_DEFAULT 300

/**
 * The freshness lifetime of a response in a shared cache (§4.2.1): s-maxage, else max-age, else
 * Expires - Date, else a heuristic where §4.2.2 allows one (no explicit expiry, and the status is
 * heuristically cacheable or the response is public): 10% of Date - Last-Modified capped at a day,
 * or Ferron's 300 s for a public response without Last-Modified. 0 when nothing applies.
 * `*heuristic` (may be NULL) says whether a heuristic was used.
 */
int64_t gw_cache_lifetime(const gw_cc_t *res, const gw_cache_times_t *t, int status, bool *heuristic);

/** The corrected initial age of a response when it was received (§4.2.3). */
int64_t gw_cache_initial_age(const gw_cache_times_t *t);

/** Why a response is or is not stored. */
typedef enum gw_cache_store_verdict {
    GW_STORE_OK = 0,
    GW_STORE_NO_METHOD,   /**< only GET responses are stored */
    GW_STORE_NO_STATUS,   /**< 206, 304, 1xx, or a status not understood */
    GW_STORE_NO_STORE,    /**< no-store in the request or the response */
    GW_STORE_PRIVATE,     /**< private (a shared cache) */
    GW_STORE_AUTH,        /**< the request had Authorization and the response did not allow it */
    GW_STORE_VARY_STAR,   /**< Vary: * */
    GW_STORE_NO_FRESHNESS, /**< neither explicit freshness, a heuristic, nor a validator to reuse it with */
} gw_cache_store_verdict_t;

/** Facts about an exchange the storage rules look at. */
typedef struct gw_cache_store_in {
    bool get;             /**< request method is GET */
    int status;
    bool authorization;   /**< the request carried Authorization */
    bool vary_star;
    bool has_expires;
    bool has_last_modified;
    bool has_validator;   /**< ETag or Last-Modified */
} gw_cache_store_in_t;

/** Whether a shared cache may store the response (RFC 9111 §3, §3.5). */
gw_cache_store_verdict_t gw_cache_storable(const gw_cc_t *req, const gw_cc_t *res, const gw_cache_store_in_t *in);

/** What a stored response may be used for, for one request. */
typedef enum gw_cache_use {
    GW_USE_FRESH = 0,     /**< serve it */
    GW_USE_STALE_OK,      /**< stale, but the client accepts it (max-stale) */
    GW_USE_VALIDATE,      /**< must be validated with the backend first */
} gw_cache_use_t;

/** Stored response facts needed to decide its use. */
typedef struct gw_cache_stored {
    int64_t lifetime;    /**< freshness lifetime */
    int64_t age;         /**< current age */
    unsigned res_flags;  /**< GW_CC_* of the stored response */
} gw_cache_stored_t;

/**
 * Decides the use of a stored response for a request with directives `req` (§4.2, §5.2.1):
 * no-cache (request or unqualified response no-cache) forces validation; max-age, min-fresh and
 * max-stale adjust what the client accepts; must-revalidate / proxy-revalidate / s-maxage-derived
 * rules forbid serving stale without validation.
 */
gw_cache_use_t gw_cache_use(const gw_cc_t *req, const gw_cache_stored_t *s);

/** Whether a stale response may still be served while revalidating (stale-while-revalidate) or on
 *  a backend error (stale-if-error), `staleness` seconds past its lifetime. */
bool gw_cache_stale_allowed(int64_t window, int64_t staleness, unsigned res_flags);

#endif
