/*
 * libFuzzer target for the HTTP/2 server codec (gateway/http2.c on nghttp2). Each input is what a
 * client sends after the connection preface: frames of any kind, valid or not. The harness starts
 * a connection through the HTTP/1.1 codec (as the worker does, so the preface detection and the
 * handover are covered too) over a fake transport that reads from the input and discards the
 * output, runs the worker's loop until the codec has taken everything, then ends the connection.
 *
 * The first input byte picks the chunk sizes the transport hands out, so that frames split at any
 * point. A small handler chain answers requests the ways real handlers do: inline responses,
 * streamed bodies with trailers, request bodies read in pieces (flow control), 100-continue, a
 * handler that never answers (cancelled by a reset or the close), 1xx before the head and a file
 * body. Other mode bits make the client stop reading for a while and drain the worker (GOAWAY).
 *
 * Besides memory errors and undefined behaviour, the target checks that every connection and every
 * request is released when the input ends.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "config.h"
#include "worker.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static gw_config_t *cfg;
static gw_worker_t *worker;
static int file_fd = -1; /* a 40000-byte file for gw_send_file, shared by every input */
#define FILE_LEN 40000

/* ---- fake transport: input from the fuzzer's buffer, output discarded ---- */

static struct {
    const uint8_t *data;
    size_t len, off;
    size_t chunk;  /* bytes per read; 0: all that is left */
    bool eof;      /* reads return end of stream once the input is used up */
    bool full;     /* writes report a full socket (back-pressure) */
    int reads;
} in;

static ssize_t fake_read(gw_conn_t *c, void *buf, size_t len)
{
    in.reads++;
    if (in.off == in.len) return in.eof ? 0 : -EAGAIN;
    size_t n = in.len - in.off;
    if (in.chunk && n > in.chunk) n = in.chunk;
    if (n > len) n = len;
    memcpy(buf, in.data + in.off, n);
    in.off += n;
    return (ssize_t)n;
}

static ssize_t fake_writev(gw_conn_t *c, const struct iovec *iov, int n, bool more)
{
    if (in.full) return -EAGAIN;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        /* touch every byte so that ASan checks the codec's output buffers */
        volatile uint8_t sink = 0;
        const uint8_t *p = iov[i].iov_base;
        for (size_t j = 0; j < iov[i].iov_len; j++) sink ^= p[j];
        (void)sink;
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

static void fake_dispose(gw_conn_t *c)
{
}

static bool fake_pending(gw_conn_t *c)
{
    return in.off < in.len; /* like decrypted TLS input: readable although epoll may say nothing */
}

static const gw_transport_ops_t fake_transport = {fake_read, fake_writev, NULL, fake_dispose, fake_pending};

/* ---- handlers ---- */

typedef struct {
    gw_generator_t gen;
    int left;
} stream_state_t;

static void stream_proceed(gw_generator_t *g, gw_req_t *req)
{
    stream_state_t *s = (stream_state_t *)g;
    static const gw_slice_t piece = {"0123456789abcdef", 16};
    if (--s->left > 0) {
        gw_send(req, &piece, 1, GW_SEND_IN_PROGRESS);
        return;
    }
    gw_headers_add(&req->arena, &req->res.trailers, GW_SLICE_LIT("x-trailer"), GW_SLICE_LIT("1"));
    gw_send(req, &piece, 1, GW_SEND_FINAL);
}

static void stream_stop(gw_generator_t *g, gw_req_t *req)
{
}

typedef struct {
    size_t len;
} body_state_t;

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    body_state_t *b = ctx;
    if (st == GW_BODY_ABORT) return;
    b->len += data.len;
    if (st == GW_BODY_END) {
        char *msg = gw_arena_printf(&req->arena, "%zu", b->len);
        gw_send_inline(req, 200, "text/plain", msg, msg ? strlen(msg) : 0);
        return;
    }
    gw_req_body_proceed(req);
}

