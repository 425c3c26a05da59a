/*
 * Rate limits (`rateLimit`, our addition): a token bucket per key (client address, a request
 * header, or the basic-auth user) per rule, refilled continuously at requests/per and holding at
 * most `burst` tokens; a request that finds less than one token gets 429 with Retry-After.
 *
 * Accuracy: buckets are per worker (no lock, no shared memory on the request path). A client's
 * requests on one connection always meet the same worker, so for it the limit is exact; a client
 * spreading connections over W workers can get up to W times the rate and burst. Each worker
 * keeps at most 16384 buckets (4-way sets, 24 bytes each, about 400 KiB, allocated on first use);
 * when a set is full the bucket touched longest ago is forgotten, which can only make the limit
 * more lenient, never stricter. Keys are hashed with SipHash and a per-process random key.
 */
#ifndef GW_POLICY_RATELIMIT_H
#define GW_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gw_rl_key {
    GW_RL_KEY_IP,     /**< the client address (after trusted X-Forwarded-For) */
    GW_RL_KEY_HEADER, /**< a request header's value; requests without it are keyed by address */
    GW_RL_KEY_USER,   /**< the basic-auth user; anonymous requests are keyed by address */
} gw_rl_key_t;

typedef struct gw_ratelimit {
    uint64_t zone;     /**< which buckets: a stable identity of `zone` or of the level writing the rule,
                            with the rule's settings (policy.c), so buckets survive a reload */
    uint32_t requests; /**< tokens per period */
    uint32_t per_ms;   /**< the period */
    uint32_t burst;    /**< bucket size (default: requests) */
    gw_rl_key_t key;
    const char *header; /**< for GW_RL_KEY_HEADER */
} gw_ratelimit_t;

/**
 * One token-bucket step: refills *tokens for the time since *last_ms at `rate` tokens per ms
 * (capped at `burst`) and takes one token. Returns true when allowed; otherwise *retry_ms is the
 * time until a token is available. A fresh bucket must start with *tokens = burst.
 */
bool gw_bucket_take(double *tokens, int64_t *last_ms, double rate, double burst, int64_t now_ms,
                    uint32_t *retry_ms);

/**
 * Takes a token for key[0..len) under `rl` from the calling worker's table. Returns true when
 * allowed; otherwise *retry_s (>= 1) is the Retry-After value.
 */
bool gw_ratelimit_take(const gw_ratelimit_t *rl, const void *key, size_t len, int64_t now_ms,
                       uint32_t *retry_s);

/** Parses a duration: "250ms", "1s", "1.5s", "2m", "1h", or a bare integer of milliseconds. */
bool gw_duration_parse(const char *s, uint32_t *ms);

#endif
