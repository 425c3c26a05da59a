/*
 * HTTP/2 server codec. See http2.h.
 *
 * Flow control: the session runs with no_auto_window_update. The connection window is given back
 * as soon as DATA is read; a stream's window only when its consumer acknowledged the bytes
 * (gw_req_body_proceed -> nghttp2_session_consume_stream), so a slow consumer throttles only its
 * own stream. A stream's unacknowledged body is therefore bounded by its window and lives in one
 * fixed buffer that never moves while the consumer holds a piece of it.
 *
 * Response bodies: the data provider only sizes each DATA frame (NGHTTP2_DATA_FLAG_NO_COPY);
 * write_data then copies the handler's slices (or pread()s its file) straight into the output
 * buffer behind the frame header. With nothing queued it returns NGHTTP2_ERR_DEFERRED and gw_send
 * resumes it. A generator's proceed() runs from the flush loop once its data went into frames,
 * never from inside an nghttp2 callback.
 *
 * Memory: nghttp2 allocates from the worker's sized block pools (streams, frames, HPACK entries),
 * and response header names come from a fixed table (http2_names.h) or the stream's arena, so
 * nghttp2 keeps pointers to them instead of copying and lower-casing each one.
 */
#include "http2.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "config.h"
#include "config_props.h"
#include "errors.h"
#include "extended_connect.h"
#include "handler.h"
#include "http2_names.h"
#include "log.h"
#include "put.h"
#include "tls.h"
#include "worker.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define PREFACE_LEN 24
#define MAX_PROCEED_ROUNDS 64 /* producers that send nothing: stop, their flag stays set */
#define FRAME_HEAD 9          /* bytes of an HTTP/2 frame header (RFC 9113 4.1) */
#define MIN_DATA_FRAME 1024   /* less room left in obuf: the next DATA frame waits for an empty one */

typedef struct gw_h2_worker {
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry settings[6];
    size_t num_settings;
    uint32_t window; /* our initial stream window: what a client may send before we consume */
    uint32_t max_header_list;
    bool enabled;
    struct h2_conn *flush_head; /* connections with output to write this iteration */
    gw_sized_pool_t blocks;     /* nghttp2's streams, frames and HPACK entries: no malloc per stream */
    nghttp2_mem mem;
} h2_worker_t;

typedef struct h2_stream h2_stream_t;

typedef struct h2_conn {
    gw_conn_t c;
    nghttp2_session *ng;
    h2_worker_t *hw;
    char *obuf;
    size_t olen, ooff, ocap;
    const uint8_t *pend; /* mem_send output not yet copied into obuf (valid until the next call) */
    size_t pend_len;
    h2_stream_t *streams;
    h2_stream_t *last_found; /* stream_of's memory */
    uint32_t num_streams;
    int32_t max_client_id;    /* highest stream id the client opened with HEADERS */
    int32_t skip_lo, skip_hi; /* the latest run of ids it skipped: never opened, never to be */
    struct h2_conn *next_flush, **prev_flush;
    bool writing;   /* EPOLLOUT armed */
    bool in_flush;  /* flush() is on the stack */
    bool goaway;    /* a GOAWAY was submitted: close once the streams are done */
    bool closing;   /* close once the output is written */
} h2_conn_t;

struct h2_stream {
    gw_req_t req;
    h2_conn_t *hc;
    int32_t id;
    h2_stream_t *next, **pprev;
    /* request head being received */
    gw_headers_t hdrs;
    gw_slice_t method, path, authority, host, protocol;
    gw_slice_t content_length, expect; /* noted as they arrive: no search of the list later */
    size_t header_bytes;
    int refuse; /* 431 when the head is too large */
    bool dispatched, finishing;
    /* response */
    bool head_sent, no_body, deferred, proceed_pending;
    gw_send_state_t state;
    gw_slice_t *bufs;
    size_t nbufs, cap_bufs, buf_idx, buf_off;
    size_t queued; /* bytes of bufs not yet written into a frame */
    int file_fd;
    uint64_t file_off, file_left;
    /* request body */
    char *body;
    size_t body_len, body_cap, delivered;
    bool body_eof, body_busy, body_end_sent, continue_sent;
    bool body_dropped; /* nobody reads the rest: DATA is consumed as it arrives */
};

static void schedule_flush(h2_conn_t *hc);
static void flush(h2_conn_t *hc);
static void close_conn(h2_conn_t *hc);

/* ---- per-worker state ---- */

static uint32_t setting(const gw_node_t *map, const char *name, uint32_t def, uint32_t min, uint32_t max)
{
    int64_t v;
    if (!gw_node_as_int(gw_yaml_map_get(map, name), &v)) return def;
    return v < min ? min : v > max ? max : (uint32_t)v;
}

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *u);
static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *u);
static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *u);
static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *u);
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *u);
static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *u);
static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *u);
static int write_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                      nghttp2_data_source *src, void *u);
static ssize_t data_frame_size(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
                               int32_t stream_window, uint32_t max_frame, void *u);

static void set_limits(nghttp2_option *opt)
{
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000); /* PING / SETTINGS ack floods */
    nghttp2_option_set_max_settings(opt, 32);       /* entries per SETTINGS frame */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
#ifdef GW_HAVE_NGHTTP2_STREAM_RESET_RATE_LIMIT
    nghttp2_option_set_stream_reset_rate_limit(opt, 400, 33); /* rapid reset (CVE-2023-44487) */
#endif
#ifdef GW_HAVE_NGHTTP2_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, 8); /* CONTINUATION floods (CVE-2024-28182) */
#endif
}

