/* Request-body spooling: memory, then an unlinked temporary file; replayed as a sized body. See spool.h. */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_props.h"
#include "errors.h"
#include "log.h"

#define DEFAULT_MEMORY 65536
#define READ_PIECE 65536

typedef struct spool {
    gw_req_t *req;
    gw_spool_done_cb done;
    void *done_ctx;
    uint64_t cap;              /* maxRequestBodyBytes */
    const char *dir;           /* requestBufferDirectory */
    size_t mem_max;            /* requestBufferMemory */
    char *mem;                 /* the body while it fits in memory */
    size_t mem_len, mem_cap;
    int fd;                    /* the temporary file once it does not; -1 before */
    uint64_t total;
    bool finished;             /* spooling is over (complete or failed): ignore the codec */
    /* replay */
    char *rbuf;         /* file pieces are read into this */
    uint64_t off;       /* next byte to deliver */
    size_t delivered;   /* size of the piece the consumer holds */
    bool busy;          /* a piece is out and not yet acknowledged */
    bool end_sent;
    bool in_deliver;    /* the consumer is being called: a proceed from inside only marks `again` */
    bool again;
    bool dead;          /* the request ended inside a delivery: the delivery loop frees */
} spool_t;

static void spool_free(spool_t *s)
{
    if (s->fd >= 0) close(s->fd);
    free(s->mem);
    free(s->rbuf);
    free(s);
}

static void spool_cleanup(void *arg)
{
    spool_t *s = arg;
    s->req->body_source = NULL;
    s->req->body_source_ctx = NULL;
    if (s->in_deliver) {
        s->dead = true; /* still on the stack: freed when the delivery returns */
        if (s->fd >= 0) close(s->fd);
        s->fd = -1;
        return;
    }
    spool_free(s);
}

/* ---- replay: the body as a sized stream ---- */

