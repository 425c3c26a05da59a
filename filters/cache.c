/* The cache handler and its response filter. See cache.h; rules in cache_policy.c, storage in
 * cache_store.c. */
#include "cache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_background.h"
#include "cache_policy.h"
#include "cache_store.h"
#include "cache_targeted.h"
#include "compress.h"
#include "config_props.h"
#include "http_cond.h"
#include "loop.h"
#include "metrics.h"
#include "worker.h"

#define DEFAULT_MAX_MEMORY (256ull << 20)
#define VARY_BUF 4096
#define CACHE_ID "gateway"

typedef struct cache_route {
    gw_handler_t base;
    gw_slice_t *vary; /* cacheVaryHeaders, lower-case */
    size_t nvary;
    gw_slice_t *ignore; /* cacheIgnoreHeaders */
    size_t nignore;
    int64_t max_body; /* -1: only the memory bound */
    uint64_t max_mem; /* maximumCacheMemory; 0: unbounded */
    gw_slice_t *targeted; /* cacheTargetedHeader, lower-case, in priority order */
    size_t ntargeted;
} cache_route_t;

enum mode { M_NONE, M_LOOKUP, M_INVALIDATE, M_SERVED };

typedef struct gw_cache_req {
    gw_ostream_t store_os;   /* copies the body as it passes */
    gw_ostream_t replace_os; /* drops the backend's body and sends a stored one instead */
    gw_req_t *req;
    const cache_route_t *cr;
    enum mode mode;
    gw_slice_t key;
    uint64_t hash;
    gw_cc_t rcc;
    int64_t request_time;
    const char *fwd;             /* Cache-Status fwd= value */
    const char *detail;          /* Cache-Status detail= of a hit, or NULL */
    gw_cache_entry_t *stale;     /* a stored response being revalidated (or kept for stale-if-error) */
    gw_cache_entry_t *serving;   /* the entry whose body this response sends */
    gw_header_t *orig_headers;   /* the client's headers while ours (conditionals) go to the backend */
    size_t orig_num;
    bool revalidating, leading, waited;
    struct cache_waiter *waiter;
    /* the response being stored */
    gw_cache_entry_spec_t spec;
    gw_header_t *store_headers;
    char *buf;
    size_t len, cap, limit;
    bool storing;
} cache_req_t;

typedef struct cache_waiter {
    gw_cache_waiter_t w;
    gw_msg_t msg;
    gw_loop_t *loop;
    gw_req_t *req; /* NULL once the request is gone (the message frees the waiter) */
    uint64_t hash;
    bool woken;
} cache_waiter_t;

static gw_handler_result_t lookup(cache_req_t *st);

/* ---- small helpers ---- */

static int64_t now_s(const gw_req_t *req)
{
    return gw_loop_wall(req->worker->loop);
}

static bool names_eq(gw_slice_t a, gw_slice_t b)
{
    return a.len == b.len && strncasecmp(a.base, b.base, a.len) == 0;
}

static bool in_names(const gw_slice_t *list, size_t n, gw_slice_t name)
{
    for (size_t i = 0; i < n; i++)
        if (names_eq(list[i], name)) return true;
    return false;
}

static bool hop_by_hop(gw_slice_t name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                                        "transfer-encoding", "upgrade", "content-length", "age",
                                        "x-gateway-cache", "cache-status", "proxy-authenticate"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gw_slice_ieq(name, names[i])) return true;
    return false;
}

static gw_slice_t dup_slice(gw_req_t *req, const char *s)
{
    char *c = s ? gw_arena_strndup(&req->arena, s, strlen(s)) : NULL;
    return c ? (gw_slice_t){c, strlen(c)} : (gw_slice_t){"", 0};
}

static int64_t header_date(const gw_headers_t *h, const char *name, int64_t absent, int64_t invalid)
{
    for (uint32_t i = 0; i < h->count; i++)
        if (gw_slice_ieq(h->items[i].name, name)) {
            int64_t t;
            return gw_http_date_parse(h->items[i].value, &t) ? t : invalid;
        }
    return absent;
}

static void parse_cc_list(gw_cc_t *cc, const gw_header_t *h, size_t n)
{
    gw_cc_init(cc);
    for (size_t i = 0; i < n; i++)
        if (gw_slice_ieq(h[i].name, "cache-control")) gw_cc_parse(cc, h[i].value);
}

/* The directives governing a response in this cache: those of the first field of the route's
 * target list (cacheTargetedHeader) that the response carries with a valid, non-empty value, else
 * Cache-Control (RFC 9213 §2.1). Returns whether a targeted field was used: Expires is then
 * ignored too. */
static bool response_cc(const cache_route_t *cr, const gw_header_t *h, size_t n, gw_cc_t *cc)
{
    for (size_t t = 0; t < cr->ntargeted; t++) {
        gw_cc_t tc;
        gw_cc_init(&tc);
        int members = 0;
        for (size_t i = 0; i < n && members >= 0; i++) {
            if (!names_eq(h[i].name, cr->targeted[t])) continue;
            int m = gw_cc_parse_targeted(&tc, h[i].value);
            members = m < 0 ? -1 : members + m;
        }
        if (members > 0) {
            *cc = tc;
            return true;
        }
    }
    parse_cc_list(cc, h, n);
    return false;
}

/* Moves the route's targeted fields behind the others, keeping both orders (stored entries keep
 * them for the next freshness decision but never send them). Returns how many were moved. */
