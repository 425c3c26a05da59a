/* The ACME thread: cached certificate, issuance schedule, renewal and back-off. See acme.h. */
#include "acme.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_client.h"
#include "acme_crypto.h"
#include "acme_store.h"
#include "config.h"
#include "config_props.h"
#include "log.h"

#define LE_PRODUCTION "https://acme-v02.api.letsencrypt.org/directory"
#define LE_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"
#define RENEW_BEFORE_S (30 * 86400) /* default automaticTLSRenewBefore: Let's Encrypt's advice */
#define RETRY_MAX_S 3600            /* default automaticTLSRetryMax */
#define RETRY_FIRST_S 2             /* the first back-off after a failure */
#define RETRY_AFTER_MAX_S 86400     /* a longer Retry-After is taken as a day: renewal stays possible */
#define HTTP_TIMEOUT_MS 10000       /* default automaticTLSTimeout: one request to the CA, all told */
#define VALIDATION_TIMEOUT_S 60     /* default automaticTLSValidationTimeout */
#define POLL_INTERVAL_MS 500        /* between polls of an authorization or order */

struct gw_acme {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    gw_acme_http_t *http;
    EVP_PKEY *account_key;
    char **names;
    size_t num_names;
    char *directory, *email, *cache_dir, *ca_file;
    bool http01;
    long renew_before, retry_max, timeout_ms, validation_s;
    time_t not_after; /* of the certificate served; 0: none */
};

/* ---- configuration ---- */

static const gw_node_t *global_prop(const gw_config_t *cfg, const char *name)
{
    const gw_node_t *g = cfg->doc.root ? gw_yaml_map_get(cfg->doc.root, "global") : NULL;
    return g ? gw_yaml_map_get(g, name) : NULL;
}

static bool global_bool(const gw_config_t *cfg, const char *name, bool def)
{
    bool v;
    return gw_node_as_bool(global_prop(cfg, name), &v) ? v : def;
}

static long global_int(const gw_config_t *cfg, const char *name, long def)
{
    int64_t v;
    return gw_node_as_int(global_prop(cfg, name), &v) ? (long)v : def;
}

static char *global_strdup(const gw_config_t *cfg, const char *name, const char *def)
{
    const char *s = gw_node_as_string(global_prop(cfg, name));
    return s && s[0] ? strdup(s) : def ? strdup(def) : NULL;
}

bool gw_acme_enabled(const gw_config_t *cfg)
{
    return global_bool(cfg, "enableAutomaticTLS", false);
}

static bool has_name(const gw_acme_t *a, const char *name)
{
    for (size_t i = 0; i < a->num_names; i++)
        if (!strcmp(a->names[i], name)) return true;
    return false;
}

/* Every host `domain` a public CA can issue for: not a wildcard, not an address, not "localhost". */
static bool collect_names(gw_acme_t *a, const gw_config_t *cfg)
{
    a->names = calloc(cfg->num_hosts + 1, sizeof(*a->names));
    if (!a->names) return false;
    for (size_t i = 0; i < cfg->num_hosts; i++) {
        const gw_host_t *h = &cfg->hosts[i];
        if (!h->domain || h->wildcard || !strchr(h->domain, '.') ||
            strspn(h->domain, "0123456789.") == strlen(h->domain) || strchr(h->domain, ':') ||
            has_name(a, h->domain))
            continue;
        if (!(a->names[a->num_names] = strdup(h->domain))) return false;
        a->num_names++;
    }
    return true;
}

static bool same_node_text(const gw_node_t *x, const gw_node_t *y)
{
    const char *a = gw_node_as_string(x), *b = gw_node_as_string(y);
    return (!a && !b) || (a && b && !strcmp(a, b));
}

bool gw_acme_same_settings(const gw_config_t *old, const gw_config_t *cfg)
{
    static const char *const props[] = {"enableAutomaticTLS",
                                        "useAutomaticTLSHTTPChallenge",
                                        "automaticTLSContactEmail",
                                        "automaticTLSContactCacheDirectory",
                                        "automaticTLSLetsEncryptProduction",
                                        "automaticTLSDirectory",
                                        "automaticTLSCaFile",
                                        "automaticTLSRenewBefore",
                                        "automaticTLSRetryMax",
                                        "automaticTLSTimeout",
                                        "automaticTLSValidationTimeout"};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (!same_node_text(global_prop(old, props[i]), global_prop(cfg, props[i]))) return false;
    if (!gw_acme_enabled(cfg)) return true;
    if (old->num_hosts != cfg->num_hosts) return false;
    for (size_t i = 0; i < cfg->num_hosts; i++) {
        const char *a = old->hosts[i].domain, *b = cfg->hosts[i].domain;
        if ((a || b) && (!a || !b || strcmp(a, b) || old->hosts[i].wildcard != cfg->hosts[i].wildcard))
            return false;
    }
    return true;
}

