/* Streaming gzip/brotli response filter. See compress.h. */
#include "compress.h"

#include <brotli/encode.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "config_props.h"
#include "http_cond.h"
#include "loop.h"

#define GZIP_LEVEL 4     /* dynamic compression trades ratio for CPU, like nginx and h2o */
#define BROTLI_QUALITY 4
#define OUT_INITIAL 16384

/* ---- negotiation ---- */

static const char *const tokens[] = {NULL, "gzip", "br"};

const char *gw_encoding_token(gw_encoding_t e)
{
    return e > GW_ENC_IDENTITY && e <= GW_ENC_BR ? tokens[e] : NULL;
}

/* Parses a qvalue ("1", "0.5", "1.000") into thousandths; -1 when invalid. */
static int parse_q(const char *p, const char *end)
{
    if (p == end || (*p != '0' && *p != '1')) return -1;
    int q = (*p++ - '0') * 1000;
    if (p < end && *p == '.') {
        p++;
        for (int scale = 100; p < end && *p >= '0' && *p <= '9' && scale; scale /= 10) q += (*p++ - '0') * scale;
    }
    return p == end && q <= 1000 ? q : -1;
}

/* Finds ";q=" among the parameters of one list element; 1000 when absent. */
static int element_q(const char *p, const char *end)
{
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) return 1000;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p >= 2 && (p[0] | 0x20) == 'q' && p[1] == '=') {
            const char *v = p + 2, *ve = v;
            while (ve < end && *ve != ';' && *ve != ' ' && *ve != '\t') ve++;
            return parse_q(v, ve);
        }
    }
    return 1000;
}

gw_encoding_t gw_accept_encoding_pick(gw_slice_t value, unsigned allowed)
{
    int q[3] = {-1, -1, -1}, star = -1; /* -1: not listed */
    const char *p = value.base, *end = value.base + value.len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        while (p < stop && (*p == ' ' || *p == '\t')) p++;
        const char *t = p;
        while (p < stop && *p != ';' && *p != ' ' && *p != '\t') p++;
        gw_slice_t tok = {t, (size_t)(p - t)};
        int eq = element_q(p, stop);
        if (eq >= 0) {
            if (gw_slice_ieq(tok, "br")) q[GW_ENC_BR] = eq;
            else if (gw_slice_ieq(tok, "gzip") || gw_slice_ieq(tok, "x-gzip")) q[GW_ENC_GZIP] = eq;
            else if (gw_slice_eq(tok, "*")) star = eq;
        }
        p = comma ? comma + 1 : end;
    }
    gw_encoding_t best = GW_ENC_IDENTITY;
    int best_q = 0;
    const gw_encoding_t order[] = {GW_ENC_BR, GW_ENC_GZIP}; /* preference on equal q */
    for (size_t i = 0; i < 2; i++) {
        gw_encoding_t e = order[i];
        int eq = q[e] >= 0 ? q[e] : star;
        if ((allowed & GW_ENC_BIT(e)) && eq > best_q) {
            best = e;
            best_q = eq;
        }
    }
    return best;
}

/* ---- what to compress ---- */

static bool starts_with(gw_slice_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp(s.base, prefix, n) == 0;
}

bool gw_compressible_type(gw_slice_t ct)
{
    if (starts_with(ct, "text/")) return true; /* the common case, before the parameters are cut off */
    size_t n = 0;
    while (n < ct.len && ct.base[n] != ';' && ct.base[n] != ' ') n++;
    gw_slice_t t = {ct.base, n};
    static const char *const yes[] = {
        "application/json", "application/javascript", "application/x-javascript", "application/xml",
        "application/xhtml+xml", "application/rss+xml", "application/atom+xml", "application/manifest+json",
        "application/ld+json", "application/wasm", "application/x-tar", "application/x-sh",
        "application/graphql", "application/x-www-form-urlencoded", "application/vnd.ms-fontobject",
        "image/svg+xml", "image/x-icon", "image/vnd.microsoft.icon", "image/bmp", "font/ttf", "font/otf",
        "font/collection", "font/sfnt",
    };
    if (starts_with(t, "text/")) return true;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (gw_slice_ieq(t, yes[i])) return true;
    /* structured syntax suffixes (RFC 6839): anything +json / +xml is text */
    return (t.len > 5 && strncasecmp(t.base + t.len - 5, "+json", 5) == 0) ||
           (t.len > 4 && strncasecmp(t.base + t.len - 4, "+xml", 4) == 0);
}