static uint32_t targeted_last(const cache_route_t *cr, gw_arena_t *arena, gw_header_t *h, uint32_t n)
{
    if (!cr->ntargeted) return 0;
    gw_header_t *moved = gw_arena_alloc(arena, n * sizeof(*moved) + 1);
    if (!moved) return 0;
    uint32_t kept = 0, nt = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (in_names(cr->targeted, cr->ntargeted, h[i].name))
            moved[nt++] = h[i];
        else
            h[kept++] = h[i];
    }
    memcpy(h + kept, moved, nt * sizeof(*h));
    return nt;
}

/* The targeted fields this cache acted on are not passed on to the client (RFC 9213 leaves it to
 * the cache): clients and browsers get Cache-Control only. */
static void strip_targeted(const cache_route_t *cr, gw_headers_t *h)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->count; i++)
        if (!in_names(cr->targeted, cr->ntargeted, h->items[i].name)) h->items[n++] = h->items[i];
    h->count = n;
}

/* ---- keys and variants ---- */

/* The request's values of the headers in `names`, as "name:v1,v2\n" (absent: "name!\n").
 * Returns the length, or -1 when it does not fit. */
static long vary_values(const gw_req_t *req, gw_slice_t names, char *out, size_t cap)
{
    size_t len = 0;
    const char *p = names.base, *end = names.base + names.len;
    while (p < end) {
        const char *s = p;
        while (p < end && *p != ',') p++;
        gw_slice_t name = {s, (size_t)(p - s)};
        if (p < end) p++;
        if (!name.len) continue;
        if (len + name.len + 2 > cap) return -1;
        memcpy(out + len, name.base, name.len);
        len += name.len;
        bool any = false;
        for (size_t i = 0; i < req->num_headers; i++) {
            const gw_header_t *h = &req->headers[i];
            if (h->name.len != name.len || strncasecmp(h->name.base, name.base, name.len) != 0) continue;
            gw_slice_t v = h->value;
            while (v.len && (v.base[0] == ' ' || v.base[0] == '\t')) v.base++, v.len--;
            while (v.len && (v.base[v.len - 1] == ' ' || v.base[v.len - 1] == '\t')) v.len--;
            if (len + v.len + 3 > cap) return -1;
            out[len++] = any ? ',' : ':';
            memcpy(out + len, v.base, v.len);
            len += v.len;
            any = true;
        }
        if (!any) out[len++] = '!';
        out[len++] = '\n';
    }
    return (long)len;
}

typedef struct match_ctx {
    const gw_req_t *req;
    bool authorization;
} match_ctx_t;

static bool variant_matches(const gw_cache_entry_t *e, void *arg)
{
    match_ctx_t *m = arg;
    if (m->authorization && !e->auth_ok) return false;
    if (!e->vary_names.len) return true;
    char buf[VARY_BUF];
    long n = vary_values(m->req, e->vary_names, buf, sizeof(buf));
    return n >= 0 && (size_t)n == e->vary_values.len && memcmp(buf, e->vary_values.base, (size_t)n) == 0;
}

static char *put_slice(char *p, gw_slice_t s)
{
    if (s.len) memcpy(p, s.base, s.len);
    return p + s.len;
}

/* "scheme://authority/path[?query]", copied piece by piece: it is made for every request, hits
 * included, where a printf's format parsing would cost more than the lookup. */
static gw_slice_t make_key(gw_req_t *req, gw_slice_t path, gw_slice_t query, bool has_query)
{
    gw_slice_t scheme = req->conn->tls ? GW_SLICE_LIT("https://") : GW_SLICE_LIT("http://");
    size_t len = scheme.len + req->authority.len + path.len + (has_query ? 1 + query.len : 0);
    char *k = gw_arena_alloc(&req->arena, len + 1);
    if (!k) return (gw_slice_t){NULL, 0};
    char *p = put_slice(put_slice(put_slice(k, scheme), req->authority), path);
    if (has_query) {
        *p++ = '?';
        p = put_slice(p, query);
    }
    *p = '\0';
    return (gw_slice_t){k, len};
}

/* ---- per-request state ---- */

static void waiter_msg(gw_loop_t *loop, gw_msg_t *msg);

static void cache_req_cleanup(void *arg)
{
    cache_req_t *st = arg;
    if (st->leading) {
        st->leading = false;
        gw_cache_fetch_done(st->hash, st->key);
    }
    cache_waiter_t *w = st->waiter;
    if (w) {
        if (w->woken || gw_cache_waiter_cancel(w->hash, &w->w))
            free(w);
        else
            w->req = NULL; /* a wake-up is on its way: its message frees the waiter */
    }
    gw_cache_entry_unref(st->stale);
    gw_cache_entry_unref(st->serving);
    free(st->buf);
    st->stale = st->serving = NULL;
    st->buf = NULL;
}

static cache_req_t *state_new(gw_req_t *req, const cache_route_t *cr)
{
    cache_req_t *st = gw_arena_alloc(&req->arena, sizeof(*st));
    if (!st) return NULL;
    memset(st, 0, sizeof(*st));
    st->req = req;
    st->cr = cr;
    st->limit = SIZE_MAX;
    if (cr->max_body >= 0) st->limit = (size_t)cr->max_body;
    if (cr->max_mem && cr->max_mem < st->limit) st->limit = (size_t)cr->max_mem;
    if (!gw_req_defer(req, cache_req_cleanup, st)) return NULL;
    req->cache = st;
    return st;
}

static void end_fetch(cache_req_t *st)
{
    if (!st->leading) return;
    st->leading = false;
    gw_cache_fetch_done(st->hash, st->key);
}

/* ---- status headers ---- */

