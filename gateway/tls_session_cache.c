/* The process's TLS session-ID cache. See tls_session_cache.h. */
#include "tls_session_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/mem.h>
#include <openssl/ssl.h>

#define KEY_PART_MAX 32 /* SSL_MAX_SID_CTX_LENGTH and SSL_MAX_SSL_SESSION_ID_LENGTH */

typedef struct entry {
    struct entry *chain;         /* next in the bucket */
    struct entry *older, *newer; /* insertion order: the oldest is evicted first */
    uint64_t expires;
    uint8_t ctx_len, id_len;
    uint8_t ctx[KEY_PART_MAX], id[KEY_PART_MAX];
    size_t len;
    uint8_t data[]; /* the serialized session (it holds the master secret: wiped when dropped) */
} entry_t;

struct gw_sess_store {
    pthread_mutex_t lock; /* taken per session created or looked up, never per request */
    entry_t **buckets;
    size_t mask; /* buckets - 1 */
    size_t count, max;
    entry_t *oldest, *newest;
};

/* FNV-1a. Stored keys are session IDs the server drew at random, so a client cannot pick the
 * buckets that fill up; a chosen ID in a ClientHello only costs one bucket walk. */
static size_t hash_key(const gw_sess_key_t *k)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < k->ctx_len; i++)
        h = (h ^ k->ctx[i]) * 1099511628211ull;
    for (size_t i = 0; i < k->id_len; i++)
        h = (h ^ k->id[i]) * 1099511628211ull;
    return (size_t)h;
}

static bool entry_is(const entry_t *e, const gw_sess_key_t *k)
{
    return e->ctx_len == k->ctx_len && e->id_len == k->id_len && !memcmp(e->ctx, k->ctx, k->ctx_len) &&
           !memcmp(e->id, k->id, k->id_len);
}

static gw_sess_key_t key_of(const entry_t *e)
{
    return (gw_sess_key_t){e->ctx, e->id, e->ctx_len, e->id_len};
}

/* The link that points at the entry with key k (or the bucket's terminating NULL link). */
static entry_t **find(gw_sess_store_t *s, const gw_sess_key_t *k)
{
    entry_t **link = &s->buckets[hash_key(k) & s->mask];
    while (*link && !entry_is(*link, k))
        link = &(*link)->chain;
    return link;
}

static void forget(gw_sess_store_t *s, entry_t **link)
{
    entry_t *e = *link;
    *link = e->chain;
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    s->count--;
    OPENSSL_cleanse(e->data, e->len);
    free(e);
}

static void drop_oldest(gw_sess_store_t *s)
{
    gw_sess_key_t k = key_of(s->oldest);
    forget(s, find(s, &k));
}

static void link_newest(gw_sess_store_t *s, entry_t *e)
{
    gw_sess_key_t k = key_of(e);
    entry_t **bucket = &s->buckets[hash_key(&k) & s->mask];
    e->chain = *bucket;
    *bucket = e;
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
    s->count++;
}

static size_t bucket_count(size_t max)
{
    size_t n = 16;
    while (n < max)
        n <<= 1;
    return n;
}

gw_sess_store_t *gw_sess_store_new(size_t max_entries)
{
    gw_sess_store_t *s = calloc(1, sizeof(*s));
    size_t nb = bucket_count(max_entries);
    if (!s || !(s->buckets = calloc(nb, sizeof(*s->buckets)))) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->mask = nb - 1;
    s->max = max_entries;
    return s;
}

