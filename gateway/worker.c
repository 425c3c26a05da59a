/* Worker threads: accept, own connections, flush logs, drain on stop. See worker.h. */
#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "file_cache.h"
#include "http2.h"
#include "log.h"
#include "metrics.h"
#include "module_loader.h"
#include "acme_fetch.h"
#include "dns.h"
#include "pool.h"
#include "resbuf.h"
#include "balancer.h"
#include "health.h"
#include "tls_client.h"
#include "static.h"
#include "tls.h"
#include "listeners.h"
#include "proxy_accept.h"
#include "reload.h"

static void on_accept(gw_io_t *io, uint32_t events);

static unsigned fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 22))
        return 1u << 16;
    return (unsigned)rl.rlim_cur;
}

static size_t io_chunk_size(const gw_config_t *cfg)
{
    size_t need = (size_t)cfg->limits.max_head_bytes + 1024; /* a whole head fits in one buffer */
    size_t size = 16384;
    while (size < need) size *= 2;
    return size;
}

static void on_log_timer(gw_timer_t *t)
{
    gw_worker_t *w = gw_container_of(t, gw_worker_t, log_timer);
    gw_log_flush(w->access_log);
}

/* Once per loop iteration: write HTTP/2 output, refresh Date and flush the access log when a second
 * has passed; lines that arrive in a quiet second are flushed by a timer, so the log never lags
 * by more than about a second. */
static void idle_hook(gw_loop_t *loop, void *arg)
{
    gw_worker_t *w = arg;
    gw_h2_flush_pending(w);
    if (gw_log_pending(w->access_log) && !gw_timer_active(&w->log_timer)) gw_timer_set(loop, &w->log_timer, 1000);
    int64_t now = gw_loop_wall(loop);
    if (now == w->date_at) return;
    gw_log_flush(w->access_log);
    gw_worker_date(w);
}

int gw_worker_add_listener(gw_worker_t *w, int fd, const gw_listen_t *spec)
{
    gw_listener_t *l = calloc(1, sizeof(*l));
    if (!l) return -ENOMEM;
    l->worker = w;
    l->spec = *spec;
    int rc = gw_io_start(w->loop, &l->io, fd, w->accepting && !w->draining ? EPOLLIN : 0, on_accept);
    if (rc != 0) {
        free(l);
        return rc;
    }
    l->next = w->listeners;
    w->listeners = l;
    return 0;
}

void gw_worker_remove_listener(gw_worker_t *w, const gw_listen_t *spec)
{
    for (gw_listener_t **pl = &w->listeners; *pl; pl = &(*pl)->next) {
        gw_listener_t *l = *pl;
        if (!gw_listen_same(&l->spec, spec)) continue;
        *pl = l->next;
        gw_io_stop(&l->io); /* explicit: a Unix listener's fd is a dup, so close alone would not */
        close(l->io.fd);
        free(l);
        return;
    }
}

/* Closes every listening socket of the worker (worker exit). */
static void close_listeners(gw_worker_t *w)
{
    while (w->listeners) {
        gw_listener_t *l = w->listeners;
        w->listeners = l->next;
        gw_io_stop(&l->io); /* explicit: a Unix listener's fd is a dup, so close alone would not */
        close(l->io.fd);
        free(l);
    }
}

gw_worker_t *gw_worker_new(unsigned id, const gw_config_t *cfg, const int *fds, size_t n, int access_log_fd)
{
    size_t added = 0;
    gw_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        for (size_t i = 0; i < n; i++) close(fds[i]);
        return NULL;
    }
    w->id = id;
    w->cfg = cfg;
    w->access_fd = access_log_fd;
    w->loop = gw_loop_new(fd_limit());
    w->hdr_scratch = calloc(cfg->limits.max_headers, sizeof(gw_header_t));
    w->access_log = gw_log_buf_new(access_log_fd);
    w->file_cache = gw_file_cache_new(cfg->limits.file_cache_entries, cfg->limits.file_cache_inline_bytes,
                                      cfg->limits.file_cache_validity_ms);
    gw_file_cache_set_encoded_limit(w->file_cache, cfg->limits.file_cache_encoded_bytes);
    if (!w->loop || !w->hdr_scratch || !w->file_cache || (access_log_fd >= 0 && !w->access_log))
        goto fail;
    char derr[256];
    w->dns = gw_dns_new(w->loop, &cfg->dns, derr, sizeof(derr));
    if (!w->dns) {
        gw_log_error("error", "worker %u: resolver: %s", id, derr);
        goto fail;
    }
    w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)id << 32) ^ (uint64_t)(uintptr_t)w;
    gw_chunk_pool_init(&w->io_pool, io_chunk_size(cfg), 1024);
    gw_chunk_pool_init(&w->conn_pool, gw_h1_conn_size(), 4096);
    gw_loop_set_data(w->loop, w);
    gw_loop_set_idle_hook(w->loop, idle_hook, w);
    gw_timer_init(&w->log_timer, on_log_timer);
    w->date_at = -1;
    w->accepting = true;
    for (; added < n; added++)
        if (gw_worker_add_listener(w, fds[added], &cfg->listens[added]) != 0) goto fail;
    for (size_t i = 0; i < cfg->num_modules; i++) {
        const gw_loaded_module_t *m = &cfg->modules[i];
        if (m->def->worker_init && m->def->worker_init(m->state, id) != 0) {
            gw_log_error("error", "module %s failed to initialise worker %u", m->name, id);
            goto fail;
        }
    }
    return w;