/* X-Gateway-Cache and Cache-Status; `cache_status` (or NULL) must live as long as the request. */
static void set_status(gw_req_t *req, const char *xcache, const char *cache_status)
{
    gw_res_set_header(req, GW_SLICE_LIT("x-gateway-cache"), (gw_slice_t){xcache, strlen(xcache)});
    gw_metrics_count_cache(xcache, cache_status);
    if (cache_status)
        gw_res_set_header(req, GW_SLICE_LIT("cache-status"),
                          (gw_slice_t){cache_status, strlen(cache_status)});
}

/* The same with a Cache-Status of any lifetime (copied into the request's arena). */
static void add_status(gw_req_t *req, const char *xcache, const char *cache_status)
{
    set_status(req, xcache, cache_status ? dup_slice(req, cache_status).base : NULL);
}

/* The Cache-Status of a hit, "gateway; hit; ttl=N[; detail=D]", in the request's arena; built
 * without printf, as every hit makes one. NULL when the arena is exhausted. */
static const char *hit_status(cache_req_t *st, int64_t ttl)
{
    gw_arena_t *a = &st->req->arena;
    char *digits = gw_arena_u64(a, ttl < 0 ? (uint64_t)0 - (uint64_t)ttl : (uint64_t)ttl);
    if (!digits) return NULL;
    char *cs = gw_arena_concat3(a, ttl < 0 ? CACHE_ID "; hit; ttl=-" : CACHE_ID "; hit; ttl=", digits, "");
    if (cs && st->detail) cs = gw_arena_concat3(a, cs, "; detail=", st->detail);
    return cs;
}

static int64_t current_age(const gw_cache_entry_t *e, int64_t now)
{
    return e->initial_age + (now > e->response_time ? now - e->response_time : 0);
}

/* ---- answering from an entry ---- */

/* Puts the stored head of `e` on the response (Age and the status headers added). */
static void entry_head(cache_req_t *st, gw_cache_entry_t *e, const char *fwd, bool skip_type)
{
    gw_req_t *req = st->req;
    req->res.status = e->status;
    req->res.headers.count = 0;
    for (uint32_t i = 0; i < e->num_sent; i++)
        if (!skip_type || !gw_slice_eq(e->headers[i].name, "content-type"))
            gw_res_add_header(req, e->headers[i].name, e->headers[i].value);
    int64_t now = now_s(req), age = current_age(e, now);
    char *a = gw_arena_u64(&req->arena, age > 0 ? (uint64_t)age : 0);
    if (a) gw_res_add_header(req, GW_SLICE_LIT("age"), (gw_slice_t){a, strlen(a)});
    if (fwd) {
        char cs[160];
        snprintf(cs, sizeof(cs), CACHE_ID "; fwd=%s; fwd-status=%d; ttl=%lld", fwd, st->spec.status,
                 (long long)(e->lifetime - age));
        add_status(req, "HIT", cs);
    } else {
        const char *cs = hit_status(st, e->lifetime - age);
        set_status(req, "HIT", cs ? cs : CACHE_ID "; hit");
    }
    req->res.content_length = (int64_t)e->body_len;
}

/* The client's own conditionals against the entry; true when a 304 (or 412) was set up. */
static bool client_conditional(gw_req_t *req, const gw_cache_entry_t *e)
{
    if (!gw_req_header(req, "if-none-match") && !gw_req_header(req, "if-modified-since") &&
        !gw_req_header(req, "if-match") && !gw_req_header(req, "if-unmodified-since"))
        return false;
    if (e->status != 200) return false;
    const char *etag = e->etag && e->etag[0] == 'W' && e->etag[1] == '/' ? e->etag + 2 : e->etag;
    int64_t mtime = e->last_modified >= 0 ? e->last_modified : e->date;
    gw_cond_t c = gw_cond_evaluate(req, etag, mtime);
    if (c == GW_COND_PASS) return false;
    req->res.status = c == GW_COND_NOT_MODIFIED ? 304 : 412;
    req->res.content_length = c == GW_COND_NOT_MODIFIED ? -1 : 0;
    return true;
}

/* A hit: the entry's response from memory, a range of it, or a 304 to the client's condition. */
static void serve_hit(cache_req_t *st, gw_cache_entry_t *e)
{
    gw_req_t *req = st->req;
    st->serving = e;
    st->mode = M_SERVED;
    const gw_header_t *range = req->method_id == GW_M_GET ? gw_req_header(req, "range") : NULL;
    const gw_header_t *ct = gw_cache_entry_header(e, "content-type");
    if (range && e->status == 200) {
        gw_range_t r[GW_MAX_RANGES];
        size_t n = 0;
        const char *etag = e->etag && e->etag[0] != 'W' ? e->etag : NULL;
        gw_range_result_t rr = gw_if_range_ok(req, etag, e->last_modified)
                                   ? gw_range_parse(range->value, e->body_len, r, GW_MAX_RANGES, &n)
                                   : GW_RANGE_NONE;
        if (rr == GW_RANGE_OK) {
            entry_head(st, e, NULL, true);
            gw_send_ranges(req, e->body, -1, e->body_len,
                           ct ? ct->value.base : "application/octet-stream", r, n);
            return;
        }
        if (rr == GW_RANGE_UNSATISFIABLE) {
            entry_head(st, e, NULL, false);
            char *cr = gw_arena_printf(&req->arena, "bytes */%zu", e->body_len);
            if (cr) gw_res_add_header(req, GW_SLICE_LIT("content-range"), (gw_slice_t){cr, strlen(cr)});
            gw_send_inline(req, 416, NULL, NULL, 0);
            return;
        }
    }
    entry_head(st, e, NULL, false);
    if (client_conditional(req, e)) {
        gw_start_response(req, NULL);
        gw_send(req, NULL, 0, GW_SEND_FINAL);
        return;
    }
    gw_slice_t body = {e->body, e->body_len};
    gw_start_response(req, NULL);
    gw_send(req, &body, body.len && req->method_id != GW_M_HEAD ? 1 : 0, GW_SEND_FINAL);
}

