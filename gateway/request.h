/*
 * The request object shared by HTTP/1.1 and HTTP/2, and the two streams attached to it:
 *  - the response stream (generator/ostream, after h2o): a handler fills req->res, calls
 *    gw_start_response() with its generator and pushes data with gw_send()/gw_send_file(); the codec
 *    calls generator->proceed() when it has written what it was given and wants more, and
 *    generator->stop() when the request ends early (client gone, error) so the handler can cancel.
 *  - the request-body stream: the handler pulls it with gw_req_read_body() and acknowledges each
 *    piece with gw_req_body_proceed(); nothing more is read from the client until it does
 *    (back-pressure).
 * The codec (HTTP/1.1 or HTTP/2) implements gw_codec_ops_t; handlers never see which one it is.
 */
#ifndef GW_REQUEST_H
#define GW_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "http1_parser.h"
#include "mem.h"
#include "slice.h"

typedef struct gw_req gw_req_t;
typedef struct gw_generator gw_generator_t;
struct gw_route;
struct gw_config;
struct gw_worker;

/** State passed with each piece of response data. */
typedef enum gw_send_state {
    GW_SEND_IN_PROGRESS = 0, /**< more will follow after proceed() */
    GW_SEND_FINAL = 1,       /**< this is the end of the body (trailers in res.trailers go out now) */
    GW_SEND_ERROR = 2,       /**< abort: the body is incomplete; never turned into a clean end */
} gw_send_state_t;

/** The producer side of a response body. */
struct gw_generator {
    /** The codec has written everything given so far; call gw_send again (now or later). */
    void (*proceed)(gw_generator_t *self, gw_req_t *req);
    /** The request is being disposed of before GW_SEND_FINAL/ERROR was sent: release resources. */
    void (*stop)(gw_generator_t *self, gw_req_t *req);
};

/**
 * A response-body filter between the handler and the codec (compression, cache store, ...). Each
 * receives what the stage above sent and passes its output on with gw_ostream_next(); the codec's
 * proceed() travels back up to the generator unchanged, so a filter that holds bytes back simply
 * passes fewer on. An abort (GW_SEND_ERROR) must be passed on as an abort.
 */
typedef struct gw_ostream gw_ostream_t;
struct gw_ostream {
    gw_ostream_t *next; /**< set by gw_req_push_ostream; NULL: the codec */
    void (*send)(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state);
};

/**
 * A route-level response filter: when a handler starts its response, on_setup looks at the
 * response head (status, headers, length) and, if it wants the body, changes the head and pushes an
 * ostream with gw_req_push_ostream. A filter that does not want a response costs nothing more.
 */
typedef struct gw_filter {
    const char *name;
    void (*on_setup)(const struct gw_filter *self, gw_req_t *req);
} gw_filter_t;

/** A header list kept in the request arena. Names/values must outlive the request. */
typedef struct gw_headers {
    gw_header_t *items;
    uint32_t count;
    uint32_t cap;
} gw_headers_t;

/** The response being built by a handler. */
typedef struct gw_res {
    int status;
    int64_t content_length; /**< -1: unknown (chunked on HTTP/1.1, close-delimited on 1.0) */
    gw_headers_t headers;
    gw_headers_t trailers; /**< sent with the final piece (HTTP/1.1 chunked or HTTP/2) */
    bool flush_each;       /**< write each piece at once (server-sent events); h1 always does */
} gw_res_t;

/** Codec operations: how a response and a body travel on this connection's protocol. */
typedef struct gw_codec_ops {
    const char *protocol; /**< "HTTP/1.1", "HTTP/1.0", "HTTP/2.0": for logs and CGI */
    void (*send)(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state);
    void (*send_file)(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state);
    void (*send_informational)(gw_req_t *req, int status, const gw_header_t *h, size_t n);
    void (*body_resume)(gw_req_t *req);
    /** Nobody will read the rest of the request body (the errorConfig re-run reads an empty one):
     *  drop what is buffered and what still arrives, returning flow-control credit. */
    void (*body_discard)(gw_req_t *req);
} gw_codec_ops_t;

/** Body delivery states for gw_body_cb. */
typedef enum gw_body_state { GW_BODY_MORE = 0, GW_BODY_END = 1, GW_BODY_ABORT = -1 } gw_body_state_t;

