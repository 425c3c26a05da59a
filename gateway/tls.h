/*
 * TLS for client connections on BoringSSL: a gw_transport_ops_t (non-blocking SSL_read/SSL_write in
 * the worker loop; no sendfile, so codecs read files with pread), and the server contexts built
 * once from the global properties: default certificate, per-SNI certificates (exact and
 * `*.example.com`), protocol versions, cipher and curve policy, ALPN (h2, http/1.1), session
 * resumption (session tickets with in-process or file keys, tls_tickets.h; the process-wide
 * session-ID cache, tls_session_cache.h; a session-ID context per certificate that digests its
 * settings), optional OCSP stapling and client certificates. Nothing here knows about HTTP.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

#include "conn.h"
#include "slice.h"

struct gw_config;
struct gw_worker;

/** The server TLS state shared by every worker (immutable after gw_tls_new; reference counted).
 *  The in-process ticket keys and the session-ID cache are process-wide, so resumption survives a
 *  reload for every host whose certificate and TLS settings stayed the same. */
typedef struct gw_tls gw_tls_t;

/** The TLS transport; c->xprt_ctx is the connection's SSL*. */
extern const gw_transport_ops_t gw_tls_transport;

/** True when the config has an HTTPS listener (`secure: true`). */
bool gw_tls_enabled(const struct gw_config *cfg);

/**
 * Builds the server contexts from the global properties of `cfg`. When `generateDevCertificate` is
 * true and `cert`/`key` name missing files, a self-signed development certificate is written there
 * first (key mode 0600). On failure returns NULL and writes "file:line:column: property: what is
 * wrong" (or a plain message) to err.
 */
gw_tls_t *gw_tls_new(const struct gw_config *cfg, char *err, size_t errlen);

/** Drops the caller's reference to what gw_tls_new built: each TLS connection holds one too, so the
 *  contexts of a config replaced by a reload are freed when its last connection closes. */
void gw_tls_free(gw_tls_t *tls);

/**
 * Takes an accepted socket on an HTTPS listener: creates the SSL object and hands the connection to
 * the HTTP/1.1 codec, which switches to HTTP/2 when ALPN chose h2. Closes fd on failure.
 */
void gw_tls_accept(struct gw_worker *w, gw_tls_t *tls, int fd, const struct sockaddr_in6 *peer,
                   const struct sockaddr_in6 *local);

/** True when `c` is a TLS connection whose handshake selected ALPN "h2". */
bool gw_tls_alpn_h2(const gw_conn_t *c);

/**
 * The `sni` entry (as written in the config, lower-cased, e.g. "*.example.com") whose certificate
 * the connection's SNI selected, or NULL when the default certificate is in use. HTTP/2 answers
 * 421 when a request's authority does not match it.
 */
const char *gw_tls_sni_entry(const gw_conn_t *c);

/** True when `host` (lower-case, an optional ":port" ignored) matches an SNI pattern. */
bool gw_tls_host_matches(const char *pattern, gw_slice_t host);

/**
 * Writes a self-signed ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1 (valid one year)
 * and its key (mode 0600), creating missing parent directories (0700). Returns 0 or -1 with err.
 */
int gw_tls_generate_dev_cert(const char *cert_path, const char *key_path, char *err, size_t errlen);

#endif