/* ---- collapsed misses ---- */

static void waiter_wake(gw_cache_waiter_t *gw)
{
    cache_waiter_t *w = gw_container_of(gw, cache_waiter_t, w);
    gw_loop_post(w->loop, &w->msg);
}

/* On the waiter's own worker: the fetch it waited for is over; look again. */
static void waiter_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    (void)loop;
    cache_waiter_t *w = gw_container_of(msg, cache_waiter_t, msg);
    if (!w->req) {
        free(w);
        return;
    }
    w->woken = true;
    gw_req_t *req = w->req;
    cache_req_t *st = req->cache;
    st->waited = true;
    gw_handler_result_t r = lookup(st);
    if (r == GW_CONTINUE)
        gw_req_continue(req);
    else if (r == GW_ERROR)
        gw_req_fail(req, req->res.status >= 400 ? req->res.status : 500);
}

/* Joins a fetch in flight (GW_DONE: suspended) or leads one. */
static gw_handler_result_t collapse(cache_req_t *st, bool may_wait)
{
    gw_req_t *req = st->req;
    cache_waiter_t *w = NULL;
    if (may_wait && !st->waited) {
        w = calloc(1, sizeof(*w));
        if (w) {
            w->w.wake = waiter_wake;
            w->msg.fn = waiter_msg;
            w->loop = req->worker->loop;
            w->req = req;
            w->hash = st->hash;
        }
    }
    gw_cache_collapse_t c = gw_cache_collapse(st->hash, st->key, w ? &w->w : NULL);
    if (c == GW_COLLAPSE_WAIT) {
        st->waiter = w;
        return GW_DONE;
    }
    free(w);
    st->leading = c == GW_COLLAPSE_LEAD;
    return GW_CONTINUE;
}

/* ---- revalidation ---- */

static bool is_conditional(gw_slice_t name)
{
    return gw_slice_ieq(name, "if-none-match") || gw_slice_ieq(name, "if-modified-since") ||
           gw_slice_ieq(name, "if-match") || gw_slice_ieq(name, "if-unmodified-since") ||
           gw_slice_ieq(name, "if-range") || gw_slice_ieq(name, "range");
}

/* The backend gets our validators instead of the client's conditionals (restored at the answer). */
static bool add_validators(cache_req_t *st, const gw_cache_entry_t *e)
{
    gw_req_t *req = st->req;
    const gw_header_t *lm = gw_cache_entry_header(e, "last-modified");
    if (!e->etag && !lm) return false;
    gw_header_t *h = gw_arena_alloc(&req->arena, (req->num_headers + 2) * sizeof(*h));
    if (!h) return false;
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        if (!is_conditional(req->headers[i].name)) h[n++] = req->headers[i];
    if (e->etag) h[n++] = (gw_header_t){GW_SLICE_LIT("If-None-Match"), dup_slice(req, e->etag)};
    if (lm) h[n++] = (gw_header_t){GW_SLICE_LIT("If-Modified-Since"), dup_slice(req, lm->value.base)};
    st->orig_headers = req->headers;
    st->orig_num = req->num_headers;
    req->headers = h;
    req->num_headers = n;
    st->revalidating = true;
    return true;
}

static void restore_headers(cache_req_t *st)
{
    if (!st->orig_headers) return;
    st->req->headers = st->orig_headers;
    st->req->num_headers = st->orig_num;
    st->orig_headers = NULL;
}

/* ---- the handler ---- */

static bool method_unsafe(gw_method_t m)
{
    return m != GW_M_GET && m != GW_M_HEAD && m != GW_M_OPTIONS && m != GW_M_TRACE && m != GW_M_CONNECT;
}

/* Starts a background request that revalidates `e` for everyone (it leads the fetch for the key and
 * ends it when its response is in). True when `e` may be served now: that request, or another
 * fetch of the key, is under way. */
static bool revalidate_in_background(cache_req_t *st, gw_cache_entry_t *e)
{
    gw_req_t *bg = gw_cache_bg_new(st->req);
    if (!bg) return false;
    cache_req_t *bst = state_new(bg, st->cr);
    if (bst) bst->key = make_key(bg, bg->path, bg->query, bg->has_query);
    if (!bst || !bst->key.base) {
        gw_cache_bg_drop(bg);
        return false;
    }
    bst->hash = st->hash;
    bst->mode = M_LOOKUP;
    gw_cc_init(&bst->rcc);
    bst->request_time = now_s(bg);
    bst->fwd = "stale";
    gw_cache_entry_ref(e);
    bst->stale = e;
    add_validators(bst, e);
    collapse(bst, false);
    if (!bst->leading) {
        gw_cache_bg_drop(bg);
        return gw_cache_fetching(st->hash, st->key);
    }
    gw_cache_bg_start(bg);
    return true;
}

/* A stale entry the client will not take as it is: validate it, or fetch anew keeping it for
 * stale-if-error; within stale-while-revalidate it answers at once while a background request (or
 * another client's) revalidates it. */
