/* The process-wide ACME certificates and challenges. See acme_store.h. */
#include "acme_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "acme_crypto.h"

#define MAX_CHAIN 8

typedef struct served {
    char *name;
    CRYPTO_BUFFER *chain[MAX_CHAIN];
    size_t n;
    EVP_PKEY *key;
} served_t;

typedef struct token {
    char *token, *key_auth;
} token_t;

typedef struct list {
    void *items;
    size_t n, cap;
} list_t;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static list_t certs, alpn_certs, tokens; /* served_t, served_t, token_t */
/* Replaced certificates and keys (served_t), freed at exit only: a handshake may still hold them,
 * and their reference counts live in BoringSSL, out of ThreadSanitizer's sight; a renewal every
 * few weeks adds a few KiB. */
static list_t retired;
static atomic_bool active;

static void *list_slot(list_t *l, size_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        void *p = realloc(l->items, cap * size);
        if (!p) return NULL;
        l->items = p;
        l->cap = cap;
    }
    void *slot = (char *)l->items + l->n++ * size;
    memset(slot, 0, size);
    return slot;
}

static void served_clear(served_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        CRYPTO_BUFFER_free(s->chain[i]);
    EVP_PKEY_free(s->key);
    free(s->name);
    memset(s, 0, sizeof(*s));
}

/* Moves an entry's chain and key to `retired`; under the write lock. */
static void served_retire(served_t *s)
{
    served_t *slot = list_slot(&retired, sizeof(*slot));
    if (slot) {
        *slot = *s;
        slot->name = NULL;
    } else {
        for (size_t i = 0; i < s->n; i++)
            CRYPTO_BUFFER_free(s->chain[i]); /* no memory: freed now */
        EVP_PKEY_free(s->key);
    }
    free(s->name);
    memset(s, 0, sizeof(*s));
}

static served_t *find_served(list_t *l, const char *name)
{
    served_t *s = l->items;
    for (size_t i = 0; i < l->n; i++)
        if (!strcasecmp(s[i].name, name)) return &s[i];
    return NULL;
}

/* Replaces (or adds) the entry for `name` with references to chain and key; under the write lock. */
static bool put_served(list_t *l, const char *name, CRYPTO_BUFFER *const *chain, size_t n, EVP_PKEY *key)
{
    served_t *s = find_served(l, name);
    char *copy = strdup(name);
    if (!copy || (!s && !(s = list_slot(l, sizeof(*s))))) {
        free(copy);
        return false;
    }
    if (s->name) served_retire(s);
    s->name = copy;
    for (size_t i = 0; i < n; i++) {
        CRYPTO_BUFFER_up_ref(chain[i]);
        s->chain[i] = chain[i];
    }
    s->n = n;
    EVP_PKEY_up_ref(key);
    s->key = key;
    atomic_store(&active, true);
    return true;
}

bool gw_acme_store_set_token(const char *token, const char *key_auth)
{
    char *t = strdup(token), *k = strdup(key_auth);
    pthread_rwlock_wrlock(&lock);
    token_t *slot = t && k ? list_slot(&tokens, sizeof(token_t)) : NULL;
    if (slot) *slot = (token_t){t, k};
    pthread_rwlock_unlock(&lock);
    if (slot) return true;
    free(t);
    free(k);
    return false;
}

bool gw_acme_store_token(const char *token, size_t len, char *out, size_t cap)
{
    bool found = false;
    pthread_rwlock_rdlock(&lock);
    const token_t *t = tokens.items;
    for (size_t i = 0; i < tokens.n && !found; i++) {
        size_t kl = strlen(t[i].key_auth);
        if (strlen(t[i].token) != len || memcmp(t[i].token, token, len) || kl >= cap) continue;
        memcpy(out, t[i].key_auth, kl + 1);
        found = true;
    }
    pthread_rwlock_unlock(&lock);
    return found;
}

static CRYPTO_BUFFER *x509_buffer(X509 *x)
{
    uint8_t *der = NULL;
    int len = i2d_X509(x, &der);
    CRYPTO_BUFFER *b = len > 0 ? CRYPTO_BUFFER_new(der, (size_t)len, NULL) : NULL;
    OPENSSL_free(der);
    return b;
}

