/* PROXY protocol on accepted connections. See proxy_accept.h. */
#include "proxy_accept.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_props.h"
#include "log.h"
#include "proxy_proto.h"
#include "worker.h"

enum { PP_MAX_BYTES_CAP = 4096 }; /* proxyProtocolMaxBytes' upper bound: the size of the peek buffer */

typedef enum { PP_PASS, PP_WAIT, PP_FAIL } pp_step_t;

/* A connection whose header has not all arrived. Its gw_conn_t part holds the fd watcher, the
 * timer, the addresses and the place in the worker's list of connections (forced close at exit). */
typedef struct pp_wait {
    gw_conn_t c;
    bool tls, trusted;
    uint32_t max_bytes;
} pp_wait_t;

/* Removes exactly the header's `len` bytes, which a peek has shown are there. */
static bool consume(int fd, size_t len)
{
    uint8_t sink[PP_MAX_BYTES_CAP];
    ssize_t n;
    do
        n = recv(fd, sink, len, 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len;
}

/* Looks at what the peer sent so far without taking it; a complete header is consumed and its
 * source address written to *peer. The bytes after the header stay for TLS or HTTP. */
static pp_step_t inspect(int fd, bool trusted, uint32_t max_bytes, struct sockaddr_in6 *peer,
                         const char **why)
{
    uint8_t buf[PP_MAX_BYTES_CAP];
    ssize_t n;
    do
        n = recv(fd, buf, max_bytes, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return PP_WAIT;
    *why = "closed before sending anything";
    if (n <= 0) return PP_FAIL;
    int kind = gw_pp_detect(buf, (size_t)n);
    if (kind < 0) return PP_WAIT;
    *why = trusted ? "no PROXY header from a peer in proxyProtocolTrusted"
                   : "PROXY header from a peer not in proxyProtocolTrusted";
    if (!trusted) return kind == 0 ? PP_PASS : PP_FAIL;
    if (kind == 0) return PP_FAIL;
    gw_pp_header_t h;
    int len = gw_pp_parse(buf, (size_t)n, max_bytes, &h);
    if (len == 0) return PP_WAIT;
    *why = "malformed PROXY header, or longer than proxyProtocolMaxBytes";
    if (len < 0 || !consume(fd, (size_t)len)) return PP_FAIL;
    if (h.has_addr) *peer = h.src; /* LOCAL/UNKNOWN: the balancer speaks for itself */
    return PP_PASS;
}

static void log_refusal(const struct sockaddr_in6 *peer, const char *why)
{
    gw_conn_info_t info = {.peer = *peer};
    char text[64];
    gw_conn_peer_text(&info, text, sizeof(text));
    gw_log_error("info", "PROXY protocol: %s: %s: connection closed", text, why);
}

/* ---- waiting for the rest of a header ---- */

static void wait_end(pp_wait_t *p, pp_step_t st, const char *why)
{
    gw_worker_t *w = p->c.worker;
    int fd = p->c.io.fd;
    struct sockaddr_in6 peer = p->c.info.peer, local = p->c.info.local;
    bool tls = p->tls;
    gw_timer_cancel(&p->c.timer);
    gw_worker_untrack(w, &p->c);
    if (st == PP_PASS) {
        gw_io_stop(&p->c.io); /* the codec registers the fd again, level-triggered */
        free(p);
        gw_worker_dispatch(w, tls, fd, &peer, &local);
        return;
    }
    if (why) log_refusal(&peer, why);
    gw_io_close(&p->c.io);
    free(p);
    gw_worker_conn_closed(w);
}

static void on_wait_io(gw_io_t *io, uint32_t events)
{
    pp_wait_t *p = gw_container_of(io, pp_wait_t, c.io);
    const char *why = NULL;
    pp_step_t st = inspect(io->fd, p->trusted, p->max_bytes, &p->c.info.peer, &why);
    if (st == PP_WAIT && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return; /* next edge: more bytes */
    if (st == PP_WAIT) why = "closed in the middle of a PROXY header";
    wait_end(p, st, why);
}

static void on_wait_timeout(gw_timer_t *t)
{
    pp_wait_t *p = gw_container_of(t, pp_wait_t, c.timer);
    wait_end(p, PP_FAIL, "no complete PROXY header or request within headerReadTimeout");
}

static void wait_abort(gw_conn_t *c)
{
    wait_end((pp_wait_t *)c, PP_FAIL, NULL);
}

/* Edge-triggered: the peeked bytes stay in the socket, so only new bytes may wake us again. */
static void wait_for_more(gw_worker_t *w, const pp_wait_t *like)
{
    pp_wait_t *p = malloc(sizeof(*p));
    if (p) *p = *like;
    if (!p ||
        gw_io_start(w->loop, &p->c.io, like->c.io.fd, EPOLLIN | EPOLLRDHUP | EPOLLET, on_wait_io) != 0) {
        free(p);
        close(like->c.io.fd);
        gw_worker_conn_closed(w);
        return;
    }
    gw_timer_init(&p->c.timer, on_wait_timeout);
    gw_timer_set(w->loop, &p->c.timer, w->cfg->limits.header_timeout_ms);
    p->c.abort = wait_abort;
    gw_worker_track(w, &p->c);
}

void gw_proxy_accept(gw_worker_t *w, bool tls, int fd, const struct sockaddr_in6 *peer,
                     const struct sockaddr_in6 *local)
{
    const gw_pp_config_t *pc = &w->cfg->proxy_protocol;
    pp_wait_t p = {.c = {.worker = w, .io = {.fd = fd}, .info = {.peer = *peer, .local = *local}},
                   .tls = tls,
                   .trusted = gw_cidr_list_match(&pc->trusted, &peer->sin6_addr),
                   .max_bytes = pc->max_bytes};
    const char *why = NULL;
    /* TCP_DEFER_ACCEPT: the header (and usually the request) is normally here already */
    pp_step_t st = inspect(fd, p.trusted, p.max_bytes, &p.c.info.peer, &why);
    if (st == PP_PASS) {
        gw_worker_dispatch(w, tls, fd, &p.c.info.peer, local);
    } else if (st == PP_WAIT) {
        wait_for_more(w, &p);
    } else {
        log_refusal(peer, why);
        close(fd);
        gw_worker_conn_closed(w);
    }
}

/* ---- configuration ---- */

const gw_node_t *gw_proxy_proto_check_property(const char *name, const gw_node_t *value, char *why,
                                               size_t whylen)
{
    if (!strcmp(name, "proxyProtocolToBackend")) {
        const char *s = gw_node_as_string(value);
        if (s && (!strcmp(s, "v1") || !strcmp(s, "v2") || !strcmp(s, "off"))) return NULL;
        snprintf(why, whylen, "'%s' is not a PROXY protocol version (expected v1, v2 or off)",
                 s ? s : "null");
        return value;
    }
    if (strcmp(name, "proxyProtocolTrusted") != 0) return NULL;
    return gw_cidr_seq_check(value, why, whylen);
}

bool gw_proxy_proto_config_build(const gw_node_t *g, gw_arena_t *arena, gw_pp_config_t *out)
{
    int64_t max = 512;
    memset(out, 0, sizeof(*out));
    gw_node_as_bool(gw_yaml_map_get(g, "proxyProtocol"), &out->on);
    gw_node_as_int(gw_yaml_map_get(g, "proxyProtocolMaxBytes"), &max);
    if (max > PP_MAX_BYTES_CAP) max = PP_MAX_BYTES_CAP; /* the registry's range already says so */
    if (max <= GW_PP_V1_MAX) max = GW_PP_V1_MAX + 1;
    out->max_bytes = (uint32_t)max;
    const gw_node_t *list = gw_yaml_map_get(g, "proxyProtocolTrusted");
    if (!list || list->kind != GW_NODE_SEQ || !list->seq.count) return true;
    return gw_cidr_list_from_seq(&out->trusted, arena, list);
}

int gw_proxy_proto_version(const gw_node_t *value)
{
    const char *s = gw_node_as_string(value);
    return !s ? 0 : !strcmp(s, "v1") ? 1 : !strcmp(s, "v2") ? 2 : 0;
}
