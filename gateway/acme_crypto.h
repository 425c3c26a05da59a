/*
 * The cryptography of an ACME client (RFC 8555, RFC 7515, RFC 7638) on BoringSSL: base64url, the
 * ES256 account key and its JWK and thumbprint, flattened JWS objects, the CSR for an order, and
 * key and certificate files written with mode 0600 (written to a temporary name, then renamed, so a
 * crash never leaves half a key).
 */
#ifndef GW_ACME_CRYPTO_H
#define GW_ACME_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct evp_pkey_st EVP_PKEY;

/** Writes the unpadded base64url form of in[0..n) to out (NUL-terminated). Returns its length, or
 *  0 when it does not fit in cap bytes. */
size_t gw_b64url(const void *in, size_t n, char *out, size_t cap);

/** A new EC P-256 key (NULL without memory). */
EVP_PKEY *gw_acme_new_key(void);

/** Reads a PEM private key; NULL when `path` is missing or not a key. */
EVP_PKEY *gw_acme_read_key(const char *path);

/** Writes `data` to `path` with mode 0600 through a temporary file and a rename. 0 or -1 (errno). */
int gw_acme_write_private(const char *path, const void *data, size_t len);

/** Writes `key` as PEM to `path` (mode 0600). 0 or -1. */
int gw_acme_write_key(const char *path, EVP_PKEY *key);

/** The public JWK of an EC P-256 key, members in the order RFC 7638 hashes them. */
bool gw_acme_jwk(EVP_PKEY *key, char *out, size_t cap);

/** The RFC 7638 thumbprint of the key's JWK, base64url. */
bool gw_acme_thumbprint(EVP_PKEY *key, char *out, size_t cap);

/**
 * A flattened JWS (RFC 7515 §7.2.2) signed with ES256: protected header {alg, nonce, url} plus
 * `kid` when given, else `jwk`; an empty `payload` makes a POST-as-GET. Returns the length written
 * to out, 0 on failure.
 */
size_t gw_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
                   char *out, size_t cap);

/** The base64url DER of a CSR for `names` (the first is the subject's CN; all are SANs). */
bool gw_acme_csr(EVP_PKEY *key, const char *const *names, size_t n, char *out, size_t cap);

typedef struct x509_st X509;

/**
 * The TLS-ALPN-01 challenge certificate (RFC 8737 §3) for `name`: self-signed with a fresh P-256
 * key, its only SAN `name`, and the critical acmeIdentifier extension holding SHA-256(key_auth).
 * Returns false without memory.
 */
bool gw_acme_alpn_cert(const char *name, const char *key_auth, X509 **cert, EVP_PKEY **key);

#endif