static void acme_free(gw_acme_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->num_names; i++)
        free(a->names[i]);
    free(a->names);
    free(a->directory);
    free(a->email);
    free(a->cache_dir);
    free(a->ca_file);
    EVP_PKEY_free(a->account_key);
    gw_acme_http_free(a->http);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->wake);
    free(a);
}

static gw_acme_t *acme_new(const gw_config_t *cfg)
{
    gw_acme_t *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    pthread_mutex_init(&a->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->wake, &ca);
    pthread_condattr_destroy(&ca);
    bool production = global_bool(cfg, "automaticTLSLetsEncryptProduction", true);
    a->directory = global_strdup(cfg, "automaticTLSDirectory", production ? LE_PRODUCTION : LE_STAGING);
    a->email = global_strdup(cfg, "automaticTLSContactEmail", NULL);
    a->cache_dir = global_strdup(cfg, "automaticTLSContactCacheDirectory", NULL);
    a->ca_file = global_strdup(cfg, "automaticTLSCaFile", NULL);
    a->http01 = global_bool(cfg, "useAutomaticTLSHTTPChallenge", false);
    a->renew_before = global_int(cfg, "automaticTLSRenewBefore", RENEW_BEFORE_S);
    a->retry_max = global_int(cfg, "automaticTLSRetryMax", RETRY_MAX_S);
    a->timeout_ms = global_int(cfg, "automaticTLSTimeout", HTTP_TIMEOUT_MS);
    a->validation_s = global_int(cfg, "automaticTLSValidationTimeout", VALIDATION_TIMEOUT_S);
    if (!a->directory || !collect_names(a, cfg)) {
        acme_free(a);
        return NULL;
    }
    return a;
}

/* ---- the cache directory ---- */

static void cache_path(const gw_acme_t *a, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", a->cache_dir, file);
}

