/*
 * The HTTP/2 codec driven over a socketpair by a client-side nghttp2 session (h2c prior knowledge,
 * handed over by the HTTP/1.1 codec): a streamed GET with trailers, a POST body larger than the
 * stream window (flow control through gw_req_body_proceed), a client reset cancelling a handler,
 * a file body, and :authority mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "check.h"
#include "config.h"
#include "tls.h"
#include "worker.h"

static gw_config_t *cfg;
static gw_worker_t *worker;

/* ---- test handlers ---- */

typedef struct {
    gw_generator_t gen;
} stream_state_t;

static bool gen_stopped;

static void stream_proceed(gw_generator_t *g, gw_req_t *req)
{
    static const gw_slice_t world = {"world", 5};
    gw_headers_add(&req->arena, &req->res.trailers, GW_SLICE_LIT("x-t"), GW_SLICE_LIT("1"));
    gw_send(req, &world, 1, GW_SEND_FINAL);
}

static void stream_stop(gw_generator_t *g, gw_req_t *req)
{
    gen_stopped = true;
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
    b->len += data.len;
    b->pieces++;
    if (st == GW_BODY_END) {
        char *msg = gw_arena_printf(&req->arena, "%zu", b->len);
        gw_send_inline(req, 200, "text/plain", msg, strlen(msg));
        return;
    }
    gw_req_body_proceed(req);
}

static void close_fd(void *arg)
{
    close((int)(intptr_t)arg);
}

static gw_handler_result_t handler(const gw_handler_t *self, gw_req_t *req)
{
    if (gw_slice_eq(req->path, "/echo")) {
        body_state_t *b = gw_arena_alloc(&req->arena, sizeof(*b));
        *b = (body_state_t){NULL, 0, 0};
        gw_req_read_body(req, on_body, b);
        return GW_DONE;
    }
    if (gw_slice_eq(req->path, "/authority")) {
        char *msg = gw_arena_printf(&req->arena, "%.*s %s %d", (int)req->authority.len, req->authority.base,
                                    req->codec->protocol, req->version);
        gw_send_inline(req, 200, "text/plain", msg, strlen(msg));
        return GW_DONE;
    }
    if (gw_slice_eq(req->path, "/file")) {
        FILE *f = tmpfile();
        for (int i = 0; i < 100000; i++) fputc('a' + i % 26, f);
        fflush(f);
        int fd = dup(fileno(f));
        fclose(f);
        gw_req_defer(req, close_fd, (void *)(intptr_t)fd);
        req->res.status = 200;
        req->res.content_length = 100000;
        gw_start_response(req, NULL);
        gw_send_file(req, fd, 0, 100000, GW_SEND_FINAL);
        return GW_DONE;
    }
    stream_state_t *s = gw_arena_alloc(&req->arena, sizeof(*s));
    *s = (stream_state_t){{stream_proceed, stream_stop}};
    req->res.status = 200;
    req->res.content_length = -1;
    gw_start_response(req, &s->gen);
    if (gw_slice_eq(req->path, "/hang")) return GW_DONE; /* never sends: cancelled by the client */
    static const gw_slice_t hello = {"hello ", 6};
    gw_send(req, &hello, 1, GW_SEND_IN_PROGRESS);
    return GW_DONE;
}

static const gw_handler_t test_handler = {"test", handler};
static const gw_handler_t *const test_chain[] = {&test_handler};

/* ---- fake client ---- */

typedef struct response {
    int status;
    bool saw_100;
    char body[200000];
    size_t len;
    bool closed;
    uint32_t error;
    char trailer[64];
} response_t;

static int peer_fd;
static nghttp2_session *cli;
static response_t responses[16];
static const char *upload;
static size_t upload_len, upload_off;

