/*
 * The response stream and request-body stream contracts, driven through the real HTTP/1.1 codec
 * with a fake peer on the other end of a socketpair and test handlers in place of the chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "worker.h"

static gw_config_t *cfg;
static gw_worker_t *worker;
static int peer_fd;

/* ---- test handlers ---- */

typedef struct {
    gw_generator_t gen;
    int step;
    bool abort;
} stream_state_t;

static bool gen_stopped;

static void stream_proceed(gw_generator_t *g, gw_req_t *req)
{
    stream_state_t *s = (stream_state_t *)g;
    static const gw_slice_t world = {"world", 5};
    if (s->abort) {
        gw_send(req, NULL, 0, GW_SEND_ERROR);
        return;
    }
    gw_headers_add(&req->arena, &req->res.trailers, GW_SLICE_LIT("x-t"), GW_SLICE_LIT("1"));
    s->step++;
    gw_send(req, &world, 1, GW_SEND_FINAL);
}

static void stream_stop(gw_generator_t *g, gw_req_t *req)
{
    (void)g;
    (void)req;
    gen_stopped = true;
}

static gw_handler_result_t stream_handler(const gw_handler_t *self, gw_req_t *req)
{
    stream_state_t *s = gw_arena_alloc(&req->arena, sizeof(*s));
    *s = (stream_state_t){{stream_proceed, stream_stop}, 0, gw_slice_eq(req->path, "/abort")};
    req->res.status = 200;
    req->res.content_length = -1;
    gw_start_response(req, &s->gen);
    if (gw_slice_eq(req->path, "/hang")) return GW_DONE; /* never sends: cancelled by the client */
    static const gw_slice_t hello = {"hello ", 6};
    gw_send(req, &hello, 1, GW_SEND_IN_PROGRESS);
    return GW_DONE;
}

typedef struct {
    char *buf;
    size_t len;
    int pieces;
} body_state_t;

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    body_state_t *b = ctx;
    if (st == GW_BODY_ABORT) return;
    if (b->len + data.len <= 200000) memcpy(b->buf + b->len, data.base, data.len);
    b->len += data.len;
    b->pieces++;
    if (st == GW_BODY_END) {
        char *msg = gw_arena_printf(&req->arena, "%zu", b->len);
        gw_send_inline(req, 200, "text/plain", msg, strlen(msg));
        return;
    }
    gw_req_body_proceed(req);
}

static gw_handler_result_t echo_len_handler(const gw_handler_t *self, gw_req_t *req)
{
    body_state_t *b = gw_arena_alloc(&req->arena, sizeof(*b));
    *b = (body_state_t){gw_arena_alloc(&req->arena, 200000), 0, 0};
    gw_req_read_body(req, on_body, b);
    return GW_DONE;
}

/* A body filter that upper-cases everything passing through it. */
static void upper_send(gw_ostream_t *self, gw_req_t *req, const gw_slice_t *bufs, size_t n, gw_send_state_t st)
{
    gw_slice_t out[8];
    for (size_t i = 0; i < n && i < 8; i++) {
        char *c = gw_arena_strndup(&req->arena, bufs[i].base, bufs[i].len);
        for (size_t j = 0; j < bufs[i].len; j++)
            if (c[j] >= 'a' && c[j] <= 'z') c[j] = (char)(c[j] - 32);
        out[i] = (gw_slice_t){c, bufs[i].len};
    }
    gw_ostream_next(self, req, out, n, st);
}

static void upper_setup(const gw_filter_t *self, gw_req_t *req)
{
    if (!gw_slice_eq(req->path, "/upper") && !gw_slice_eq(req->path, "/upperfile")) return;
    gw_ostream_t *os = gw_arena_alloc(&req->arena, sizeof(*os));
    os->send = upper_send;
    gw_req_push_ostream(req, os);
}

static const gw_filter_t upper_filter = {"upper", upper_setup};
static const gw_filter_t *const test_filters[] = {&upper_filter};
static char file_path[64];

static gw_handler_result_t file_handler(const gw_handler_t *self, gw_req_t *req)
{
    int fd = open(file_path, O_RDONLY);
    req->res.status = 200;
    req->res.content_length = 40000;
    gw_start_response(req, NULL);
    gw_send_file(req, fd, 0, 40000, GW_SEND_FINAL);
    close(fd); /* the test file stays readable through the pump's pread until the end: keep fd */
    return GW_DONE;
}

/* A tunnel: 101, then every client piece is echoed back; the echo's proceed asks for more. */
typedef struct {
    gw_generator_t gen;
    char buf[256];
} tunnel_t;

static void tunnel_proceed(gw_generator_t *g, gw_req_t *req)
{
    (void)g;
    gw_req_body_proceed(req);
}

