/*
 * Static files. A path is opened relative to the route's root directory fd with openat2
 * RESOLVE_BENEATH, so neither "..", an encoded dot, nor a symlink can leave the root; the kernel
 * checks every component. Without openat2 (kernels before 5.6) symlinks are refused outright.
 */
#include "static.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compress.h"
#include "config.h"
#include "http_cond.h"
#include "response.h"
#include "file_cache.h"
#include "static_encoded.h"
#include "worker.h"
#include "uri.h"

static const char allow_methods[] = "GET, POST, HEAD, OPTIONS";
static const char *const index_files[] = {"index.html", "index.htm", "index.xhtml"};


static gw_handler_result_t refuse(gw_req_t *req, int status)
{
    req->res.status = status;
    return GW_ERROR;
}

static int errno_status(int e)
{
    if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG) return 404;
    if (e == EXDEV || e == ELOOP) return 404; /* an escape attempt: do not confirm the target */
    if (e == EACCES || e == EPERM) return 403;
    return 500;
}

static gw_handler_result_t redirect_to_dir(gw_req_t *req)
{
    char *loc = gw_arena_printf(&req->arena, "%.*s/%s%.*s", (int)req->path.len, req->path.base,
                                req->has_query ? "?" : "", (int)req->query.len, req->query.base);
    if (!loc) return refuse(req, 500);
    gw_res_add_header(req, GW_SLICE_LIT("location"), (gw_slice_t){loc, strlen(loc)});
    gw_send_error(req, 301);
    return GW_DONE;
}

/* Opens an index file of directory `dfd`; returns its fd (and name) or -1. */
static int open_index(int dfd, const char **name)
{
    for (size_t i = 0; i < sizeof(index_files) / sizeof(index_files[0]); i++) {
        int fd = gw_open_beneath(dfd, index_files[i]);
        if (fd >= 0) {
            *name = index_files[i];
            return fd;
        }
    }
    return -1;
}

static void release_entry(void *arg)
{
    gw_file_entry_t *e = arg;
    if (e->refs == UINT32_MAX) { /* an uncached entry that lives in the request arena */
        close(e->fd);
        return;
    }
    gw_file_cache_release(NULL, e);
}

/* An entry for an opened regular file (takes fd): the worker cache's when it takes it (key set),
 * else one for this request only. NULL without memory. */
