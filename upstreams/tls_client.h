/*
 * TLS to backends (https:// targets) on BoringSSL: certificates verified against the system store
 * (or `proxyCaFile`), the host name or IP address checked, SNI sent, ALPN http/1.1 (h2 for HTTP/2 targets, both for `protocol: auto`), and sessions
 * resumed per target. One pair of contexts per worker: verifying, and not verifying for routes with
 * `disableProxyCertificateVerification`.
 */
#ifndef GW_TLS_CLIENT_H
#define GW_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "target.h"

typedef struct gw_tls_client gw_tls_client_t;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

/** Builds the contexts; `ca_file` NULL: the system store. Returns NULL with a message in err. */
gw_tls_client_t *gw_tls_client_new(const char *ca_file, char *err, size_t errlen);
void gw_tls_client_free(gw_tls_client_t *tc);

/** A client SSL for a connected socket to `t`, resuming `session` when given (NULL on failure). */
SSL *gw_tls_client_ssl(gw_tls_client_t *tc, const gw_target_t *t, int fd, SSL_SESSION *session);

/** Checks a CA file at config load; NULL when usable, else a message. */
const char *gw_tls_client_check_ca(const char *ca_file);

#endif
