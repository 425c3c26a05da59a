/*
 * Backend connections, per worker and per target: DNS through the worker's resolver, non-blocking
 * connect with a timeout, idle keep-alive connections kept LIFO (the warmest first) and watched for
 * the backend closing them, bounded in count and idle time, and passive health (failures within a
 * window). Every upstream type (rproxy, fauth, fcgi, scgi, fproxy) gets its connections here.
 */
#ifndef GW_POOL_H
#define GW_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "dns.h"
#include "loop.h"
#include "target.h"

struct gw_worker;
typedef struct gw_pool gw_pool_t;
typedef struct gw_upconn gw_upconn_t;
typedef struct gw_pool_waiter gw_pool_waiter_t;

/** Pool settings (global properties). */
typedef struct gw_pool_config {
    uint32_t connect_timeout_ms; /**< proxyConnectTimeout */
    uint32_t idle_timeout_ms;    /**< proxyKeepaliveTimeout: idle pooled connections closed after */
    uint32_t max_idle;           /**< proxyKeepaliveConnections: idle connections kept per target */
    uint32_t health_window_ms;   /**< loadBalancerHealthCheckWindow (Ferron) */
    uint32_t backoff_max_ms;     /**< proxyBackoffMax: longest pause after refused connects; 0 = off */
    uint32_t h2_max_streams;     /**< proxyHttp2MaxConcurrentStreams: streams per HTTP/2 session */
    uint32_t h2_window;          /**< proxyHttp2WindowSize: response bytes buffered per stream */
    uint32_t h2_ping_ms;         /**< proxyHttp2PingInterval: PINGs on idle HTTP/2 sessions; 0 = off */
    uint32_t buffer_max;         /**< proxyBufferSize: the largest read buffer of a backend response */
} gw_pool_config_t;

/** Called once per gw_pool_acquire (unless cancelled): a connected connection, or an error
 *  (errors.h: refused, unreachable, dns, connect timeout). May run inside gw_pool_acquire. */
typedef void (*gw_pool_cb)(gw_pool_waiter_t *w, gw_upconn_t *c, const char *err);

struct gw_pool_waiter {
    gw_pool_cb cb;
    void *data;
    bool fresh; /**< a new connection, never an idle one (raw tunnels: CONNECT) */
    bool probe; /**< a health probe (health.h): connects even while the target is backed off */
    /** After a gw_err_tls failure: the certificate check's X509_V_* result (for the log). */
    long tls_verify;
    /** Bytes written first on the new connection, before TLS (a PROXY protocol header, kept alive
     *  by the caller until its callback): such a connection is always new and never pooled. */
    const uint8_t *preamble;
    size_t preamble_len;
    /* private */
    gw_pool_t *pool;
    gw_dns_query_t dns;
    gw_upconn_t *connecting;
    bool resolving;
    bool counted;
};

/** A backend connection. While the owner holds it, events go to on_event and the timer is the
 *  owner's (set its callback with gw_upconn_set_timer_cb). */
struct gw_upconn {
    gw_io_t io;
    gw_timer_t timer;
    gw_pool_t *pool;
    gw_upconn_t *next, **pprev; /* idle list */
    bool reused;                /**< served a request before: a failure may mean it went stale */
    bool idle;
    void (*on_event)(gw_upconn_t *c, uint32_t events);
    void (*on_timeout)(gw_upconn_t *c);
    void *owner;
    gw_pool_waiter_t *waiter; /* while connecting */
    struct ssl_st *ssl;       /**< https targets: the TLS session on this connection */
    size_t preamble_off;      /**< bytes of the waiter's preamble written so far */
    bool single_use;          /**< carried a preamble: closed when released, never kept idle */
};

/** The pool of `t` on worker `w` (created on first use; NULL without memory). */
gw_pool_t *gw_pool_get(struct gw_worker *w, const gw_target_t *t);

/** Dynamic pools per worker (forward proxy): at most this many; the least recently used one that
 *  has no connection in use or being made is freed (its idle connections closed) to make room. */
#define GW_POOL_MAX_DYNAMIC 256

/**
 * The pool of a target made at run time, keyed by (host, port) on worker `w`: plain TCP to `host`
 * (a name or an IP literal without brackets). Created on first use; NULL without memory or when
 * every dynamic pool is in use. The pointer stays valid while a connection of the pool is in use or
 * being made; callers must not keep it beyond that (it may be evicted).
 */
