/* FastCGI: the record codec and the adapter on the shared exchange. See fcgi.h. */
#include "fcgi.h"

#include <string.h>
#include <strings.h>

#include "cgi_response.h"
#include "config.h"
#include "errors.h"
#include "exchange.h"
#include "log.h"
#include "spool.h"
#include "uri.h"

#define REQUEST_ID 1

/* ---- the record codec ---- */

void gw_fcgi_record_header(char *h, int type, uint16_t id, uint16_t content_len, uint8_t padding)
{
    unsigned char *u = (unsigned char *)h;
    u[0] = 1;
    u[1] = (unsigned char)type;
    u[2] = (unsigned char)(id >> 8);
    u[3] = (unsigned char)id;
    u[4] = (unsigned char)(content_len >> 8);
    u[5] = (unsigned char)content_len;
    u[6] = padding;
    u[7] = 0;
}

/* The PARAMS stream: pairs written through this so records are cut every 65535 bytes. */
typedef struct stream_writer {
    char *p;
    char *hdr; /* header of the open record */
    size_t in_record;
    uint16_t id;
} stream_writer_t;

static void sw_close(stream_writer_t *w)
{
    if (w->hdr && w->in_record) gw_fcgi_record_header(w->hdr, GW_FCGI_PARAMS, w->id, (uint16_t)w->in_record, 0);
    if (!w->in_record && w->hdr) w->p = w->hdr; /* an empty record is dropped */
    w->hdr = NULL;
    w->in_record = 0;
}

static void sw_put(stream_writer_t *w, const void *src, size_t n)
{
    const char *s = src;
    while (n) {
        if (!w->hdr) {
            w->hdr = w->p;
            w->p += GW_FCGI_HEADER_LEN;
        }
        size_t room = GW_FCGI_MAX_CONTENT - w->in_record, take = n < room ? n : room;
        memcpy(w->p, s, take);
        w->p += take;
        w->in_record += take;
        s += take;
        n -= take;
        if (w->in_record == GW_FCGI_MAX_CONTENT) sw_close(w);
    }
}

/* A FastCGI name or value length: one byte below 128, else four with the top bit set. */
static char *put_len(char *p, size_t n)
{
    unsigned char *u = (unsigned char *)p;
    if (n < 128) {
        u[0] = (unsigned char)n;
        return p + 1;
    }
    u[0] = (unsigned char)((n >> 24) | 0x80);
    u[1] = (unsigned char)(n >> 16);
    u[2] = (unsigned char)(n >> 8);
    u[3] = (unsigned char)n;
    return p + 4;
}

static void sw_put_len(stream_writer_t *w, size_t n)
{
    char b[4];
    sw_put(w, b, (size_t)(put_len(b, n) - b));
}

/* One name-value pair. A pair almost always fits in the open record: then it is written in one
 * go (this runs ~25 times per request); one that crosses a record boundary goes through sw_put. */
static void sw_put_pair(stream_writer_t *w, const gw_header_t *h)
{
    size_t nl = h->name.len, vl = h->value.len;
    size_t need = (nl < 128 ? 1 : 4) + (vl < 128 ? 1 : 4) + nl + vl;
    if (need > GW_FCGI_MAX_CONTENT - w->in_record) {
        sw_put_len(w, nl);
        sw_put_len(w, vl);
        sw_put(w, h->name.base, nl);
        sw_put(w, h->value.base, vl);
        return;
    }
    if (!w->hdr) {
        w->hdr = w->p;
        w->p += GW_FCGI_HEADER_LEN;
    }
    w->p = put_len(put_len(w->p, nl), vl);
    if (nl) memcpy(w->p, h->name.base, nl);
    if (vl) memcpy(w->p + nl, h->value.base, vl);
    w->p += nl + vl;
    w->in_record += need;
    if (w->in_record == GW_FCGI_MAX_CONTENT) sw_close(w);
}

size_t gw_fcgi_request_size(const gw_cgi_env_t *env)
{
    size_t stream = env->bytes + 8 * env->count;
    return 16 + stream + GW_FCGI_HEADER_LEN * (stream / GW_FCGI_MAX_CONTENT + 1) + 2 * GW_FCGI_HEADER_LEN;
}

