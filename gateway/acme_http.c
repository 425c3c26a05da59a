/* Blocking HTTPS to the ACME server, on the ACME thread only. See acme_http.h. */
#include "acme_http.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct gw_acme_http {
    SSL_CTX *ctx;
    int timeout_ms;
    pthread_mutex_t lock; /* guards fd against the interrupting thread */
    int fd;               /* the connection in use, -1 when none */
    atomic_bool stopped;
};

typedef struct url_parts {
    char host[256];
    char port[8];
    const char *path;
} url_parts_t;

gw_acme_http_t *gw_acme_http_new(const char *ca_file, int timeout_ms, char *err, size_t errlen)
{
    gw_acme_http_t *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->fd = -1;
    h->timeout_ms = timeout_ms;
    pthread_mutex_init(&h->lock, NULL);
    h->ctx = SSL_CTX_new(TLS_method());
    if (!h->ctx) goto fail;
    SSL_CTX_set_min_proto_version(h->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(h->ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file ? !SSL_CTX_load_verify_locations(h->ctx, ca_file, NULL)
                : !SSL_CTX_set_default_verify_paths(h->ctx)) {
        snprintf(err, errlen, "cannot load the CA certificates %s", ca_file ? ca_file : "of the system");
        goto fail;
    }
    return h;
fail:
    gw_acme_http_free(h);
    return NULL;
}

void gw_acme_http_free(gw_acme_http_t *h)
{
    if (!h) return;
    SSL_CTX_free(h->ctx);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void gw_acme_http_interrupt(gw_acme_http_t *h)
{
    atomic_store(&h->stopped, true);
    pthread_mutex_lock(&h->lock);
    if (h->fd >= 0) shutdown(h->fd, SHUT_RDWR);
    pthread_mutex_unlock(&h->lock);
}

static bool parse_url(const char *url, url_parts_t *u)
{
    if (strncmp(url, "https://", 8) != 0) return false;
    const char *host = url + 8, *end = host + strcspn(host, "/?#");
    u->path = *end == '/' ? end : "/";
    const char *colon = memchr(host, ':', (size_t)(end - host));
    const char *hend = colon ? colon : end;
    if (hend == host || (size_t)(hend - host) >= sizeof(u->host)) return false;
    memcpy(u->host, host, (size_t)(hend - host));
    u->host[hend - host] = '\0';
    size_t plen = colon ? (size_t)(end - colon - 1) : 3;
    if (plen == 0 || plen >= sizeof(u->port)) return false;
    memcpy(u->port, colon ? colon + 1 : "443", plen);
    u->port[plen] = '\0';
    return true;
}

/* Connects with a timeout, then leaves the socket blocking with read/write timeouts. */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) goto fail;
    struct pollfd p = {fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    int ready = poll(&p, 1, timeout_ms);
    if (ready != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
        errno = ready == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        goto fail;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
fail:
    soerr = errno;
    close(fd);
    errno = soerr;
    return -1;
}

static int open_socket(gw_acme_http_t *h, const url_parts_t *u, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &res); /* the ACME thread may block */
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, h->timeout_ms);
    freeaddrinfo(res);
    if (fd < 0) snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(errno));
    return fd;
}

static void set_fd(gw_acme_http_t *h, int fd)
{
    pthread_mutex_lock(&h->lock);
    h->fd = fd;
    if (fd >= 0 && atomic_load(&h->stopped)) shutdown(fd, SHUT_RDWR);
    pthread_mutex_unlock(&h->lock);
}