static response_t *resp_of(int32_t id)
{
    return &responses[(id / 2) % 16];
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                       const uint8_t *value, size_t valuelen, uint8_t flags, void *u)
{
    response_t *r = resp_of(f->hd.stream_id);
    if (namelen == 7 && !memcmp(name, ":status", 7)) r->status = atoi((const char *)value);
    if (r->status == 100) r->saw_100 = true;
    if (namelen == 3 && !memcmp(name, "x-t", 3)) snprintf(r->trailer, sizeof(r->trailer), "%.*s", (int)valuelen, value);
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *u)
{
    response_t *r = resp_of(id);
    if (r->len + len < sizeof(r->body)) memcpy(r->body + r->len, data, len);
    r->len += len;
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *u)
{
    resp_of(id)->closed = true;
    resp_of(id)->error = error_code;
    return 0;
}

static ssize_t c_read_upload(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
                             nghttp2_data_source *src, void *u)
{
    size_t n = upload_len - upload_off < length ? upload_len - upload_off : length;
    memcpy(buf, upload + upload_off, n);
    upload_off += n;
    if (upload_off == upload_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void new_connection(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    worker->conns++;
    peer_fd = sv[1];
    gw_h1_accept(worker, sv[0], &a, &a);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
    nghttp2_session_client_new(&cli, cbs, NULL);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0);
    memset(responses, 0, sizeof(responses));
}

static void end_connection(void)
{
    nghttp2_session_del(cli);
    cli = NULL;
    close(peer_fd);
    for (int i = 0; i < 10; i++) gw_loop_run_once(worker->loop, 2);
}

/* One round: client output to the gateway, the gateway's loop, gateway output to the client. */
static bool exchange(void)
{
    const uint8_t *out;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(cli, &out)) > 0) {
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t w = write(peer_fd, out + off, (size_t)n - off);
            if (w > 0) off += (size_t)w;
            gw_loop_run_once(worker->loop, 1);
        }
    }
    gw_loop_run_once(worker->loop, 2);
    uint8_t buf[65536];
    ssize_t r;
    bool eof = false;
    while ((r = read(peer_fd, buf, sizeof(buf))) > 0) CHECK(nghttp2_session_mem_recv(cli, buf, (size_t)r) == r);
    if (r == 0) eof = true;
    return !eof;
}

static void run_until_closed(int32_t id)
{
    for (int i = 0; i < 2000 && !resp_of(id)->closed; i++)
        if (!exchange()) break;
}

static int32_t get(const char *path, const char *authority)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), 0},
    };
    return nghttp2_submit_request(cli, NULL, nv, 4, NULL, NULL);
}

static void test_get_streaming_with_trailers(void)
{
    new_connection();
    int32_t id = get("/stream", "Example.COM:80");
    run_until_closed(id);
    response_t *r = resp_of(id);
    CHECK_EQ_INT(r->status, 200);
    CHECK(r->len == 11 && memcmp(r->body, "hello world", 11) == 0);
    CHECK_STR(r->trailer, "1");
    CHECK_EQ_INT(r->error, 0);
    /* a second stream on the same connection; :authority is lower-cased, the protocol is HTTP/2.0 */
    id = get("/authority", "Example.COM:80");
    run_until_closed(id);
    r = resp_of(id);
    r->body[r->len] = '\0';
    CHECK_STR(r->body, "example.com:80 HTTP/2.0 20");
    end_connection();
}

static int32_t post_echo(const char *len, bool expect)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/echo", 5, 5, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0},
        {(uint8_t *)"content-length", (uint8_t *)len, 14, strlen(len), 0},
        {(uint8_t *)"expect", (uint8_t *)"100-continue", 6, 12, 0},
    };
    nghttp2_data_provider prd = {.read_callback = c_read_upload};
    return nghttp2_submit_request(cli, NULL, nv, expect ? 6 : 5, &prd, NULL);
}

static void test_expect_continue(void)
{
    upload = "abc";
    upload_len = 3;
    upload_off = 0;
    new_connection();
    int32_t id = post_echo("3", true);
    run_until_closed(id);
    response_t *r = resp_of(id);
    r->body[r->len] = '\0';
    CHECK(r->saw_100);
    CHECK_EQ_INT(r->status, 200);
    CHECK_STR(r->body, "3");
    end_connection();
}