fail:
    close_listeners(w);
    for (size_t i = added; i < n; i++) close(fds[i]); /* ours even when we fail */
    if (w->dns) gw_dns_free(w->dns);
    if (w->loop) gw_loop_free(w->loop);
    gw_file_cache_free(w->file_cache);
    gw_log_buf_free(w->access_log);
    free(w->hdr_scratch);
    free(w);
    return NULL;
}

const char *gw_worker_date(gw_worker_t *w)
{
    int64_t now = gw_loop_wall(w->loop);
    if (now != w->date_at) {
        gw_http_date(now, w->date);
        w->date_at = now;
    }
    return w->date;
}

static void set_accepting(gw_worker_t *w, bool on)
{
    if (w->accepting == on || w->draining) return;
    w->accepting = on;
    for (gw_listener_t *l = w->listeners; l; l = l->next) gw_io_modify(&l->io, on ? EPOLLIN : 0);
}

static void on_accept(gw_io_t *io, uint32_t events)
{
    gw_listener_t *l = gw_container_of(io, gw_listener_t, io);
    gw_worker_t *w = l->worker;
    /* a bounded batch per wake-up (level-triggered: the rest wake us again), so that a flood of
     * new connections cannot starve the ones already accepted */
    for (int batch = 0; batch < 64 && w->conns < w->max_conns && !w->draining; batch++) {
        struct sockaddr_in6 peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) set_accepting(w, false); /* resumes on a close */
            return;
        }
        /* TCP_NODELAY is inherited from the listening socket */
        struct sockaddr_in6 local = l->spec.addr;
        if (l->spec.unix_path[0]) { /* no IP on either side: both are shown as :: */
            memset(&peer, 0, sizeof(peer));
            peer.sin6_family = AF_INET6;
        }
        w->conns++;
        GW_STAT(conns_accepted, 1);
        GW_STAT(conns_open, 1);
        if (l->spec.admin) /* never PROXY protocol: probes and scrapers connect directly */
            gw_h1_accept_admin(w, fd, &peer, &local);
        else if (w->cfg->proxy_protocol.on && !l->spec.unix_path[0]) /* off: not one extra syscall */
            gw_proxy_accept(w, l->spec.tls, fd, &peer, &local);
        else
            gw_worker_dispatch(w, l->spec.tls, fd, &peer, &local);
    }
    if (w->conns >= w->max_conns) set_accepting(w, false);
}

void gw_worker_dispatch(gw_worker_t *w, bool tls, int fd, const struct sockaddr_in6 *peer,
                        const struct sockaddr_in6 *local)
{
    if (tls && w->tls)
        gw_tls_accept(w, w->tls, fd, peer, local);
    else
        gw_h1_accept(w, fd, peer, local);
}

void gw_worker_conn_closed(gw_worker_t *w)
{
    w->conns--;
    GW_STAT(conns_open, -1);
    if (w->draining && w->conns == 0) gw_loop_stop(w->loop);
    if (!w->accepting && w->conns < w->max_conns) set_accepting(w, true);
}

void gw_worker_track(gw_worker_t *w, gw_conn_t *c)
{
    c->next_all = w->all;
    if (w->all) w->all->prev_all = &c->next_all;
    c->prev_all = &w->all;
    w->all = c;
}

void gw_worker_untrack(gw_worker_t *w, gw_conn_t *c)
{
    (void)w;
    if (!c->prev_all) return;
    if (c->next_all) c->next_all->prev_all = c->prev_all;
    *c->prev_all = c->next_all;
    c->next_all = NULL;
    c->prev_all = NULL;
}

