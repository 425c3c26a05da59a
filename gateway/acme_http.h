/*
 * HTTPS requests to an ACME server, made from the ACME thread (acme.h), never from a worker: the
 * calls block, with a timeout on the connect and on every read and write, and can be interrupted
 * from another thread (a stopping gateway does not wait for a slow CA). The server's certificate is
 * verified against `automaticTLSCaFile` or the system store, with its host name checked.
 * Requests are HTTP/1.0 with `Connection: close`, so every answer is delimited by the close and is
 * never chunked; bodies are bounded (GW_ACME_MAX_BODY).
 */
#ifndef GW_ACME_HTTP_H
#define GW_ACME_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define GW_ACME_MAX_BODY (256 * 1024)

typedef struct gw_acme_http gw_acme_http_t;

typedef struct gw_acme_response {
    int status;
    char nonce[256];     /**< Replay-Nonce */
    char location[1024]; /**< Location */
    long retry_after;    /**< Retry-After in seconds; -1 when absent */
    char *body;          /**< NUL-terminated; owned by the response (gw_acme_response_free) */
    size_t body_len;
} gw_acme_response_t;

/** A client trusting `ca_file` (NULL: the system store); `timeout_ms` bounds each connect, read
 *  and write. NULL with a message in err. */
gw_acme_http_t *gw_acme_http_new(const char *ca_file, int timeout_ms, char *err, size_t errlen);
void gw_acme_http_free(gw_acme_http_t *h);

/**
 * One request: `body` NULL makes a GET (or a HEAD with method "HEAD"), else a POST of
 * application/jose+json. Returns true with *res filled for any HTTP answer (check res->status),
 * false with a message in err when no answer came.
 */
bool gw_acme_http_request(gw_acme_http_t *h, const char *method, const char *url, const char *body,
                          gw_acme_response_t *res, char *err, size_t errlen);

void gw_acme_response_free(gw_acme_response_t *res);

/** From another thread: fails the request in progress, if any, and every later one. */
void gw_acme_http_interrupt(gw_acme_http_t *h);

#endif
