/* Access and error logs. See log.h. */
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acl.h"
#include "config.h"
#include "conn.h"
#include "worker.h"
#include "metrics.h"

#define LOG_BUF_SIZE 65536
#define LOG_FLUSH_AT (LOG_BUF_SIZE - 8192) /* a line is bounded well below 8 KiB */

struct gw_log_buf {
    int fd;
    size_t used;
    int64_t time_at;
    char time_text[40];
    char time_iso[40]; /* the same second for JSON lines */
    char data[LOG_BUF_SIZE];
};

static int error_fd = 2; /* read by every thread; a reload may switch it (atomic access) */

int gw_log_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int gw_log_reopen(int fd, const char *path)
{
    int nfd = gw_log_open(path);
    if (nfd < 0) return nfd;
    int r = dup3(nfd, fd, O_CLOEXEC) < 0 ? -errno : 0; /* atomic swap under the workers' feet */
    close(nfd);
    return r;
}

gw_log_buf_t *gw_log_buf_new(int fd)
{
    if (fd < 0) return NULL;
    gw_log_buf_t *b = malloc(sizeof(*b));
    if (!b) return NULL;
    b->fd = fd;
    b->used = 0;
    b->time_at = -1;
    return b;
}

void gw_log_buf_free(gw_log_buf_t *b)
{
    if (!b) return;
    gw_log_flush(b);
    free(b);
}

bool gw_log_pending(const gw_log_buf_t *b)
{
    return b && b->used;
}

void gw_log_flush(gw_log_buf_t *b)
{
    if (!b || !b->used) return;
    size_t off = 0;
    while (off < b->used) {
        ssize_t n = write(b->fd, b->data + off, b->used - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* a full disk loses log lines, never requests */
        off += (size_t)n;
    }
    b->used = 0;
}

static void put(gw_log_buf_t *b, const char *s, size_t n)
{
    if (n > LOG_BUF_SIZE - b->used) n = LOG_BUF_SIZE - b->used;
    memcpy(b->data + b->used, s, n);
    b->used += n;
}

/* Quoted fields are escaped so a client cannot forge log lines; long fields are cut. */
static void put_escaped(gw_log_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > 2048) n = 2048;
    for (size_t i = 0; i < n && b->used + 4 < LOG_BUF_SIZE; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            b->data[b->used++] = (char)c;
        } else {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            put(b, e, 4);
        }
    }
}

static void put_header(gw_log_buf_t *b, const gw_req_t *req, const char *name)
{
    const gw_header_t *h = gw_req_header(req, name);
    put(b, "\"", 1);
    if (h)
        put_escaped(b, h->value.base, h->value.len);
    else
        put(b, "-", 1);
    put(b, "\"", 1);
}

static void refresh_time(gw_log_buf_t *b, int64_t now)
{
    if (b->time_at == now) return;
    time_t t = (time_t)now;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(b->time_text, sizeof(b->time_text), "[%d/%b/%Y:%H:%M:%S %z]", &tm);
    strftime(b->time_iso, sizeof(b->time_iso), "%Y-%m-%dT%H:%M:%S%z", &tm);
    b->time_at = now;
}

#define PUT_LIT(b, s) put((b), (s), sizeof(s) - 1)

/* A JSON string (RFC 8259); bytes outside printable ASCII as \u00XX, so lines stay ASCII. */
static void put_json(gw_log_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s) {
        PUT_LIT(b, "null");
        return;
    }
    if (n > 1024) n = 1024;
    PUT_LIT(b, "\"");
    for (size_t i = 0; i < n && b->used + 8 < LOG_BUF_SIZE; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            b->data[b->used++] = (char)c;
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(b, e, 6);
        }
    }
    PUT_LIT(b, "\"");
}

static void put_json_header(gw_log_buf_t *b, const char *key, const gw_header_t *h)
{
    put(b, key, strlen(key));
    put_json(b, h ? h->value.base : NULL, h ? h->value.len : 0);
}

static uint64_t elapsed_ms(const gw_req_t *req)
{
    if (!req->worker || !req->worker->loop) return 0;
    uint64_t now = gw_loop_now(req->worker->loop);
    return now > req->start_ms ? now - req->start_ms : 0;
}

/* logFormat: json. One object per line, the Combined fields and the extended ones. */
static void log_json(gw_log_buf_t *b, const gw_req_t *req, const char *peer)
{
    char num[128];
    PUT_LIT(b, "{\"time\":\"");
    put(b, b->time_iso, strlen(b->time_iso));
    PUT_LIT(b, "\",\"remote_addr\":");
    put_json(b, peer, strlen(peer));
    PUT_LIT(b, ",\"remote_user\":");
    put_json(b, req->remote_user, req->remote_user ? strlen(req->remote_user) : 0);
    PUT_LIT(b, ",\"method\":");
    put_json(b, req->method.base, req->method.len);
    PUT_LIT(b, ",\"target\":");
    put_json(b, req->target.base, req->target.len);
    const char *proto = req->codec ? req->codec->protocol : "HTTP/1.1";
    PUT_LIT(b, ",\"protocol\":");
    put_json(b, proto, strlen(proto));
    int n = snprintf(num, sizeof(num), ",\"status\":%d,\"bytes_sent\":%llu,\"request_time_ms\":%llu", req->res.status,
                     (unsigned long long)req->bytes_sent, (unsigned long long)elapsed_ms(req));
    put(b, num, (size_t)n);
    put_json_header(b, ",\"referer\":", gw_req_header(req, "referer"));
    put_json_header(b, ",\"user_agent\":", gw_req_header(req, "user-agent"));
    PUT_LIT(b, ",\"host\":");
    put_json(b, req->authority.base ? req->authority.base : NULL, req->authority.len);
    PUT_LIT(b, ",\"request_id\":");
    put_json(b, req->request_id.base, req->request_id.len);
    put_json_header(b, ",\"cache\":", gw_res_header(req, "x-gateway-cache"));
    PUT_LIT(b, ",\"upstream\":");
    put_json(b, req->upstream, req->upstream ? strlen(req->upstream) : 0);
    if (req->upstream) {
        n = snprintf(num, sizeof(num), ",\"upstream_ms\":%llu", (unsigned long long)req->upstream_ms);
        put(b, num, (size_t)n);
    }
    if (req->conn && req->conn->tls)
        PUT_LIT(b, ",\"tls\":true}\n");
    else
        PUT_LIT(b, ",\"tls\":false}\n");
}