bool gw_no_transform(gw_slice_t cc)
{
    const char *p = cc.base, *end = cc.base + cc.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *t = p;
        while (p < end && *p != ',' && *p != '=' && *p != ' ' && *p != '\t') p++;
        if (gw_slice_ieq((gw_slice_t){t, (size_t)(p - t)}, "no-transform")) return true;
        while (p < end && *p != ',') p++;
    }
    return false;
}

/* ---- header helpers ---- */

void gw_res_set_header(gw_req_t *req, gw_slice_t name, gw_slice_t value)
{
    for (uint32_t i = 0; i < req->res.headers.count; i++) {
        gw_header_t *h = &req->res.headers.items[i];
        if (h->name.len == name.len && strncasecmp(h->name.base, name.base, name.len) == 0) {
            h->value = value;
            return;
        }
    }
    gw_res_add_header(req, name, value);
}

void gw_res_remove_header(gw_req_t *req, const char *name)
{
    gw_headers_t *l = &req->res.headers;
    uint32_t out = 0;
    for (uint32_t i = 0; i < l->count; i++)
        if (!gw_slice_ieq(l->items[i].name, name)) l->items[out++] = l->items[i];
    l->count = out;
}

static bool list_has_token(gw_slice_t v, const char *token)
{
    const char *p = v.base, *end = v.base + v.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *t = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > t && (e[-1] == ' ' || e[-1] == '\t')) e--;
        gw_slice_t tok = {t, (size_t)(e - t)};
        if (gw_slice_ieq(tok, token) || gw_slice_eq(tok, "*")) return true;
    }
    return false;
}

void gw_res_vary(gw_req_t *req, const char *token)
{
    const gw_header_t *v = gw_res_header(req, "vary");
    if (!v) {
        gw_res_add_header(req, GW_SLICE_LIT("vary"), (gw_slice_t){token, strlen(token)});
        return;
    }
    if (list_has_token(v->value, token)) return;
    char *nv = gw_arena_printf(&req->arena, "%.*s, %s", (int)v->value.len, v->value.base, token);
    if (nv) ((gw_header_t *)v)->value = (gw_slice_t){nv, strlen(nv)};
}

gw_slice_t gw_etag_with_suffix(gw_req_t *req, gw_slice_t etag, const char *token)
{
    if (etag.len < 2 || etag.base[etag.len - 1] != '"') return etag;
    size_t tl = strlen(token), n = etag.len - 1 + 1 + tl + 1; /* "tag" -> "tag-token": by hand, no printf */
    char *s = gw_arena_alloc(&req->arena, n + 1);
    if (!s) return etag;
    memcpy(s, etag.base, etag.len - 1);
    s[etag.len - 1] = '-';
    memcpy(s + etag.len, token, tl);
    s[n - 1] = '"';
    s[n] = '\0';
    return (gw_slice_t){s, n};
}

/* ---- the body stream ---- */

typedef struct cstream {
    gw_ostream_t os;
    gw_encoding_t enc;
    bool flush_each; /* a streamed body: each piece goes out at once (sync flush) */
    bool started;
    z_stream z;
    BrotliEncoderState *br;
    char *out;
    size_t cap, used;
} cstream_t;

static bool reserve(cstream_t *c, size_t want)
{
    if (c->cap - c->used >= want) return true;
    size_t cap = c->cap ? c->cap : OUT_INITIAL;
    while (cap - c->used < want) cap *= 2;
    char *n = realloc(c->out, cap);
    if (!n) return false;
    c->out = n;
    c->cap = cap;
    return true;
}

/* Runs deflate on `in` with `flush` until the input is consumed and the output drained. */
static bool run_gzip(cstream_t *c, const char *in, size_t len, int flush)
{
    c->z.next_in = (Bytef *)(uintptr_t)in;
    c->z.avail_in = (uInt)len;
    for (;;) {
        if (!reserve(c, 4096)) return false;
        c->z.next_out = (Bytef *)c->out + c->used;
        c->z.avail_out = (uInt)(c->cap - c->used);
        int rc = deflate(&c->z, flush);
        c->used = c->cap - c->z.avail_out;
        if (rc == Z_STREAM_END) return true;
        if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
        if (c->z.avail_in == 0 && c->z.avail_out != 0 && flush != Z_FINISH) return true;
    }
}

