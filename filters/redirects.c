/* HTTPS and www redirects (Ferron's `redirects` module, spec §2.3 and §3.7). See response.h. */
#include "response.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_props.h"
#include "loop.h"

typedef struct redirect_handler {
    gw_handler_t base;
    bool to_https;
    unsigned sport;
    bool www;
    const char *domain;
} redirect_handler_t;

/* The host part of an authority ("example.com:8080" -> "example.com", "[::1]:80" -> "[::1]"). */
static gw_slice_t host_only(gw_slice_t a)
{
    if (a.len && a.base[0] == '[') {
        const char *close = memchr(a.base, ']', a.len);
        return close ? (gw_slice_t){a.base, (size_t)(close - a.base) + 1} : a;
    }
    const char *colon = memchr(a.base, ':', a.len);
    return colon ? (gw_slice_t){a.base, (size_t)(colon - a.base)} : a;
}

static gw_handler_result_t redirect(gw_req_t *req, const char *scheme, const char *prefix, gw_slice_t host,
                                    const char *port)
{
    char *loc = gw_arena_printf(&req->arena, "%s://%s%.*s%s%.*s%s%.*s", scheme, prefix, (int)host.len, host.base, port,
                                (int)req->path.len, req->path.base, req->has_query ? "?" : "", (int)req->query.len,
                                req->query.base);
    if (!loc) {
        req->res.status = 500;
        return GW_ERROR;
    }
    gw_res_add_header(req, GW_SLICE_LIT("location"), (gw_slice_t){loc, strlen(loc)});
    gw_send_error(req, 301);
    return GW_DONE;
}

static gw_handler_result_t redirect_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const redirect_handler_t *h = gw_container_of(self, redirect_handler_t, base);
    bool tls = req->conn && req->conn->tls;
    bool to_https = h->to_https && !tls;
    if (!(to_https || h->www) || !req->authority.len || req->method_id == GW_M_CONNECT)
        return GW_CONTINUE; /* the usual request on the HTTPS port: nothing to look at */
    gw_slice_t host = host_only(req->authority);
    if (to_https) {
        char port[16] = "";
        if (h->sport != 443) snprintf(port, sizeof(port), ":%u", h->sport);
        return redirect(req, "https", "", host, port);
    }
    if (gw_slice_eq(host, h->domain) && !(host.len >= 4 && strncmp(host.base, "www.", 4) == 0))
        return redirect(req, tls ? "https" : "http", "www.", req->authority, "");
    return GW_CONTINUE;
}

/* `sport` is a number or "address:port". */
static unsigned secure_port(const gw_route_t *r)
{
    const gw_node_t *n = gw_route_prop(r, "sport");
    int64_t v;
    if (gw_node_as_int(n, &v)) return (unsigned)v;
    const char *s = gw_node_as_string(n);
    const char *colon = s ? strrchr(s, ':') : NULL;
    return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 443;
}

const gw_handler_t *gw_redirect_handler_new(const gw_route_t *route, gw_arena_t *arena)
{
    bool secure = false, no_https_redirect = false, www = false;
    gw_node_as_bool(gw_route_prop(route, "secure"), &secure);
    gw_node_as_bool(gw_route_prop(route, "disableToHTTPSRedirect"), &no_https_redirect);
    gw_node_as_bool(gw_route_prop(route, "wwwredirect"), &www);
    bool to_https = secure && !no_https_redirect;
    www = www && route->domain && strncmp(route->domain, "www.", 4) != 0;
    if (!to_https && !www) return NULL;
    redirect_handler_t *h = gw_arena_alloc(arena, sizeof(*h));
    if (!h) return NULL;
    *h = (redirect_handler_t){{"redirects", redirect_on_request}, to_https, secure_port(route), www, route->domain};
    return &h->base;
}