#define KEEP_BLOCK_BYTES (256u << 10) /* per size class: enough for a few hundred streams in flight */

static void *ng_malloc(size_t size, void *pool)
{
    return gw_sized_alloc(pool, size);
}

static void ng_free(void *ptr, void *pool)
{
    gw_sized_free(pool, ptr);
}

static void *ng_calloc(size_t n, size_t size, void *pool)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = gw_sized_alloc(pool, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

static void *ng_realloc(void *ptr, size_t size, void *pool)
{
    return gw_sized_realloc(pool, ptr, size);
}

static h2_worker_t *h2_worker(gw_worker_t *w)
{
    if (w->h2) return w->h2;
    h2_worker_t *hw = calloc(1, sizeof(*hw));
    if (!hw) return NULL;
    const gw_node_t *root = w->cfg->doc.root, *g = root ? gw_yaml_map_get(root, "global") : NULL;
    hw->enabled = true;
    if (g && gw_yaml_map_get(g, "enableHTTP2")) gw_node_as_bool(gw_yaml_map_get(g, "enableHTTP2"), &hw->enabled);
    const gw_node_t *s = g ? gw_yaml_map_get(g, "http2Settings") : NULL;
    hw->window = setting(s, "initialWindowSize", 65535, 0, 2147483647);
    hw->max_header_list = setting(s, "maxHeaderListSize", w->cfg->limits.max_head_bytes, 1024, 16u << 20);
    nghttp2_settings_entry *e = hw->settings;
    e[hw->num_settings++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
                                                     setting(s, "maxConcurrentStreams", 100, 1, 10000)};
    e[hw->num_settings++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, hw->window};
    e[hw->num_settings++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE,
                                                     setting(s, "maxFrameSize", 16384, 16384, 16777215)};
    e[hw->num_settings++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, hw->max_header_list};
    bool b = false;
    if (s && gw_node_as_bool(gw_yaml_map_get(s, "enableConnectProtocol"), &b) && b)
        e[hw->num_settings++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
    if (nghttp2_session_callbacks_new(&hw->cbs) != 0 || nghttp2_option_new(&hw->opt) != 0) {
        if (hw->cbs) nghttp2_session_callbacks_del(hw->cbs);
        free(hw);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_frame_callback(hw->cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(hw->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(hw->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(hw->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(hw->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(hw->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(hw->cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(hw->cbs, write_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(hw->cbs, data_frame_size);
    set_limits(hw->opt);
    gw_sized_pool_init(&hw->blocks, KEEP_BLOCK_BYTES);
    hw->mem = (nghttp2_mem){&hw->blocks, ng_malloc, ng_free, ng_calloc, ng_realloc};
    w->h2 = hw;
    return hw;
}

void gw_h2_worker_free(gw_worker_t *w)
{
    h2_worker_t *hw = w->h2;
    if (!hw) return;
    nghttp2_session_callbacks_del(hw->cbs);
    nghttp2_option_del(hw->opt);
    gw_sized_pool_clear(&hw->blocks);
    free(hw);
    w->h2 = NULL;
}

/* ---- response stream ---- */

/* Flags for a name and value that live at least as long as the stream (string literals, the
 * stream's arena, the config it holds, the worker): nghttp2 keeps pointers instead of copies. A
 * handler's own values are copied, as they need only live until gw_send (as on HTTP/1.1). */
#define NV_KEEP_NAME NGHTTP2_NV_FLAG_NO_COPY_NAME
#define NV_KEEP_BOTH (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

static nghttp2_nv nv(const char *n, size_t nl, const char *v, size_t vl, uint8_t flags)
{
    return (nghttp2_nv){(uint8_t *)n, (uint8_t *)v, nl, vl, flags};
}

/* The name as HTTP/2 needs it: itself when already lower-case (what handlers add), else a
 * lower-cased copy in the arena; NULL when out of memory. */
static const char *lower_name(gw_arena_t *a, gw_slice_t name)
{
    size_t j = 0;
    while (j < name.len && !(name.base[j] >= 'A' && name.base[j] <= 'Z')) j++;
    if (j == name.len) return name.base;
    char *low = gw_arena_strndup(a, name.base, name.len);
    if (!low) return NULL;
    for (; j < name.len; j++)
        if (low[j] >= 'A' && low[j] <= 'Z') low[j] = (char)(low[j] + 32);
    return low;
}

/* Builds an nv list from a header list: names lower-cased, connection-specific fields dropped. A
 * well-known name is the table's string, another one lower-cased here is in the arena: both are
 * kept by pointer. *has_date (when given) tells whether the list has a Date. */
static size_t add_headers(gw_arena_t *a, nghttp2_nv *out, const gw_headers_t *h, bool skip_length,
                          bool *has_date)
{
    size_t n = 0;
    for (uint32_t i = 0; i < h->count; i++) {
        gw_slice_t name = h->items[i].name;
        const char *low = NULL;
        gw_h2_name_kind_t kind = gw_h2_name_lookup(name, &low);
        if (!name.len || kind == GW_H2_NAME_HOP || (skip_length && kind == GW_H2_NAME_LENGTH)) continue;
        if (kind == GW_H2_NAME_OTHER && !(low = lower_name(a, name))) continue;
        if (has_date && kind == GW_H2_NAME_DATE) *has_date = true;
        uint8_t flags = kind != GW_H2_NAME_OTHER || low != name.base ? NV_KEEP_NAME : NGHTTP2_NV_FLAG_NONE;
        out[n++] = nv(low, name.len, h->items[i].value.base, h->items[i].value.len, flags);
    }
    return n;
}

/* Trailers after the last DATA, which then does not end the stream. */
static void submit_trailers(nghttp2_session *ng, h2_stream_t *s, uint32_t *flags)
{
    const gw_headers_t *t = &s->req.res.trailers;
    if (!t->count) return;
    nghttp2_nv *tv = gw_arena_alloc(&s->req.arena, t->count * sizeof(*tv));
    size_t tn = tv ? add_headers(&s->req.arena, tv, t, false, NULL) : 0;
    if (tn && nghttp2_submit_trailer(ng, s->id, tv, tn) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
}

/*
 * Sizes the next DATA frame; its bytes are written by write_data straight into the output buffer
 * (NGHTTP2_DATA_FLAG_NO_COPY: no copy through nghttp2's frame buffer). Nothing moves here, so the
 * handler's slices stay where they are until they are written.
 */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *u)
{
    h2_stream_t *s = src->ptr;
    uint64_t avail = s->queued + s->file_left;
    size_t n = avail < length ? (size_t)avail : length;
    if (n < avail) {
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        return (ssize_t)n;
    }
    if (s->state == GW_SEND_FINAL) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_COPY;
        submit_trailers(ng, s, flags);
        return (ssize_t)n;
    }
    if (s->state == GW_SEND_ERROR && !n) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (n) {
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY; /* write_data lets the producer go on once it is written */
        return (ssize_t)n;
    }
    s->proceed_pending = true; /* everything given so far is in frames: the producer may go on */
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
}

/* Copies `len` bytes of the queued slices, then of the file, to `out`; false when the file shrank. */
static bool take_body(h2_stream_t *s, uint8_t *out, size_t len)
{
    while (len && s->buf_idx < s->nbufs) {
        const gw_slice_t *b = &s->bufs[s->buf_idx];
        size_t take = b->len - s->buf_off < len ? b->len - s->buf_off : len;
        memcpy(out, b->base + s->buf_off, take);
        out += take;
        len -= take;
        s->queued -= take;
        s->buf_off += take;
        if (s->buf_off == b->len) {
            s->buf_idx++;
            s->buf_off = 0;
        }
    }
    while (len) {
        ssize_t r = pread(s->file_fd, out, len, (off_t)s->file_off);
        if (r <= 0) return false; /* the file shrank: reset, never a clean end */
        out += r;
        len -= (size_t)r;
        s->file_off += (uint64_t)r;
        s->file_left -= (uint64_t)r;
    }
    return true;
}

/* nghttp2's send_data_callback: a DATA frame sized by read_body, written into obuf whole (no padding
 * is ever asked for), or later when obuf has no room for it yet. */
static int write_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                      nghttp2_data_source *src, void *u)
{
    h2_conn_t *hc = u;
    h2_stream_t *s = src->ptr;
    /* a producer that failed may have released the slices it had given */
    if (s->state == GW_SEND_ERROR) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (hc->ocap - hc->olen < FRAME_HEAD + length) return NGHTTP2_ERR_WOULDBLOCK;
    uint8_t *out = (uint8_t *)hc->obuf + hc->olen;
    memcpy(out, framehd, FRAME_HEAD);
    if (!take_body(s, out + FRAME_HEAD, length)) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    hc->olen += FRAME_HEAD + length;
    if (!s->queued && !s->file_left && s->state == GW_SEND_IN_PROGRESS) s->proceed_pending = true;
    return 0;
}

/* DATA frames as large as what is left of obuf, so that write_data finds room; a frame for an
 * almost full obuf waits for the next one rather than being cut small. */
static ssize_t data_frame_size(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
                               int32_t stream_window, uint32_t max_frame, void *u)
{
    h2_conn_t *hc = u;
    size_t room = hc->ocap - hc->olen;
    size_t size = room >= MIN_DATA_FRAME + FRAME_HEAD ? room : hc->ocap;
    size -= FRAME_HEAD;
    return (ssize_t)(size < max_frame ? size : max_frame);
}

static bool submit_head(h2_stream_t *s)
{
    gw_req_t *req = &s->req;
    if (s->protocol.len) gw_extended_connect_response(req);
    int st = req->res.status ? req->res.status : 200;
    s->no_body = st == 204 || st == 304 || req->method_id == GW_M_HEAD;
    nghttp2_nv *v = gw_arena_alloc(&req->arena, (req->res.headers.count + 4) * sizeof(*v));
    char *status = gw_arena_alloc(&req->arena, 48); /* status and length by hand: no printf per response */
    char *cl = NULL;
    size_t cl_len = 0;
    if (status) {
        status[0] = (char)('0' + st / 100 % 10);
        status[1] = (char)('0' + st / 10 % 10);
        status[2] = (char)('0' + st % 10);
        status[3] = '\0';
        if (req->res.content_length >= 0 && st != 204 && st != 304) {
            cl = status + 4;
            char *end = gw_put_u64(cl, (uint64_t)req->res.content_length);
            *end = '\0';
            cl_len = (size_t)(end - cl);
        }
    }
    if (!v || !status) return false;
    size_t n = 0;
    v[n++] = nv(":status", 7, status, 3, NV_KEEP_BOTH);
    bool has_date = false; /* a proxied or cached response keeps its origin's Date, as on HTTP/1.1 */
    n += add_headers(&req->arena, v + n, &req->res.headers, cl != NULL, &has_date); /* our length wins */
    /* the server header is the config's (held by the request) and the date the worker's, rewritten
     * in place once a second: both outlive the stream */
    const char *server = req->route && req->route->server_header ? req->route->server_header : "gateway";
    if (*server) /* serverHeader: "" hides it */
        v[n++] = nv("server", 6, server, strlen(server), NV_KEEP_BOTH);
    const char *date = has_date ? NULL : gw_worker_date(s->hc->c.worker);
    if (date) v[n++] = nv("date", 4, date, strlen(date), NV_KEEP_BOTH);
    if (cl) v[n++] = nv("content-length", 14, cl, cl_len, NV_KEEP_BOTH);
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
    s->head_sent = true;
    return nghttp2_submit_response(s->hc->ng, s->id, v, n, s->no_body ? NULL : &prd) == 0;
}

/* Common part of send/send_file: the head, the state, waking the provider. */
static void after_queue(h2_stream_t *s, gw_send_state_t state)
{
    h2_conn_t *hc = s->hc;
    s->state = state;
    if (!s->head_sent && state != GW_SEND_ERROR && !submit_head(s)) state = s->state = GW_SEND_ERROR;
    if (state == GW_SEND_ERROR && s->head_sent && (s->req.method_id == GW_M_CONNECT || s->protocol.len)) {
        /* the tunnel's connection was reset or failed (RFC 9113 8.5) */
        nghttp2_submit_rst_stream(hc->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CONNECT_ERROR);
    } else if (state == GW_SEND_ERROR && (!s->head_sent || s->no_body)) {
        nghttp2_submit_rst_stream(hc->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    } else if (s->no_body) {
        s->nbufs = s->buf_idx = s->queued = 0;
        s->file_left = 0;
        if (state == GW_SEND_IN_PROGRESS) s->proceed_pending = true;
    } else if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(hc->ng, s->id);
    }
    schedule_flush(hc);
}

static void h2_send(gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    h2_stream_t *s = (h2_stream_t *)req;
    if (s->finishing) return;
    if (s->buf_idx == s->nbufs) s->nbufs = s->buf_idx = s->buf_off = 0;
    if (s->nbufs + n > s->cap_bufs) {
        size_t cap = (s->nbufs + n) * 2;
        gw_slice_t *nb = gw_arena_alloc(&req->arena, cap * sizeof(*nb));
        if (!nb) {
            after_queue(s, GW_SEND_ERROR);
            return;
        }
        if (s->nbufs) memcpy(nb, s->bufs, s->nbufs * sizeof(*nb));
        s->bufs = nb;
        s->cap_bufs = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (!bufs[i].len) continue;
        s->bufs[s->nbufs++] = bufs[i];
        s->queued += bufs[i].len;
        req->bytes_sent += bufs[i].len;
    }
    after_queue(s, state);
}

static void h2_send_file(gw_req_t *req, int fd, uint64_t off, uint64_t len, gw_send_state_t state)
{
    h2_stream_t *s = (h2_stream_t *)req;
    if (s->finishing) return;
    s->file_fd = fd;
    s->file_off = off;
    s->file_left = len;
    req->bytes_sent += len;
    after_queue(s, state);
}

static void h2_send_informational(gw_req_t *req, int status, const gw_header_t *h, size_t n)
{
    h2_stream_t *s = (h2_stream_t *)req;
    if (s->finishing || s->head_sent || status < 100 || status > 199) return;
    nghttp2_nv *v = gw_arena_alloc(&req->arena, (n + 1) * sizeof(*v));
    char *st = gw_arena_printf(&req->arena, "%d", status);
    if (!v || !st) return;
    v[0] = nv(":status", 7, st, 3, NV_KEEP_BOTH);
    gw_headers_t list = {(gw_header_t *)h, (uint32_t)n, (uint32_t)n};
    size_t c = 1 + add_headers(&req->arena, v + 1, &list, false, NULL);
    nghttp2_submit_headers(s->hc->ng, NGHTTP2_FLAG_NONE, s->id, NULL, v, c, NULL);
    schedule_flush(s->hc);
}

/* ---- request body ---- */

static void body_deliver(h2_stream_t *s)
{
    gw_req_t *req = &s->req;
    if (!req->body_cb || s->body_busy || s->body_end_sent || s->finishing) return;
    if (!s->body_len && !s->body_eof) return;
    s->body_busy = true;
    s->delivered = s->body_len;
    if (s->body_eof) s->body_end_sent = true;
    req->body_cb(req, req->body_ctx, (gw_slice_t){s->body, s->body_len}, s->body_eof ? GW_BODY_END : GW_BODY_MORE);
}

static void h2_body_resume(gw_req_t *req)
{
    h2_stream_t *s = (h2_stream_t *)req;
    if (s->finishing) return;
    if (!s->continue_sent) {
        s->continue_sent = true;
        if (req->expect_continue && !s->body_eof && !s->head_sent) gw_send_informational(req, 100, NULL, 0);
    }
    if (s->body_busy) {
        size_t d = s->delivered;
        memmove(s->body, s->body + d, s->body_len - d);
        s->body_len -= d;
        s->delivered = 0;
        s->body_busy = false;
        if (d && !s->body_end_sent) {
            nghttp2_session_consume_stream(s->hc->ng, s->id, d); /* the client may send this much more */
            schedule_flush(s->hc);
        }
    }
    body_deliver(s);
}

/* The errorConfig re-run reads an empty body instead (request.c): what is buffered and what still
 * arrives gives its window back at once, so the client is never left blocked on flow control. */
static void h2_body_discard(gw_req_t *req)
{
    h2_stream_t *s = (h2_stream_t *)req;
    s->body_dropped = true;
    if (s->body_len && !s->body_eof && !s->finishing) {
        nghttp2_session_consume_stream(s->hc->ng, s->id, s->body_len);
        schedule_flush(s->hc);
    }
    s->body_len = s->delivered = 0;
    s->body_busy = false;
}

static const gw_codec_ops_t h2_ops = {"HTTP/2.0", h2_send, h2_send_file, h2_send_informational,
                                      h2_body_resume, h2_body_discard};

/* ---- streams ---- */

static h2_stream_t *new_stream(h2_conn_t *hc, int32_t id)
{
    gw_worker_t *w = hc->c.worker;
    gw_arena_t arena;
    gw_arena_init(&arena, &w->io_pool);
    h2_stream_t *s = gw_arena_alloc(&arena, sizeof(*s));
    if (!s) return NULL;
    memset(s, 0, sizeof(*s));
    s->req.arena = arena;
    s->req.codec = &h2_ops;
    s->req.conn = &hc->c.info;
    s->req.worker = w;
    gw_worker_attach_cfg(w, &s->req); /* req.cfg, counted until gw_req_dispose */
    s->req.version = 20;
    s->req.res.content_length = -1;
    s->req.start_ms = gw_loop_now(w->loop);
    s->hc = hc;
    s->id = id;
    s->file_fd = -1;
    s->next = hc->streams;
    if (hc->streams) hc->streams->pprev = &s->next;
    s->pprev = &hc->streams;
    hc->streams = s;
    hc->num_streams++;
    return s;
}

/* The stream is over (closed by the protocol or with the connection): log, dispose, free. */
static void finish_stream(h2_stream_t *s)
{
    h2_conn_t *hc = s->hc;
    gw_req_t *req = &s->req;
    gw_worker_t *w = hc->c.worker;
    s->finishing = true;
    if (req->body_cb && !s->body_end_sent) {
        s->body_end_sent = true;
        req->body_cb(req, req->body_ctx, (gw_slice_t){NULL, 0}, GW_BODY_ABORT);
    }
    if (s->dispatched) {
        if (!req->res_done && req->res.status == 0) req->res.status = 499;
        gw_log_access(w->access_log, req, gw_loop_wall(w->loop));
    }
    gw_req_dispose(req);
    free(s->body);
    if (s->next) s->next->pprev = s->pprev;
    *s->pprev = s->next;
    hc->num_streams--;
    if (hc->last_found == s) hc->last_found = NULL;
    /* the stream's user data is not cleared: nghttp2 returns none for a closed stream (we are in its
     * on_stream_close), and close_conn deletes the session right after */
    gw_arena_t arena = req->arena;
    gw_arena_reset(&arena); /* s is gone from here on */
}

static void lower_into(gw_req_t *req, gw_slice_t in)
{
    const char *low = in.len ? lower_name(&req->arena, in) : "";
    if (low) req->authority = (gw_slice_t){low, in.len};
}

static bool parse_length(gw_slice_t v, uint64_t *out)
{
    uint64_t n = 0;
    if (!v.len || v.len > 18) return false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9') return false;
        n = n * 10 + (uint64_t)(v.base[i] - '0');
    }
    *out = n;
    return true;
}

static void start_request(h2_stream_t *s, bool end_stream)
{
    gw_req_t *req = &s->req;
    h2_conn_t *hc = s->hc;
    s->dispatched = true;
    s->body_eof = end_stream;
    req->method = s->method;
    req->method_id = gw_method_intern(s->method);
    req->target = req->method_id == GW_M_CONNECT && !s->path.len ? s->authority : s->path;
    if (s->protocol.len && !s->refuse) s->refuse = gw_extended_connect_as_upgrade(req, &s->hdrs, s->protocol);
    req->headers = s->hdrs.items;
    req->num_headers = s->hdrs.count;
    lower_into(req, s->authority.len ? s->authority : s->host);
    req->expect_continue = s->expect.base && gw_slice_ieq(s->expect, "100-continue");
    if (end_stream || s->protocol.len) {
        req->body_kind = GW_BODY_NONE; /* an extended CONNECT's DATA are its tunnel's, after the 2xx */
    } else if (s->content_length.base && parse_length(s->content_length, &req->content_length)) {
        req->body_kind = GW_BODY_LENGTH; /* nghttp2 checks that the DATA adds up to it */
    } else {
        req->body_kind = GW_BODY_CHUNKED; /* length unknown until END_STREAM */
    }
    req->client_ip = hc->c.info.peer.sin6_addr; /* for the log when answered before dispatch */
    /* a CONNECT's :authority names the tunnel's destination, not this server (RFC 9113 8.5) */
    const char *sni = req->method_id == GW_M_CONNECT && !s->path.len ? NULL : gw_tls_sni_entry(&hc->c);
    if (s->refuse || (sni && !gw_tls_host_matches(sni, req->authority))) {
        req->route = &hc->c.worker->cfg->global_route;
        if (!req->target.len) req->target = GW_SLICE_LIT("-");
        gw_send_error(req, s->refuse ? s->refuse : 421); /* 421: another certificate serves that name */
        return;
    }
    gw_req_dispatch(req);
}

/* ---- nghttp2 callbacks ---- */

/* The stream with this id, or NULL. The last one found is remembered: a request's HEADERS, each of
 * its header fields and its DATA come one after the other, and nghttp2's lookup is a hash map. */
static h2_stream_t *stream_of(h2_conn_t *hc, int32_t id)
{
    if (hc->last_found && hc->last_found->id == id) return hc->last_found;
    h2_stream_t *s = nghttp2_session_get_stream_user_data(hc->ng, id);
    if (s) hc->last_found = s;
    return s;
}

/*
 * RFC 9113 5.1.1: opening a stream closes every lower idle id, so a HEADERS on an id the client
 * skipped is a connection error. nghttp2 cannot tell such an id from a stream that was opened and
 * has since been forgotten (where a late trailer must be ignored), and ignores both; we remember
 * the latest skipped run (clients that count up by two have none) and refuse HEADERS inside it.
 */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *u)
{
    h2_conn_t *hc = u;
    int32_t id = hd->stream_id;
    if (hd->type != NGHTTP2_HEADERS || !(id & 1)) return 0; /* even ids: nghttp2 refuses them */
    if (id > hc->max_client_id) {
        int32_t first_unused = hc->max_client_id ? hc->max_client_id + 2 : 1; /* max < id: no overflow */
        if (id > first_unused) {
            hc->skip_lo = first_unused;
            hc->skip_hi = id - 2;
        }
        hc->max_client_id = id;
        return 0;
    }
    /* a failed callback ends the session: feed() answers GOAWAY PROTOCOL_ERROR */
    return id >= hc->skip_lo && id <= hc->skip_hi ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    h2_conn_t *hc = u;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    h2_stream_t *s = new_stream(hc, f->hd.stream_id);
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* no memory: reset this stream */
    nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s);
    hc->last_found = s;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
    h2_stream_t *s = stream_of(u, f->hd.stream_id);
    if (!s || s->dispatched) return 0; /* trailers of a request are not used */
    s->header_bytes += namelen + valuelen + 32;
    const gw_limits_t *l = &s->hc->c.worker->cfg->limits;
    if (s->header_bytes > s->hc->hw->max_header_list || s->hdrs.count >= l->max_headers) s->refuse = 431;
    if (s->refuse) return 0;
    /* nghttp2 reuses its buffers: one copy of the value, with a regular field's name beside it (a
     * pseudo-header's name is not kept) */
    bool pseudo = namelen && name[0] == ':';
    size_t name_room = pseudo ? 0 : namelen + 1;
    gw_arena_t *a = &s->req.arena;
    char *copy = gw_arena_alloc(a, name_room + valuelen + 1);
    if (!copy) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!pseudo) {
        memcpy(copy, name, namelen);
        copy[namelen] = '\0';
    }
    memcpy(copy + name_room, value, valuelen);
    copy[name_room + valuelen] = '\0';
    gw_slice_t n = {pseudo ? (const char *)name : copy, namelen}, v = {copy + name_room, valuelen};
    if (pseudo) {
        if (gw_slice_eq(n, ":method")) s->method = v;
        else if (gw_slice_eq(n, ":path")) s->path = v;
        else if (gw_slice_eq(n, ":authority")) s->authority = v;
        else if (gw_slice_eq(n, ":protocol")) s->protocol = v;
        return 0; /* :scheme: the connection says whether it is TLS */
    }
    /* names arrive lower-case (nghttp2 refuses others); the first Expect counts, as gw_req_header's */
    if (gw_slice_eq(n, "host")) s->host = v;
    else if (gw_slice_eq(n, "content-length")) s->content_length = v;
    else if (gw_slice_eq(n, "expect") && !s->expect.base) s->expect = v;
    if (!gw_headers_add(a, &s->hdrs, n, v)) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    h2_stream_t *s = f->hd.stream_id ? stream_of(u, f->hd.stream_id) : NULL;
    if (!s) return 0;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        start_request(s, end);
        return 0;
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && end && s->dispatched) {
        s->body_eof = true;
        body_deliver(s);
    }
    return 0;
}

/* True when the client may send the whole declared body without more window, and no consumer
 * (which might be gone with its response) would be called with it. */
static bool rest_within_window(nghttp2_session *ng, const h2_stream_t *s)
{
    int32_t window = nghttp2_session_get_stream_local_window_size(ng, s->id);
    return !s->req.body_cb && s->req.body_kind == GW_BODY_LENGTH && window >= 0 &&
           s->req.content_length <= (uint64_t)window;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *u)
{
    h2_conn_t *hc = u;
    if (f->hd.type == NGHTTP2_GOAWAY) hc->goaway = true;
    if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) || !f->hd.stream_id) return 0;
    h2_stream_t *s = stream_of(u, f->hd.stream_id);
    if (!s || s->body_eof) return 0;
    /* The response is complete but the client is still sending a body nobody will read. A rest the
     * window already lets in costs nothing more: it is dropped as it comes, and nghttp2 still checks
     * it against content-length (a client writes DATA after HEADERS, h2spec 8.1.2.6 too). A longer
     * one is stopped: RST_STREAM NO_ERROR (RFC 9113 8.1). */
    if (rest_within_window(ng, s))
        s->body_dropped = true;
    else
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *u)
{
    nghttp2_session_consume_connection(ng, len); /* the connection window comes back at once */
    h2_stream_t *s = stream_of(u, id);
    if (!s || s->body_end_sent || s->body_dropped) {
        nghttp2_session_consume_stream(ng, id, len);
        return 0;
    }
    if (!s->body) {
        s->body_cap = (s->hc->hw->window > 65535 ? s->hc->hw->window : 65535) + 16384;
        s->body = malloc(s->body_cap);
        if (!s->body) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->body_len + len > s->body_cap) { /* more than the window we gave: a broken peer */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
        return 0;
    }
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
    body_deliver(s);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *u)
{
    h2_stream_t *s = stream_of(u, id);
    if (s) finish_stream(s);
    return 0;
}

/* ---- connection I/O ---- */

static void arm_write(h2_conn_t *hc, bool on)
{
    hc->writing = on;
    /* a connection that is closing reads nothing more: it only writes its GOAWAY */
    gw_io_modify(&hc->c.io, (hc->closing ? 0 : EPOLLIN | EPOLLRDHUP) | (on ? EPOLLOUT : 0));
}

static void update_timer(h2_conn_t *hc)
{
    const gw_limits_t *l = &hc->c.worker->cfg->limits;
    if (hc->writing)
        gw_timer_set(hc->c.worker->loop, &hc->c.timer, l->send_timeout_ms);
    else if (!hc->num_streams)
        gw_timer_set(hc->c.worker->loop, &hc->c.timer, hc->goaway ? 1000 : l->keepalive_timeout_ms);
    else if (l->request_timeout_ms) /* streams that make no progress at all (e.g. a head never ended) */
        gw_timer_set(hc->c.worker->loop, &hc->c.timer, l->request_timeout_ms);
    else
        gw_timer_cancel(&hc->c.timer);
}

static void schedule_flush(h2_conn_t *hc)
{
    if (hc->prev_flush || hc->in_flush) return;
    h2_worker_t *hw = hc->hw;
    hc->next_flush = hw->flush_head;
    if (hw->flush_head) hw->flush_head->prev_flush = &hc->next_flush;
    hc->prev_flush = &hw->flush_head;
    hw->flush_head = hc;
}

static void unschedule_flush(h2_conn_t *hc)
{
    if (!hc->prev_flush) return;
    if (hc->next_flush) hc->next_flush->prev_flush = hc->prev_flush;
    *hc->prev_flush = hc->next_flush;
    hc->next_flush = NULL;
    hc->prev_flush = NULL;
}

/* Copies session output into obuf; returns false on a session error. */
static bool fill_obuf(h2_conn_t *hc)
{
    if (!hc->obuf) {
        hc->obuf = gw_chunk_get(&hc->c.worker->io_pool);
        hc->ocap = hc->c.worker->io_pool.chunk_size;
        if (!hc->obuf) return false;
    }
    while (hc->olen < hc->ocap) {
        if (!hc->pend_len) {
            ssize_t n = nghttp2_session_mem_send(hc->ng, &hc->pend);
            if (n < 0) return false;
            if (n == 0) break;
            hc->pend_len = (size_t)n;
        }
        size_t take = hc->pend_len < hc->ocap - hc->olen ? hc->pend_len : hc->ocap - hc->olen;
        memcpy(hc->obuf + hc->olen, hc->pend, take);
        hc->olen += take;
        hc->pend += take;
        hc->pend_len -= take;
    }
    return true;
}

/* Lets producers whose data all went into frames go on; true when any ran. */
static bool run_proceeds(h2_conn_t *hc)
{
    bool ran = false;
    for (h2_stream_t *s = hc->streams; s; s = s->next) {
        if (!s->proceed_pending) continue;
        s->proceed_pending = false;
        /* the codec's own state: res_done is already set while a file is pumped through filters */
        if (s->req.gen && s->req.gen->proceed && s->state == GW_SEND_IN_PROGRESS) {
            ran = true;
            s->req.gen->proceed(s->req.gen, &s->req);
        }
    }
    return ran;
}

/* Returns 1 when all output is written, 0 when the socket is full, -1 on error. */
static int write_out(h2_conn_t *hc)
{
    while (hc->ooff < hc->olen) {
        struct iovec iov = {hc->obuf + hc->ooff, hc->olen - hc->ooff};
        ssize_t w = hc->c.xprt->writev(&hc->c, &iov, 1, false);
        if (w == -EAGAIN) return 0;
        if (w <= 0) return -1;
        hc->ooff += (size_t)w;
    }
    hc->olen = hc->ooff = 0;
    return 1;
}

static void flush(h2_conn_t *hc)
{
    if (hc->in_flush) return;
    unschedule_flush(hc);
    hc->in_flush = true;
    int rc = 1, rounds = 0;
    for (;;) { /* ends when the socket is full or nobody has anything more to send */
        rc = write_out(hc);
        if (rc <= 0) break;
        if (!fill_obuf(hc)) {
            rc = -1;
            break;
        }
        if (hc->olen) continue;
        if (++rounds > MAX_PROCEED_ROUNDS || !run_proceeds(hc)) break;
    }
    hc->in_flush = false;
    if (rc < 0) {
        close_conn(hc);
        return;
    }
    arm_write(hc, rc == 0);
    if (rc == 1 && !hc->olen && hc->obuf) {
        gw_chunk_put(&hc->c.worker->io_pool, hc->obuf); /* an idle connection holds no buffer */
        hc->obuf = NULL;
    }
    bool done = !nghttp2_session_want_read(hc->ng) && !nghttp2_session_want_write(hc->ng);
    if (rc == 1 && !hc->olen && (done || hc->closing || (hc->goaway && !hc->num_streams))) {
        close_conn(hc);
        return;
    }
    update_timer(hc);
}

/* Feeds input to the session; on a protocol error the session queues GOAWAY and we close after. */
static void feed(h2_conn_t *hc, const uint8_t *data, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(hc->ng, data, len);
    if (rv >= 0) return;
    uint32_t code = rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;
    nghttp2_session_terminate_session(hc->ng, code); /* no-op when nghttp2 already did it */
    hc->closing = true;
}

static void read_input(h2_conn_t *hc)
{
    gw_chunk_pool_t *pool = &hc->c.worker->io_pool;
    char *buf = gw_chunk_get(pool);
    if (!buf) {
        close_conn(hc);
        return;
    }
    const gw_transport_ops_t *x = hc->c.xprt;
    for (int i = 0; !hc->closing; i++) {
        bool more = x->pending && x->pending(&hc->c); /* TLS input that epoll cannot report */
        if (i >= 16 && !more) break;
        ssize_t n = x->read(&hc->c, buf, pool->chunk_size);
        if (n == -EAGAIN) break;
        if (n <= 0) {
            gw_chunk_put(pool, buf);
            close_conn(hc); /* the client went away: its streams are cancelled */
            return;
        }
        feed(hc, (const uint8_t *)buf, (size_t)n);
        if ((size_t)n < pool->chunk_size && !(x->pending && x->pending(&hc->c))) break; /* drained */
    }
    gw_chunk_put(pool, buf);
    schedule_flush(hc);
}

static void on_io(gw_io_t *io, uint32_t events)
{
    h2_conn_t *hc = gw_container_of(io, h2_conn_t, c.io);
    if ((events & EPOLLOUT) && hc->writing) {
        flush(hc);
        return; /* the connection may be gone; input is seen on the next wake-up */
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) read_input(hc);
}

static void on_timeout(gw_timer_t *t)
{
    h2_conn_t *hc = gw_container_of(t, h2_conn_t, c.timer);
    if (hc->writing || hc->goaway) {
        close_conn(hc); /* a client that stopped reading, or a GOAWAY it did not answer */
        return;
    }
    nghttp2_submit_goaway(hc->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    hc->goaway = true;
    flush(hc);
}

static void on_drain(gw_conn_t *c)
{
    h2_conn_t *hc = (h2_conn_t *)c;
    gw_worker_set_idle(c->worker, c, false);
    if (!hc->goaway)
        nghttp2_submit_goaway(hc->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(hc->ng),
                              NGHTTP2_NO_ERROR, NULL, 0);
    hc->goaway = true;
    schedule_flush(hc);
}

static void close_conn(h2_conn_t *hc)
{
    gw_worker_t *w = hc->c.worker;
    while (hc->streams) finish_stream(hc->streams);
    nghttp2_session_del(hc->ng);
    hc->ng = NULL;
    unschedule_flush(hc);
    gw_worker_set_idle(w, &hc->c, false);
    gw_worker_untrack(w, &hc->c);
    gw_timer_cancel(&hc->c.timer);
    gw_io_stop(&hc->c.io);
    hc->c.xprt->dispose(&hc->c);
    close(hc->c.io.fd);
    gw_chunk_put(&w->io_pool, hc->obuf);
    free(hc);
    gw_worker_conn_closed(w);
}

/* Forced close at worker exit (the graceful timeout ran out): streams are logged and released. */
static void h2_abort(gw_conn_t *c)
{
    close_conn((h2_conn_t *)c);
}

/* ---- public ---- */

int gw_h2_detect(const gw_conn_t *c, const char *buf, size_t len)
{
    h2_worker_t *hw = h2_worker(c->worker);
    if (!hw || !hw->enabled) return 0;
    if (gw_tls_alpn_h2(c)) return 1;
    size_t n = len < PREFACE_LEN ? len : PREFACE_LEN;
    if (memcmp(buf, preface, n) != 0) return 0;
    return len >= PREFACE_LEN ? 1 : -1;
}

void gw_h2_takeover(const gw_conn_t *from, const char *buf, size_t len)
{
    gw_worker_t *w = from->worker;
    int fd = from->io.fd;
    h2_conn_t *hc = calloc(1, sizeof(*hc));
    h2_worker_t *hw = h2_worker(w);
    if (!hc || !hw || nghttp2_session_server_new3(&hc->ng, hw->cbs, hc, hw->opt, &hw->mem) != 0) {
        gw_conn_t tmp = *from;
        tmp.xprt->dispose(&tmp);
        close(fd);
        free(hc);
        gw_worker_conn_closed(w);
        return;
    }
    hc->hw = hw;
    hc->c.worker = w;
    hc->c.xprt = from->xprt;
    hc->c.xprt_ctx = from->xprt_ctx;
    hc->c.info = from->info;
    hc->c.drain = on_drain;
    hc->c.abort = h2_abort;
    gw_timer_init(&hc->c.timer, on_timeout);
    /* every HTTP/2 connection stays on the drain list for its whole life: drain sends GOAWAY */
    gw_worker_set_idle(w, &hc->c, true);
    nghttp2_submit_settings(hc->ng, NGHTTP2_FLAG_NONE, hw->settings, hw->num_settings);
    if (hw->window > 65535) /* a larger connection window too, given back as soon as data is read */
        nghttp2_session_set_local_window_size(hc->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)hw->window);
    if (gw_io_start(w->loop, &hc->c.io, fd, EPOLLIN | EPOLLRDHUP, on_io) != 0) {
        nghttp2_session_del(hc->ng);
        gw_worker_set_idle(w, &hc->c, false);
        hc->c.xprt->dispose(&hc->c);
        close(fd);
        free(hc);
        gw_worker_conn_closed(w);
        return;
    }
    gw_worker_track(w, &hc->c); /* closed by h2_abort if still open when the worker exits */
    if (w->draining) on_drain(&hc->c);
    if (len) feed(hc, (const uint8_t *)buf, len);
    flush(hc);
}

void gw_h2_flush_pending(gw_worker_t *w)
{
    h2_worker_t *hw = w->h2;
    while (hw && hw->flush_head) flush(hw->flush_head);
}
