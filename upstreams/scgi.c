/* SCGI: the netstring encoder and the adapter on the shared exchange. See scgi.h. */
#include "scgi.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "exchange.h"
#include "spool.h"
#include "uri.h"

size_t gw_scgi_netstring_size(const gw_cgi_env_t *env)
{
    return env->bytes + 2 * env->count + 24;
}

size_t gw_scgi_put_netstring(char *out, const gw_cgi_env_t *env)
{
    size_t len = env->bytes + 2 * env->count;
    char *p = out + sprintf(out, "%zu:", len);
    for (size_t i = 0; i < env->count; i++) {
        memcpy(p, env->items[i].name.base, env->items[i].name.len);
        p += env->items[i].name.len;
        *p++ = '\0';
        memcpy(p, env->items[i].value.base, env->items[i].value.len);
        p += env->items[i].value.len;
        *p++ = '\0';
    }
    *p++ = ',';
    return (size_t)(p - out);
}

typedef struct scgi {
    gw_exchange_t x; /* first: the exchange callbacks get this pointer */
    gw_cgi_env_t env;
} scgi_t;

static bool scgi_build_head(gw_exchange_t *x)
{
    scgi_t *s = (scgi_t *)x;
    if (x->head) return true;
    x->head = gw_arena_alloc(&x->req->arena, gw_scgi_netstring_size(&s->env));
    if (!x->head) return false;
    x->head_len = gw_scgi_put_netstring(x->head, &s->env);
    return true;
}

/* The body goes as it is after the netstring. */
static void scgi_frame_body(gw_exchange_t *x)
{
    x->nout = 0;
    if (x->piece_off < x->piece.len)
        x->out[x->nout++] = (struct iovec){(void *)(x->piece.base + x->piece_off), x->piece.len - x->piece_off};
    x->piece_off = x->piece.len;
}

/* The response runs until the application closes the connection. */
static bool scgi_decode(gw_exchange_t *x)
{
    x->ready = x->rlen;
    x->msg_done = x->eof;
    return true;
}

static int scgi_parse_head(gw_exchange_t *x, gw_h1_response_head_t *h)
{
    x->keep_alive = false;
    return gw_exchange_parse_cgi_head(x, h);
}

static const gw_backend_codec_t scgi_codec = {scgi_frame_body, scgi_decode, scgi_parse_head};
static const gw_exchange_ops_t scgi_ops = {.build_head = scgi_build_head, .codec = &scgi_codec};

/* spec §3.3: the shared prefix mode of cgi_env.c, plus SCGI=1. */
static int locate(gw_req_t *req, gw_cgi_script_t *s)
{
    s->scgi = true;
    return gw_cgi_locate_by_prefix(req, req->route->cgi.scgi_path, s);
}

static gw_handler_result_t scgi_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_cgi_route_t *c = &req->route->cgi;
    if (!c->scgi_to.count || !gw_cgi_prefix_match(req->path, c->scgi_path)) return GW_CONTINUE;
    gw_cgi_script_t script = {0};
    int found = locate(req, &script);
    if (found < 0) {
        req->res.status = -found;
        return GW_ERROR;
    }
    if (req->body_kind == GW_BODY_CHUNKED) /* CONTENT_LENGTH must be known: read the body ahead */
        return gw_spool_then_rerun(self, req);
    scgi_t *s = gw_arena_alloc(&req->arena, sizeof(*s));
    if (!s) return GW_ERROR;
    memset(s, 0, sizeof(*s));
    if (!gw_cgi_env_build(req, &script, &s->env) || !gw_exchange_init(&s->x, req, &scgi_ops, &c->scgi_to)) {
        req->res.status = 500;
        return GW_ERROR;
    }
    s->x.send_body = true;
    gw_exchange_start(&s->x);
    return GW_DONE;
}

const gw_handler_t gw_scgi_handler = {"scgi", scgi_on_request};