static bool run_brotli(cstream_t *c, const char *in, size_t len, BrotliEncoderOperation op)
{
    size_t avail_in = len;
    const uint8_t *next_in = (const uint8_t *)in;
    for (;;) {
        if (!reserve(c, 4096)) return false;
        size_t avail_out = c->cap - c->used;
        uint8_t *next_out = (uint8_t *)c->out + c->used;
        if (!BrotliEncoderCompressStream(c->br, op, &avail_in, &next_in, &avail_out, &next_out, NULL)) return false;
        c->used = c->cap - avail_out;
        if (BrotliEncoderHasMoreOutput(c->br)) continue;
        if (op == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(c->br) : avail_in == 0) return true;
    }
}

static bool encode(cstream_t *c, const char *in, size_t len, int mode /* 0 process, 1 flush, 2 finish */)
{
    if (c->enc == GW_ENC_GZIP) return run_gzip(c, in, len, mode == 2 ? Z_FINISH : mode == 1 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
    BrotliEncoderOperation op = mode == 2   ? BROTLI_OPERATION_FINISH
                                : mode == 1 ? BROTLI_OPERATION_FLUSH
                                            : BROTLI_OPERATION_PROCESS;
    return run_brotli(c, in, len, op);
}

static void cstream_send(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    cstream_t *c = gw_container_of(self, cstream_t, os);
    if (state == GW_SEND_ERROR) {
        gw_ostream_next(self, req, NULL, 0, GW_SEND_ERROR);
        return;
    }
    c->used = 0; /* what was passed on last time has been written: the producer sent again */
    bool ok = true, had_input = false;
    for (size_t i = 0; ok && i < n; i++)
        if (bufs[i].len) {
            had_input = true;
            ok = encode(c, bufs[i].base, bufs[i].len, 0);
        }
    /* A piece in always gives bytes out: the codecs only ask the producer for more once something
     * was written, so an empty pass-on would stall a file being pumped through us. A sync flush
     * keeps the window (the ratio barely moves) and costs a few bytes per piece. */
    if (ok && state == GW_SEND_FINAL) ok = encode(c, NULL, 0, 2);
    else if (ok && (c->flush_each || req->res.flush_each || (had_input && !c->used))) ok = encode(c, NULL, 0, 1);
    if (!ok) {
        gw_ostream_next(self, req, NULL, 0, GW_SEND_ERROR);
        return;
    }
    gw_slice_t out = {c->out, c->used};
    gw_ostream_next(self, req, &out, out.len ? 1 : 0, state);
}

static void cstream_free(void *arg)
{
    cstream_t *c = arg;
    if (c->enc == GW_ENC_GZIP && c->started) deflateEnd(&c->z);
    if (c->br) BrotliEncoderDestroyInstance(c->br);
    free(c->out);
}

/* Window as small as the body allows (nginx's idea): a 2 KiB file needs no 32 KiB window. */
static int window_bits(int64_t len, int max, int min)
{
    int w = max;
    while (len >= 0 && w > min && ((int64_t)1 << (w - 1)) >= len) w--;
    return w;
}

static bool cstream_init(cstream_t *c, int64_t len)
{
    if (c->enc == GW_ENC_GZIP) {
        int wbits = window_bits(len, 15, 9);
        int mem = wbits - 7 < 1 ? 1 : wbits - 7 > 8 ? 8 : wbits - 7;
        if (deflateInit2(&c->z, GZIP_LEVEL, Z_DEFLATED, wbits + 16, mem, Z_DEFAULT_STRATEGY) != Z_OK) return false;
        c->started = true;
        return true;
    }
    c->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!c->br) return false;
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_QUALITY, BROTLI_QUALITY);
    BrotliEncoderSetParameter(c->br, BROTLI_PARAM_LGWIN, (uint32_t)window_bits(len, len < 0 ? 18 : 22, 10));
    if (len >= 0) BrotliEncoderSetParameter(c->br, BROTLI_PARAM_SIZE_HINT, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len));
    return true;
}

/* ---- the filter ---- */

typedef struct compress_filter {
    gw_filter_t base;
    int64_t min_bytes;
} compress_filter_t;

static bool body_status(int s)
{
    return (s >= 200 && s <= 203) || (s >= 400 && s != 416);
}