gw_pool_t *gw_pool_get_dynamic(struct gw_worker *w, const char *host, uint16_t port);

struct gw_tls_client;

/**
 * A pool owned by its caller (not in the worker's table: never retired or evicted) to `t`, which the
 * caller keeps alive, with TLS through `tls` instead of the worker's backend contexts (other trust
 * anchors: the ACME CA, automaticTLSCaFile). Freed with gw_pool_free_private on the worker's thread
 * once none of its connections is in use.
 */
gw_pool_t *gw_pool_new_private(struct gw_worker *w, const gw_target_t *t, struct gw_tls_client *tls);
void gw_pool_free_private(gw_pool_t *p);

/** The target a pool connects to. */
const gw_target_t *gw_pool_target(const gw_pool_t *p);

/** HTTP/2 targets: where h2client.c keeps the pool's sessions (freed with the pool through
 *  gw_h2client_pool_free). */
void **gw_pool_h2_slot(gw_pool_t *p);

/** Does the target take HTTP/2? `protocol: auto`: yes until a TLS handshake says otherwise (the
 *  first connection is made by the HTTP/2 engine, which hands over if ALPN chose http/1.1). */
bool gw_pool_speaks_h2(const gw_pool_t *p);

/** Hands out an idle connection at once, or resolves and connects a new one. */
void gw_pool_acquire(gw_pool_t *p, gw_pool_waiter_t *w);

/** Forgets a waiter (its owner goes away); a connection being made for it is closed. */
void gw_pool_cancel(gw_pool_waiter_t *w);

/** Reads from a connection (TLS or plain): > 0 bytes, 0 end of stream, -EAGAIN, or -errno. */
ssize_t gw_upconn_read(gw_upconn_t *c, void *buf, size_t len);

/** Writes to a connection: bytes written (maybe fewer than asked), -EAGAIN, or -errno. */
ssize_t gw_upconn_writev(gw_upconn_t *c, const struct iovec *iov, int n);

/** Ends the writing side of a plain TCP connection (shutdown SHUT_WR: the peer reads end of stream)
 *  and keeps reading it; false for a TLS connection, which has no half-close to offer. */
bool gw_upconn_shutdown_write(gw_upconn_t *c);

/** True when TLS holds decrypted bytes that epoll will not report. */
bool gw_upconn_pending(const gw_upconn_t *c);

/**
 * Writes buf[*sent..len) on c, for a small client of its own on a pooled connection (health
 * probes, ACME): while the socket is full it arms write interest and sets *want_out, and once all
 * went it drops it again (the pool keeps read interest only). 0 when all is sent or the rest waits
 * for EPOLLOUT, a negative errno when the write failed.
 */
int gw_upconn_send_all(gw_upconn_t *c, const char *buf, size_t len, size_t *sent, bool *want_out);

/** Returns a connection: kept idle for reuse when `reusable`, else closed. */
void gw_pool_release(gw_upconn_t *c, bool reusable);

/** Records a failed exchange with the pool's target (passive health) or a success. */
void gw_pool_report(gw_pool_t *p, bool ok);

/** True while the target is paused after refusing connections (exponential back-off). */
bool gw_pool_backing_off(gw_pool_t *p);

/** Raw bytes (head and body) of the target's recent responses: large ones count at once, smaller
 *  ones bring it down slowly. An exchange sizes its read buffer from it before a head arrives. */
size_t gw_pool_response_hint(const gw_pool_t *p);

/** Notes the raw size of a response read in full from the target. */
void gw_pool_note_response(gw_pool_t *p, size_t bytes);

/** Connections of this worker to the target that are in use or being made. */
uint32_t gw_pool_active(const gw_pool_t *p);

/** Failures of the target within the health window. */
uint32_t gw_pool_recent_failures(gw_pool_t *p);

struct gw_config;

/**
 * A worker adopted `cfg` (a reload): the pools of targets it no longer has are retired. Their idle
 * connections are closed now; connections in use finish their exchange and are then closed instead
 * of kept. A retired pool stays reachable by requests of older configs until they end.
 */
void gw_pools_retain(struct gw_worker *w, const struct gw_config *cfg);

/** Frees the retired pools. Only once no request of an older config is left on the worker. */
void gw_pools_free_retired(struct gw_worker *w);

/** Frees every pool of a worker (at worker exit). */
void gw_pools_free(struct gw_worker *w);

#endif
