/*
 * A worker thread: its own loop, listening sockets (SO_REUSEPORT copies), buffers, connections and
 * access-log buffer. Nothing on the request path is shared with another worker.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "config.h"
#include "conn.h"
#include "loop.h"
#include "mem.h"

typedef struct gw_listener {
    gw_io_t io;
    struct gw_worker *worker;
    gw_listen_t spec; /**< a copy: a listener outlives the config that opened it (listeners.h) */
    struct gw_listener *next;
} gw_listener_t;

struct gw_snapshot;
struct gw_cfg_hold;

typedef struct gw_worker {
    unsigned id;
    pthread_t thread;
    gw_loop_t *loop;
    const gw_config_t *cfg;    /**< the current config: new requests use it (gw_worker_attach_cfg) */
    struct gw_snapshot *snap;  /**< the reload snapshot cfg belongs to (reload.h); NULL in unit tests */
    uint32_t cfg_users;        /**< requests of this worker using cfg */
    struct gw_cfg_hold *held;  /**< older snapshots still used by requests of this worker */
    int access_fd;             /**< what access_log writes to; -1: none */
    gw_chunk_pool_t io_pool;   /**< read buffers and request arenas */
    gw_chunk_pool_t conn_pool; /**< connection structs */
    gw_listener_t *listeners;  /**< this worker's listening sockets (it closes them) */
    bool accepting;
    bool draining;
    uint32_t conns;
    uint32_t max_conns;
    gw_conn_t *idle; /**< idle keep-alive connections, closed first when draining */
    gw_conn_t *all;  /**< every client connection, for the forced close at exit */
    gw_header_t *hdr_scratch; /**< parser output before a request object exists */
    char date[32];   /**< IMF-fixdate, refreshed once per second */
    int64_t date_at;
    struct gw_log_buf *access_log;
    struct gw_file_cache *file_cache;
    struct gw_tls *tls;        /**< server TLS contexts (shared, owned by main) for `sport` listeners */
    struct gw_h2_worker *h2;   /**< HTTP/2 callbacks, options and the pending-flush list */
    gw_timer_t drain_timer;
    gw_timer_t log_timer; /**< flushes access-log lines left in a quiet second */
    struct gw_dns *dns;  /**< this worker's resolver */
    void *pools;         /**< backend connection pools by target id (pool.c) */
    void *resbufs;       /**< backend response buffers above the I/O chunk size (resbuf.c) */
    void *lb;            /**< balancer state by target list id (balancer.c) */
    void *health;        /**< active health probes: worker 0 only (upstreams/health.h) */
    void *acme;          /**< requests to the ACME CA: worker 0 only (acme_fetch.h) */
    struct gw_tls_client *tls_client; /**< backend TLS contexts, made on first use */
    uint64_t rng;        /**< xorshift state for load balancing */
    gw_msg_t stop_msg;
    gw_msg_t unlisten_msg;
    _Atomic bool unlistened; /**< its listening sockets are closed (the first step of a stop) */
} gw_worker_t;

/**
 * Creates a worker for `cfg` owning the listening sockets fds[0..n) (one per cfg->listens entry;
 * closed by the worker, also when this fails). Returns NULL on failure.
 */
gw_worker_t *gw_worker_new(unsigned id, const gw_config_t *cfg, const int *fds, size_t n, int access_log_fd);

/** Starts accepting on fd (owned by the worker from now on) for `spec`. Returns 0 or -errno. */
int gw_worker_add_listener(gw_worker_t *w, int fd, const gw_listen_t *spec);

/** Stops accepting on the listener for `spec` and closes its socket (reload removed it). */
void gw_worker_remove_listener(gw_worker_t *w, const gw_listen_t *spec);

/**
 * Gives a new request the worker's current config (req->cfg), counted as one user of it until
 * gw_req_dispose: a per-worker count, no atomic, so a reload frees an old config only once no
 * request of any worker uses it.
 */
void gw_worker_attach_cfg(gw_worker_t *w, gw_req_t *req);

/** The request `req` ends: its config loses a user (gw_req_dispose calls it). */
void gw_worker_detach_cfg(gw_worker_t *w, gw_req_t *req);

/** Starts the worker's thread. */
int gw_worker_start(gw_worker_t *w);

/** Asks the worker (from another thread) to close its listening sockets, the first step of a stop;
 *  gw_worker_unlistened tells when it has. */
void gw_worker_stop_listening(gw_worker_t *w);

/** True once the worker's listening sockets are closed (any thread). */
bool gw_worker_unlistened(const gw_worker_t *w);

/** Asks the worker (from another thread) to stop accepting, drain and return. */
void gw_worker_stop(gw_worker_t *w);

/** Joins and frees the worker. */
void gw_worker_join(gw_worker_t *w);

/** Frees a worker whose thread was never started or has returned. */
void gw_worker_free(gw_worker_t *w);

/** The current Date header value. */
const char *gw_worker_date(gw_worker_t *w);

/**
 * Starts the codec on an accepted connection (counted in w->conns): TLS for a `sport` listener
 * (`tls`), else HTTP/1.1 (h2c detected by the codec). The fd is owned from here.
 */
void gw_worker_dispatch(gw_worker_t *w, bool tls, int fd, const struct sockaddr_in6 *peer,
                        const struct sockaddr_in6 *local);

/** A connection closed: account for it and resume accepting if we were at the limit. */
void gw_worker_conn_closed(gw_worker_t *w);

/** Adds a connection to / removes it from the worker's list of connections. */
void gw_worker_track(gw_worker_t *w, gw_conn_t *c);
void gw_worker_untrack(gw_worker_t *w, gw_conn_t *c);

/** Moves a connection into / out of the idle list. */
void gw_worker_set_idle(gw_worker_t *w, gw_conn_t *c, bool idle);

#endif
