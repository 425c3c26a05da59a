/* Basic auth and its success cache. See basic_auth.h. */
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
#define MAX_AUTHZ 4096

typedef struct cache_entry {
    uint8_t key[32];
    uint32_t user;
    int64_t expires;
} cache_entry_t;

void gw_userdb_seal(gw_userdb_t *db)
{
    SHA256_CTX c;
    SHA256_Init(&c);
    for (size_t i = 0; i < db->count; i++) {
        SHA256_Update(&c, db->users[i].name, strlen(db->users[i].name) + 1);
        SHA256_Update(&c, db->users[i].hash, strlen(db->users[i].hash) + 1);
    }
    SHA256_Final(db->id, &c);
    /* The first verifiable hash of the set: the same algorithm and cost as (at least) that user's by
     * construction, and nothing to compute at load. Its result is discarded, so the password that
     * happens to match it opens nothing. */
    db->decoy_hash = NULL;
    for (size_t i = 0; i < db->count && !db->decoy_hash; i++)
        if (!gw_password_check_format(db->users[i].hash)) db->decoy_hash = db->users[i].hash;
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
    bool known = false;
    for (size_t i = 0; i < db->count; i++) {
        const gw_user_t *u = &db->users[i];
        if (strlen(u->name) != ulen || memcmp(u->name, cred, ulen) != 0) continue;
        known = true;
        /* verified even when the user is not allowed here: being listed must not show in the time */
        bool match = gw_password_verify(u->hash, pw, pwlen) == GW_PW_OK;
        if (match && user_allowed(u->name, allowed, nallowed)) {
            *user = (uint32_t)i;
            return GW_AUTH_OK;
        }
    }
    if (!known && db->decoy_hash) (void)gw_password_verify(db->decoy_hash, pw, pwlen);
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