static gw_handler_result_t stale_entry(cache_req_t *st, gw_cache_entry_t *e, int64_t age)
{
    gw_req_t *req = st->req;
    int64_t staleness = age - e->lifetime;
    bool forced = (st->rcc.flags & GW_CC_NO_CACHE) || (e->res_flags & GW_CC_NO_CACHE);
    if (!forced && staleness >= 0 && gw_cache_stale_allowed(e->swr, staleness, e->res_flags) &&
        (gw_cache_fetching(st->hash, st->key) || revalidate_in_background(st, e))) {
        st->detail = "stale-while-revalidate";
        serve_hit(st, e);
        return GW_DONE;
    }
    st->fwd = (st->rcc.flags & GW_CC_NO_CACHE) ? "request" : "stale";
    st->stale = e;
    if (req->method_id == GW_M_GET) add_validators(st, e);
    return req->method_id == GW_M_GET && !gw_req_header(req, "range") ? collapse(st, false) : GW_CONTINUE;
}

static gw_handler_result_t lookup(cache_req_t *st)
{
    gw_req_t *req = st->req;
    st->request_time = now_s(req);
    match_ctx_t m = {req, gw_req_header(req, "authorization") != NULL};
    bool variants = false;
    gw_cache_entry_t *e = gw_cache_lookup(st->hash, st->key, variant_matches, &m, &variants);
    if (e) {
        int64_t age = current_age(e, st->request_time);
        gw_cache_stored_t s = {e->lifetime, age, e->res_flags};
        gw_cache_use_t use = gw_cache_use(&st->rcc, &s);
        if (use != GW_USE_VALIDATE) {
            serve_hit(st, e);
            return GW_DONE;
        }
        if (!(st->rcc.flags & GW_CC_ONLY_IF_CACHED)) return stale_entry(st, e, age);
        gw_cache_entry_unref(e);
    }
    if (st->rcc.flags & GW_CC_ONLY_IF_CACHED) {
        st->mode = M_SERVED; /* never forwarded, not even by an errorConfig re-run */
        add_status(req, "MISS", CACHE_ID "; fwd=miss; detail=only-if-cached");
        gw_send_error(req, 504);
        return GW_DONE;
    }
    st->fwd = variants ? "vary-miss" : "uri-miss";
    bool collapsible = req->method_id == GW_M_GET && !gw_req_header(req, "range") &&
                       !(st->rcc.flags & (GW_CC_NO_STORE | GW_CC_NO_CACHE));
    return collapsible ? collapse(st, true) : GW_CONTINUE;
}

static gw_handler_result_t cache_on_request(const gw_handler_t *self, gw_req_t *req);
static const cache_route_t default_route = {{"cache", cache_on_request}, NULL, 0, NULL, 0, -1, DEFAULT_MAX_MEMORY, NULL, 0};

static gw_handler_result_t cache_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const cache_route_t *cr = self == &gw_cache_default_handler ? &default_route : (const cache_route_t *)self;
    if (req->cache) {
        req->cache->mode = M_NONE; /* errorConfig's second run: nothing of it is stored */
        return GW_CONTINUE;
    }
    cache_req_t *st = state_new(req, cr);
    if (!st) return GW_CONTINUE;
    st->key = make_key(req, req->path, req->query, req->has_query);
    if (!st->key.base) return GW_CONTINUE;
    st->hash = gw_cache_hash(st->key);
    if (req->method_id != GW_M_GET && req->method_id != GW_M_HEAD) {
        st->mode = method_unsafe(req->method_id) ? M_INVALIDATE : M_NONE;
        return GW_CONTINUE;
    }
    st->mode = M_LOOKUP;
    parse_cc_list(&st->rcc, req->headers, req->num_headers);
    if (!gw_req_header(req, "cache-control")) {
        const gw_header_t *pragma = gw_req_header(req, "pragma");
        if (pragma && gw_cc_list_has(pragma->value, GW_SLICE_LIT("no-cache"))) st->rcc.flags |= GW_CC_NO_CACHE;
    }
    return lookup(st);
}

/* ---- the filter: invalidation ---- */

/* Invalidates the URI a Location or Content-Location names when it is on the same origin. */
static void invalidate_uri(cache_req_t *st, gw_slice_t v)
{
    gw_req_t *req = st->req;
    const char *scheme = req->conn->tls ? "https://" : "http://";
    size_t sl = strlen(scheme);
    if (v.len > sl && strncasecmp(v.base, scheme, sl) == 0) {
        gw_slice_t rest = {v.base + sl, v.len - sl};
        if (rest.len < req->authority.len || strncasecmp(rest.base, req->authority.base, req->authority.len) != 0)
            return; /* another origin: not ours to touch */
        v = (gw_slice_t){rest.base + req->authority.len, rest.len - req->authority.len};
        if (v.len && v.base[0] != '/') return;
    } else if (!v.len || v.base[0] != '/' || (v.len > 1 && v.base[1] == '/')) {
        return;
    }
    const char *q = memchr(v.base, '?', v.len);
    gw_slice_t path = {v.base, q ? (size_t)(q - v.base) : v.len};
    gw_slice_t query = q ? (gw_slice_t){q + 1, v.len - path.len - 1} : (gw_slice_t){"", 0};
    gw_slice_t key = make_key(req, path, query, q != NULL);
    if (key.base) gw_cache_invalidate(gw_cache_hash(key), key);
}

static void invalidate(cache_req_t *st)
{
    gw_req_t *req = st->req;
    int s = req->res.status;
    if (s < 200 || s >= 400) return;
    gw_cache_invalidate(st->hash, st->key);
    const gw_header_t *loc = gw_res_header(req, "location");
    if (loc) invalidate_uri(st, loc->value);
    const gw_header_t *cl = gw_res_header(req, "content-location");
    if (cl) invalidate_uri(st, cl->value);
}

/* ---- the filter: replacing the backend's answer with a stored one ---- */