size_t gw_fcgi_put_request(char *out, uint16_t id, bool keep_conn, const gw_cgi_env_t *env, bool no_body)
{
    char *p = out;
    gw_fcgi_record_header(p, GW_FCGI_BEGIN_REQUEST, id, 8, 0);
    memset(p + 8, 0, 8);
    p[9] = 1; /* FCGI_RESPONDER */
    p[10] = keep_conn ? 1 : 0;
    stream_writer_t w = {.p = p + 16, .id = id};
    for (size_t i = 0; i < env->count; i++)
        sw_put_pair(&w, &env->items[i]);
    sw_close(&w);
    p = w.p;
    gw_fcgi_record_header(p, GW_FCGI_PARAMS, id, 0, 0);
    p += GW_FCGI_HEADER_LEN;
    if (no_body) {
        gw_fcgi_record_header(p, GW_FCGI_STDIN, id, 0, 0);
        p += GW_FCGI_HEADER_LEN;
    }
    return (size_t)(p - out);
}

/* A record whose content and padding are used up is finished. */
static void end_if_empty(gw_fcgi_decoder_t *d)
{
    if (d->in_record && !d->content_left && !d->pad_left) d->in_record = false;
}

/* Reads a record header at h (with the END_REQUEST body when that is the type); returns the
 * bytes used, 0 when more are needed, -1 when broken. */
static long start_record(gw_fcgi_decoder_t *d, const unsigned char *h, size_t avail)
{
    if (avail < GW_FCGI_HEADER_LEN) return 0;
    if (h[0] != 1) return -1;
    bool ours = (uint16_t)(h[2] << 8 | h[3]) == d->id, end = ours && h[1] == GW_FCGI_END_REQUEST;
    if (end && (h[4] << 8 | h[5]) < 8) return -1;
    if (end && avail < 16) return 0; /* its body is read with it */
    d->type = h[1];
    d->ours = ours;
    d->content_left = (uint32_t)(h[4] << 8 | h[5]);
    d->pad_left = h[6];
    d->in_record = true;
    if (!end) return GW_FCGI_HEADER_LEN;
    d->app_status = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    d->protocol_status = h[12];
    d->content_left -= 8;
    d->done = true;
    return 16;
}

long gw_fcgi_decode(gw_fcgi_decoder_t *d, char *buf, size_t *len)
{
    size_t in = 0, out = 0, n = *len;
    for (;;) {
        end_if_empty(d);
        if (!d->in_record) {
            if (d->done) break;
            long used = start_record(d, (const unsigned char *)buf + in, n - in);
            if (used < 0) return -1;
            if (!used) break;
            in += (size_t)used;
            continue;
        }
        if (in == n) break;
        size_t avail = n - in;
        if (d->content_left) {
            size_t take = avail < d->content_left ? avail : d->content_left;
            if (d->ours && d->type == GW_FCGI_STDOUT) {
                memmove(buf + out, buf + in, take);
                out += take;
            } else if (d->ours && d->type == GW_FCGI_STDERR && d->on_stderr) {
                d->on_stderr(d->ctx, buf + in, take);
            }
            d->content_left -= (uint32_t)take;
            in += take;
        } else {
            size_t take = avail < d->pad_left ? avail : d->pad_left;
            d->pad_left -= (uint32_t)take;
            in += take;
        }
    }
    *len = out;
    return (long)in;
}

/* ---- the adapter ---- */

typedef struct fcgi {
    gw_exchange_t x; /* first: the exchange callbacks get this pointer */
    gw_cgi_env_t env;
    gw_fcgi_decoder_t dec;
} fcgi_t;

static void log_stderr(void *ctx, const char *data, size_t len)
{
    fcgi_t *f = ctx;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r')) len--;
    if (len) gw_log_error("error", "FastCGI stderr (%s): %.*s", f->x.target->url, (int)len, data);
}

static bool fcgi_build_head(gw_exchange_t *x)
{
    fcgi_t *f = (fcgi_t *)x;
    f->dec = (gw_fcgi_decoder_t){.id = REQUEST_ID, .on_stderr = log_stderr, .ctx = f};
    if (!x->head) {
        x->head = gw_arena_alloc(&x->req->arena, gw_fcgi_request_size(&f->env));
        if (!x->head) return false;
        x->head_len = gw_fcgi_put_request(x->head, REQUEST_ID, true, &f->env, x->req->body_kind == GW_BODY_NONE);
    }
    return true;
}

