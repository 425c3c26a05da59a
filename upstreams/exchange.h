/*
 * The HTTP/1.1 client exchange every HTTP upstream type shares (rproxy, fauth, fproxy): it borrows a
 * connection from the target's pool, writes the request head and streams the request body
 * (chunked when its length is unknown), parses the response head with the server's own parser, and
 * either streams the response back to the client with back-pressure (the backend is read again only
 * once the client side asked for more) or hands it to the adapter. A reused connection that fails
 * before any response byte is retried; a target that cannot be connected to fails over to another
 * of its list; a backend that dies mid-response becomes an abort, never a clean end.
 * Adapters (rproxy.c, fauth.c) supply the request head and decide what a response means.
 */
#ifndef GW_EXCHANGE_H
#define GW_EXCHANGE_H

#include <stdbool.h>
#include <sys/uio.h>

#include "config.h"
#include "http1_parser.h"
#include "pool.h"
#include "request.h"

typedef struct gw_exchange gw_exchange_t;

/** What an adapter does with a response head. */
typedef enum gw_exchange_verdict {
    GW_EXCHANGE_FORWARD, /**< the response goes to the client as it is (headers filtered) */
    GW_EXCHANGE_CONSUME, /**< the adapter used the head: drop the body, then call on_consumed */
} gw_exchange_verdict_t;

typedef struct gw_exchange_ops {
    /** Writes x->head / x->head_len for x->target (called again on retry and fail-over). */
    bool (*build_head)(gw_exchange_t *x);
    /** A final (>= 200) response head arrived; NULL: always forward. */
    gw_exchange_verdict_t (*on_head)(gw_exchange_t *x, const gw_h1_response_head_t *h);
    /** A consumed response has been read to its end (the connection is back in its pool). */
    void (*on_consumed)(gw_exchange_t *x);
} gw_exchange_ops_t;

struct gw_exchange {
    const gw_exchange_ops_t *ops;
    bool consume; /**< the adapter reads this response itself: the body is dropped */
    bool send_body; /**< stream the client's request body to the backend (rproxy; not fauth) */
    gw_generator_t gen; /* the response body producer towards the client */
    gw_req_t *req;
    const gw_target_t *target;
    gw_pool_t *pool;
    gw_pool_waiter_t waiter;
    gw_upconn_t *conn;
    int retries;
    const gw_target_list_t *list;
    uint32_t tried; /* connect failures so far, for failing over to another target */
    /* request to the backend */
    char *head;
    size_t head_len, head_off;
    bool body_chunked, body_reading, body_sent;
    gw_slice_t piece;
    size_t piece_off;
    bool piece_last;
    char chunk_hdr[24];
    struct iovec out[4];
    int nout;
    /* response from the backend */
    char *rbuf;
    size_t rlen, rcap;
    bool head_parsed, any_byte, res_done, keep_alive;
    gw_h1_framing_t fr;
    gw_chunked_decoder_t dec;
    uint64_t body_left;
    size_t consumed; /* bytes of rbuf the client side still holds */
    bool sending, proceeded, waiting_proceed;
};

/**
 * Prepares an exchange for `req` towards a target of `list` (embedded at the start of the adapter's
 * state in the request arena). `send_body`: stream the client's request body to the backend.
 * Returns false without memory.
 */
bool gw_exchange_init(gw_exchange_t *x, gw_req_t *req, const gw_exchange_ops_t *ops, const gw_target_list_t *list);

/** Starts connecting; the exchange ends with a response (or error page) sent to the client, or
 *  with on_consumed. */
void gw_exchange_start(gw_exchange_t *x);

/* ---- helpers for adapters building a request head ---- */

/** Room needed for a head made of the client's request line and headers plus `extra` bytes. */
size_t gw_exchange_head_capacity(const gw_req_t *req, size_t extra);

/** Appends n bytes at p; returns the new end. */
char *gw_exchange_put(char *p, const void *s, size_t n);

/** Appends the client's headers minus hop-by-hop ones, Host, framing, X-Forwarded-* and those the
 *  route removes or sets, then the route's set headers. */
char *gw_exchange_put_client_headers(char *p, const gw_req_t *req, const gw_proxy_route_t *pr);

/** Appends X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host. */
char *gw_exchange_put_forwarded(char *p, const gw_req_t *req);

/** Appends Content-Length or Transfer-Encoding for the client's body and notes how it is framed. */
char *gw_exchange_put_framing(gw_exchange_t *x, char *p);

#endif