bool gw_acme_store_set_alpn_cert(const char *name, const char *key_auth)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    if (!gw_acme_alpn_cert(name, key_auth, &x, &k)) return false;
    CRYPTO_BUFFER *b = x509_buffer(x);
    pthread_rwlock_wrlock(&lock);
    bool ok = b && put_served(&alpn_certs, name, &b, 1, k);
    pthread_rwlock_unlock(&lock);
    CRYPTO_BUFFER_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

/* Empties a list: tokens are freed, certificates retired (or freed at exit). */
static void clear_list(list_t *l, bool is_token, bool at_exit)
{
    for (size_t i = 0; i < l->n; i++) {
        if (is_token) {
            token_t *t = (token_t *)l->items + i;
            free(t->token);
            free(t->key_auth);
        } else if (at_exit) {
            served_clear((served_t *)l->items + i);
        } else {
            served_retire((served_t *)l->items + i);
        }
    }
    l->n = 0;
}

void gw_acme_store_clear_challenges(void)
{
    pthread_rwlock_wrlock(&lock);
    clear_list(&tokens, true, false);
    clear_list(&alpn_certs, false, false);
    pthread_rwlock_unlock(&lock);
}

/* The PEM chain as DER buffers; returns how many (0: none usable). *leaf gets the first. */
static size_t parse_chain(const char *pem, size_t len, CRYPTO_BUFFER **chain, X509 **leaf)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    size_t n = 0;
    X509 *x;
    while (bio && n < MAX_CHAIN && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        chain[n] = x509_buffer(x);
        if (!chain[n]) {
            X509_free(x);
            break;
        }
        if (n++ == 0)
            *leaf = x;
        else
            X509_free(x);
    }
    BIO_free(bio);
    return n;
}

static time_t not_after_of(X509 *leaf)
{
    int days = 0, secs = 0;
    if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(leaf))) return 0;
    return time(NULL) + (time_t)days * 86400 + secs;
}

bool gw_acme_store_install(const char *const *names, size_t n, const char *pem, size_t len, EVP_PKEY *key,
                           time_t *not_after)
{
    CRYPTO_BUFFER *chain[MAX_CHAIN];
    X509 *leaf = NULL;
    size_t nc = parse_chain(pem, len, chain, &leaf);
    bool ok = nc > 0 && leaf && X509_check_private_key(leaf, key);
    if (ok) *not_after = not_after_of(leaf);
    pthread_rwlock_wrlock(&lock);
    for (size_t i = 0; ok && i < n; i++)
        ok = put_served(&certs, names[i], chain, nc, key);
    pthread_rwlock_unlock(&lock);
    for (size_t i = 0; i < nc; i++)
        CRYPTO_BUFFER_free(chain[i]);
    X509_free(leaf);
    return ok;
}

bool gw_acme_store_apply(SSL *ssl, const char *name, bool alpn_challenge)
{
    pthread_rwlock_rdlock(&lock);
    const served_t *s = find_served(alpn_challenge ? &alpn_certs : &certs, name);
    /* the SSL takes its own references: a later swap does not affect this handshake */
    bool ok = s && SSL_set_chain_and_key(ssl, s->chain, s->n, s->key, NULL);
    pthread_rwlock_unlock(&lock);
    return ok;
}

bool gw_acme_store_active(void)
{
    return atomic_load_explicit(&active, memory_order_relaxed);
}

void gw_acme_store_free(void)
{
    pthread_rwlock_wrlock(&lock);
    clear_list(&tokens, true, true);
    clear_list(&alpn_certs, false, true);
    clear_list(&certs, false, true);
    clear_list(&retired, false, true);
    free(certs.items);
    free(alpn_certs.items);
    free(tokens.items);
    free(retired.items);
    certs = alpn_certs = tokens = retired = (list_t){0};
    atomic_store(&active, false);
    pthread_rwlock_unlock(&lock);
}