static gw_file_entry_t *entry_for(gw_req_t *req, int fd, const struct stat *st, const char *key, const char *mime)
{
    gw_file_entry_t *e = key ? gw_file_cache_put(req->worker->file_cache, req->route->root_fd, key, fd, st, mime,
                                                 gw_loop_now(req->worker->loop))
                             : NULL;
    if (e) return e;
    e = gw_arena_alloc(&req->arena, sizeof(*e));
    if (!e) {
        close(fd);
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->st = *st;
    e->mime = mime;
    e->refs = UINT32_MAX;
    gw_file_entry_validators(e);
    return e;
}

/* Looks a regular file up (cache first); NULL when absent or not a regular file. */
static gw_file_entry_t *lookup(gw_req_t *req, const char *rel, const char *mime)
{
    const gw_route_t *r = req->route;
    gw_file_entry_t *e = gw_file_cache_get(req->worker->file_cache, r->root_fd, rel, gw_loop_now(req->worker->loop));
    if (e) return e;
    int fd = gw_open_beneath(r->root_fd, rel);
    struct stat st;
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    return entry_for(req, fd, &st, rel, mime);
}

/* ---- precompressed siblings: file.br / file.gz, used when at least as new as the file ---- */

static const struct {
    gw_encoding_t enc;
    const char *ext;
} siblings[] = {{GW_ENC_BR, ".br"}, {GW_ENC_GZIP, ".gz"}};

static char *sibling_name(gw_req_t *req, const char *rel, size_t i)
{
    size_t n = strlen(rel); /* by hand: this runs on every request for a compressible file */
    char *name = gw_arena_alloc(&req->arena, n + 4);
    if (!name) return NULL;
    memcpy(name, rel, n);
    memcpy(name + n, siblings[i].ext, 4); /* ".gz" or ".br" with its NUL */
    return name;
}

static bool fresh_sibling(const gw_file_entry_t *s, const gw_file_entry_t *e)
{
    return s->st.st_mtim.tv_sec > e->st.st_mtim.tv_sec ||
           (s->st.st_mtim.tv_sec == e->st.st_mtim.tv_sec && s->st.st_mtim.tv_nsec >= e->st.st_mtim.tv_nsec);
}

/* Which siblings exist, remembered on a cached entry for the cache's validity period. */
static unsigned sibling_mask(gw_req_t *req, gw_file_entry_t *e, const char *rel)
{
    uint64_t now = gw_loop_now(req->worker->loop);
    bool cached = e->refs != UINT32_MAX;
    if (cached && e->siblings_known && now - e->siblings_ms < gw_file_cache_validity_ms(req->worker->file_cache))
        return e->siblings;
    unsigned mask = 0;
    for (size_t i = 0; i < sizeof(siblings) / sizeof(siblings[0]); i++) {
        char *name = sibling_name(req, rel, i);
        gw_file_entry_t *s = name ? lookup(req, name, e->mime) : NULL;
        if (!s) continue;
        if (fresh_sibling(s, e)) mask |= GW_ENC_BIT(siblings[i].enc);
        release_entry(s);
    }
    if (cached) {
        e->siblings = (uint8_t)mask;
        e->siblings_known = true;
        e->siblings_ms = now;
    }
    return mask;
}

static bool serve_precompressed(gw_req_t *req, gw_file_entry_t *e, const char *rel)
{
    if (!rel || !req->route->enable_compression || !gw_compressible_type((gw_slice_t){e->mime, strlen(e->mime)}))
        return false;
    unsigned mask = sibling_mask(req, e, rel);
    if (!mask) return false; /* no sibling: the request's Accept-Encoding does not matter */
    gw_res_vary(req, "Accept-Encoding");
    const gw_header_t *ae = gw_req_header(req, "accept-encoding");
    gw_encoding_t enc = ae ? gw_accept_encoding_pick(ae->value, mask) : GW_ENC_IDENTITY;
    if (!enc) return false;
    char *name = sibling_name(req, rel, enc == GW_ENC_BR ? 0 : 1);
    gw_file_entry_t *s = name ? lookup(req, name, e->mime) : NULL;
    if (!s) return false;
    if (!gw_req_defer(req, release_entry, s)) {
        release_entry(s);
        return false;
    }
    const char *tok = gw_encoding_token(enc);
    gw_res_add_header(req, GW_SLICE_LIT("content-encoding"), (gw_slice_t){tok, strlen(tok)});
    const gw_header_t *etag = gw_res_header(req, "etag");
    if (etag) ((gw_header_t *)etag)->value = gw_etag_with_suffix(req, etag->value, tok);
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){e->mime, strlen(e->mime)});
    req->res.status = 200;
    req->res.content_length = s->st.st_size;
    gw_start_response(req, NULL);
    if (s->data) {
        gw_slice_t body = {s->data, (size_t)s->st.st_size};
        gw_send(req, &body, 1, GW_SEND_FINAL);
    } else {
        gw_send_file(req, s->fd, 0, (uint64_t)s->st.st_size, GW_SEND_FINAL);
    }
    return true;
}

/* ---- ranges (RFC 9110 §14) ---- */

/* Answers a Range request if there is one to honour; false: send the whole file. */
static bool serve_range(gw_req_t *req, gw_file_entry_t *e, const char *etag, gw_handler_result_t *res)
{
    const gw_header_t *rh = gw_req_header(req, "range");
    if (!rh || req->method_id != GW_M_GET || !gw_if_range_ok(req, etag, e->st.st_mtim.tv_sec)) return false;
    gw_range_t ranges[GW_MAX_RANGES];
    size_t n;
    uint64_t size = (uint64_t)e->st.st_size;
    switch (gw_range_parse(rh->value, size, ranges, GW_MAX_RANGES, &n)) {
    case GW_RANGE_OK:
        gw_send_ranges(req, e->data, e->fd, size, e->mime, ranges, n);
        *res = GW_DONE;
        return true;
    case GW_RANGE_UNSATISFIABLE: {
        char *cr = gw_arena_printf(&req->arena, "bytes */%llu", (unsigned long long)size);
        if (cr) gw_res_add_header(req, GW_SLICE_LIT("content-range"), (gw_slice_t){cr, strlen(cr)});
        *res = refuse(req, 416);
        return true;
    }
    default:
        return false; /* malformed, another unit, too many ranges: ignored */
    }
}