/**
 * Receives request-body data. `data` stays valid until gw_req_body_proceed(); with GW_BODY_END the
 * data (possibly empty) is the last piece; with GW_BODY_ABORT the client went away or broke the
 * framing and no more calls follow.
 */
typedef void (*gw_body_cb)(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t state);

/** Facts about the client connection a request arrived on. */
typedef struct gw_conn_info {
    struct sockaddr_in6 peer; /**< IPv4 peers are normalised to v4-mapped form */
    /** Read it through gw_conn_local(): on a wildcard listener it holds the listener's address
     * (unspecified, with the port) while local_pending, until something asks; the lookup is a
     * syscall most connections never need. */
    struct sockaddr_in6 local;
    int fd; /**< the client socket, for that lookup */
    bool local_pending;
    bool tls;
    bool admin;         /**< accepted on the adminListen listener: only the admin endpoints are answered */
    char peer_text[46]; /**< printable peer address, v4-mapped shown as plain IPv4 */
} gw_conn_info_t;

/** The connection's local address, looked up (getsockname) the first time it is asked for. The
 * lookup fills *info in place: the connection owns it, whatever its holders' const says. */
const struct sockaddr_in6 *gw_conn_local(const gw_conn_info_t *info);

/** Well-known methods, interned once at parse time. */
typedef enum gw_method {
    GW_M_OTHER, GW_M_GET, GW_M_HEAD, GW_M_POST, GW_M_PUT, GW_M_DELETE, GW_M_OPTIONS, GW_M_PATCH,
    GW_M_CONNECT, GW_M_TRACE
} gw_method_t;

/** A function run when the request is disposed of (closing files, freeing handler state). */
typedef struct gw_req_cleanup {
    struct gw_req_cleanup *next;
    void (*fn)(void *arg);
    void *arg;
} gw_req_cleanup_t;

struct gw_req {
    /* set by the codec */
    const gw_codec_ops_t *codec;
    void *codec_ctx;
    const gw_conn_info_t *conn;
    struct gw_worker *worker;
    gw_arena_t arena;
    gw_slice_t method;
    gw_method_t method_id;
    gw_slice_t target;    /**< as received */
    gw_slice_t authority; /**< Host header or :authority, lower-cased, port kept */
    gw_slice_t path;      /**< normalised path (arena); what routing, policy and handlers use */
    gw_slice_t query;     /**< after '?', empty when none */
    bool has_query;
    int version; /**< 10, 11 or 20 */
    gw_header_t *headers;
    size_t num_headers;
    gw_body_kind_t body_kind;
    uint64_t content_length;
    bool expect_continue;
    bool upgrade; /**< Connection: upgrade with an Upgrade header (HTTP/1.1): a 101 opens a tunnel */
    /* routing */
    const struct gw_config *cfg;
    bool cfg_held; /**< counted as a user of cfg by its worker (gw_worker_attach_cfg) */
    gw_slice_t request_id; /**< X-Request-ID (requestId), arena or request memory; empty when off */
    const char *upstream;  /**< the backend URL whose response head arrived last (config memory) */
    uint64_t upstream_ms;  /**< ms from the request's start to that head */
    const struct gw_route *route;
    /* policy (policy/) */
    struct in6_addr client_ip;   /**< the client: the peer, or from trusted X-Forwarded-For; v4-mapped */
    const char *remote_user;     /**< the basic-auth user once authenticated, else NULL */
    /* response */
    gw_res_t res;
    gw_generator_t *gen;
    bool res_started; /**< head frozen (gw_start_response called) */
    bool res_done;    /**< FINAL or ERROR was sent */
    /* body stream */
    gw_body_cb body_cb;
    void *body_ctx;
    const char *body_error; /**< why the body stream aborted (errors.h); NULL: the client went away */
    /** When set, the body is served from somewhere other than the codec (a body read ahead in
     *  full, upstreams/spool.c): gw_req_read_body and gw_req_body_proceed call this instead of
     *  codec->body_resume, with the same contract (one piece at a time, the next after proceed). */
    void (*body_source)(gw_req_t *req);
    void *body_source_ctx;
    gw_req_cleanup_t *cleanups;
    struct gw_cache_req *cache; /**< the response cache's state for this request (filters/cache.c), or NULL */
    uint16_t chain_pos;   /**< index of the handler running (or suspended) in route->handlers */
    bool in_error_route;  /**< the errorConfig re-run is under way: no second one */
    bool body_emptied;    /**< the re-run sees an empty body: reads end at once, the codec drops the rest */
    gw_ostream_t *ostreams; /**< response filters, outermost first; NULL: straight to the codec */
    struct gw_file_pump *file_pump; /**< private: a file being read into a filter chain */
    /* accounting for logs */
    uint64_t bytes_sent;
    uint64_t start_ms;
};

