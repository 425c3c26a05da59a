/* A minimal HTTP/1.1 backend for the reverse proxy benchmark: one thread, epoll, keep-alive.
 *
 * Usage: backend PORT
 * Listens on 127.0.0.1:PORT and answers every request with 200 and a fixed body whose size is
 * taken from the request path: the first number followed by 'k' is KiB ("/f64k.txt" -> 65536
 * bytes); without one the body is 1 KiB. A path under /cache/ is answered with
 * "Cache-Control: max-age=3600" (the cache scenarios); the others carry no caching header.
 * GET /_count answers the number of requests served so far (itself not counted): the cache
 * scenarios ask it directly, to prove that a cache in front answered without the backend.
 * Requests are read up to the blank line (no request
 * bodies: the benchmark only sends GET); pipelined requests are answered in order. A request with
 * "Connection: close" is answered and the connection closed. It costs a few syscalls per
 * request (read, write) so that the proxy's cost is what the benchmark sees.
 *
 * Built by bench.py with: cc -O2 -o backend backend.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536
#define IN_SIZE 16384
#define MAX_KIB 1024

typedef struct {
    char in[IN_SIZE];
    size_t in_len;
    const char *out;   /* response being written (one of the prebuilt ones), or NULL */
    size_t out_len, out_off;
    int close_after;
} conn_t;

typedef struct {
    char *data;
    size_t len;
} response_t;

static conn_t *conns[MAX_FDS];
static response_t responses[2][MAX_KIB + 1]; /* [cacheable][KiB], built on first use */
static char *body_bytes;
static int ep;
static unsigned long served; /* requests answered, /_count excepted */
static char count_reply[128];

static const response_t *response_for(size_t kib, int cacheable)
{
    if (kib > MAX_KIB) kib = MAX_KIB;
    response_t *r = &responses[cacheable][kib];
    if (!r->data) {
        size_t body = kib ? kib * 1024 : 0;
        char head[160];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %zu\r\n\r\n",
                          cacheable ? "Cache-Control: max-age=3600\r\n" : "", body);
        r->data = malloc((size_t)hl + body);
        if (!r->data) abort();
        memcpy(r->data, head, (size_t)hl);
        memcpy(r->data + hl, body_bytes, body);
        r->len = (size_t)hl + body;
    }
    return r;
}

static size_t kib_of_path(const char *p, const char *end)
{
    for (; p < end && *p != ' '; p++) {
        if (*p >= '0' && *p <= '9') {
            size_t n = 0;
            const char *q = p;
            while (q < end && *q >= '0' && *q <= '9') n = n * 10 + (size_t)(*q++ - '0');
            if (q < end && *q == 'k') return n;
            p = q - 1;
        }
    }
    return 1;
}

/* The answer to GET /_count: the number of requests served, as text. */
static const response_t *count_response(void)
{
    static response_t r;
    char digits[32];
    int dl = snprintf(digits, sizeof digits, "%lu\n", served);
    int hl = snprintf(count_reply, sizeof count_reply,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", dl,
                      digits);
    r.data = count_reply;
    r.len = (size_t)hl;
    return &r;
}

static int path_is(const char *path, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    return (size_t)(end - path) >= n && memcmp(path, prefix, n) == 0;
}

static const response_t *route(const char *path, const char *end)
{
    if (path_is(path, end, "/_count ")) return count_response();
    served++;
    return response_for(kib_of_path(path, end), path_is(path, end, "/cache/"));
}

static void drop(int fd)
{
    free(conns[fd]);
    conns[fd] = NULL;
    close(fd);
}

static void set_out(int fd, int want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Writes what is pending; returns 0 when done, 1 when blocked, -1 on error. */
static int flush(int fd, conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return 1;
        } else {
            return -1;
        }
    }
    c->out = NULL;
    return 0;
}

/* Answers every complete request in the input buffer; returns -1 to close the connection. */
static int serve(int fd, conn_t *c, int *blocked)
{
    *blocked = 0;
    while (!c->out) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) {
            if (c->in_len == IN_SIZE) return -1; /* head too large */
            return 0;
        }
        size_t used = (size_t)(end - c->in) + 4;
        const char *sp = memchr(c->in, ' ', used);
        const response_t *r = sp ? route(sp + 1, end) : response_for(1, 0);
        c->close_after = memmem(c->in, used, "\r\nConnection: close", 19) != NULL ||
                         memmem(c->in, used, "\r\nconnection: close", 19) != NULL;
        memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        c->out = r->data;
        c->out_len = r->len;
        c->out_off = 0;
        int st = flush(fd, c);
        if (st < 0) return -1;
        if (st == 1) {
            *blocked = 1;
            return 0;
        }
        if (c->close_after) return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    body_bytes = malloc(MAX_KIB * 1024);
    if (!body_bytes) return 1;
    for (size_t i = 0; i < MAX_KIB * 1024; i++) body_bytes[i] = (char)('a' + i % 26);
    body_bytes[MAX_KIB * 1024 - 1] = '\n';

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited by accepted sockets */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 4096) != 0) {
        perror("bind/listen");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                for (;;) {
                    int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) break;
                    if (cfd >= MAX_FDS) {
                        close(cfd);
                        continue;
                    }
                    conns[cfd] = calloc(1, sizeof(conn_t));
                    if (!conns[cfd]) {
                        close(cfd);
                        continue;
                    }
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            conn_t *c = conns[fd];
            if (!c) continue;
            int blocked = 0;
            if (c->out) { /* EPOLLOUT after a partial write */
                int st = flush(fd, c);
                if (st < 0 || (st == 0 && c->close_after)) {
                    drop(fd);
                    continue;
                }
                if (st == 1) continue;
                set_out(fd, 0);
                if (serve(fd, c, &blocked) < 0) {
                    drop(fd);
                    continue;
                }
                if (blocked) set_out(fd, 1);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = read(fd, c->in + c->in_len, IN_SIZE - c->in_len);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                    drop(fd);
                    continue;
                }
                if (r > 0) c->in_len += (size_t)r;
                if (serve(fd, c, &blocked) < 0) {
                    drop(fd);
                    continue;
                }
                if (blocked) set_out(fd, 1);
            }
        }
    }
}
