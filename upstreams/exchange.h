/*
 * The backend exchange every upstream type shares (rproxy, fauth, fcgi, scgi; lighttpd's
 * gw_backend): it borrows a connection from the target's pool, writes the request head and
 * streams the request body, decodes the response head and either streams the body back to the
 * client with back-pressure (the backend is read again only once the client side asked for more)
 * or hands it to the adapter. A reused connection that fails before any response byte is retried;
 * a target that cannot be connected to fails over to another of its list; a backend that dies
 * mid-response becomes an abort, never a clean end.
 * How bytes are framed on the backend connection is a small codec (gw_backend_codec_t): HTTP/1.1
 * (the default: Content-Length or chunked body, the server's own response parser), FastCGI
 * (records, fcgi.c) or SCGI (a raw body, a CGI response until close, scgi.c).
 * Adapters supply the request head (and codec) and decide what a response means.
 */
#ifndef GW_EXCHANGE_H
#define GW_EXCHANGE_H

#include <stdbool.h>
#include <sys/uio.h>

#include "config.h"
#include "http1_parser.h"
#include "pool.h"
#include "put.h" /* gw_put & co: what adapters write their heads with */
#include "request.h"

typedef struct gw_exchange gw_exchange_t;

/** What an adapter does with a response head. */
typedef enum gw_exchange_verdict {
    GW_EXCHANGE_FORWARD, /**< the response goes to the client as it is (headers filtered) */
    GW_EXCHANGE_CONSUME, /**< the adapter used the head: drop the body, then call on_consumed */
} gw_exchange_verdict_t;

/**
 * How a request body and a response travel on the backend connection. The response bytes read
 * are kept in x->rbuf: rbuf[x->roff..x->ready) is decoded payload (the head, then body bytes),
 * rbuf[x->ready..x->rlen) raw bytes not decoded yet; rbuf[0..x->roff) was already handed on.
 */
typedef struct gw_backend_codec {
    /** Frames the body piece x->piece from x->piece_off into x->out/x->nout and advances
     *  x->piece_off; with x->piece_last, once the piece is used up, adds the end of the body. */
    void (*frame_body)(gw_exchange_t *x);
    /** Decodes raw bytes in place, appending payload at x->ready; sets x->msg_done at the end of
     *  the response (x->eof: the backend closed). Returns false for a broken stream. */
    bool (*decode)(gw_exchange_t *x);
    /** Parses a final response head from rbuf[x->roff..x->ready) into h: its length, 0 for more bytes,
     *  -1 when invalid. Sets x->res_length (-1: unknown) and x->keep_alive. */
    int (*parse_head)(gw_exchange_t *x, gw_h1_response_head_t *h);
} gw_backend_codec_t;

/** The HTTP/1.1 codec (what a NULL ops->codec means). */
extern const gw_backend_codec_t gw_http1_backend_codec;

typedef struct gw_exchange_ops {
    /** Writes x->head / x->head_len for x->target (called again on retry and fail-over). */
    bool (*build_head)(gw_exchange_t *x);
    /** A final (>= 200) response head arrived; NULL: always forward. */
    gw_exchange_verdict_t (*on_head)(gw_exchange_t *x, const gw_h1_response_head_t *h);
    /** A consumed response has been read to its end (the connection is back in its pool). */
    void (*on_consumed)(gw_exchange_t *x);
    /** Framing on the backend connection; NULL: HTTP/1.1. */
    const gw_backend_codec_t *codec;
} gw_exchange_ops_t;

struct gw_exchange {
    const gw_exchange_ops_t *ops;
    const gw_backend_codec_t *codec;
    bool consume; /**< the adapter reads this response itself: the body is dropped */
    bool send_body; /**< stream the client's request body to the backend (rproxy; not fauth) */
    bool tunnel;    /**< the backend answered 101 to an Upgrade request: raw bytes both ways */
    bool raw_tunnel; /**< CONNECT: no HTTP on the backend connection; once it is connected the
                          client gets a 200 and raw bytes flow both ways (set before start) */
    uint32_t tunnel_idle_ms; /**< a tunnel is closed after this many ms without a byte either way;
                                  0: the route's proxyReadTimeout (set before start) */
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
    gw_slice_t piece;  /* the body piece being written */
    size_t piece_off;  /* how much of it the codec framed */
    bool piece_last, piece_active;
    char chunk_hdr[24]; /* framing bytes of the codec */
    struct iovec out[4];
    int nout;
    /* response from the backend */
    char *rbuf; /* taken at the first read (resbuf.h); NULL while nothing is held */
    size_t rlen, rcap;
    size_t read_total; /* raw response bytes read, for the target's buffer size hint */
    size_t ready; /* rbuf[roff..ready) is decoded payload */
    size_t roff;  /* payload before it was handed on: an offset, so that body bytes are not moved */
    bool head_parsed, any_byte, res_done, keep_alive;
    bool msg_done; /* the codec saw the end of the response */
    bool eof;      /* the backend closed its side */
    int64_t res_length; /* Content-Length for the client, -1: unknown */
    gw_h1_framing_t fr;        /* HTTP/1.1 codec: response framing */
    gw_chunked_decoder_t dec;  /* HTTP/1.1 codec: chunked decoder */
    uint64_t body_left;        /* HTTP/1.1 codec: bytes left of a Content-Length body */
    size_t consumed; /* bytes of rbuf the client side still holds */
    bool sending, proceeded, waiting_proceed;
};

/**
 * Prepares an exchange for `req` towards a target of `list` (embedded at the start of the adapter's
 * state in the request arena). `send_body`: stream the client's request body to the backend.
 * Returns false without memory.
 */
bool gw_exchange_init(gw_exchange_t *x, gw_req_t *req, const gw_exchange_ops_t *ops, const gw_target_list_t *list);

/**
 * Same for one target whose pool the adapter chose itself (the forward proxy's dynamic pools):
 * there is no other target to fail over to.
 */
bool gw_exchange_init_pool(gw_exchange_t *x, gw_req_t *req, const gw_exchange_ops_t *ops, gw_pool_t *pool);

/** Starts connecting; the exchange ends with a response (or error page) sent to the client, or
 *  with on_consumed. */
void gw_exchange_start(gw_exchange_t *x);

/* ---- helpers for adapters building a request head ---- */

/** Room needed for a head made of the client's request line and headers plus `extra` bytes. */
size_t gw_exchange_head_capacity(const gw_req_t *req, size_t extra);

/** The parse_head of codecs whose response is CGI-style (fcgi, scgi): the shared CGI response
 *  parser on the decoded stream; the body is framed by the codec (res_length -1). */
int gw_exchange_parse_cgi_head(gw_exchange_t *x, gw_h1_response_head_t *h);

/** Appends the client's headers minus hop-by-hop ones, Host, framing, X-Forwarded-* and those the
 *  route removes or sets, then the route's set headers. */
char *gw_exchange_put_client_headers(char *p, const gw_req_t *req, const gw_proxy_route_t *pr);

/** Appends X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host. */
char *gw_exchange_put_forwarded(char *p, const gw_req_t *req);

/** Appends Content-Length or Transfer-Encoding for the client's body and notes how it is framed. */
char *gw_exchange_put_framing(gw_exchange_t *x, char *p);

#endif
