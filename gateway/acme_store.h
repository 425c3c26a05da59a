/*
 * What the ACME thread hands to the workers, process-wide: the HTTP-01 key authorizations being
 * validated, the TLS-ALPN-01 challenge certificates, and the certificates issued (one chain and key
 * for all the names of an order). The ACME thread writes, every worker's TLS handshake and HTTP-01
 * request reads; a read-write lock keeps a swap atomic, and a handshake holds its own references
 * to the chain and key it took, so a renewal never pulls a certificate from under a connection
 * (replaced ones are kept until exit all the same, see acme_store.c).
 * No reload is involved: an issued certificate is served from the next handshake on.
 */
#ifndef GW_ACME_STORE_H
#define GW_ACME_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct ssl_st SSL;

/** Publishes the key authorization for an HTTP-01 `token` (replacing one for the same token). */
bool gw_acme_store_set_token(const char *token, const char *key_auth);

/** Copies the key authorization of `token` (len bytes, not NUL-terminated) to out; false if none. */
bool gw_acme_store_token(const char *token, size_t len, char *out, size_t cap);

/** Publishes a TLS-ALPN-01 challenge certificate for `name` (self-signed, RFC 8737 §3). */
bool gw_acme_store_set_alpn_cert(const char *name, const char *key_auth);

/** Forgets every token and challenge certificate (the order is over). */
void gw_acme_store_clear_challenges(void);

/**
 * Parses a PEM chain (leaf first) and installs it with `key` for each of `names`, replacing what
 * they served. Returns the leaf's notAfter through *not_after. False when the chain is not usable
 * or does not match the key (nothing is replaced then).
 */
bool gw_acme_store_install(const char *const *names, size_t n, const char *pem, size_t len, EVP_PKEY *key,
                           time_t *not_after);

/**
 * From the SNI callback: gives `ssl` the issued certificate for `name`, or the TLS-ALPN-01 challenge
 * certificate when `alpn_challenge` (the client offered acme-tls/1). False when there is none.
 */
bool gw_acme_store_apply(SSL *ssl, const char *name, bool alpn_challenge);

/** True when any certificate or challenge is published (the SNI callback's quick test). */
bool gw_acme_store_active(void);

/** Frees everything, replaced certificates included: at exit, once the workers have stopped. */
void gw_acme_store_free(void);

#endif
