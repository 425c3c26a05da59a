/*
 * HTTPS requests to an ACME server for the ACME thread (acme.h). The thread does not touch the
 * network: each request is handed to worker 0's loop, which makes it through the upstream engine
 * (acme_fetch.h: c-ares DNS with the `resolver` servers, a keep-alive connection pool, the backend
 * TLS client verifying the CA's certificate against `automaticTLSCaFile` or the system store, host
 * name checked), and the thread waits for the answer. A request is bounded by a timeout, and can be
 * interrupted from another thread (a stopping gateway does not wait for a slow CA). Requests are
 * HTTP/1.1; answers are delimited by Content-Length, chunked or the close, and bounded
 * (GW_ACME_MAX_BODY).
 */
#ifndef GW_ACME_HTTP_H
#define GW_ACME_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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

struct gw_worker;

/** A client whose requests worker `w0` makes, trusting `ca_file` (NULL: the system store);
 *  `timeout_ms` bounds each request (resolving, connecting and the answer). NULL with a message in
 *  err (the CA file cannot be loaded). */
gw_acme_http_t *gw_acme_http_new(struct gw_worker *w0, const char *ca_file, int timeout_ms, char *err,
                                 size_t errlen);
void gw_acme_http_free(gw_acme_http_t *h);

/**
 * One request: `body` NULL makes a GET (or a HEAD with method "HEAD"), else a POST of
 * application/jose+json. Returns true with *res filled for any HTTP answer (check res->status),
 * false with a message in err when no answer came.
 */
bool gw_acme_http_request(gw_acme_http_t *h, const char *method, const char *url, const char *body,
                          gw_acme_response_t *res, char *err, size_t errlen);

void gw_acme_response_free(gw_acme_response_t *res);

/** CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a condition using that clock. */
struct timespec gw_acme_deadline_in(uint32_t ms);

/** From another thread: fails the request in progress, if any, and every later one. */
void gw_acme_http_interrupt(gw_acme_http_t *h);

#endif