static void replace_send(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    (void)bufs;
    (void)n;
    cache_req_t *st = gw_container_of(self, cache_req_t, replace_os);
    if (state == GW_SEND_IN_PROGRESS) {
        if (req->gen && req->gen->proceed) req->gen->proceed(req->gen, req); /* dropped: ask for more */
        return;
    }
    const gw_cache_entry_t *e = st->serving;
    bool body = req->res.status != 304 && req->res.status != 412 && req->method_id != GW_M_HEAD;
    gw_slice_t b = {e->body, e->body_len};
    gw_ostream_next(self, req, &b, body && b.len ? 1 : 0, GW_SEND_FINAL);
}

/* Answers with `e` instead of the backend's response (whose head is on req->res now). */
static void replace_with(cache_req_t *st, gw_cache_entry_t *e, const char *fwd)
{
    gw_req_t *req = st->req;
    st->spec.status = req->res.status;
    st->serving = e;
    st->mode = M_SERVED;
    restore_headers(st);
    entry_head(st, e, fwd, false);
    client_conditional(req, e);
    if (req->res.status == 412) req->res.content_length = 0;
    st->replace_os.send = replace_send;
    gw_req_push_ostream(req, &st->replace_os);
}

/* RFC 9111 §4.3.4: the stored headers updated with those of the 304. */
static gw_cache_entry_t *refreshed(cache_req_t *st)
{
    gw_req_t *req = st->req;
    const gw_cache_entry_t *old = st->stale;
    const gw_headers_t *nh = &req->res.headers;
    gw_header_t *h = gw_arena_alloc(&req->arena, (old->num_headers + nh->count) * sizeof(*h));
    char *body = malloc(old->body_len ? old->body_len : 1);
    if (!h || !body) {
        free(body);
        return NULL;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < old->num_headers; i++) {
        bool replaced = false;
        for (uint32_t j = 0; j < nh->count && !replaced; j++)
            replaced = gw_slice_ieq(nh->items[j].name, old->headers[i].name.base) && !hop_by_hop(nh->items[j].name);
        if (!replaced) h[n++] = old->headers[i];
    }
    for (uint32_t j = 0; j < nh->count; j++)
        if (!hop_by_hop(nh->items[j].name) && !in_names(st->cr->ignore, st->cr->nignore, nh->items[j].name))
            h[n++] = nh->items[j];
    memcpy(body, old->body, old->body_len);
    uint32_t targeted = targeted_last(st->cr, &req->arena, h, n);
    gw_cc_t cc;
    bool by_target = response_cc(st->cr, h, n, &cc);
    gw_headers_t all = {h, n, n};
    int64_t now = now_s(req);
    gw_cache_times_t t = {header_date(&all, "date", -1, -1), header_date(&all, "expires", -1, INT64_MIN),
                          old->last_modified, -1, st->request_time, now};
    if (by_target) t.expires = -1;
    const gw_header_t *age = gw_res_header(req, "age");
    if (age) t.age = strtoll(age->value.base, NULL, 10);
    if (!gw_res_header(req, "date")) t.date = now;
    gw_cache_entry_spec_t s = {
        old->key, old->vary_names, old->vary_values, old->status, h, n, body, old->body_len, now,
        gw_cache_initial_age(&t), gw_cache_lifetime(&cc, &t, old->status, NULL), t.date >= 0 ? t.date : now,
        old->last_modified, cc.stale_while_revalidate, cc.stale_if_error,
        cc.flags | (cc.s_maxage >= 0 ? GW_CC_PROXY_REVALIDATE : 0u),
        (cc.flags & (GW_CC_PUBLIC | GW_CC_MUST_REVALIDATE)) || cc.s_maxage >= 0, targeted};
    return gw_cache_entry_new(&s);
}

/* ---- the filter: storing ---- */

static bool append(cache_req_t *st, const gw_slice_t *bufs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!bufs[i].len) continue;
        if (st->len + bufs[i].len > st->limit) return false;
        if (st->len + bufs[i].len > st->cap) {
            size_t cap = st->cap ? st->cap : 16384;
            while (cap < st->len + bufs[i].len) cap *= 2;
            char *b = realloc(st->buf, cap);
            if (!b) return false;
            st->buf = b;
            st->cap = cap;
        }
        memcpy(st->buf + st->len, bufs[i].base, bufs[i].len);
        st->len += bufs[i].len;
    }
    return true;
}

static void abandon(cache_req_t *st)
{
    st->storing = false;
    free(st->buf);
    st->buf = NULL;
    st->len = st->cap = 0;
    end_fetch(st);
}

static void store_send(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t state)
{
    cache_req_t *st = gw_container_of(self, cache_req_t, store_os);
    if (st->storing && (state == GW_SEND_ERROR || !append(st, bufs, n))) abandon(st);
    if (st->storing && state == GW_SEND_FINAL) {
        st->storing = false;
        if (st->spec.body_len == (size_t)-1 || st->spec.body_len == st->len) {
            st->spec.body = st->buf ? st->buf : malloc(1);
            st->spec.body_len = st->len;
            st->buf = NULL;
            gw_cache_entry_t *e = st->spec.body ? gw_cache_entry_new(&st->spec) : NULL;
            if (e) gw_cache_insert(e); /* visible from now on: the body ended cleanly */
        }
        end_fetch(st); /* before passing FINAL on: the request may be gone after it */
    }
    gw_ostream_next(self, req, bufs, n, state);
}

/* The stored copy of the head: no hop-by-hop or Connection-listed fields, no cacheIgnoreHeaders,
 * none a private="..." or no-cache="..." directive names. */
