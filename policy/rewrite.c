/* rewriteMap. See rewrite.h. */
#include "rewrite.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "uri.h"

/* What the path part of `url` names under the root: 'f' file, 'd' directory, 0 nothing. */
static char file_kind(int root_fd, gw_arena_t *arena, const char *url, size_t len)
{
    if (root_fd < 0) return 0;
    const char *q = memchr(url, '?', len);
    size_t plen = q ? (size_t)(q - url) : len;
    char *dec = gw_arena_alloc(arena, plen + 2);
    if (!dec) return 0;
    long n = gw_uri_decode(url, plen, dec, plen + 1);
    if (n < 0) return 0;
    dec[n] = '\0';
    const char *rel = dec;
    while (*rel == '/')
        rel++;
    if (strstr(rel, "..")) return 0; /* the normalised path has none; a rewritten one is not trusted */
    struct stat st;
    if (fstatat(root_fd, *rel ? rel : ".", &st, 0) != 0) return 0;
    return S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : 0;
}

/* Applies one rule to cur; 1 when it matched (result in *next). */
static int apply_rule(const gw_rewrite_rule_t *r, gw_arena_t *arena, gw_slice_t cur, gw_slice_t *next)
{
    size_t cap = cur.len * 2 + strlen(r->replacement) + 64;
    for (int tries = 0; tries < 2; tries++) {
        char *buf = gw_arena_alloc(arena, cap + 1);
        if (!buf) return -1;
        size_t outlen = cap;
        int rc = gw_regex_replace(r->re, cur.base, cur.len, r->replacement, buf, &outlen);
        if (rc == -1) {
            cap = outlen + 1;
            continue;
        }
        if (rc < 0) return 0; /* a bad group reference: the rule does nothing */
        if (rc == 0) return 0;
        buf[outlen] = '\0';
        *next = (gw_slice_t){buf, outlen};
        return 1;
    }
    return -1;
}

int gw_rewrite_apply(const gw_rewrite_t *rw, int root_fd, gw_arena_t *arena, const char *url, size_t len,
                     gw_slice_t *out, bool *double_slashes)
{
    gw_slice_t cur = {url, len};
    bool changed = false;
    for (size_t i = 0; i < rw->count; i++) {
        const gw_rewrite_rule_t *r = &rw->rules[i];
        if (r->is_not_file || r->is_not_dir) {
            char k = file_kind(root_fd, arena, cur.base, cur.len);
            if ((r->is_not_file && k == 'f') || (r->is_not_dir && k == 'd')) continue;
        }
        gw_slice_t next;
        int rc = apply_rule(r, arena, cur, &next);
        if (rc < 0) return 500;
        if (rc == 0) continue;
        cur = next;
        changed = true;
        *double_slashes = r->allow_double_slashes;
        if (r->last) break;
    }
    if (changed) *out = cur;
    return changed ? 1 : 0;
}

/* Current URL of the request as "path[?query]" in the arena. */
static gw_slice_t request_url(gw_req_t *req)
{
    if (!req->has_query) return req->path;
    char *s = gw_arena_printf(&req->arena, "%.*s?%.*s", (int)req->path.len, req->path.base,
                              (int)req->query.len, req->query.base);
    return s ? (gw_slice_t){s, strlen(s)} : req->path;
}

gw_handler_result_t gw_rewrite_run(const gw_rewrite_t *rw, gw_req_t *req)
{
    gw_slice_t url = request_url(req), out;
    bool dbl = req->route->allow_double_slashes;
    int rc = gw_rewrite_apply(rw, req->route->root_fd, &req->arena, url.base, url.len, &out, &dbl);
    if (rc == 0) return GW_CONTINUE;
    req->res.status = 500;
    if (rc != 1) return GW_ERROR;
    const char *q = memchr(out.base, '?', out.len);
    size_t plen = q ? (size_t)(q - out.base) : out.len;
    char *path = gw_arena_alloc(&req->arena, plen * 3 + 3);
    if (!path) return GW_ERROR;
    long n = 1;
    if (plen)
        n = gw_uri_normalize(out.base, plen, path, plen * 3 + 3, dbl);
    else
        path[0] = '/';
    if (rw->log) gw_log_error("info", "rewrite %.*s -> %.*s", (int)url.len, url.base, (int)out.len, out.base);
    if (n < 0) {
        req->res.status = 400;
        return GW_ERROR;
    }
    req->path = (gw_slice_t){path, (size_t)n};
    req->has_query = q != NULL;
    req->query = q ? (gw_slice_t){q + 1, out.len - plen - 1} : (gw_slice_t){"", 0};
    return GW_CONTINUE;
}
