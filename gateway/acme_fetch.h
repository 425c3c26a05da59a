/*
 * Requests to the ACME CA, run on worker 0's loop through the upstream engine: the worker's c-ares
 * resolver (`resolver`), a connection pool of its own to the CA (keep-alive: one issuance makes
 * about fifteen requests) and the backend TLS client with `automaticTLSCaFile` (or the system
 * store) as the trust anchors, host name checked, SNI sent. The answer is read with the server's
 * HTTP/1.1 response parser (Content-Length or chunked, bounded by GW_ACME_MAX_BODY).
 *
 * A job is made by the ACME thread (acme_http.c), which waits for it; worker 0 answers it. It is
 * reference counted because either side may be done with it first: the waiter leaves when the
 * gateway stops, and worker 0 then cancels the exchange when the cancel message arrives.
 */
#ifndef GW_ACME_FETCH_H
#define GW_ACME_FETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "acme_http.h"
#include "loop.h"

struct gw_worker;

typedef struct gw_acme_job {
    gw_msg_t start_msg, cancel_msg;
    /* the request, read-only once posted */
    char host[256]; /**< a name or an address literal (no brackets) */
    uint16_t port;
    char *request; /**< head and body, as sent */
    size_t request_len;
    bool head;     /**< a HEAD: the answer has no body, whatever its headers say */
    char *ca_file; /**< automaticTLSCaFile; NULL: the system store */
    uint32_t timeout_ms;
    /* the answer, written by worker 0 before gw_acme_job_done */
    gw_acme_response_t res;
    bool ok;
    char err[512];
    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond; /**< CLOCK_MONOTONIC */
    unsigned refs;
    bool done;        /**< worker 0 answered */
    bool interrupted; /**< the gateway stops: the waiter leaves */
} gw_acme_job_t;

/* ---- acme_http.c ---- */

/** Worker 0 is done with the job: wakes the waiter and drops worker 0's reference. */
void gw_acme_job_done(gw_acme_job_t *job);

/** Drops a reference; the last one frees the job. */
void gw_acme_job_release(gw_acme_job_t *job);

/* ---- acme_fetch.c ---- */

/** Hands the job to worker 0's loop (it takes a reference until gw_acme_job_done). */
void gw_acme_fetch_post(gw_loop_t *loop, gw_acme_job_t *job);

/** Asks worker 0 to abandon the job's exchange, if it still runs (the message takes a reference). */
void gw_acme_fetch_post_cancel(gw_loop_t *loop, gw_acme_job_t *job);

/** Worker exit: ends an exchange in flight and frees the pool and TLS contexts (worker thread). */
void gw_acme_fetch_free(struct gw_worker *w);

#endif