/** Interns a method token. */
gw_method_t gw_method_intern(gw_slice_t m);

/** The first header of list[0..count) named name[0..len) (ASCII case-insensitive); NULL when absent. */
const gw_header_t *gw_headers_find(const gw_header_t *list, size_t count, const char *name, size_t len);

/** Finds the first request header named `name` (case-insensitive); NULL when absent. Inline, so that
 *  the length of a literal name is counted by the compiler. */
static inline const gw_header_t *gw_req_header(const gw_req_t *req, const char *name)
{
    return gw_headers_find(req->headers, req->num_headers, name, strlen(name));
}

/** Appends a response header; name and value must outlive the request (constants or arena). */
bool gw_res_add_header(gw_req_t *req, gw_slice_t name, gw_slice_t value);

/** Appends a header to a list in the request arena. */
bool gw_headers_add(gw_arena_t *arena, gw_headers_t *list, gw_slice_t name, gw_slice_t value);

/** Finds a response header by name (case-insensitive); inline like gw_req_header. */
static inline const gw_header_t *gw_res_header(const gw_req_t *req, const char *name)
{
    return gw_headers_find(req->res.headers.items, req->res.headers.count, name, strlen(name));
}

/** Adds a body filter (from a gw_filter's on_setup): it sees the body before the filters already
 *  pushed, i.e. the chain runs in the order filters were set up. */
void gw_req_push_ostream(gw_req_t *req, gw_ostream_t *os);

/** Passes a filter's output to the next stage (the next filter or the codec). */
void gw_ostream_next(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state);

/** Freezes the response head and registers the body producer (may be NULL for inline bodies).
 *  Runs the route's response filters, which may change the head and join the body chain. */
void gw_start_response(gw_req_t *req, gw_generator_t *gen);

/** Pushes body data (the head goes out with the first call). Buffers must stay valid until
 *  proceed() is called or the request ends. After a GW_SEND_IN_PROGRESS call the request is still
 *  alive when gw_send returns (a client that went away is reported later through stop()); after
 *  GW_SEND_FINAL or GW_SEND_ERROR it may already be gone. */
void gw_send(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state);

/** Pushes `len` bytes of file `fd` from `off` (sendfile where the transport allows it). The fd
 *  must stay open until proceed() or the end of the request. */
void gw_send_file(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state);

/** Sends a 1xx response (e.g. 103 Early Hints) before the final one. */
void gw_send_informational(gw_req_t *req, int status, const gw_header_t *h, size_t n);

/** Sends a complete response with an in-memory body (copied into the arena). */
void gw_send_inline(gw_req_t *req, int status, const char *content_type, const char *body, size_t len);

/** Sends the built-in HTML error page for `status` (keeps headers already set, e.g. Allow). */
void gw_send_error(gw_req_t *req, int status);

/** Runs fn(arg) when the request is disposed of, newest first. Returns false without memory. */
bool gw_req_defer(gw_req_t *req, void (*fn)(void *arg), void *arg);

/**
 * Ends the request's life (codecs only): stops a generator that has not finished, then runs the
 * cleanups. The codec releases the arena afterwards.
 */
void gw_req_dispose(gw_req_t *req);

/** Starts request-body delivery to `cb`. Sends 100 Continue first when the client expects it. */
void gw_req_read_body(gw_req_t *req, gw_body_cb cb, void *ctx);

/** The consumer is done with the last piece delivered; more may be delivered now. */
void gw_req_body_proceed(gw_req_t *req);

#endif