/* Fills `piece` with the next part of the body; false on a read error. */
static bool next_piece(spool_t *s, gw_slice_t *piece)
{
    uint64_t left = s->total - s->off;
    if (s->fd < 0) {
        *piece = (gw_slice_t){s->mem ? s->mem + s->off : NULL, (size_t)left};
        return true;
    }
    size_t want = left < READ_PIECE ? (size_t)left : READ_PIECE;
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(s->fd, s->rbuf + got, want - got, (off_t)(s->off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        got += (size_t)n;
    }
    *piece = (gw_slice_t){s->rbuf, want};
    return true;
}

static void replay_resume(gw_req_t *req)
{
    spool_t *s = req->body_source_ctx;
    if (s->in_deliver) { /* a proceed from inside the consumer's callback: the loop below goes on */
        s->again = true;
        return;
    }
    s->in_deliver = true;
    do {
        s->again = false;
        if (s->end_sent || !req->body_cb) break;
        if (s->busy) {
            s->off += s->delivered;
            s->delivered = 0;
            s->busy = false;
        }
        gw_slice_t piece;
        if (!next_piece(s, &piece)) {
            gw_log_error("error", "request body spool: read failed: %s", strerror(errno ? errno : EIO));
            s->end_sent = true;
            req->body_error = gw_err_internal;
            req->body_cb(req, req->body_ctx, (gw_slice_t){NULL, 0}, GW_BODY_ABORT);
            break;
        }
        bool last = s->off + piece.len == s->total;
        s->busy = true;
        s->delivered = piece.len;
        if (last) s->end_sent = true;
        req->body_cb(req, req->body_ctx, piece, last ? GW_BODY_END : GW_BODY_MORE);
    } while (s->again && !s->dead);
    s->in_deliver = false;
    if (s->dead) spool_free(s);
}

/* ---- spooling ---- */

static int open_temp(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/gateway-body-XXXXXX", dir) >= (int)sizeof(path)) return -1;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
    return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Keeps `data`; returns 0 or the status to answer with. */
static int store(spool_t *s, gw_slice_t data)
{
    if (!data.len) return 0;
    if (s->total + data.len > s->cap) return 413;
    if (s->fd < 0 && s->mem_len + data.len <= s->mem_max) {
        if (s->mem_len + data.len > s->mem_cap) {
            size_t cap = s->mem_cap ? s->mem_cap : 4096;
            while (cap < s->mem_len + data.len) cap *= 2;
            if (cap > s->mem_max) cap = s->mem_max;
            char *m = realloc(s->mem, cap);
            if (!m) return 500;
            s->mem = m;
            s->mem_cap = cap;
        }
        memcpy(s->mem + s->mem_len, data.base, data.len);
        s->mem_len += data.len;
        s->total += data.len;
        return 0;
    }
    if (s->fd < 0) { /* over the memory threshold: everything goes to a file from now on */
        s->fd = open_temp(s->dir);
        if (s->fd < 0) {
            gw_log_error("error", "request body spool: cannot create a temporary file in %s: %s", s->dir,
                         strerror(errno));
            return 500;
        }
        if (!write_all(s->fd, s->mem, s->mem_len)) goto write_failed;
        free(s->mem);
        s->mem = NULL;
        s->mem_len = s->mem_cap = 0;
    }
    if (!write_all(s->fd, data.base, data.len)) goto write_failed;
    s->total += data.len;
    return 0;
write_failed:
    gw_log_error("error", "request body spool: write failed in %s: %s", s->dir, strerror(errno ? errno : ENOSPC));
    return 500;
}

static void spool_fail(spool_t *s, int status)
{
    gw_req_t *req = s->req;
    s->finished = true;
    /* nobody reads the rest: the codec skips what it holds and closes rather than keep alive */
    req->body_cb = NULL;
    req->body_ctx = NULL;
    if (s->done) s->done(req, s->done_ctx, false);
    if (req->res_started) return;
    if (status == 499)
        gw_send_error(req, 499); /* nobody to read it, but the request ends the usual way */
    else
        gw_req_fail(req, status);
}

static void spool_complete(spool_t *s)
{
    gw_req_t *req = s->req;
    s->finished = true;
    if (s->fd >= 0) {
        s->rbuf = malloc(READ_PIECE);
        if (!s->rbuf) {
            spool_fail(s, 500);
            return;
        }
    }
    req->body_kind = GW_BODY_LENGTH;
    req->content_length = s->total;
    req->body_cb = NULL;
    req->body_ctx = NULL;
    req->body_source = replay_resume;
    req->body_source_ctx = s;
    s->done(req, s->done_ctx, true);
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    spool_t *s = ctx;
    if (s->finished) return;
    if (st == GW_BODY_ABORT) {
        spool_fail(s, gw_error_status(req->body_error ? req->body_error : gw_err_client_closed));
        return;
    }
    int status = store(s, data);
    if (status) {
        spool_fail(s, status);
        return;
    }
    if (st == GW_BODY_END)
        spool_complete(s);
    else
        gw_req_body_proceed(req); /* stored: the codec may read more */
}

bool gw_spool_start(gw_req_t *req, gw_spool_done_cb cb, void *ctx)
{
    spool_t *s = calloc(1, sizeof(*s));
    if (!s) return false;
    s->req = req;
    s->done = cb;
    s->done_ctx = ctx;
    s->fd = -1;
    s->cap = req->route->max_body_bytes;
    int64_t mem;
    s->mem_max = gw_node_as_int(gw_route_prop(req->route, "requestBufferMemory"), &mem) && mem >= 0
                     ? (size_t)mem
                     : DEFAULT_MEMORY;
    const char *dir = gw_node_as_string(gw_route_prop(req->route, "requestBufferDirectory"));
    s->dir = dir && *dir ? dir : "/tmp";
    if (!gw_req_defer(req, spool_cleanup, s)) {
        free(s);
        return false;
    }
    gw_req_read_body(req, on_body, s);
    return true;
}

/* ---- spool, then run the handler again ---- */

static void rerun(gw_req_t *req, void *ctx, bool ok)
{
    if (!ok) return;
    const gw_handler_t *self = ctx;
    gw_handler_result_t res = self->on_request(self, req);
    if (res == GW_CONTINUE)
        gw_req_continue(req);
    else if (res == GW_ERROR)
        gw_req_fail(req, req->res.status >= 400 ? req->res.status : 500);
}

gw_handler_result_t gw_spool_then_rerun(const gw_handler_t *self, gw_req_t *req)
{
    if (!gw_spool_start(req, rerun, (void *)self)) {
        req->res.status = 500;
        return GW_ERROR;
    }
    return GW_DONE;
}