static gw_handler_result_t serve_entry(gw_req_t *req, gw_file_entry_t *e, const char *rel)
{
    if (!gw_req_defer(req, release_entry, e)) {
        release_entry(e);
        return refuse(req, 500);
    }
    gw_res_add_header(req, GW_SLICE_LIT("last-modified"), (gw_slice_t){e->last_modified, strlen(e->last_modified)});
    const char *etag = req->route->enable_etag ? e->etag : NULL;
    if (etag) gw_res_add_header(req, GW_SLICE_LIT("etag"), (gw_slice_t){etag, strlen(etag)});
    switch (gw_cond_evaluate(req, etag, e->st.st_mtim.tv_sec)) {
    case GW_COND_NOT_MODIFIED:
        req->res.status = 304;
        req->res.content_length = 0;
        gw_start_response(req, NULL);
        gw_send(req, NULL, 0, GW_SEND_FINAL);
        return GW_DONE;
    case GW_COND_FAILED:
        return refuse(req, 412);
    default:
        break;
    }
    if (serve_precompressed(req, e, rel)) return GW_DONE;
    gw_res_add_header(req, GW_SLICE_LIT("accept-ranges"), GW_SLICE_LIT("bytes"));
    gw_handler_result_t res;
    if (serve_range(req, e, etag, &res)) return res;
    if (gw_static_serve_encoded(req, e)) return GW_DONE;
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){e->mime, strlen(e->mime)});
    req->res.status = 200;
    req->res.content_length = e->st.st_size;
    gw_start_response(req, NULL);
    gw_static_keep_encoded(req, e);
    if (e->data) {
        gw_slice_t body = {e->data, (size_t)e->st.st_size}; /* head and body in one writev */
        gw_send(req, &body, 1, GW_SEND_FINAL);
    } else {
        gw_send_file(req, e->fd, 0, (uint64_t)e->st.st_size, GW_SEND_FINAL);
    }
    return GW_DONE;
}

/* Serves an opened file: through the worker's cache when it takes it, else once. */
static gw_handler_result_t serve_file(gw_req_t *req, int fd, const struct stat *st, const char *key,
                                      const char *rel, const char *name, size_t nlen)
{
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return refuse(req, 403);
    }
    gw_file_entry_t *e = entry_for(req, fd, st, key, gw_mime_type(name, nlen));
    return e ? serve_entry(req, e, rel) : refuse(req, 500);
}

static gw_handler_result_t serve_directory(gw_req_t *req, int dfd)
{
    if (req->route->enable_listing) return gw_listing_send(req, dfd);
    close(dfd);
    return refuse(req, 403); /* no index file; listings are off */
}

static gw_handler_result_t method_check(gw_req_t *req)
{
    gw_res_add_header(req, GW_SLICE_LIT("allow"), GW_SLICE_LIT(allow_methods));
    if (req->method_id == GW_M_OPTIONS) {
        req->res.status = 204;
        req->res.content_length = 0;
        gw_start_response(req, NULL);
        gw_send(req, NULL, 0, GW_SEND_FINAL);
        return GW_DONE;
    }
    return refuse(req, 405);
}

static gw_handler_result_t static_on_request(const gw_handler_t *self, gw_req_t *req)
{
    if (req->method_id != GW_M_GET && req->method_id != GW_M_HEAD) return method_check(req);
    const gw_route_t *r = req->route;
    if (r->root_fd < 0) return GW_CONTINUE;
    char *rel = gw_arena_alloc(&req->arena, req->path.len + 2);
    long n = rel ? gw_uri_decode(req->path.base, req->path.len, rel, req->path.len + 1) : -1;
    if (n < 0) return refuse(req, 400);
    rel[n] = '\0';
    const char *p = rel;
    while (*p == '/') p++;
    if (!*p) p = ".";
    gw_file_entry_t *cached = gw_file_cache_get(req->worker->file_cache, r->root_fd, p, gw_loop_now(req->worker->loop));
    if (cached) return serve_entry(req, cached, p);
    int fd = gw_open_beneath(r->root_fd, p);
    if (fd < 0) return refuse(req, errno_status(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return refuse(req, 500);
    }
    if (!S_ISDIR(st.st_mode)) return serve_file(req, fd, &st, p, p, rel, (size_t)n);
    bool slash = req->path.len && req->path.base[req->path.len - 1] == '/';
    if (!slash && r->trailing_slash_redirect) {
        close(fd);
        return redirect_to_dir(req);
    }
    const char *iname;
    int ifd = open_index(fd, &iname);
    if (ifd < 0) return serve_directory(req, fd);
    close(fd);
    if (fstat(ifd, &st) != 0) {
        close(ifd);
        return refuse(req, 500);
    }
    /* not cached under its own name (the directory's key would miss it every time), but its
     * siblings (index.html.br) are looked up by that name */
    size_t pl = strcmp(p, ".") ? strlen(p) : 0;
    char *irel = gw_arena_printf(&req->arena, "%.*s%s%s", (int)pl, p, pl && p[pl - 1] != '/' ? "/" : "", iname);
    return serve_file(req, ifd, &st, NULL, irel, iname, strlen(iname));
}

const gw_handler_t gw_static_handler = {"static", static_on_request};