static void test_post_body_flow_control(void)
{
    static char big[150000]; /* more than the 65535-byte stream window: needs consume + WINDOW_UPDATE */
    memset(big, 'x', sizeof(big));
    upload = big;
    upload_len = sizeof(big);
    upload_off = 0;
    new_connection();
    char len[16];
    snprintf(len, sizeof(len), "%zu", sizeof(big));
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/echo", 5, 5, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":authority", (uint8_t *)"t", 10, 1, 0},
        {(uint8_t *)"content-length", (uint8_t *)len, 14, strlen(len), 0},
    };
    nghttp2_data_provider prd = {.read_callback = c_read_upload};
    int32_t id = nghttp2_submit_request(cli, NULL, nv, 5, &prd, NULL);
    run_until_closed(id);
    response_t *r = resp_of(id);
    r->body[r->len] = '\0';
    CHECK_EQ_INT(r->status, 200);
    CHECK_STR(r->body, "150000");
    CHECK_EQ_INT(upload_off, sizeof(big));
    end_connection();
}

static void test_stream_reset_cancels(void)
{
    gen_stopped = false;
    new_connection();
    int32_t id = get("/hang", "t");
    for (int i = 0; i < 5; i++) exchange();
    CHECK(!gen_stopped);
    CHECK_EQ_INT(resp_of(id)->status, 0);
    nghttp2_submit_rst_stream(cli, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    for (int i = 0; i < 10 && !gen_stopped; i++) exchange();
    CHECK(gen_stopped);
    /* the connection survives a stream reset */
    int32_t id2 = get("/stream", "t");
    run_until_closed(id2);
    CHECK_EQ_INT(resp_of(id2)->status, 200);
    end_connection();
}

static void test_file_body(void)
{
    new_connection();
    int32_t id = get("/file", "t");
    run_until_closed(id);
    response_t *r = resp_of(id);
    CHECK_EQ_INT(r->status, 200);
    CHECK_EQ_INT(r->len, 100000);
    bool ok = r->len == 100000;
    for (size_t i = 0; ok && i < r->len; i++) ok = r->body[i] == 'a' + (char)(i % 26);
    CHECK(ok);
    end_connection();
}

static void test_client_close_cancels(void)
{
    gen_stopped = false;
    new_connection();
    get("/hang", "t");
    for (int i = 0; i < 5; i++) exchange();
    end_connection();
    CHECK(gen_stopped);
}

/* The SNI name match behind certificate selection and 421 (one wildcard label, port ignored). */
static void test_sni_host_match(void)
{
    CHECK(gw_tls_host_matches("alt.test", GW_SLICE_LIT("alt.test")));
    CHECK(gw_tls_host_matches("alt.test", GW_SLICE_LIT("ALT.test:8443")));
    CHECK(gw_tls_host_matches("alt.test", GW_SLICE_LIT("alt.test.")));
    CHECK(!gw_tls_host_matches("alt.test", GW_SLICE_LIT("xalt.test")));
    CHECK(gw_tls_host_matches("*.wild.test", GW_SLICE_LIT("a.wild.test")));
    CHECK(!gw_tls_host_matches("*.wild.test", GW_SLICE_LIT("a.b.wild.test")));
    CHECK(!gw_tls_host_matches("*.wild.test", GW_SLICE_LIT("wild.test")));
    CHECK(!gw_tls_host_matches("*.wild.test", GW_SLICE_LIT(".wild.test")));
}

int main(void)
{
    char err[512];
    cfg = gw_config_load_string("t.yaml", "global:\n  workers: 1\n", err, sizeof(err), NULL, NULL);
    CHECK(cfg != NULL);
    cfg->global_route.handlers = test_chain;
    cfg->global_route.num_handlers = 1;
    cfg->global_route.num_filters = 0;
    worker = gw_worker_new(0, cfg, NULL, 0, -1);
    CHECK(worker != NULL);
    worker->max_conns = 100;
    test_get_streaming_with_trailers();
    test_post_body_flow_control();
    test_stream_reset_cancels();
    test_file_body();
    test_client_close_cancels();
    test_expect_continue();
    test_sni_host_match();
    for (int i = 0; i < 20 && worker->conns; i++) gw_loop_run_once(worker->loop, 5);
    CHECK_EQ_INT(worker->conns, 0);
    gw_worker_free(worker);
    gw_config_free(cfg);
    return check_report("http2_codec");
}