/* A 304 for a representation the client holds encoded: give it the encoded tag back. */
static void not_modified(gw_req_t *req)
{
    const gw_header_t *etag = gw_res_header(req, "etag");
    const gw_header_t *inm = gw_req_header(req, "if-none-match");
    const gw_header_t *ae = gw_req_header(req, "accept-encoding");
    if (!etag || !inm || !ae) return;
    gw_encoding_t enc = gw_accept_encoding_pick(ae->value, GW_ENC_BIT(GW_ENC_GZIP) | GW_ENC_BIT(GW_ENC_BR));
    if (!enc) return;
    gw_slice_t tagged = gw_etag_with_suffix(req, etag->value, gw_encoding_token(enc));
    char *z = gw_arena_strndup(&req->arena, tagged.base, tagged.len);
    if (!z || tagged.len == etag->value.len || !gw_etag_match(inm->value, z, true)) return;
    ((gw_header_t *)etag)->value = tagged;
    gw_res_vary(req, "Accept-Encoding");
}

/* The response-side reasons not to compress, before looking at the client. */
/* The first response header of each name eligible() needs, found in one pass over the list. */
typedef struct res_facts {
    const gw_header_t *encoding, *range, *type, *cache_control;
} res_facts_t;

static bool named(const gw_header_t *h, const char *lower, size_t len)
{
    return h->name.len == len && (h->name.base[0] | 0x20) == lower[0] &&
           strncasecmp(h->name.base, lower, len) == 0;
}

static res_facts_t res_facts(const gw_res_t *res)
{
    res_facts_t f = {NULL, NULL, NULL, NULL};
    for (uint32_t i = 0; i < res->headers.count; i++) {
        const gw_header_t *h = &res->headers.items[i];
        const gw_header_t **slot = named(h, "content-type", 12)       ? &f.type
                                   : named(h, "content-range", 13)    ? &f.range
                                   : named(h, "cache-control", 13)    ? &f.cache_control
                                   : named(h, "content-encoding", 16) ? &f.encoding
                                                                      : NULL;
        if (slot && !*slot) *slot = h;
    }
    return f;
}

static bool eligible(const compress_filter_t *f, gw_req_t *req)
{
    const gw_res_t *res = &req->res;
    if (!body_status(res->status)) return false;
    if (res->content_length >= 0 && res->content_length < f->min_bytes) return false;
    res_facts_t h = res_facts(res);
    if (h.encoding || h.range) return false;
    if (!h.type || !gw_compressible_type(h.type->value)) return false;
    return !h.cache_control || !gw_no_transform(h.cache_control->value);
}

static void compress_setup(const gw_filter_t *self, gw_req_t *req)
{
    const compress_filter_t *f = gw_container_of(self, compress_filter_t, base);
    if (req->res.status == 304) {
        not_modified(req);
        return;
    }
    if (!eligible(f, req)) return;
    gw_res_vary(req, "Accept-Encoding");
    const gw_header_t *ae = gw_req_header(req, "accept-encoding");
    const gw_header_t *rcc = gw_req_header(req, "cache-control");
    if (!ae || (rcc && gw_no_transform(rcc->value))) return;
    gw_encoding_t enc = gw_accept_encoding_pick(ae->value, GW_ENC_BIT(GW_ENC_GZIP) | GW_ENC_BIT(GW_ENC_BR));
    if (!enc) return;
    cstream_t *c = NULL;
    if (req->method_id != GW_M_HEAD) {
        c = gw_arena_alloc(&req->arena, sizeof(*c));
        if (!c) return;
        memset(c, 0, sizeof(*c));
        c->enc = enc;
        c->flush_each = req->res.content_length < 0; /* streamed: do not sit on the bytes */
        if (!cstream_init(c, req->res.content_length) || !gw_req_defer(req, cstream_free, c)) {
            cstream_free(c);
            return;
        }
        c->os.send = cstream_send;
    }
    const char *tok = gw_encoding_token(enc);
    gw_res_add_header(req, GW_SLICE_LIT("content-encoding"), (gw_slice_t){tok, strlen(tok)});
    const gw_header_t *etag = gw_res_header(req, "etag");
    if (etag) ((gw_header_t *)etag)->value = gw_etag_with_suffix(req, etag->value, tok);
    gw_res_remove_header(req, "content-length");
    gw_res_remove_header(req, "accept-ranges");
    req->res.content_length = -1;
    if (c) gw_req_push_ostream(req, &c->os);
}

const gw_filter_t *gw_compress_filter_new(const gw_route_t *route, gw_arena_t *arena)
{
    if (!route->enable_compression) return NULL;
    compress_filter_t *f = gw_arena_alloc(arena, sizeof(*f));
    if (!f) return NULL;
    int64_t min = 256;
    gw_node_as_int(gw_route_prop(route, "compressionMinBytes"), &min);
    *f = (compress_filter_t){{"compress", compress_setup}, min};
    return &f->base;
}
