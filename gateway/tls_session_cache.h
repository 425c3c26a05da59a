/*
 * The server's session-ID cache (TLS 1.2 resumption without tickets), kept outside the SSL_CTXs:
 * BoringSSL's internal cache lives in a context, and a reload builds new contexts, so every
 * session would be lost. One bounded store per process instead, shared by all workers and all
 * config generations, holding sessions serialized with SSL_SESSION_to_bytes under the key
 * (session-ID context, session ID). The context names the SNI entry and digests its TLS settings,
 * so a session never resumes on another host, nor on a host whose certificate or policy changed.
 * Sessions expire by their own timeout; when the store is full the oldest goes first.
 */
#ifndef GW_TLS_SESSION_CACHE_H
#define GW_TLS_SESSION_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>

/** A bounded map (session-ID context, session ID) -> serialized session, with expiry. */
typedef struct gw_sess_store gw_sess_store_t;

/** The lookup key; both parts at most 32 bytes (longer parts are refused). */
typedef struct gw_sess_key {
    const uint8_t *ctx, *id;
    size_t ctx_len, id_len;
} gw_sess_key_t;

/** A store of at most max_entries sessions (0: stores nothing). NULL when out of memory. */
gw_sess_store_t *gw_sess_store_new(size_t max_entries);

/** Frees the store and every session in it (NULL is fine). */
void gw_sess_store_free(gw_sess_store_t *s);

/** Changes the bound; the oldest sessions beyond it are dropped. False (store unchanged) when out of memory.
 */
bool gw_sess_store_resize(gw_sess_store_t *s, size_t max_entries);

/**
 * Stores a copy of data[0..len) under key until `expires` (seconds, the clock of `now`), replacing
 * an entry with the same key; expired and, when full, oldest entries make room. False when the
 * store holds nothing or the key or memory is refused.
 */
bool gw_sess_store_put(gw_sess_store_t *s, const gw_sess_key_t *key, const uint8_t *data, size_t len,
                       uint64_t expires, uint64_t now);

/** A malloc'd copy of the session stored under key (its length in *len), or NULL when absent or
 *  expired at `now` (an expired one is dropped). */
uint8_t *gw_sess_store_get(gw_sess_store_t *s, const gw_sess_key_t *key, uint64_t now, size_t *len);

/** How many sessions the store holds. */
size_t gw_sess_store_count(gw_sess_store_t *s);

/** Sets the bound of the process's store (`tlsSessionCacheSize`), creating it on first use.
 *  Thread-safe: workers may be resuming sessions meanwhile. */
void gw_tls_session_cache_configure(size_t max_entries);

/** Makes `ctx` (a server context) store and look up its sessions in the process's store only. */
void gw_tls_session_cache_attach(SSL_CTX *ctx);

#endif