/* The body as STDIN records, then the empty STDIN record. */
static void fcgi_frame_body(gw_exchange_t *x)
{
    size_t left = x->piece.len - x->piece_off, n = left < GW_FCGI_MAX_CONTENT ? left : GW_FCGI_MAX_CONTENT;
    x->nout = 0;
    if (n) {
        gw_fcgi_record_header(x->chunk_hdr, GW_FCGI_STDIN, REQUEST_ID, (uint16_t)n, 0);
        x->out[x->nout++] = (struct iovec){x->chunk_hdr, GW_FCGI_HEADER_LEN};
        x->out[x->nout++] = (struct iovec){(void *)(x->piece.base + x->piece_off), n};
        x->piece_off += n;
    }
    if (x->piece_last && x->piece_off == x->piece.len) {
        gw_fcgi_record_header(x->chunk_hdr + GW_FCGI_HEADER_LEN, GW_FCGI_STDIN, REQUEST_ID, 0, 0);
        x->out[x->nout++] = (struct iovec){x->chunk_hdr + GW_FCGI_HEADER_LEN, GW_FCGI_HEADER_LEN};
    }
}

static bool fcgi_decode(gw_exchange_t *x)
{
    fcgi_t *f = (fcgi_t *)x;
    char *raw = x->rbuf + x->ready;
    size_t avail = x->rlen - x->ready, dlen = avail;
    long used = gw_fcgi_decode(&f->dec, raw, &dlen);
    if (used < 0) return false;
    memmove(raw + dlen, raw + used, avail - (size_t)used);
    x->rlen -= (size_t)used - dlen;
    x->ready += dlen;
    x->msg_done = f->dec.done && !f->dec.in_record;
    if (!x->msg_done && x->eof) return false; /* closed before END_REQUEST */
    return true;
}

static int fcgi_parse_head(gw_exchange_t *x, gw_h1_response_head_t *h)
{
    x->keep_alive = true; /* FCGI_KEEP_CONN: the application keeps the connection open */
    return gw_exchange_parse_cgi_head(x, h);
}

static const gw_backend_codec_t fcgi_codec = {fcgi_frame_body, fcgi_decode, fcgi_parse_head};
static const gw_exchange_ops_t fcgi_ops = {.build_head = fcgi_build_head, .codec = &fcgi_codec};

static bool has_extension(const gw_strlist_t *exts, const char *rel)
{
    const char *dot = strrchr(rel, '.');
    if (!dot || strchr(dot, '/')) return false;
    for (size_t i = 0; i < exts->count; i++)
        if (strcasecmp(dot, exts->items[i]) == 0) return true;
    return false;
}

static bool fcgi_accept(const gw_req_t *req, const char *rel, const struct stat *st)
{
    return has_extension(&req->route->cgi.fcgi_extensions, rel);
}

/* fcgiPath (spec §3.0): the shared prefix mode of cgi_env.c. */
static int path_mode(gw_req_t *req, gw_cgi_script_t *s)
{
    return gw_cgi_locate_by_prefix(req, req->route->cgi.fcgi_path, s);
}

static gw_handler_result_t fcgi_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_cgi_route_t *c = &req->route->cgi;
    if (!c->fcgi_to.count) return GW_CONTINUE;
    static const char *const index[] = {"index.php", NULL};
    gw_cgi_script_t s = {0};
    const char *rel;
    int found = c->fcgi_path && gw_cgi_prefix_match(req->path, c->fcgi_path) ? path_mode(req, &s)
                : c->fcgi_extensions.count ? gw_cgi_find_script(req, fcgi_accept, index, &s, &rel)
                                          : 0;
    if (found <= 0) {
        req->res.status = -found;
        return found ? GW_ERROR : GW_CONTINUE;
    }
    if (req->body_kind == GW_BODY_CHUNKED) /* CONTENT_LENGTH must be known: read the body ahead */
        return gw_spool_then_rerun(self, req);
    fcgi_t *f = gw_arena_alloc(&req->arena, sizeof(*f));
    if (!f) return GW_ERROR;
    memset(f, 0, sizeof(*f));
    if (!gw_cgi_env_build(req, &s, &f->env) || !gw_exchange_init(&f->x, req, &fcgi_ops, &c->fcgi_to)) {
        req->res.status = 500;
        return GW_ERROR;
    }
    f->x.send_body = true;
    gw_exchange_start(&f->x);
    return GW_DONE;
}

const gw_handler_t gw_fcgi_handler = {"fcgi", fcgi_on_request};