static void on_tunnel_data(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    tunnel_t *t = ctx;
    if (st != GW_BODY_MORE) return;
    size_t n = data.len < sizeof(t->buf) ? data.len : sizeof(t->buf);
    memcpy(t->buf, data.base, n);
    gw_slice_t out = {t->buf, n};
    gw_send(req, &out, 1, GW_SEND_IN_PROGRESS);
}

static gw_handler_result_t tunnel_handler(const gw_handler_t *self, gw_req_t *req)
{
    if (!req->upgrade) return GW_CONTINUE;
    tunnel_t *t = gw_arena_alloc(&req->arena, sizeof(*t));
    t->gen = (gw_generator_t){tunnel_proceed, NULL};
    req->res.status = 101;
    gw_res_add_header(req, GW_SLICE_LIT("upgrade"), GW_SLICE_LIT("echo"));
    gw_start_response(req, &t->gen);
    gw_send(req, NULL, 0, GW_SEND_IN_PROGRESS);
    gw_req_read_body(req, on_tunnel_data, t);
    return GW_DONE;
}

static gw_handler_result_t dispatching(const gw_handler_t *self, gw_req_t *req)
{
    if (gw_slice_eq(req->path, "/ws")) return tunnel_handler(self, req);
    if (gw_slice_eq(req->path, "/upperfile")) return file_handler(self, req);
    if (gw_slice_eq(req->path, "/echo")) return echo_len_handler(self, req);
    return stream_handler(self, req);
}

static const gw_handler_t test_handler = {"test", dispatching};
static const gw_handler_t *const test_chain[] = {&test_handler};

/* ---- fake peer ---- */

static void new_connection(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    worker->conns++;
    peer_fd = sv[1];
    gw_h1_accept(worker, sv[0], &a, &a);
}

static void peer_send(const char *s, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(peer_fd, s + off, n - off);
        if (w > 0) off += (size_t)w;
        gw_loop_run_once(worker->loop, 1);
    }
}

/* Runs the loop and collects what the gateway wrote until `until` appears or EOF. */
static size_t peer_read(char *out, size_t cap, const char *until, bool *eof)
{
    size_t len = 0;
    *eof = false;
    for (int i = 0; i < 400; i++) {
        gw_loop_run_once(worker->loop, 5);
        ssize_t n = read(peer_fd, out + len, cap - len - 1);
        if (n == 0) {
            *eof = true;
            break;
        }
        if (n > 0) len += (size_t)n;
        out[len] = '\0';
        if (until && strstr(out, until)) break;
    }
    out[len] = '\0';
    return len;
}

static void test_streaming_chunked_with_trailers(void)
{
    new_connection();
    const char req[] = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), "\r\n0\r\nx-t: 1\r\n\r\n", &eof);
    CHECK(strstr(buf, "HTTP/1.1 200 OK\r\n") == buf);
    CHECK(strstr(buf, "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\nx-t: 1\r\n\r\n") != NULL);
    CHECK(!eof);
    /* the connection is kept alive: a second request works */
    const char req2[] = "GET /again HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req2, sizeof(req2) - 1);
    peer_read(buf, sizeof(buf), "0\r\nx-t: 1\r\n\r\n", &eof);
    CHECK(strstr(buf, "hello") != NULL);
    close(peer_fd);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_http10_close_delimited(void)
{
    new_connection();
    const char req[] = "GET /stream HTTP/1.0\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), NULL, &eof);
    CHECK(eof);
    CHECK(strstr(buf, "Connection: close\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\nhello world") != NULL); /* no chunking on 1.0 */
    close(peer_fd);
}

static void test_abort_is_not_a_clean_end(void)
{
    new_connection();
    const char req[] = "GET /abort HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), NULL, &eof);
    CHECK(eof);
    CHECK(strstr(buf, "6\r\nhello \r\n") != NULL);
    CHECK(strstr(buf, "0\r\n\r\n") == NULL); /* never a last chunk */
    close(peer_fd);
}

static void test_cancel_on_client_close(void)
{
    gen_stopped = false;
    new_connection();
    const char req[] = "GET /hang HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
    CHECK(!gen_stopped);
    close(peer_fd);
    for (int i = 0; i < 10 && !gen_stopped; i++) gw_loop_run_once(worker->loop, 5);
    CHECK(gen_stopped);
}

static void body_roundtrip(const char *head, const char *body, size_t body_len, const char *expect)
{
    new_connection();
    peer_send(head, strlen(head));
    peer_send(body, body_len);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), expect, &eof);
    if (!strstr(buf, expect)) {
        check_failures++;
        fprintf(stderr, "body roundtrip: expected '%s' in '%s'\n", expect, buf);
    }
    close(peer_fd);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_request_bodies(void)
{
    body_roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n", "abcde", 5, "\r\n\r\n5");
    const char chunked[] = "4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nx-trailer: y\r\n\r\n";
    body_roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", chunked,
                   sizeof(chunked) - 1, "\r\n\r\n9");
    /* larger than the read buffer: flows through it with back-pressure */
    static char big[100000];
    memset(big, 'x', sizeof(big));
    body_roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", big, sizeof(big),
                   "\r\n\r\n100000");
    body_roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", "abc", 3,
                   "\r\n\r\n3");
}

