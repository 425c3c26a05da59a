/*
 * TLS session-ticket keys for the server contexts. Two sources:
 *  - in-process keys, shared by all workers and by every config generation (tickets survive a
 *    reload), rotated every `sessionTicketKeyRotation` seconds with the previous key still
 *    decrypting;
 *  - key files shared by replicas (`sessionTicketKeyFiles`, nginx ssl_session_ticket_key format):
 *    the first key encrypts, every key decrypts; rotation means replacing the files and reloading.
 * Key material never reaches a log line.
 */
#ifndef GW_TLS_TICKETS_H
#define GW_TLS_TICKETS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/base.h>

/** Keys read from files: immutable once loaded, so workers read them without a lock. */
typedef struct gw_ticket_keys gw_ticket_keys_t;

/**
 * Reads one key per path, in order (80 bytes: name, HMAC-SHA256 secret, AES-256 key; or 48 bytes:
 * name, AES-128 key, HMAC secret, as nginx). On failure returns NULL, sets *bad to the index of
 * the path at fault and writes why (the path and the problem, never key bytes).
 */
gw_ticket_keys_t *gw_ticket_keys_load(const char *const *paths, size_t n, size_t *bad, char *why,
                                      size_t whylen);

/** Wipes and frees keys from gw_ticket_keys_load (NULL is fine). */
void gw_ticket_keys_free(gw_ticket_keys_t *keys);

/**
 * The body of an SSL_CTX_set_tlsext_ticket_key_cb callback. With `file_keys`, those keys are used;
 * without, the process's in-process keys, rotated when `period` seconds have passed since the last
 * rotation. Returns what the callback must return: 1, 2 (decrypted by an older key: renew the
 * ticket), 0 (unknown key: full handshake) or -1.
 */
int gw_ticket_key_crypt(const gw_ticket_keys_t *file_keys, time_t period, uint8_t *name, uint8_t *iv,
                        EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx, int enc);

#endif
