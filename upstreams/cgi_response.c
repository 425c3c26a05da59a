/* The CGI response-head parser. See cgi_response.h. */
#include "cgi_response.h"

#include <string.h>
#include <strings.h>

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "404 Not Found" or "HTTP/1.1 404 Not Found": the status code, or -1. */
static int parse_status(gw_slice_t v, gw_slice_t *reason)
{
    const char *p = v.base, *end = v.base + v.len;
    if (v.len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        while (p < end && *p != ' ') p++;
        while (p < end && *p == ' ') p++;
    }
    if (end - p < 3) return -1;
    int code = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        code = code * 10 + (p[i] - '0');
    }
    p += 3;
    if (p < end && *p != ' ') return -1;
    while (p < end && *p == ' ') p++;
    *reason = (gw_slice_t){p, (size_t)(end - p)};
    return code >= 200 ? code : -1; /* an interim status cannot end a CGI response */
}

/* One "Name: value" line (without its line end) into h; false when it is not one. */
static bool parse_line(const char *s, size_t n, gw_header_t *h)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) return false;
    for (const char *p = s; p < colon; p++)
        if (!is_tchar((unsigned char)*p)) return false;
    const char *v = colon + 1, *end = s + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    for (const char *p = v; p < end; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') return false;
    if (v < end && (unsigned char)end[-1] == 0x7f) return false;
    h->name = (gw_slice_t){s, (size_t)(colon - s)};
    h->value = (gw_slice_t){v, (size_t)(end - v)};
    return true;
}

int gw_cgi_parse_head(const char *buf, size_t len, gw_h1_response_head_t *out, size_t max_headers)
{
    out->status = 0;
    out->num_headers = 0;
    out->reason = (gw_slice_t){"", 0};
    out->minor_version = 1;
    bool location = false;
    size_t pos = 0;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) return 0;
        size_t end = (size_t)(nl - buf), n = end - pos;
        if (n && buf[end - 1] == '\r') n--;
        size_t line = pos;
        pos = end + 1;
        if (!n) break; /* the empty line ends the head */
        gw_header_t h;
        if (!parse_line(buf + line, n, &h)) return -1;
        if (h.name.len == 6 && strncasecmp(h.name.base, "status", 6) == 0) {
            if (out->status || (out->status = parse_status(h.value, &out->reason)) < 0) return -1;
            continue;
        }
        if (h.name.len == 8 && strncasecmp(h.name.base, "location", 8) == 0) location = true;
        if (out->num_headers >= max_headers) return -1;
        out->headers[out->num_headers++] = h;
    }
    if (location && (!out->status || out->status == 200)) out->status = 302; /* a client redirect */
    if (!out->status) out->status = 200;
    return (int)pos;
}
