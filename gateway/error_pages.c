/*
 * Error responses (spec §3.5): the `errorPages` file for the status when there is a readable one,
 * else the built-in HTML page; and the errorConfig route lookup used by dispatch (spec §1).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "errors.h"
#include "request.h"

const gw_route_t *gw_error_route(const gw_route_t *route, int status)
{
    for (size_t i = 0; route && i < route->num_error_routes; i++)
        if (!route->error_routes[i].scode || route->error_routes[i].scode == status) return &route->error_routes[i].route;
    return NULL;
}

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

/* Streams the configured page for `status`; false when there is none or it cannot be read. */
static bool send_error_file(gw_req_t *req, int status)
{
    const gw_route_t *r = req->route;
    for (size_t i = 0; r && i < r->num_error_pages; i++) {
        if (r->error_pages[i].scode != status) continue;
        int fd = open(r->error_pages[i].path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd < 0) return false;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !gw_req_defer(req, close_fd, (void *)(intptr_t)fd)) {
            close(fd);
            return false;
        }
        req->res.status = status;
        req->res.content_length = st.st_size;
        gw_res_add_header(req, GW_SLICE_LIT("content-type"), GW_SLICE_LIT("text/html; charset=utf-8"));
        gw_start_response(req, NULL);
        gw_send_file(req, fd, 0, (uint64_t)st.st_size, GW_SEND_FINAL);
        return true;
    }
    return false;
}

static size_t html_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 6 < cap; s++) {
        const char *e = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ? "&amp;" : *s == '"' ? "&quot;" : NULL;
        if (e) {
            memcpy(out + n, e, strlen(e));
            n += strlen(e);
        } else {
            out[n++] = *s;
        }
    }
    out[n] = '\0';
    return n;
}

static const char *error_description(gw_req_t *req, int status)
{
    if (status != 500 || !req->route || !req->route->server_admin) return gw_status_description(status);
    return gw_arena_printf(&req->arena,
                           "The server encountered an unexpected error. You may need to contact the server "
                           "administrator at %s to resolve the error.",
                           req->route->server_admin);
}

/** Sends the built-in error page for `status`, keeping headers a handler set (Allow, ...). */
void gw_send_error(gw_req_t *req, int status)
{
    if (send_error_file(req, status)) return;
    char desc[512];
    const char *d = error_description(req, status);
    html_escape(desc, sizeof(desc), d ? d : "");
    const char *reason = gw_status_reason(status);
    char *page = gw_arena_printf(&req->arena,
                                 "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n"
                                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n"
                                 "<title>%d %s</title>\n</head>\n<body>\n<h1>%d %s</h1>\n<p>%s</p>\n</body>\n"
                                 "</html>\n",
                                 status, reason, status, reason, desc);
    gw_send_inline(req, status, "text/html; charset=utf-8", page ? page : "", page ? strlen(page) : 0);
}