static bool write_all(SSL *ssl, const char *p, size_t n)
{
    while (n) {
        int w = SSL_write(ssl, p, n > 65536 ? 65536 : (int)n);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Reads until the server closes; NULL when the answer is too big or the connection fails. */
static char *read_all(SSL *ssl, size_t *len)
{
    size_t cap = 16384, n = 0;
    char *buf = malloc(cap);
    for (; buf;) {
        if (n + 1 == cap) {
            if (cap > GW_ACME_MAX_BODY + 16384) break;
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        int r = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && n > 0)) { /* a close ends the answer */
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        break;
    }
    free(buf);
    return NULL;
}

static void header_value(const char *line, size_t len, char *out, size_t cap)
{
    const char *v = memchr(line, ':', len);
    if (!v) return;
    for (v++; v < line + len && (*v == ' ' || *v == '\t'); v++)
        continue;
    size_t n = (size_t)(line + len - v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\r'))
        n--;
    if (n >= cap) return;
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Splits the raw answer into status, the headers ACME uses, and the body. */
static bool parse_answer(char *raw, size_t len, gw_acme_response_t *res)
{
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.%*1d %3d", &res->status) != 1) return false;
    for (char *line = strstr(raw, "\r\n") + 2; line < end;) {
        char *eol = strstr(line, "\r\n");
        size_t l = (size_t)(eol - line);
        char tmp[32] = "";
        if (!strncasecmp(line, "replay-nonce:", 13)) header_value(line, l, res->nonce, sizeof(res->nonce));
        if (!strncasecmp(line, "location:", 9)) header_value(line, l, res->location, sizeof(res->location));
        if (!strncasecmp(line, "retry-after:", 12)) header_value(line, l, tmp, sizeof(tmp));
        if (!strncasecmp(line, "transfer-encoding:", 18)) return false; /* never for HTTP/1.0 */
        if (tmp[0]) res->retry_after = strtol(tmp, NULL, 10);
        line = eol + 2;
    }
    res->body_len = len - (size_t)(end + 4 - raw);
    memmove(raw, end + 4, res->body_len + 1);
    res->body = raw;
    return res->body_len <= GW_ACME_MAX_BODY;
}

/* The certificate must name the host: an address literal as an IP SAN (and no SNI), else a DNS name. */
static bool expect_name(SSL *ssl, const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    return SSL_set_tlsext_host_name(ssl, host) &&
           X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), host, strlen(host));
}

static bool exchange(SSL *ssl, const char *req, const char *body, gw_acme_response_t *res, char *err,
                     size_t errlen)
{
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        snprintf(err, errlen, "TLS handshake failed: %s",
                 v != X509_V_OK ? X509_verify_cert_error_string(v)
                                : ERR_reason_error_string(ERR_get_error()));
        return false;
    }
    size_t len = 0;
    char *raw = NULL;
    if (!write_all(ssl, req, strlen(req)) || (body && !write_all(ssl, body, strlen(body))) ||
        !(raw = read_all(ssl, &len))) {
        snprintf(err, errlen, "connection failed or answer too large");
        return false;
    }
    if (!parse_answer(raw, len, res)) {
        free(raw);
        snprintf(err, errlen, "malformed HTTP answer");
        return false;
    }
    return true;
}

bool gw_acme_http_request(gw_acme_http_t *h, const char *method, const char *url, const char *body,
                          gw_acme_response_t *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    res->retry_after = -1;
    url_parts_t u;
    if (!parse_url(url, &u)) {
        snprintf(err, errlen, "not an https URL: %s", url);
        return false;
    }
    if (atomic_load(&h->stopped)) {
        snprintf(err, errlen, "stopping");
        return false;
    }
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.0\r\nHost: %s:%s\r\nUser-Agent: gateway-acme\r\nAccept: */*\r\n"
                     "Connection: close\r\n",
                     method, u.path, u.host, u.port);
    if (body)
        n += snprintf(req + n, sizeof(req) - (size_t)n,
                      "Content-Type: application/jose+json\r\nContent-Length: %zu\r\n", strlen(body));
    if (n < 0 || (size_t)n + 3 > sizeof(req)) {
        snprintf(err, errlen, "URL too long");
        return false;
    }
    strcat(req, "\r\n");
    int fd = open_socket(h, &u, err, errlen);
    if (fd < 0) return false;
    set_fd(h, fd);
    SSL *ssl = SSL_new(h->ctx);
    bool ok = ssl && SSL_set_fd(ssl, fd) && expect_name(ssl, u.host);
    ok = ok && exchange(ssl, req, body, res, err, errlen);
    SSL_free(ssl);
    set_fd(h, -1);
    close(fd);
    return ok;
}

void gw_acme_response_free(gw_acme_response_t *res)
{
    free(res->body);
    res->body = NULL;
}
