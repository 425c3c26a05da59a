/*
 * A client connection: a transport (plain TCP here, TLS later) under a codec (HTTP/1.1, HTTP/2).
 * Neither knows the other (HAProxy's xprt_ops / mux_ops split).
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "loop.h"
#include "request.h"

typedef struct gw_conn gw_conn_t;
struct gw_worker;

/** Transport operations. Return values: > 0 bytes, 0 end of stream (read), -errno (-EAGAIN). */
typedef struct gw_transport_ops {
    ssize_t (*read)(gw_conn_t *c, void *buf, size_t len);
    /** `more`: further data follows at once (lets TCP hold a partial packet). */
    ssize_t (*writev)(gw_conn_t *c, const struct iovec *iov, int n, bool more);
    /** NULL when the transport cannot send files directly (TLS); the codec reads them then. */
    ssize_t (*sendfile)(gw_conn_t *c, int fd, off_t *off, size_t len);
    /** Releases transport state; the fd is closed by the connection. */
    void (*dispose)(gw_conn_t *c);
    /** True when input is buffered inside the transport (decrypted TLS records), so a read gives
     *  bytes although epoll reports nothing; NULL when the transport never buffers (TCP). */
    bool (*pending)(gw_conn_t *c);
} gw_transport_ops_t;

/** The plain TCP transport. */
extern const gw_transport_ops_t gw_tcp_transport;

/** The part of a connection every codec shares. */
struct gw_conn {
    gw_io_t io;
    gw_timer_t timer;
    struct gw_worker *worker;
    const gw_transport_ops_t *xprt;
    void *xprt_ctx;
    gw_conn_info_t info;
    struct gw_conn *next_idle, **prev_idle; /**< in the worker's idle list (for draining) */
    struct gw_conn *next_all, **prev_all;   /**< in the worker's list of every connection */
    /** Closes the connection at once (worker exit after the graceful timeout). */
    void (*abort)(struct gw_conn *c);
    /** The codec's drain (HTTP/2: GOAWAY, close when its streams are done); NULL for HTTP/1.1. */
    void (*drain)(struct gw_conn *c);
};

/** Accepted socket -> HTTP/1.1 connection (h2c prior knowledge is detected by the codec). */
void gw_h1_accept(struct gw_worker *w, int fd, const struct sockaddr_in6 *peer, const struct sockaddr_in6 *local);

/** Same for the adminListen listener: every request of the connection (HTTP/1.1 or h2c) gets the
 *  admin route (admin.h) instead of a site's. */
void gw_h1_accept_admin(struct gw_worker *w, int fd, const struct sockaddr_in6 *peer,
                        const struct sockaddr_in6 *local);

/**
 * Same over another transport (TLS): `xprt_ctx` becomes c->xprt_ctx and is released with
 * xprt->dispose, also when the connection cannot be set up.
 */
void gw_h1_start(struct gw_worker *w, int fd, const struct sockaddr_in6 *peer, const struct sockaddr_in6 *local,
                 const gw_transport_ops_t *xprt, void *xprt_ctx);

/** Size of an HTTP/1.1 connection struct (the worker pools them). */
size_t gw_h1_conn_size(void);

/** Asks an idle connection to close (HTTP/1.1: once gracefulIdleTimeout passes without a request,
 *  which is answered with Connection: close) and a busy one to close after its response (drain). */
void gw_conn_drain(gw_conn_t *c);

/** Formats the peer address (IPv4-mapped shown as IPv4) into buf (>= 46 bytes). */
void gw_conn_peer_text(const gw_conn_info_t *info, char *buf, size_t len);

#endif
