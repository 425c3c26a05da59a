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
#include "uri.h"

static const char allow_methods[] = "GET, POST, HEAD, OPTIONS";
static const char *const index_files[] = {"index.html", "index.htm", "index.xhtml"};

static int open_beneath(int dirfd, const char *rel)
{
    static int have_openat2 = 1;
    if (have_openat2) {
        struct open_how how = {
            .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS) return (int)fd;
        have_openat2 = 0; /* benign race: every thread learns the same answer */
    }
    /* the normalised path has no ".." left; refusing symlinks keeps us inside the root */
    if (strstr(rel, "..")) {
        errno = EACCES;
        return -1;
    }
    return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
}

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

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
        int fd = open_beneath(dfd, index_files[i]);
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

static void add_validators(gw_req_t *req, const struct stat *st, char **etag, char **lm)
{
    *lm = gw_arena_alloc(&req->arena, 32);
    if (*lm) {
        gw_http_date(st->st_mtim.tv_sec, *lm);
        gw_res_add_header(req, GW_SLICE_LIT("last-modified"), (gw_slice_t){*lm, strlen(*lm)});
    }
    *etag = NULL;
    if (!req->route->enable_etag) return;
    *etag = gw_arena_printf(&req->arena, "\"%llx-%llx-%llx\"", (unsigned long long)st->st_ino,
                            (unsigned long long)st->st_size,
                            (unsigned long long)st->st_mtim.tv_sec * 1000000000ull + (unsigned long long)st->st_mtim.tv_nsec);
    if (*etag) gw_res_add_header(req, GW_SLICE_LIT("etag"), (gw_slice_t){*etag, strlen(*etag)});
}

static gw_handler_result_t serve_file(gw_req_t *req, int fd, const struct stat *st, const char *name, size_t nlen)
{
    if (!gw_req_defer(req, close_fd, (void *)(intptr_t)fd)) {
        close(fd);
        return refuse(req, 500);
    }
    if (!S_ISREG(st->st_mode)) return refuse(req, 403);
    char *etag, *lm;
    add_validators(req, st, &etag, &lm);
    if (lm && not_modified(req, etag, lm)) {
        req->res.status = 304;
        req->res.content_length = 0;
        gw_start_response(req, NULL);
        gw_send(req, NULL, 0, GW_SEND_FINAL);
        return GW_DONE;
    }
    const char *type = gw_mime_type(name, nlen);
    gw_res_add_header(req, GW_SLICE_LIT("content-type"), (gw_slice_t){type, strlen(type)});
    req->res.status = 200;
    req->res.content_length = st->st_size;
    gw_start_response(req, NULL);
    gw_send_file(req, fd, 0, (uint64_t)st->st_size, GW_SEND_FINAL);
    return GW_DONE;
}

static gw_handler_result_t serve_directory(gw_req_t *req, int dfd)
{
    close_fd((void *)(intptr_t)dfd);
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
    int fd = open_beneath(r->root_fd, p);
    if (fd < 0) return refuse(req, errno_status(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return refuse(req, 500);
    }
    if (!S_ISDIR(st.st_mode)) return serve_file(req, fd, &st, rel, (size_t)n);
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
    return serve_file(req, ifd, &st, iname, strlen(iname));
}

const gw_handler_t gw_static_handler = {"static", static_on_request};
