/* Backend URL parsing. See target.h. */
#include "target.h"

#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n, void *(*alloc)(void *, size_t), void *ctx)
{
    char *p = alloc(ctx, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static const char *parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5) return "bad port";
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return "bad port";
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535) return "bad port";
    *out = (uint16_t)v;
    return NULL;
}

/* host[:port] or [v6][:port] */
static const char *parse_authority(gw_target_t *t, const char *a, size_t n, void *(*alloc)(void *, size_t),
                                   void *ctx)
{
    const char *host = a, *port = NULL;
    size_t hl = n;
    if (n && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (!close) return "unterminated [IPv6] address";
        host = a + 1;
        hl = (size_t)(close - a - 1);
        if (close + 1 < a + n) {
            if (close[1] != ':') return "bad address";
            port = close + 2;
        }
    } else {
        const char *colon = memchr(a, ':', n);
        if (colon) {
            hl = (size_t)(colon - a);
            port = colon + 1;
        }
    }
    if (hl == 0) return "missing host";
    if (port) {
        const char *err = parse_port(port, (size_t)(a + n - port), &t->port);
        if (err) return err;
    }
    t->host = dup_n(host, hl, alloc, ctx);
    t->authority = dup_n(a, n, alloc, ctx);
    return t->host && t->authority ? NULL : "out of memory";
}

const char *gw_target_parse(gw_target_t *t, const char *url, void *(*alloc)(void *ctx, size_t n), void *ctx)
{
    memset(t, 0, sizeof(*t));
    t->url = dup_n(url, strlen(url), alloc, ctx);
    if (strncmp(url, "unix://", 7) == 0) {
        if (url[7] != '/' || !url[8]) return "expected unix:///absolute/path";
        t->unix_path = dup_n(url + 7, strlen(url + 7), alloc, ctx);
        t->authority = dup_n("localhost", 9, alloc, ctx);
        t->base_path = dup_n("", 0, alloc, ctx);
        return t->unix_path ? NULL : "out of memory";
    }
    const char *rest;
    if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
        t->port = 80;
    } else if (strncmp(url, "https://", 8) == 0) {
        rest = url + 8;
        t->port = 443;
        t->tls = true;
    } else if (strncmp(url, "h2c://", 6) == 0) { /* HTTP/2 with prior knowledge (h2client.c) */
        rest = url + 6;
        t->port = 80;
        t->proto = GW_PROTO_H2C;
    } else if (strncmp(url, "tcp://", 6) == 0) { /* FastCGI and SCGI: tcp://host:port/ */
        rest = url + 6;
        if (!memchr(rest, ':', strcspn(rest, "/?#")) || rest[strcspn(rest, "/?#") - 1] == ']')
            return "expected tcp://host:port/";
    } else {
        return "expected a URL starting with http://, https://, h2c://, tcp:// or unix://";
    }
    size_t alen = strcspn(rest, "/?#");
    if (rest[alen] == '?' || rest[alen] == '#') return "a backend URL cannot have a query or fragment";
    const char *err = parse_authority(t, rest, alen, alloc, ctx);
    if (err) return err;
    size_t plen = strlen(rest + alen);
    while (plen && rest[alen + plen - 1] == '/') plen--; /* base path without trailing slash */
    t->base_path = dup_n(rest + alen, plen, alloc, ctx);
    return t->base_path ? NULL : "out of memory";
}