/* logFormat: extended. Combined, then key="value" pairs (stable order, "-" when unknown). */
static void log_extended_tail(gw_log_buf_t *b, const gw_req_t *req)
{
    char num[64];
    PUT_LIT(b, " host=\"");
    if (req->authority.len)
        put_escaped(b, req->authority.base, req->authority.len);
    else
        PUT_LIT(b, "-");
    int n = snprintf(num, sizeof(num), "\" time_ms=%llu request_id=\"", (unsigned long long)elapsed_ms(req));
    put(b, num, (size_t)n);
    if (req->request_id.len)
        put_escaped(b, req->request_id.base, req->request_id.len);
    else
        PUT_LIT(b, "-");
    const gw_header_t *c = gw_res_header(req, "x-gateway-cache");
    PUT_LIT(b, "\" cache=\"");
    if (c)
        put_escaped(b, c->value.base, c->value.len);
    else
        PUT_LIT(b, "-");
    PUT_LIT(b, "\" upstream=\"");
    if (req->upstream) {
        put_escaped(b, req->upstream, strlen(req->upstream));
        n = snprintf(num, sizeof(num), "\" upstream_ms=%llu", (unsigned long long)req->upstream_ms);
        put(b, num, (size_t)n);
    } else {
        PUT_LIT(b, "-\" upstream_ms=-");
    }
    if (req->conn && req->conn->tls)
        PUT_LIT(b, " tls=yes");
    else
        PUT_LIT(b, " tls=no");
}

void gw_log_access(gw_log_buf_t *b, const gw_req_t *req, int64_t wall_now)
{
    gw_metrics_count_request(req, elapsed_ms(req)); /* exactly the requests the access log shows */
    if (!b) return;
    if (b->used >= LOG_FLUSH_AT) gw_log_flush(b);
    char peer[64];
    if (IN6_IS_ADDR_UNSPECIFIED(&req->client_ip)) /* answered before dispatch (a parse error) */
        gw_conn_peer_text(req->conn, peer, sizeof(peer));
    else
        gw_ip_text(&req->client_ip, peer, sizeof(peer)); /* IPv4 without inet_ntop's sprintf */
    refresh_time(b, wall_now);
    int format = req->cfg ? req->cfg->log_format : GW_LOG_COMBINED;
    if (format == GW_LOG_JSON) {
        log_json(b, req, peer);
        return;
    }
    char mid[96];
    put(b, peer, strlen(peer));
    put(b, " - ", 3);
    if (req->remote_user)
        put_escaped(b, req->remote_user, strlen(req->remote_user));
    else
        put(b, "-", 1);
    put(b, " ", 1);
    put(b, b->time_text, strlen(b->time_text));
    put(b, " \"", 2);
    put_escaped(b, req->method.base, req->method.len);
    put(b, " ", 1);
    put_escaped(b, req->target.base, req->target.len);
    put(b, " ", 1);
    const char *proto = req->codec ? req->codec->protocol : "HTTP/1.1";
    put(b, proto, strlen(proto));
    int n = req->bytes_sent ? snprintf(mid, sizeof(mid), "\" %d %llu ", req->res.status,
                                       (unsigned long long)req->bytes_sent)
                            : snprintf(mid, sizeof(mid), "\" %d - ", req->res.status);
    put(b, mid, (size_t)n);
    put_header(b, req, "referer");
    put(b, " ", 1);
    put_header(b, req, "user-agent");
    if (format == GW_LOG_EXTENDED) log_extended_tail(b, req);
    put(b, "\n", 1);
}

void gw_log_set_error_fd(int fd)
{
    __atomic_store_n(&error_fd, fd, __ATOMIC_RELEASE);
}

int gw_log_error_fd(void)
{
    return __atomic_load_n(&error_fd, __ATOMIC_ACQUIRE);
}

void gw_log_error(const char *level, const char *fmt, ...)
{
    char line[1024];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t n = strftime(line, sizeof(line), "[%Y-%m-%d %H:%M:%S] ", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "[%s] ", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : (n + (size_t)m >= sizeof(line) - 1 ? sizeof(line) - 2 : n + (size_t)m);
    line[n++] = '\n';
    ssize_t w = write(gw_log_error_fd(), line, n);
    (void)w;
}
