/* The Range header parser (RFC 9110 §14.1.2). See http_cond.h. */
#include "http_cond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

static void skip_ows(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t')) (*p)++;
}

/* Reads 1DIGIT+; saturates at UINT64_MAX instead of wrapping. */
static bool read_u64(const char **p, const char *end, uint64_t *out)
{
    const char *start = *p;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        (*p)++;
    }
    *out = v;
    return *p > start;
}

/* One range-spec; returns -1 when malformed, 0 when unsatisfiable, 1 with *r filled. */
static int parse_spec(const char **p, const char *end, uint64_t size, gw_range_t *r)
{
    uint64_t first, last;
    if (*p < end && **p == '-') {
        (*p)++;
        if (!read_u64(p, end, &last)) return -1;
        if (last == 0 || size == 0) return 0;
        r->len = last < size ? last : size;
        r->first = size - r->len;
        return 1;
    }
    if (!read_u64(p, end, &first) || *p == end || **p != '-') return -1;
    (*p)++;
    bool open = !read_u64(p, end, &last);
    if (!open && last < first) return -1;
    if (first >= size) return 0;
    if (open || last >= size) last = size - 1;
    r->first = first;
    r->len = last - first + 1;
    return 1;
}

static int by_first(const void *a, const void *b)
{
    const gw_range_t *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts and merges ranges that overlap or touch; returns the new count. */
static size_t coalesce(gw_range_t *r, size_t n)
{
    if (n < 2) return n;
    qsort(r, n, sizeof(*r), by_first);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t end = r[out].first + r[out].len;
        if (r[i].first <= end) {
            uint64_t iend = r[i].first + r[i].len;
            if (iend > end) r[out].len = iend - r[out].first;
        } else {
            r[++out] = r[i];
        }
    }
    return out + 1;
}

gw_range_result_t gw_range_parse(gw_slice_t value, uint64_t size, gw_range_t *out, size_t max, size_t *count)
{
    const char *p = value.base, *end = value.base + value.len;
    *count = 0;
    skip_ows(&p, end);
    if (end - p < 6 || strncasecmp(p, "bytes=", 6) != 0) return GW_RANGE_NONE;
    p += 6;
    size_t specs = 0, n = 0;
    for (;;) {
        skip_ows(&p, end);
        if (p < end && *p == ',') { /* empty list elements are allowed (RFC 9110 §5.6.1) */
            p++;
            continue;
        }
        if (p == end) break;
        gw_range_t r;
        int rc = parse_spec(&p, end, size, &r);
        if (rc < 0 || ++specs > max) return GW_RANGE_NONE;
        if (rc > 0) out[n++] = r;
        skip_ows(&p, end);
        if (p < end && *p != ',') return GW_RANGE_NONE;
    }
    if (!specs) return GW_RANGE_NONE;
    if (!n) return GW_RANGE_UNSATISFIABLE;
    *count = coalesce(out, n);
    return GW_RANGE_OK;
}

/* ---- sending ---- */

typedef struct range_gen {
    gw_generator_t gen;
    const char *data;
    int fd;
    gw_range_t *r;
    char **part_heads; /* one per range; [n] is the closing delimiter */
    size_t n, idx;
    bool head_sent; /* of part idx, when the part itself comes from the file */
} range_gen_t;

/* One step per proceed(): a part head and its bytes (or the head, then the file piece). */
static void range_step(range_gen_t *g, gw_req_t *req)
{
    if (g->idx == g->n) {
        gw_slice_t close = {g->part_heads[g->n], strlen(g->part_heads[g->n])};
        gw_send(req, &close, 1, GW_SEND_FINAL);
        return;
    }
    const gw_range_t *r = &g->r[g->idx];
    gw_slice_t head = {g->part_heads[g->idx], strlen(g->part_heads[g->idx])};
    if (g->data) {
        gw_slice_t parts[2] = {head, {g->data + r->first, (size_t)r->len}};
        g->idx++;
        gw_send(req, parts, 2, GW_SEND_IN_PROGRESS);
    } else if (!g->head_sent) {
        g->head_sent = true;
        gw_send(req, &head, 1, GW_SEND_IN_PROGRESS);
    } else {
        g->head_sent = false;
        g->idx++;
        gw_send_file(req, g->fd, r->first, r->len, GW_SEND_IN_PROGRESS);
    }
}

static void range_proceed(gw_generator_t *self, gw_req_t *req)
{
    range_step(gw_container_of(self, range_gen_t, gen), req);
}

static void send_one_range(gw_req_t *req, const char *data, int fd, uint64_t size, const char *mime,
                           const gw_range_t *r)
{
    char *cr = gw_arena_printf(&req->arena, "bytes %llu-%llu/%llu", (unsigned long long)r->first,
                               (unsigned long long)(r->first + r->len - 1), (unsigned long long)size);
    if (cr) gw_res_add_header(req, GW_SLICE_LIT("content-range"), (gw_slice_t){cr, strlen(cr)});
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){mime, strlen(mime)});
    req->res.status = 206;
    req->res.content_length = (int64_t)r->len;
    gw_start_response(req, NULL);
    if (data) {
        gw_slice_t body = {data + r->first, (size_t)r->len};
        gw_send(req, &body, 1, GW_SEND_FINAL);
    } else {
        gw_send_file(req, fd, r->first, r->len, GW_SEND_FINAL);
    }
}

static unsigned long long next_boundary(void)
{
    static _Atomic unsigned long long counter;
    unsigned long long x = ++counter ^ ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid() << 44;
    x ^= x >> 33; /* splitmix-style scramble: boundaries do not look like a counter */
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

void gw_send_ranges(gw_req_t *req, const char *data, int fd, uint64_t size, const char *mime, const gw_range_t *r,
                    size_t n)
{
    if (n == 1) {
        send_one_range(req, data, fd, size, mime, r);
        return;
    }
    range_gen_t *g = gw_arena_alloc(&req->arena, sizeof(*g));
    char **heads = gw_arena_alloc(&req->arena, (n + 1) * sizeof(*heads));
    gw_range_t *copy = gw_arena_alloc(&req->arena, n * sizeof(*copy));
    char boundary[24];
    snprintf(boundary, sizeof(boundary), "%016llx", next_boundary());
    char *ctype = gw_arena_printf(&req->arena, "multipart/byteranges; boundary=%s", boundary);
    if (!g || !heads || !copy || !ctype) {
        gw_send_error(req, 500);
        return;
    }
    memcpy(copy, r, n * sizeof(*copy));
    int64_t total = 0;
    for (size_t i = 0; i <= n; i++) {
        heads[i] = i == n ? gw_arena_printf(&req->arena, "\r\n--%s--\r\n", boundary)
                          : gw_arena_printf(&req->arena, "\r\n--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                                            boundary, mime, (unsigned long long)r[i].first,
                                            (unsigned long long)(r[i].first + r[i].len - 1), (unsigned long long)size);
        if (!heads[i]) {
            gw_send_error(req, 500);
            return;
        }
        total += (int64_t)strlen(heads[i]) + (i < n ? (int64_t)r[i].len : 0);
    }
    *g = (range_gen_t){{range_proceed, NULL}, data, fd, copy, heads, n, 0, false};
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){ctype, strlen(ctype)});
    req->res.status = 206;
    req->res.content_length = total;
    gw_start_response(req, &g->gen);
    range_step(g, req);
}