static void test_expect_continue(void)
{
    new_connection();
    const char head[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    peer_send(head, sizeof(head) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), "100 Continue\r\n\r\n", &eof);
    CHECK(strstr(buf, "HTTP/1.1 100 Continue\r\n\r\n") == buf);
    peer_send("abc", 3);
    peer_read(buf, sizeof(buf), "\r\n\r\n3", &eof);
    CHECK(strstr(buf, "HTTP/1.1 200 OK") != NULL);
    close(peer_fd);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_pipelining(void)
{
    new_connection();
    const char reqs[] = "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
                        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi";
    peer_send(reqs, sizeof(reqs) - 1);
    char buf[8192];
    bool eof;
    peer_read(buf, sizeof(buf), "\r\n\r\n2", &eof);
    int responses = 0;
    for (const char *p = buf; (p = strstr(p, "HTTP/1.1 200 OK")); p++) responses++;
    CHECK_EQ_INT(responses, 3);
    close(peer_fd);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_filter_chain(void)
{
    new_connection();
    const char req[] = "GET /upper HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), "0\r\nx-t: 1\r\n\r\n", &eof);
    CHECK(strstr(buf, "6\r\nHELLO \r\n5\r\nWORLD\r\n") != NULL);
    close(peer_fd);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_file_through_filter(void)
{
    snprintf(file_path, sizeof(file_path), "/tmp/gw-test-file-%d", (int)getpid());
    FILE *f = fopen(file_path, "w");
    for (int i = 0; i < 40000; i++) fputc('a' + i % 26, f);
    fclose(f);
    new_connection();
    const char req[] = "GET /upperfile HTTP/1.1\r\nHost: t\r\n\r\n";
    peer_send(req, sizeof(req) - 1);
    static char buf[65536];
    bool eof;
    size_t len = peer_read(buf, sizeof(buf), NULL, &eof);
    char *body = strstr(buf, "\r\n\r\n");
    CHECK(body != NULL);
    if (body) {
        body += 4;
        size_t blen = len - (size_t)(body - buf);
        CHECK_EQ_INT(blen, 40000);
        bool upper = blen == 40000;
        for (size_t i = 0; upper && i < blen; i++) upper = body[i] == 'A' + (char)(i % 26);
        CHECK(upper);
    }
    close(peer_fd);
    unlink(file_path);
    for (int i = 0; i < 5; i++) gw_loop_run_once(worker->loop, 2);
}

static void test_upgrade_tunnel(void)
{
    new_connection();
    const char req[] = "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello";
    peer_send(req, sizeof(req) - 1);
    char buf[4096];
    bool eof;
    peer_read(buf, sizeof(buf), "\r\n\r\nhello", &eof);
    CHECK(strstr(buf, "HTTP/1.1 101 Switching Protocols\r\n") == buf);
    CHECK(strstr(buf, "Connection: upgrade\r\n") != NULL);
    CHECK(strstr(buf, "upgrade: echo\r\n") != NULL);
    CHECK(strstr(buf, "Content-Length") == NULL && strstr(buf, "chunked") == NULL);
    CHECK(strstr(buf, "\r\n\r\nhello") != NULL); /* bytes sent with the request went through */
    peer_send(" world", 6);
    peer_read(buf, sizeof(buf), " world", &eof);
    CHECK(strcmp(buf, " world") == 0); /* raw, unframed */
    close(peer_fd);
    for (int i = 0; i < 10; i++) gw_loop_run_once(worker->loop, 2);
}

int main(void)
{
    char err[512];
    cfg = gw_config_load_string("t.yaml", "global:\n  workers: 1\n", err, sizeof(err), NULL, NULL);
    CHECK(cfg != NULL);
    cfg->global_route.handlers = test_chain;
    cfg->global_route.num_handlers = 1;
    cfg->global_route.filters = test_filters;
    cfg->global_route.num_filters = 1;
    worker = gw_worker_new(0, cfg, NULL, 0, -1);
    CHECK(worker != NULL);
    worker->max_conns = 100;
    test_streaming_chunked_with_trailers();
    test_http10_close_delimited();
    test_abort_is_not_a_clean_end();
    test_cancel_on_client_close();
    test_request_bodies();
    test_expect_continue();
    test_pipelining();
    test_filter_chain();
    test_upgrade_tunnel();
    test_file_through_filter();
    for (int i = 0; i < 20 && worker->conns; i++) gw_loop_run_once(worker->loop, 5);
    CHECK_EQ_INT(worker->conns, 0);
    gw_worker_free(worker);
    gw_config_free(cfg);
    return check_report("http1_codec");
}
