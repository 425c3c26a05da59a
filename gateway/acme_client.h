/*
 * One ACME issuance (RFC 8555 §7): directory, nonce, account (created or found by its key), order
 * for the names, one challenge per authorization (HTTP-01 or TLS-ALPN-01, published through
 * acme_store.h), polling, finalisation with a CSR, and the certificate download. Blocking, on the
 * ACME thread only. A badNonce answer is retried at once with the nonce it carried (§6.5).
 */
#ifndef GW_ACME_CLIENT_H
#define GW_ACME_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "acme_http.h"

typedef struct evp_pkey_st EVP_PKEY;

typedef struct gw_acme_session {
    gw_acme_http_t *http;
    EVP_PKEY *account_key;
    const char *directory_url;
    const char *contact_email; /**< NULL: an account without contact */
    bool http01;               /**< HTTP-01 instead of TLS-ALPN-01 */
    int poll_interval_ms;      /**< between polls of an authorization or order */
    int poll_attempts;         /**< polls before giving up */
    /** Waits ms unless the gateway is stopping; false when it is. */
    bool (*wait)(void *ctx, int ms);
    void *wait_ctx;
    /* filled while running */
    char new_nonce[512], new_account[512], new_order[512];
    char kid[1024];
    char nonce[256];
    long retry_after; /**< from the last failed answer, -1 when none */
} gw_acme_session_t;

/**
 * Runs an issuance for names[0..n) with the certificate key `cert_key`. On success returns the PEM
 * chain (malloc'd, *len bytes); on failure NULL with what failed in err (the step and the CA's
 * problem document).
 */
char *gw_acme_issue(gw_acme_session_t *s, const char *const *names, size_t n, EVP_PKEY *cert_key, size_t *len,
                    char *err, size_t errlen);

#endif
