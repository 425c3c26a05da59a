/*
 * rproxy: the reverse proxy (`proxyTo`, `secureProxyTo`), an adapter on the shared exchange
 * (exchange.c). It only writes the request head: the client's method and normalised path under
 * the target's base path, its headers minus hop-by-hop ones, the backend's Host (or the client's
 * with proxyKeepHost), X-Forwarded-* unless disabled, and the body framing. Targets that speak
 * HTTP/2 (`protocol: h2|h2c|auto`, h2c:// URLs) go to h2client.c instead, which hands `auto`
 * targets that answered http/1.1 back to the exchange here.
 */
#include "rproxy.h"

#include <stdio.h>
#include <string.h>

#include "exchange.h"
#include "h2client.h"

static bool rproxy_build_head(gw_exchange_t *x)
{
    gw_req_t *req = x->req;
    const gw_target_t *t = x->target;
    const gw_proxy_route_t *pr = &req->route->proxy;
    size_t base_len = strlen(t->base_path), authority_len = strlen(t->authority);
    size_t extra = base_len + authority_len + 2 * req->authority.len + 256;
    char *p = x->head = gw_arena_alloc(&req->arena, gw_exchange_head_capacity(req, extra));
    if (!p) return false;
    p = gw_put(p, req->method.base, req->method.len);
    p = gw_put(p, " ", 1);
    p = gw_put(p, t->base_path, base_len);
    p = gw_put(p, req->path.base, req->path.len);
    if (req->has_query) {
        p = gw_put(p, "?", 1);
        p = gw_put(p, req->query.base, req->query.len);
    }
    p = gw_put(p, " HTTP/1.1\r\nHost: ", 17);
    if (pr->keep_host && req->authority.len)
        p = gw_put(p, req->authority.base, req->authority.len);
    else
        p = gw_put(p, t->authority, authority_len);
    p = gw_put(p, "\r\n", 2);
    p = gw_exchange_put_client_headers(p, req, pr);
    const gw_header_t *up = req->upgrade ? gw_req_header(req, "upgrade") : NULL;
    if (up) { /* WebSocket and other upgrades: the hop-by-hop pair is passed on deliberately */
        p = gw_put(p, "Connection: upgrade\r\nUpgrade: ", 30);
        p = gw_put(p, up->value.base, up->value.len);
        p = gw_put(p, "\r\n", 2);
    }
    if (pr->x_forwarded) p = gw_exchange_put_forwarded(p, req);
    p = gw_exchange_put_framing(x, p);
    p = gw_put(p, "\r\n", 2);
    x->head_len = (size_t)(p - x->head);
    return true;
}

static const gw_exchange_ops_t rproxy_ops = {.build_head = rproxy_build_head};

/* One HTTP/1.1 exchange on `pool` (h2client.c hands over `protocol: auto` targets that chose it). */
static bool rproxy_http1_on_pool(gw_req_t *req, gw_pool_t *pool)
{
    gw_exchange_t *x = gw_arena_alloc(&req->arena, sizeof(*x));
    if (!x) return false;
    memset(x, 0, sizeof(*x));
    if (!gw_exchange_init_pool(x, req, &rproxy_ops, pool)) return false;
    x->send_body = true;
    gw_exchange_start(x);
    return true;
}

static gw_handler_result_t rproxy_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_proxy_route_t *pr = &req->route->proxy;
    const gw_target_list_t *list = req->conn->tls && pr->secure_to.count ? &pr->secure_to : &pr->to;
    if (!list->count) return GW_CONTINUE;
    if (list->items[0]->proto != GW_PROTO_HTTP1) { /* the config keeps a list to one protocol */
        if (gw_h2client_start(req, list, rproxy_http1_on_pool)) return GW_DONE;
        req->res.status = 500;
        return GW_ERROR;
    }
    gw_exchange_t *x = gw_arena_alloc(&req->arena, sizeof(*x));
    if (!x) return GW_ERROR;
    memset(x, 0, sizeof(*x));
    if (!gw_exchange_init(x, req, &rproxy_ops, list)) {
        req->res.status = 500;
        return GW_ERROR;
    }
    x->send_body = true;
    gw_exchange_start(x);
    return GW_DONE;
}

const gw_handler_t gw_rproxy_handler = {"rproxy", rproxy_on_request};
