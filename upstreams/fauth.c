/* Forward authentication: an adapter on the shared exchange. See fauth.h. */
#include "fauth.h"

#include <stdio.h>
#include <string.h>

#include "exchange.h"

typedef struct fauth {
    gw_exchange_t x; /* first: the exchange callbacks get this pointer */
    gw_headers_t granted; /* copy-headers taken from a 2xx answer */
} fauth_t;

static bool is_copy_header(const gw_req_t *req, gw_slice_t name)
{
    const gw_headers_t *names = &req->route->fauth.copy_headers;
    for (uint32_t i = 0; i < names->count; i++)
        if (names->items[i].name.len == name.len && strncasecmp(names->items[i].name.base, name.base, name.len) == 0)
            return true;
    return false;
}

/* Removes the client's copies of the headers the auth server is trusted to set. */
static void strip_copy_headers(gw_req_t *req)
{
    size_t kept = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        if (!is_copy_header(req, req->headers[i].name)) req->headers[kept++] = req->headers[i];
    req->num_headers = kept;
}

static char *put_header(char *p, const char *name, const char *value, size_t vlen)
{
    p = gw_put(p, name, strlen(name));
    p = gw_put(p, ": ", 2);
    p = gw_put(p, value, vlen);
    return gw_put(p, "\r\n", 2);
}

static bool fauth_build_head(gw_exchange_t *x)
{
    gw_req_t *req = x->req;
    const gw_target_t *t = x->target;
    size_t extra = strlen(t->base_path) + strlen(t->authority) + req->target.len + 2 * req->authority.len + 384;
    char *p = x->head = gw_arena_alloc(&req->arena, gw_exchange_head_capacity(req, extra));
    if (!p) return false;
    p = gw_put(p, "GET ", 4);
    p = gw_put(p, t->base_path[0] ? t->base_path : "/", t->base_path[0] ? strlen(t->base_path) : 1);
    p = gw_put(p, " HTTP/1.1\r\nHost: ", 17);
    p = gw_put(p, t->authority, strlen(t->authority));
    p = gw_put(p, "\r\n", 2);
    static const gw_proxy_route_t plain = {.x_forwarded = true};
    p = gw_exchange_put_client_headers(p, req, &plain); /* every header of the original request */
    p = gw_exchange_put_forwarded(p, req);
    p = put_header(p, "X-Forwarded-Method", req->method.base, req->method.len);
    p = put_header(p, "X-Forwarded-Uri", req->target.base, req->target.len);
    p = gw_put(p, "\r\n", 2);
    x->head_len = (size_t)(p - x->head);
    return true;
}

static gw_exchange_verdict_t fauth_on_head(gw_exchange_t *x, const gw_h1_response_head_t *h)
{
    if (h->status < 200 || h->status > 299) return GW_EXCHANGE_FORWARD; /* denied: its answer goes out */
    fauth_t *f = (fauth_t *)x;
    gw_req_t *req = x->req;
    for (size_t i = 0; i < h->num_headers; i++) {
        if (!is_copy_header(req, h->headers[i].name)) continue;
        char *n = gw_arena_strndup(&req->arena, h->headers[i].name.base, h->headers[i].name.len);
        char *v = gw_arena_strndup(&req->arena, h->headers[i].value.base, h->headers[i].value.len);
        if (n && v)
            gw_headers_add(&req->arena, &f->granted, (gw_slice_t){n, h->headers[i].name.len},
                           (gw_slice_t){v, h->headers[i].value.len});
    }
    return GW_EXCHANGE_CONSUME;
}

/* Allowed: the granted headers join the request, and the chain goes on after fauth. */
static void fauth_on_consumed(gw_exchange_t *x)
{
    fauth_t *f = (fauth_t *)x;
    gw_req_t *req = x->req;
    if (f->granted.count) {
        gw_header_t *all = gw_arena_alloc(&req->arena, (req->num_headers + f->granted.count) * sizeof(*all));
        if (!all) {
            gw_req_fail(req, 500);
            return;
        }
        memcpy(all, req->headers, req->num_headers * sizeof(*all));
        memcpy(all + req->num_headers, f->granted.items, f->granted.count * sizeof(*all));
        req->headers = all;
        req->num_headers += f->granted.count;
    }
    gw_req_continue(req);
}

static const gw_exchange_ops_t fauth_ops = {.build_head = fauth_build_head, .on_head = fauth_on_head, .on_consumed = fauth_on_consumed};

static gw_handler_result_t fauth_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_target_list_t *list = &req->route->fauth.to;
    if (!list->count) return GW_CONTINUE;
    strip_copy_headers(req);
    fauth_t *f = gw_arena_alloc(&req->arena, sizeof(*f));
    if (!f) return GW_ERROR;
    memset(f, 0, sizeof(*f));
    if (!gw_exchange_init(&f->x, req, &fauth_ops, list)) {
        req->res.status = 500;
        return GW_ERROR;
    }
    gw_exchange_start(&f->x);
    return GW_DONE; /* suspended: fauth_on_consumed continues the chain, or a response was sent */
}

const gw_handler_t gw_fauth_handler = {"fauth", fauth_on_request};
