/* Basic auth, its success cache and the brute-force counters. See basic_auth.h. */
#include "basic_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "password.h"
#include "state.h"

#define CACHE_SETS 256
#define CACHE_WAYS 2
#define CACHE_TTL_MS 60000
#define BRUTE_SETS 2048
#define BRUTE_WAYS 2
#define MAX_AUTHZ 4096

typedef struct cache_entry {
    uint8_t key[32];
    uint32_t user;
    int64_t expires;
} cache_entry_t;

typedef struct brute_entry {
    struct in6_addr ip;
    uint32_t failures;
    int64_t since;
} brute_entry_t;

void gw_userdb_seal(gw_userdb_t *db)
{
    SHA256_CTX c;
    SHA256_Init(&c);
    for (size_t i = 0; i < db->count; i++) {
        SHA256_Update(&c, db->users[i].name, strlen(db->users[i].name) + 1);
        SHA256_Update(&c, db->users[i].hash, strlen(db->users[i].hash) + 1);
    }
    SHA256_Final(db->id, &c);
}

/* ---- success cache ---- */

static cache_entry_t *cache_set(const uint8_t key[32])
{
    cache_entry_t *c =
        gw_policy_slot(GW_SLOT_AUTH_CACHE, CACHE_SETS * CACHE_WAYS * sizeof(cache_entry_t), NULL, NULL);
    if (!c) return NULL;
    uint32_t h;
    memcpy(&h, key, sizeof(h));
    return &c[(h % CACHE_SETS) * CACHE_WAYS];
}

static bool cache_get(const uint8_t key[32], int64_t now, uint32_t *user)
{
    cache_entry_t *set = cache_set(key);
    for (int i = 0; set && i < CACHE_WAYS; i++)
        if (set[i].expires > now && CRYPTO_memcmp(set[i].key, key, 32) == 0) {
            *user = set[i].user;
            return true;
        }
    return false;
}

static void cache_put(const uint8_t key[32], int64_t now, uint32_t user)
{
    cache_entry_t *set = cache_set(key);
    if (!set) return;
    cache_entry_t *victim = set[0].expires <= set[1].expires ? &set[0] : &set[1];
    memcpy(victim->key, key, 32);
    victim->user = user;
    victim->expires = now + CACHE_TTL_MS;
}

/* ---- the check ---- */

static bool user_allowed(const char *name, const char *const *allowed, size_t n)
{
    if (!n) return true;
    for (size_t i = 0; i < n; i++)
        if (strcmp(allowed[i], name) == 0) return true;
    return false;
}

/* Decodes "Basic <base64>" into buf as "user:pass"; returns the length or -1. */
static long decode_basic(gw_slice_t authz, char *buf, size_t cap)
{
    if (authz.len < 6 || strncasecmp(authz.base, "basic ", 6) != 0) return -1;
    const char *b = authz.base + 6;
    size_t n = authz.len - 6;
    while (n && *b == ' ')
        b++, n--;
    while (n && b[n - 1] == ' ')
        n--;
    size_t max, out;
    if (!EVP_DecodedLength(&max, n) || max > cap) return -1;
    if (!EVP_DecodeBase64((uint8_t *)buf, &out, cap, (const uint8_t *)b, n)) return -1;
    return (long)out;
}

static gw_auth_result_t verify(const gw_userdb_t *db, const char *cred, size_t len,
                               const char *const *allowed, size_t nallowed, uint32_t *user)
{
    const char *colon = memchr(cred, ':', len);
    if (!colon) return GW_AUTH_FAILED;
    size_t ulen = (size_t)(colon - cred);
    const char *pw = colon + 1;
    size_t pwlen = len - ulen - 1;
    for (size_t i = 0; i < db->count; i++) {
        const gw_user_t *u = &db->users[i];
        if (strlen(u->name) != ulen || memcmp(u->name, cred, ulen) != 0) continue;
        if (!user_allowed(u->name, allowed, nallowed)) return GW_AUTH_FAILED;
        if (gw_password_verify(u->hash, pw, pwlen) == GW_PW_OK) {
            *user = (uint32_t)i;
            return GW_AUTH_OK;
        }
    }
    return GW_AUTH_FAILED;
}