/* The account key: from the cache, else a new one (saved when there is a cache). */
static bool load_account_key(gw_acme_t *a)
{
    char path[4096];
    if (a->cache_dir) {
        cache_path(a, "account.key", path, sizeof(path));
        if ((a->account_key = gw_acme_read_key(path))) return true;
    }
    if (!(a->account_key = gw_acme_new_key())) return false;
    if (a->cache_dir && gw_acme_write_key(path, a->account_key) != 0)
        gw_log_error("warn", "acme: cannot save the account key to %s: %s", path, strerror(errno));
    return true;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(GW_ACME_MAX_BODY + 1);
    size_t n = buf ? fread(buf, 1, GW_ACME_MAX_BODY, f) : 0;
    fclose(f);
    if (!buf || !n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* True when the leaf of `pem` names every configured domain. */
static bool covers_names(const gw_acme_t *a, const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    bool ok = leaf != NULL;
    for (size_t i = 0; ok && i < a->num_names; i++)
        ok = X509_check_host(leaf, a->names[i], strlen(a->names[i]), X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
    X509_free(leaf);
    BIO_free(bio);
    return ok;
}

static bool install(gw_acme_t *a, const char *pem, size_t len, EVP_PKEY *key)
{
    time_t not_after = 0;
    if (!gw_acme_store_install((const char *const *)a->names, a->num_names, pem, len, key, &not_after))
        return false;
    a->not_after = not_after;
    return true;
}

/* A cached certificate that covers the names and is not yet expired is served at once. */
static void load_cached(gw_acme_t *a)
{
    char cpath[4096], kpath[4096];
    size_t len = 0;
    if (!a->cache_dir) return;
    cache_path(a, "cert.pem", cpath, sizeof(cpath));
    cache_path(a, "key.pem", kpath, sizeof(kpath));
    char *pem = read_file(cpath, &len);
    EVP_PKEY *key = pem ? gw_acme_read_key(kpath) : NULL;
    if (pem && key && covers_names(a, pem, len) && install(a, pem, len, key) && a->not_after > time(NULL))
        gw_log_error("notice", "acme: serving the cached certificate %s (expires in %ld s)", cpath,
                     (long)(a->not_after - time(NULL)));
    else if (pem)
        gw_log_error("notice",
                     "acme: the cached certificate %s is not usable for these names; a new one is ordered",
                     cpath);
    if (a->not_after && a->not_after <= time(NULL)) a->not_after = 0; /* expired: served until replaced */
    free(pem);
    EVP_PKEY_free(key);
}

static void save(const gw_acme_t *a, const char *pem, size_t len, EVP_PKEY *key)
{
    char path[4096];
    if (!a->cache_dir) return;
    cache_path(a, "key.pem", path, sizeof(path));
    if (gw_acme_write_key(path, key) != 0) goto fail;
    cache_path(a, "cert.pem", path, sizeof(path));
    if (gw_acme_write_private(path, pem, len) != 0) goto fail;
    return;
fail:
    gw_log_error("warn", "acme: cannot save %s: %s (the certificate is served, not cached)", path,
                 strerror(errno));
}

/* ---- the thread ---- */

/* Sleeps ms unless stopping; false when stopping. */
static bool wait_ms(void *ctx, int ms)
{
    gw_acme_t *a = ctx;
    struct timespec until = gw_acme_deadline_in((uint32_t)(ms > 0 ? ms : 0));
    pthread_mutex_lock(&a->lock);
    while (!a->stopping && pthread_cond_timedwait(&a->wake, &a->lock, &until) != ETIMEDOUT)
        continue;
    bool go_on = !a->stopping;
    pthread_mutex_unlock(&a->lock);
    return go_on;
}

/* One issuance; on failure the back-off the CA asked for (Retry-After), else -1. */
static bool issue_once(gw_acme_t *a, long *retry_after)
{
    gw_acme_session_t s = {.http = a->http,
                           .account_key = a->account_key,
                           .directory_url = a->directory,
                           .contact_email = a->email,
                           .http01 = a->http01,
                           .poll_interval_ms = POLL_INTERVAL_MS,
                           .poll_attempts = (int)(a->validation_s * 1000 / POLL_INTERVAL_MS),
                           .wait = wait_ms,
                           .wait_ctx = a};
    char err[1024] = "";
    size_t len = 0;
    EVP_PKEY *key = gw_acme_new_key();
    char *pem =
        key ? gw_acme_issue(&s, (const char *const *)a->names, a->num_names, key, &len, err, sizeof(err))
            : NULL;
    bool ok = pem && install(a, pem, len, key);
    if (ok) {
        save(a, pem, len, key);
        gw_log_error("notice", "acme: certificate for %s%s installed (expires in %ld s)", a->names[0],
                     a->num_names > 1 ? " and more" : "", (long)(a->not_after - time(NULL)));
    } else {
        gw_log_error("error", "acme: %s: %s", a->directory, err[0] ? err : "the certificate is not usable");
    }
    *retry_after = s.retry_after;
    free(pem);
    EVP_PKEY_free(key);
    return ok;
}

/* Seconds until the certificate should be renewed; half its remaining life when the margin is
 * longer than that (a short-lived certificate is not renewed in a loop). */
static long renew_in(const gw_acme_t *a)
{
    long left = (long)(a->not_after - time(NULL));
    long in = left - a->renew_before;
    return in > 0 ? in : left / 2 > 1 ? left / 2 : 1;
}

static void *acme_main(void *arg)
{
    gw_acme_t *a = arg;
    long delay = a->not_after ? renew_in(a) : 0, backoff = RETRY_FIRST_S;
    for (;;) {
        long step = delay > 86400 ? 86400 : delay; /* long waits are taken a day at a time */
        if (!wait_ms(a, (int)step * 1000)) break;
        if ((delay -= step) > 0) continue;
        long retry_after = -1;
        if (issue_once(a, &retry_after)) {
            delay = renew_in(a);
            backoff = RETRY_FIRST_S;
            continue;
        }
        delay = backoff < a->retry_max ? backoff : a->retry_max;
        const char *why = "";
        if (retry_after > delay) { /* the CA asked for longer (a rate limit, RFC 8555 §6.6) */
            why = retry_after > RETRY_AFTER_MAX_S ? " (the CA's Retry-After, capped)"
                                                  : " (the CA's Retry-After)";
            delay = retry_after < RETRY_AFTER_MAX_S ? retry_after : RETRY_AFTER_MAX_S;
        }
        backoff = backoff * 2 < a->retry_max ? backoff * 2 : a->retry_max;
        gw_log_error("notice", "acme: next attempt in %ld s%s", delay, why);
    }
    return NULL;
}

gw_acme_t *gw_acme_start(const gw_config_t *cfg, struct gw_worker *w0)
{
    if (!gw_acme_enabled(cfg)) return NULL;
    gw_acme_t *a = acme_new(cfg);
    char err[512] = "";
    if (!a) goto fail;
    if (!a->num_names) {
        gw_log_error("warn",
                     "acme: enableAutomaticTLS, but no host has a domain a CA can issue a certificate for");
        acme_free(a);
        return NULL;
    }
    if (a->cache_dir && mkdir(a->cache_dir, 0700) != 0 && errno != EEXIST)
        gw_log_error("warn", "acme: cannot create %s: %s", a->cache_dir, strerror(errno));
    if (!(a->http = gw_acme_http_new(w0, a->ca_file, (int)a->timeout_ms, err, sizeof(err))) ||
        !load_account_key(a))
        goto fail;
    load_cached(a);
    if (pthread_create(&a->thread, NULL, acme_main, a) != 0) goto fail;
    return a;
fail:
    gw_log_error("error", "acme: cannot start%s%s", err[0] ? ": " : "", err);
    acme_free(a);
    return NULL;
}

void gw_acme_stop(gw_acme_t *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
    gw_acme_http_interrupt(a->http);
    pthread_join(a->thread, NULL);
    acme_free(a); /* the certificates stay in the store: handshakes in progress use them */
}
