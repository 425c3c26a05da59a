/* Token buckets per worker. See ratelimit.h. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/siphash.h>

#include "state.h"

#define SETS 4096
#define WAYS 4

typedef struct bucket {
    uint64_t key; /* 0: free */
    double tokens;
    int64_t last;
} bucket_t;

static uint64_t sip_key[2];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;

static void make_sip_key(void)
{
    if (getrandom(sip_key, sizeof(sip_key), 0) != (ssize_t)sizeof(sip_key)) {
        sip_key[0] = (uint64_t)(uintptr_t)&sip_key ^ 0x9e3779b97f4a7c15ull;
        sip_key[1] = (uint64_t)gw_policy_clock();
    }
}

bool gw_bucket_take(double *tokens, int64_t *last_ms, double rate, double burst, int64_t now_ms,
                    uint32_t *retry_ms)
{
    if (now_ms > *last_ms) {
        *tokens += (double)(now_ms - *last_ms) * rate;
        if (*tokens > burst) *tokens = burst;
        *last_ms = now_ms;
    }
    /* refills summed in steps (1/3 + 2/3 of a token) may miss 1.0 by a rounding error: a token
     * that is due must not be refused for it */
    if (*tokens >= 1.0 - 1e-9) {
        *tokens -= 1.0;
        return true;
    }
    double wait = (1.0 - *tokens) / rate;
    uint32_t w = wait > 4e9 ? 4000000000u : (uint32_t)wait;
    *retry_ms = (double)w < wait ? w + 1 : w; /* rounded up */
    return false;
}

static bucket_t *find_bucket(uint64_t key, double burst, int64_t now)
{
    bucket_t *t = gw_policy_slot(GW_SLOT_RATE, SETS * WAYS * sizeof(bucket_t), NULL, NULL);
    if (!t) return NULL;
    bucket_t *set = &t[(key % SETS) * WAYS], *victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (set[i].key == key) return &set[i];
        if (set[i].key == 0 || (victim->key && set[i].last < victim->last)) victim = &set[i];
    }
    *victim = (bucket_t){key, burst, now};
    return victim;
}

bool gw_ratelimit_take(const gw_ratelimit_t *rl, const void *key, size_t len, int64_t now_ms,
                       uint32_t *retry_s)
{
    pthread_once(&sip_once, make_sip_key);
    uint8_t buf[8 + 256];
    memcpy(buf, &rl->zone, 8);
    size_t n = len > 256 ? 256 : len;
    memcpy(buf + 8, key, n);
    uint64_t h = SIPHASH_24(sip_key, buf, 8 + n) | 1; /* never 0, the free mark */
    double burst = rl->burst ? rl->burst : rl->requests;
    bucket_t *b = find_bucket(h, burst, now_ms);
    if (!b) return true; /* no memory: fail open rather than refuse everyone */
    uint32_t retry_ms = 0;
    if (gw_bucket_take(&b->tokens, &b->last, (double)rl->requests / rl->per_ms, burst, now_ms, &retry_ms))
        return true;
    *retry_s = (retry_ms + 999) / 1000;
    if (*retry_s == 0) *retry_s = 1;
    return false;
}

bool gw_duration_parse(const char *s, uint32_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return false;
    double mul;
    if (!*end || !strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else
        return false;
    double r = v * mul;
    if (r < 1 || r > 86400000.0 * 7) return false;
    *ms = (uint32_t)r;
    return true;
}
