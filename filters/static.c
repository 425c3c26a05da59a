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

#include "config.h"
#include "file_cache.h"
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

static bool etag_matches(gw_slice_t list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list.base, *end = list.base + list.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        if (p < end && *p == '*') return true;
        if (end - p > 2 && p[0] == 'W' && p[1] == '/') p += 2; /* weak comparison (RFC 9110 §13.1.2) */
        const char *start = p;
        while (p < end && *p != ',') p++;
        const char *stop = p;
        while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t')) stop--;
        if ((size_t)(stop - start) == elen && memcmp(start, etag, elen) == 0) return true;
    }
    return false;
}

static bool not_modified(const gw_req_t *req, const char *etag, const char *last_modified)
{
    const gw_header_t *inm = gw_req_header(req, "if-none-match");
    if (inm) return etag && etag_matches(inm->value, etag);
    const gw_header_t *ims = gw_req_header(req, "if-modified-since");
    return ims && gw_slice_eq(ims->value, last_modified); /* exact match, as nginx does by default */
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

static gw_handler_result_t serve_entry(gw_req_t *req, gw_file_entry_t *e)
{
    if (!gw_req_defer(req, release_entry, e)) {
        release_entry(e);
        return refuse(req, 500);
    }
    gw_res_add_header(req, GW_SLICE_LIT("last-modified"), (gw_slice_t){e->last_modified, strlen(e->last_modified)});
    const char *etag = req->route->enable_etag ? e->etag : NULL;
    if (etag) gw_res_add_header(req, GW_SLICE_LIT("etag"), (gw_slice_t){etag, strlen(etag)});
    if (not_modified(req, etag, e->last_modified)) {
        req->res.status = 304;
        req->res.content_length = 0;
        gw_start_response(req, NULL);
        gw_send(req, NULL, 0, GW_SEND_FINAL);
        return GW_DONE;
    }
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){e->mime, strlen(e->mime)});
    req->res.status = 200;
    req->res.content_length = e->st.st_size;
    gw_start_response(req, NULL);
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
                                      const char *name, size_t nlen)
{
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return refuse(req, 403);
    }
    const char *mime = gw_mime_type(name, nlen);
    gw_file_entry_t *e = key ? gw_file_cache_put(req->worker->file_cache, req->route->root_fd, key, fd, st, mime,
                                                 gw_loop_now(req->worker->loop))
                             : NULL;
    if (e) return serve_entry(req, e);
    e = gw_arena_alloc(&req->arena, sizeof(*e));
    if (!e) {
        close(fd);
        return refuse(req, 500);
    }
    memset(e, 0, sizeof(*e));
    e->fd = fd;
    e->st = *st;
    e->mime = mime;
    e->refs = UINT32_MAX;
    gw_file_entry_validators(e);
    return serve_entry(req, e);
}

static gw_handler_result_t serve_directory(gw_req_t *req, int dfd)
{
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
    if (cached) return serve_entry(req, cached);
    int fd = gw_open_beneath(r->root_fd, p);
    if (fd < 0) return refuse(req, errno_status(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return refuse(req, 500);
    }
    if (!S_ISDIR(st.st_mode)) return serve_file(req, fd, &st, p, rel, (size_t)n);
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
    return serve_file(req, ifd, &st, NULL, iname, strlen(iname));
}

const gw_handler_t gw_static_handler = {"static", static_on_request};