void gw_sess_store_free(gw_sess_store_t *s)
{
    if (!s) return;
    while (s->oldest)
        drop_oldest(s);
    free(s->buckets);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

bool gw_sess_store_resize(gw_sess_store_t *s, size_t max_entries)
{
    size_t nb = bucket_count(max_entries);
    entry_t **buckets = calloc(nb, sizeof(*buckets));
    if (!buckets) return false;
    pthread_mutex_lock(&s->lock);
    s->max = max_entries;
    while (s->count > max_entries)
        drop_oldest(s);
    entry_t *e = s->oldest;
    free(s->buckets);
    s->buckets = buckets;
    s->mask = nb - 1;
    s->oldest = s->newest = NULL;
    s->count = 0;
    while (e) { /* re-linked oldest first, so the order survives */
        entry_t *next = e->newer;
        link_newest(s, e);
        e = next;
    }
    pthread_mutex_unlock(&s->lock);
    return true;
}

static bool key_fits(const gw_sess_key_t *k)
{
    return k->ctx_len <= KEY_PART_MAX && k->id_len <= KEY_PART_MAX && k->id_len > 0;
}

bool gw_sess_store_put(gw_sess_store_t *s, const gw_sess_key_t *key, const uint8_t *data, size_t len,
                       uint64_t expires, uint64_t now)
{
    if (!key_fits(key) || expires <= now) return false;
    entry_t *e = malloc(sizeof(*e) + len); /* outside the lock */
    if (!e) return false;
    *e = (entry_t){
        .expires = expires, .ctx_len = (uint8_t)key->ctx_len, .id_len = (uint8_t)key->id_len, .len = len};
    memcpy(e->ctx, key->ctx, key->ctx_len);
    memcpy(e->id, key->id, key->id_len);
    memcpy(e->data, data, len);
    pthread_mutex_lock(&s->lock);
    bool stored = s->max > 0;
    if (stored) {
        entry_t **same = find(s, key);
        if (*same) forget(s, same);
        while (s->oldest && s->oldest->expires <= now)
            drop_oldest(s); /* the oldest expire first */
        while (s->count >= s->max)
            drop_oldest(s);
        link_newest(s, e);
    }
    pthread_mutex_unlock(&s->lock);
    if (!stored) free(e);
    return stored;
}

uint8_t *gw_sess_store_get(gw_sess_store_t *s, const gw_sess_key_t *key, uint64_t now, size_t *len)
{
    if (!key_fits(key)) return NULL;
    uint8_t *copy = NULL;
    pthread_mutex_lock(&s->lock);
    entry_t **link = find(s, key);
    entry_t *e = *link;
    if (e && e->expires <= now) {
        forget(s, link);
    } else if (e && (copy = malloc(e->len ? e->len : 1))) {
        memcpy(copy, e->data, e->len);
        *len = e->len;
    }
    pthread_mutex_unlock(&s->lock);
    return copy;
}

size_t gw_sess_store_count(gw_sess_store_t *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- the process's store, behind BoringSSL's external cache callbacks ---- */

static gw_sess_store_t *process_store; /* created before the first context that uses it */

void gw_tls_session_cache_configure(size_t max_entries)
{
    if (!process_store)
        process_store = gw_sess_store_new(max_entries);
    else
        gw_sess_store_resize(process_store, max_entries); /* out of memory: the old bound stays */
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    unsigned id_len;
    const uint8_t *id = SSL_SESSION_get_id(sess, &id_len);
    unsigned ctx_len;
    const uint8_t *ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
    uint8_t *der;
    size_t len;
    if (!process_store || !id_len || !SSL_SESSION_to_bytes(sess, &der, &len)) return 0;
    gw_sess_key_t key = {ctx, id, ctx_len, id_len};
    uint64_t born = SSL_SESSION_get_time(sess);
    gw_sess_store_put(process_store, &key, der, len, born + SSL_SESSION_get_timeout(sess),
                      (uint64_t)time(NULL));
    OPENSSL_cleanse(der, len);
    OPENSSL_free(der);
    return 0; /* we keep a copy, not the reference */
}

static SSL_SESSION *on_get_session(SSL *ssl, const uint8_t *id, int id_len, int *out_copy)
{
    *out_copy = 0; /* what we return is a new reference of its own */
    size_t ctx_len = 0, len = 0;
    const uint8_t *ctx = SSL_get0_session_id_context(ssl, &ctx_len); /* the SNI entry's, once switched */
    if (!process_store || !ctx || id_len <= 0) return NULL;
    gw_sess_key_t key = {ctx, id, ctx_len, (size_t)id_len};
    uint8_t *der = gw_sess_store_get(process_store, &key, (uint64_t)time(NULL), &len);
    if (!der) return NULL;
    SSL_SESSION *sess = SSL_SESSION_from_bytes(der, len, SSL_get_SSL_CTX(ssl));
    OPENSSL_cleanse(der, len);
    free(der);
    return sess;
}

void gw_tls_session_cache_attach(SSL_CTX *ctx)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_sess_set_get_cb(ctx, on_get_session);
}