static bool capture_headers(cache_req_t *st, const gw_cc_t *cc)
{
    gw_req_t *req = st->req;
    const gw_headers_t *rh = &req->res.headers;
    const gw_header_t *conn = gw_res_header(req, "connection");
    gw_header_t *h = gw_arena_alloc(&req->arena, (rh->count + 1) * sizeof(*h));
    if (!h) return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < rh->count; i++) {
        gw_slice_t name = rh->items[i].name;
        if (hop_by_hop(name) || (conn && gw_cc_list_has(conn->value, name)) ||
            in_names(st->cr->ignore, st->cr->nignore, name) ||
            ((cc->flags & GW_CC_PRIVATE_FIELDS) && gw_cc_list_has(cc->fields_private, name)) ||
            ((cc->flags & GW_CC_NO_CACHE_FIELDS) && gw_cc_list_has(cc->fields_no_cache, name)))
            continue;
        char *lname = gw_arena_strndup(&req->arena, name.base, name.len);
        if (!lname) return false;
        for (char *p = lname; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        h[n++] = (gw_header_t){{lname, name.len}, rh->items[i].value};
    }
    st->store_headers = h;
    st->spec.headers = h;
    st->spec.num_headers = n;
    st->spec.num_targeted = targeted_last(st->cr, &req->arena, h, n);
    return true;
}