static gw_handler_result_t handler(const gw_handler_t *self, gw_req_t *req)
{
    gw_slice_t p = req->path;
    if (p.len >= 2 && p.base[1] == 'b') { /* read the request body */
        body_state_t *b = gw_arena_alloc(&req->arena, sizeof(*b));
        if (!b) return GW_DONE;
        b->len = 0;
        gw_req_read_body(req, on_body, b);
        return GW_DONE;
    }
    if (p.len >= 2 && p.base[1] == 'h') return GW_DONE; /* never answers */
    if (p.len >= 2 && p.base[1] == 'i') gw_send_informational(req, 103, NULL, 0);
    if (p.len >= 2 && p.base[1] == 's') { /* a streamed body with trailers */
        stream_state_t *s = gw_arena_alloc(&req->arena, sizeof(*s));
        if (!s) return GW_DONE;
        *s = (stream_state_t){{stream_proceed, stream_stop}, 4};
        req->res.status = 200;
        req->res.content_length = -1;
        gw_start_response(req, &s->gen);
        static const gw_slice_t hello = {"hello ", 6};
        gw_send(req, &hello, 1, GW_SEND_IN_PROGRESS);
        return GW_DONE;
    }
    if (p.len >= 2 && p.base[1] == 'f') { /* a file body, read by the codec into DATA frames */
        req->res.status = 200;
        req->res.content_length = FILE_LEN;
        gw_start_response(req, NULL);
        gw_send_file(req, file_fd, 0, FILE_LEN, GW_SEND_FINAL);
        return GW_DONE;
    }
    if (p.len >= 2 && p.base[1] == 'e') {
        gw_send_error(req, 404);
        return GW_DONE;
    }
    gw_send_inline(req, 200, "text/plain", "ok\n", 3);
    return GW_DONE;
}

static const gw_handler_t fuzz_handler = {"fuzz", handler};
static const gw_handler_t *const fuzz_chain[] = {&fuzz_handler};

static void setup(void)
{
    char err[512];
    cfg = gw_config_load_string("fuzz.yaml",
                                "global:\n"
                                "  workers: 1\n"
                                "  http2Settings:\n"
                                "    maxConcurrentStreams: 16\n"
                                "    initialWindowSize: 16384\n"
                                "    enableConnectProtocol: true\n",
                                err, sizeof(err), NULL, NULL);
    if (!cfg) {
        fprintf(stderr, "fuzz config: %s\n", err);
        abort();
    }
    cfg->global_route.handlers = fuzz_chain;
    cfg->global_route.num_handlers = 1;
    cfg->global_route.num_filters = 0;
    worker = gw_worker_new(0, cfg, NULL, 0, -1);
    if (!worker) abort();
    worker->max_conns = 10;
    FILE *f = tmpfile();
    if (!f) abort();
    for (int i = 0; i < FILE_LEN; i++) fputc('a' + i % 26, f);
    fflush(f);
    file_fd = dup(fileno(f));
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!worker) setup();
    uint8_t mode = size ? data[0] : 0;
    if (size) {
        data++;
        size--;
    }
    /* the preface and the input in one exact-size heap buffer, so that ASan sees reads past it */
    size_t total = sizeof(preface) - 1 + size;
    uint8_t *buf = malloc(total);
    if (!buf) return 0;
    memcpy(buf, preface, sizeof(preface) - 1);
    if (size) memcpy(buf + sizeof(preface) - 1, data, size);
    static const size_t chunks[] = {0, 1, 7, 9, 24, 100, 4096, 0};
    in.data = buf;
    in.len = total;
    in.off = 0;
    in.chunk = chunks[mode & 7];
    in.eof = false;
    in.full = false;
    in.reads = 0;

    /* an eventfd with a non-zero count is always readable and writable: the loop wakes each turn */
    int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) abort();
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    worker->conns++;
    gw_h1_start(worker, fd, &a, &a, &fake_transport, NULL);
    for (int i = 0; i < 200 && worker->conns && in.off < in.len; i++) gw_loop_run_once(worker->loop, 0);
    /* a few turns for the answers; with mode bit 3 the client stops reading for a while */
    in.full = mode & 8;
    if (mode & 16) /* a graceful stop: GOAWAY, then close once the streams are done */
        while (worker->idle) gw_conn_drain(worker->idle);
    for (int i = 0; i < 4 && worker->conns; i++) gw_loop_run_once(worker->loop, 0);
    in.full = false;
    for (int i = 0; i < 8 && worker->conns; i++) gw_loop_run_once(worker->loop, 0);
    in.eof = true; /* the client goes away: every stream is cancelled, the connection released */
    for (int i = 0; i < 20 && worker->conns; i++) gw_loop_run_once(worker->loop, 0);
    if (worker->conns) {
        fprintf(stderr, "connection not released after end of input (%u open)\n", (unsigned)worker->conns);
        abort();
    }
    free(buf);
    return 0;
}