gw_auth_result_t gw_basic_auth_check(const gw_userdb_t *db, gw_slice_t authz, const char *const *allowed,
                                     size_t nallowed, const char **user, int64_t now_ms)
{
    if (!authz.base || authz.len < 6 || strncasecmp(authz.base, "basic ", 6) != 0) return GW_AUTH_MISSING;
    if (authz.len > MAX_AUTHZ) return GW_AUTH_FAILED;
    uint8_t key[32];
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, db->id, sizeof(db->id));
    SHA256_Update(&c, authz.base, authz.len);
    SHA256_Final(key, &c);
    uint32_t idx;
    if (cache_get(key, now_ms, &idx) && idx < db->count &&
        user_allowed(db->users[idx].name, allowed, nallowed)) {
        *user = db->users[idx].name;
        return GW_AUTH_OK;
    }
    char cred[MAX_AUTHZ];
    long len = decode_basic(authz, cred, sizeof(cred));
    if (len < 0) return GW_AUTH_FAILED;
    gw_auth_result_t r = verify(db, cred, (size_t)len, allowed, nallowed, &idx);
    OPENSSL_cleanse(cred, (size_t)len);
    if (r == GW_AUTH_OK) {
        cache_put(key, now_ms, idx);
        *user = db->users[idx].name;
    }
    return r;
}

/* ---- brute-force counters ---- */

static brute_entry_t *brute_find(const struct in6_addr *ip, bool create, int64_t now)
{
    brute_entry_t *t =
        gw_policy_slot(GW_SLOT_BRUTE, BRUTE_SETS * BRUTE_WAYS * sizeof(brute_entry_t), NULL, NULL);
    if (!t) return NULL;
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip->s6_addr[i]) * 16777619u;
    brute_entry_t *set = &t[(h % BRUTE_SETS) * BRUTE_WAYS];
    brute_entry_t *victim = NULL;
    bool victim_live = false;
    for (int i = 0; i < BRUTE_WAYS; i++) {
        bool live = set[i].failures && now - set[i].since < GW_BRUTE_WINDOW_MS;
        if (live && memcmp(&set[i].ip, ip, sizeof(*ip)) == 0) return &set[i];
        if (!victim || (victim_live && (!live || set[i].since < victim->since))) {
            victim = &set[i]; /* a free slot first, else the oldest window */
            victim_live = live;
        }
    }
    if (!create) return NULL;
    *victim = (brute_entry_t){*ip, 0, now};
    return victim;
}

bool gw_brute_locked(const struct in6_addr *ip, int64_t now_ms, uint32_t *retry_s)
{
    brute_entry_t *e = brute_find(ip, false, now_ms);
    if (!e || e->failures < GW_BRUTE_MAX_FAILURES) return false;
    int64_t left = e->since + GW_BRUTE_WINDOW_MS - now_ms;
    *retry_s = (uint32_t)((left + 999) / 1000);
    if (*retry_s == 0) *retry_s = 1;
    return true;
}

void gw_brute_fail(const struct in6_addr *ip, int64_t now_ms)
{
    brute_entry_t *e = brute_find(ip, true, now_ms);
    if (e) e->failures++;
}

/* ---- htpasswd files ---- */

long gw_htpasswd_read(const char *path, void (*add)(void *ctx, const char *name, const char *hash), void *ctx,
                      char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    long n = 0, lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0 || line[0] == '#') continue;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) {
            snprintf(err, errlen, "%s:%ld: expected name:hash", path, lineno);
            fclose(f);
            return -1;
        }
        *colon = '\0';
        add(ctx, line, colon + 1);
        n++;
    }
    fclose(f);
    return n;
}