void gw_worker_set_idle(gw_worker_t *w, gw_conn_t *c, bool idle)
{
    if (idle) {
        GW_STAT(conns_idle, 1);
        c->next_idle = w->idle;
        if (w->idle) w->idle->prev_idle = &c->next_idle;
        c->prev_idle = &w->idle;
        w->idle = c;
    } else if (c->prev_idle) {
        GW_STAT(conns_idle, -1);
        if (c->next_idle) c->next_idle->prev_idle = c->prev_idle;
        *c->prev_idle = c->next_idle;
        c->next_idle = NULL;
        c->prev_idle = NULL;
    }
}

static void on_drain_timeout(gw_timer_t *t)
{
    gw_worker_t *w = gw_container_of(t, gw_worker_t, drain_timer);
    gw_log_error("warn", "worker %u: %u connections still open after the graceful timeout", w->id, w->conns);
    gw_loop_stop(w->loop);
}

/*
 * A stop closes the listening sockets, so new connections are refused at once instead of waiting in
 * a backlog nobody reads (and being reset at exit). The connections the kernel already completed
 * are taken first: closing would reset them, while taken they are served and closed after their
 * response like every other connection during the drain.
 */
static void stop_listening(gw_worker_t *w)
{
    for (gw_listener_t *l = w->listeners; l; l = l->next) {
        for (unsigned got = 64; got == 64 && w->conns < w->max_conns;) { /* 64: on_accept's batch */
            unsigned before = w->conns;
            on_accept(&l->io, EPOLLIN);
            got = w->conns - before;
        }
    }
    close_listeners(w);
}

static void on_unlisten_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    (void)loop;
    gw_worker_t *w = gw_container_of(msg, gw_worker_t, unlisten_msg);
    stop_listening(w);
    atomic_store_explicit(&w->unlistened, true, memory_order_release);
}

void gw_worker_stop_listening(gw_worker_t *w)
{
    w->unlisten_msg.fn = on_unlisten_msg;
    gw_loop_post(w->loop, &w->unlisten_msg);
}

bool gw_worker_unlistened(const gw_worker_t *w)
{
    return atomic_load_explicit(&w->unlistened, memory_order_acquire);
}

static void on_stop_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    gw_worker_t *w = gw_container_of(msg, gw_worker_t, stop_msg);
    stop_listening(w); /* done already when the process stops in two steps (gw_process_stop) */
    w->draining = true;
    gw_health_probes_stop(w);
    for (gw_conn_t *c = w->idle, *next; c; c = next) { /* a drained connection may leave the list */
        next = c->next_idle;
        gw_conn_drain(c);
    }
    if (w->conns == 0) {
        gw_loop_stop(loop);
        return;
    }
    gw_timer_init(&w->drain_timer, on_drain_timeout);
    gw_timer_set(loop, &w->drain_timer, w->cfg->limits.graceful_timeout_ms);
}

static void *worker_main(void *arg)
{
    gw_worker_t *w = arg;
    gw_health_probes_start(w); /* on the worker's thread: probes are its loop's timers */
    gw_loop_run(w->loop);
    while (w->all) { /* the graceful timeout ran out: close what is left, freeing its state */
        gw_conn_t *c = w->all;
        if (c->abort)
            c->abort(c);
        else
            gw_worker_untrack(w, c);
    }
    gw_log_flush(w->access_log);
    return NULL;
}

int gw_worker_start(gw_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w);
}

void gw_worker_stop(gw_worker_t *w)
{
    w->stop_msg.fn = on_stop_msg;
    gw_loop_post(w->loop, &w->stop_msg);
}

void gw_worker_join(gw_worker_t *w)
{
    pthread_join(w->thread, NULL);
    gw_worker_free(w);
}

void gw_worker_free(gw_worker_t *w)
{
    gw_timer_cancel(&w->drain_timer);
    gw_timer_cancel(&w->log_timer);
    gw_log_buf_free(w->access_log);
    gw_file_cache_free(w->file_cache);
    gw_h2_worker_free(w);
    close_listeners(w);
    gw_worker_forget_snapshots(w);
    gw_health_probes_stop(w); /* before the pools its connections belong to */
    gw_acme_fetch_free(w);    /* likewise, and before the resolver */
    gw_pools_free(w);
    gw_resbufs_free(w);
    gw_tls_client_free(w->tls_client);
    gw_balance_worker_free(w);
    gw_dns_free(w->dns);
    gw_loop_free(w->loop);
    gw_chunk_pool_clear(&w->io_pool);
    gw_chunk_pool_clear(&w->conn_pool);
    free(w->hdr_scratch);
    free(w);
}