/* The response's Vary names plus cacheVaryHeaders, lower-case, comma-separated; false for `*`. */
static bool vary_names(cache_req_t *st, gw_slice_t *out)
{
    gw_req_t *req = st->req;
    size_t cap = 1;
    for (uint32_t i = 0; i < req->res.headers.count; i++)
        if (gw_slice_ieq(req->res.headers.items[i].name, "vary")) cap += req->res.headers.items[i].value.len + 1;
    for (size_t i = 0; i < st->cr->nvary; i++) cap += st->cr->vary[i].len + 1;
    char *buf = gw_arena_alloc(&req->arena, cap), *p = buf;
    if (!buf) return false;
    for (uint32_t i = 0; i < req->res.headers.count; i++) {
        if (!gw_slice_ieq(req->res.headers.items[i].name, "vary")) continue;
        gw_slice_t v = req->res.headers.items[i].value;
        const char *s = v.base, *end = v.base + v.len;
        while (s < end) {
            while (s < end && (*s == ' ' || *s == '\t' || *s == ',')) s++;
            const char *t = s;
            while (s < end && *s != ',' && *s != ' ' && *s != '\t') s++;
            if (s == t) continue;
            if (s - t == 1 && *t == '*') return false;
            gw_slice_t tok = {t, (size_t)(s - t)};
            if (gw_cc_list_has((gw_slice_t){buf, (size_t)(p - buf)}, tok)) continue;
            if (p != buf) *p++ = ',';
            for (const char *c = t; c < s; c++) *p++ = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
    }
    for (size_t i = 0; i < st->cr->nvary; i++) {
        if (gw_cc_list_has((gw_slice_t){buf, (size_t)(p - buf)}, st->cr->vary[i])) continue;
        if (p != buf) *p++ = ',';
        memcpy(p, st->cr->vary[i].base, st->cr->vary[i].len);
        p += st->cr->vary[i].len;
    }
    *out = (gw_slice_t){buf, (size_t)(p - buf)};
    return true;
}

/* Decides whether to store the response and, if so, prepares the entry and the body copy. */
static bool prepare_store(cache_req_t *st)
{
    gw_req_t *req = st->req;
    gw_res_t *res = &req->res;
    gw_cc_t cc;
    bool by_target = response_cc(st->cr, res->headers.items, res->headers.count, &cc);
    gw_slice_t names = {"", 0};
    bool vary_star = !vary_names(st, &names);
    int64_t now = now_s(req);
    gw_cache_times_t t = {header_date(&res->headers, "date", -1, -1),
                          header_date(&res->headers, "expires", -1, INT64_MIN),
                          header_date(&res->headers, "last-modified", -1, -1), -1, st->request_time, now};
    if (by_target) t.expires = -1;
    const gw_header_t *age = gw_res_header(req, "age");
    if (age) t.age = strtoll(age->value.base, NULL, 10);
    gw_cache_store_in_t in = {req->method_id == GW_M_GET, res->status, gw_req_header(req, "authorization") != NULL,
                              vary_star, t.expires != -1, t.last_modified >= 0,
                              gw_res_header(req, "etag") || t.last_modified >= 0};
    if (gw_cache_storable(&st->rcc, &cc, &in) != GW_STORE_OK) return false;
    if (gw_res_header(req, "content-range") || (res->content_length >= 0 && (uint64_t)res->content_length > st->limit))
        return false;
    int64_t lifetime = gw_cache_lifetime(&cc, &t, res->status, NULL);
    if (lifetime <= 0 && !in.has_validator) return false; /* could never be reused */
    char vbuf[VARY_BUF];
    long vl = vary_values(req, names, vbuf, sizeof(vbuf));
    char *vv = vl >= 0 ? gw_arena_strndup(&req->arena, vbuf, (size_t)vl) : NULL;
    if (!vv || !capture_headers(st, &cc)) return false;
    gw_cache_entry_spec_t *s = &st->spec;
    s->key = st->key;
    s->vary_names = names;
    s->vary_values = (gw_slice_t){vv, (size_t)vl};
    s->status = res->status;
    s->body_len = res->content_length >= 0 ? (size_t)res->content_length : (size_t)-1;
    s->response_time = now;
    s->initial_age = gw_cache_initial_age(&t);
    s->lifetime = lifetime;
    s->date = t.date >= 0 ? t.date : now;
    s->last_modified = t.last_modified;
    s->swr = cc.stale_while_revalidate;
    s->sie = cc.stale_if_error;
    s->res_flags = cc.flags | (cc.s_maxage >= 0 ? GW_CC_PROXY_REVALIDATE : 0u);
    s->auth_ok = (cc.flags & (GW_CC_PUBLIC | GW_CC_MUST_REVALIDATE)) || cc.s_maxage >= 0;
    return true;
}

static bool backend_error(int s)
{
    return s == 500 || s == 502 || s == 503 || s == 504;
}

static void lookup_response(cache_req_t *st)
{
    gw_req_t *req = st->req;
    int status = req->res.status;
    gw_cache_entry_t *stale = st->stale;
    if (stale && st->revalidating && status == 304) {
        gw_cache_entry_t *e = refreshed(st);
        if (e) {
            gw_cache_entry_ref(e);
            gw_cache_insert(e);
            end_fetch(st);
            replace_with(st, e, st->fwd ? st->fwd : "stale");
            return;
        }
    }
    if (stale && backend_error(status)) {
        int64_t staleness = current_age(stale, now_s(req)) - stale->lifetime;
        int64_t window = stale->sie >= 0 ? stale->sie : st->rcc.stale_if_error;
        if (gw_cache_stale_allowed(window, staleness, stale->res_flags)) {
            st->stale = NULL;
            end_fetch(st);
            replace_with(st, stale, "stale");
            return;
        }
    }
    restore_headers(st);
    st->storing = prepare_store(st);
    char cs[128];
    snprintf(cs, sizeof(cs), CACHE_ID "; fwd=%s; fwd-status=%d%s", st->fwd ? st->fwd : "miss", status,
             st->storing ? "; stored" : "");
    add_status(req, "MISS", cs);
    if (!st->storing) {
        end_fetch(st);
        return;
    }
    st->store_os.send = store_send;
    gw_req_push_ostream(req, &st->store_os);
}

static void cache_setup(const gw_filter_t *self, gw_req_t *req)
{
    (void)self;
    cache_req_t *st = req->cache;
    if (!st) return;
    switch (st->mode) {
    case M_LOOKUP:
        st->mode = M_SERVED; /* one response per request is considered */
        lookup_response(st);
        strip_targeted(st->cr, &req->res.headers);
        break;
    case M_INVALIDATE:
        st->mode = M_SERVED;
        invalidate(st);
        add_status(req, "BYPASS", CACHE_ID "; fwd=method");
        strip_targeted(st->cr, &req->res.headers);
        break;
    default:
        break;
    }
}

const gw_filter_t gw_cache_filter = {"cache", cache_setup};

/* ---- configuration ---- */

static size_t name_list(const gw_route_t *route, const char *prop, gw_arena_t *arena, gw_slice_t **out)
{
    const gw_node_t *n = gw_route_prop(route, prop);
    *out = NULL;
    bool one = n && n->kind == GW_NODE_SCALAR && !gw_yaml_is_null(n); /* a single name, not a list */
    size_t count = one ? 1 : n && n->kind == GW_NODE_SEQ ? n->seq.count : 0;
    if (!count) return 0;
    gw_slice_t *list = gw_arena_alloc(arena, count * sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; list && i < count; i++) {
        const char *s = gw_node_as_string(one ? n : n->seq.items[i]);
        char *c = s ? gw_arena_strndup(arena, s, strlen(s)) : NULL;
        if (!c || !*c) continue;
        for (char *p = c; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        list[k++] = (gw_slice_t){c, strlen(c)};
    }
    *out = list;
    return k;
}

const gw_handler_t *gw_cache_handler_new(const gw_route_t *route, gw_arena_t *arena)
{
    cache_route_t *cr = gw_arena_alloc(arena, sizeof(*cr));
    if (!cr) return NULL;
    memset(cr, 0, sizeof(*cr));
    cr->base = (gw_handler_t){"cache", cache_on_request};
    cr->nvary = name_list(route, "cacheVaryHeaders", arena, &cr->vary);
    cr->nignore = name_list(route, "cacheIgnoreHeaders", arena, &cr->ignore);
    cr->ntargeted = name_list(route, "cacheTargetedHeader", arena, &cr->targeted);
    int64_t v = -1;
    if (!gw_node_as_int(gw_route_prop(route, "maximumCacheResponseSize"), &v))
        gw_node_as_int(gw_route_prop(route, "maximumCachedResponseSize"), &v);
    cr->max_body = v;
    int64_t entries = 0, mem = (int64_t)DEFAULT_MAX_MEMORY;
    gw_node_as_int(gw_route_prop(route, "maximumCacheEntries"), &entries);
    gw_node_as_int(gw_route_prop(route, "maximumCacheMemory"), &mem);
    cr->max_mem = mem > 0 ? (uint64_t)mem : 0;
    gw_cache_set_limits(entries > 0 ? (uint64_t)entries : 0, cr->max_mem);
    return &cr->base;
}

const gw_handler_t gw_cache_default_handler = {"cache", cache_on_request};

static bool is_field_name(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

const gw_node_t *gw_cache_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen)
{
    if (strcmp(name, "cacheTargetedHeader") != 0) return NULL;
    bool list = value->kind == GW_NODE_SEQ;
    if (!list && gw_yaml_is_null(value)) return NULL; /* none */
    for (size_t i = 0; i < (list ? value->seq.count : 1); i++) {
        const gw_node_t *n = list ? value->seq.items[i] : value;
        const char *s = gw_node_as_string(n);
        if (s && !strcasecmp(s, "cache-control")) {
            snprintf(why, whylen, "Cache-Control is what a targeted field replaces; name one such as CDN-Cache-Control");
            return n;
        }
        if (!s || !is_field_name(s)) {
            snprintf(why, whylen, "'%s' is not a header field name", s ? s : "null");
            return n;
        }
    }
    return NULL;
}
