/* Compressed variants of static files kept in the open-file cache. See static_encoded.h. */
#include "static_encoded.h"

#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "config.h"
#include "handler.h"
#include "worker.h"

static bool cached(const gw_file_entry_t *e)
{
    return e->refs != UINT32_MAX; /* an entry of one request only (not in the cache) keeps nothing */
}

bool gw_static_serve_encoded(gw_req_t *req, gw_file_entry_t *e)
{
    if (!cached(e) || !req->route->enable_compression || (!e->encoded[GW_ENC_GZIP] && !e->encoded[GW_ENC_BR]))
        return false;
    const gw_header_t *ae = gw_req_header(req, "accept-encoding");
    const gw_header_t *rcc = gw_req_header(req, "cache-control");
    if (!ae || (rcc && gw_no_transform(rcc->value))) return false;
    /* the compress filter's choice: when it would pick a coding not kept yet, it makes that one */
    gw_encoding_t enc = gw_accept_encoding_pick(ae->value, GW_ENC_BIT(GW_ENC_GZIP) | GW_ENC_BIT(GW_ENC_BR));
    if (!enc || !e->encoded[enc]) return false;
    const char *tok = gw_encoding_token(enc);
    gw_res_remove_header(req, "accept-ranges"); /* as the filter does: no ranges of a coded body */
    gw_res_vary(req, "Accept-Encoding");
    gw_res_add_header(req, GW_SLICE_LIT("content-encoding"), (gw_slice_t){tok, strlen(tok)});
    const gw_header_t *etag = gw_res_header(req, "etag");
    if (etag) ((gw_header_t *)etag)->value = gw_etag_with_suffix(req, etag->value, tok);
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){e->mime, strlen(e->mime)});
    req->res.status = 200;
    req->res.content_length = (int64_t)e->encoded_len[enc];
    gw_start_response(req, NULL);
    gw_slice_t body = {e->encoded[enc], e->encoded_len[enc]}; /* the request holds the entry */
    gw_send(req, &body, 1, GW_SEND_FINAL);
    return true;
}

/* ---- keeping the compress filter's output ---- */

typedef struct keeper {
    gw_ostream_t os;
    gw_file_entry_t *e;
    gw_encoding_t enc;
    char *buf;
    size_t len, cap;
    uint64_t room; /* what the cache can still take: a larger output is not kept */
    bool failed;
} keeper_t;

static void keeper_free(void *arg)
{
    keeper_t *k = arg;
    free(k->buf);
    k->buf = NULL;
}

static void keeper_append(keeper_t *k, gw_slice_t b)
{
    if (k->failed || !b.len) return;
    if (k->len + b.len > k->room) {
        k->failed = true;
        return;
    }
    if (k->len + b.len > k->cap) {
        size_t cap = k->cap ? k->cap : 16384;
        while (cap < k->len + b.len)
            cap *= 2;
        char *n = realloc(k->buf, cap);
        if (!n) {
            k->failed = true;
            return;
        }
        k->buf = n;
        k->cap = cap;
    }
    memcpy(k->buf + k->len, b.base, b.len);
    k->len += b.len;
}

static void keeper_send(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n,
                        gw_send_state_t state)
{
    keeper_t *k = gw_container_of(self, keeper_t, os);
    for (size_t i = 0; i < n; i++)
        keeper_append(k, bufs[i]);
    if (state == GW_SEND_FINAL && !k->failed && k->len &&
        gw_file_cache_keep_encoded(req->worker->file_cache, k->e, (unsigned)k->enc, k->buf, k->len))
        k->buf = NULL; /* the cache owns it now */
    if (state != GW_SEND_IN_PROGRESS) keeper_free(k);
    gw_ostream_next(self, req, bufs, n, state); /* the request may be gone after this */
}

static gw_encoding_t coding_of(const gw_header_t *ce)
{
    if (!ce) return GW_ENC_IDENTITY;
    if (gw_slice_eq(ce->value, "gzip")) return GW_ENC_GZIP;
    return gw_slice_eq(ce->value, "br") ? GW_ENC_BR : GW_ENC_IDENTITY;
}

void gw_static_keep_encoded(gw_req_t *req, gw_file_entry_t *e)
{
    /* the compress filter took the response: it added the coding and made the length unknown */
    if (!cached(e) || req->method_id != GW_M_GET || req->res.status != 200 || req->res.content_length >= 0)
        return;
    gw_encoding_t enc = coding_of(gw_res_header(req, "content-encoding"));
    uint64_t room = gw_file_cache_encoded_room(req->worker->file_cache);
    if (!enc || e->encoded[enc] || !room) return;
    keeper_t *k = gw_arena_alloc(&req->arena, sizeof(*k));
    if (!k) return;
    *k = (keeper_t){.os.send = keeper_send, .e = e, .enc = enc, .room = room};
    if (!gw_req_defer(req, keeper_free, k)) return;
    gw_req_push_ostream(req, &k->os);
}
