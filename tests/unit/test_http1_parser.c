/* Unit tests for the HTTP/1.1 head parser, the framing rules and the chunked decoder. */
#include "check.h"
#include "http1_parser.h"

#include <stdlib.h>

#define MAX_HDRS 64

static gw_header_t hdrs[MAX_HDRS];
static const gw_h1_limits_t lim = {.max_head_bytes = 8192, .max_headers = 32, .max_target_bytes = 2048};

static int parse_lim(const char *s, size_t len, gw_h1_request_head_t *h, const gw_h1_limits_t *l)
{
    *h = (gw_h1_request_head_t){.headers = hdrs};
    return gw_h1_parse_request(s, len, h, l);
}

static int parse(const char *s, gw_h1_request_head_t *h)
{
    return parse_lim(s, strlen(s), h, &lim);
}

static int status_of(const char *s)
{
    gw_h1_request_head_t h;
    return parse(s, &h);
}

/* Feeds s one byte more at a time; every proper prefix must give 0 (or the final error early). */
static int parse_bytewise(const char *s, gw_h1_request_head_t *h, int *early_zero)
{
    size_t n = strlen(s);
    *early_zero = 1;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_lim(s, i, h, &lim);
        if (rc < 0) return rc;
        if (rc != 0) *early_zero = 0;
    }
    return parse_lim(s, n, h, &lim);
}

/* Parses a request head and derives its framing; returns the first error. */
static int frame(const char *s, gw_h1_framing_t *f)
{
    gw_h1_request_head_t h;
    int rc = parse(s, &h);
    if (rc <= 0) return rc ? rc : -1;
    return gw_h1_request_framing(&h, f);
}

static int frame_status(const char *s)
{
    gw_h1_framing_t f;
    return frame(s, &f);
}

static bool header_is(const gw_header_t *hd, const char *name, const char *value)
{
    return gw_slice_eq(hd->name, name) && gw_slice_eq(hd->value, value);
}

static void test_simple_get(void)
{
    const char *s = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    gw_h1_request_head_t h;
    CHECK_EQ_INT(parse(s, &h), strlen(s));
    CHECK(gw_slice_eq(h.method, "GET"));
    CHECK(gw_slice_eq(h.target, "/index.html?q=1"));
    CHECK_EQ_INT(h.minor_version, 1);
    CHECK_EQ_INT(h.num_headers, 2);
    CHECK(header_is(&h.headers[0], "Host", "example.com"));
    CHECK(header_is(&h.headers[1], "Accept", "*/*"));

    CHECK_EQ_INT(status_of("GET / HTTP/1.0\r\n\r\n"), 18);
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &h), 18);
    CHECK_EQ_INT(h.minor_version, 0);
    CHECK_EQ_INT(h.num_headers, 0);
}

static void test_trimming(void)
{
    gw_h1_request_head_t h;
    const char *s =
        "GET / HTTP/1.1\r\nA:   spaced value \t \r\nB:\tx\r\nEmpty:\r\nWs:   \r\nO: caf\xc3\xa9\r\n\r\n";
    CHECK_EQ_INT(parse(s, &h), strlen(s));
    CHECK_EQ_INT(h.num_headers, 5);
    CHECK(header_is(&h.headers[0], "A", "spaced value"));
    CHECK(header_is(&h.headers[1], "B", "x"));
    CHECK(header_is(&h.headers[2], "Empty", ""));
    CHECK(header_is(&h.headers[3], "Ws", ""));
    CHECK(header_is(&h.headers[4], "O", "caf\xc3\xa9")); /* obs-text is allowed */
}

/* Every byte at every offset of a value long enough for the word-at-a-time scan: accepted exactly
 * when it is HTAB, SP, VCHAR or obs-text, and then the value comes back whole (OWS trimmed). */
static void test_value_bytes_at_every_offset(void)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: x\r\nX-V: ";
    size_t plen = strlen(pre), vlen = 27;
    char buf[128];
    gw_h1_request_head_t h;
    for (int b = 0; b < 256; b++) {
        bool ok = b == '\t' || (b >= 0x20 && b != 0x7F);
        for (size_t k = 0; k < vlen; k++) {
            memcpy(buf, pre, plen);
            memset(buf + plen, 'v', vlen);
            buf[plen + k] = (char)b;
            memcpy(buf + plen + vlen, "\r\n\r\n", 4);
            size_t n = plen + vlen + 4;
            int rc = parse_lim(buf, n, &h, &lim);
            if (!ok) {
                CHECK_EQ_INT(rc, -400);
                continue;
            }
            CHECK_EQ_INT(rc, n);
            bool edge_ows = (b == ' ' || b == '\t') && (k == 0 || k == vlen - 1);
            CHECK_EQ_INT(h.headers[1].value.len, edge_ows ? vlen - 1 : vlen);
        }
    }
}

static bool is_tchar(int b);

/* What a field line "<name>: v" must parse to, with byte b at position k of a name of letters and
 * '-': a token byte keeps the name whole, a ':' after the first byte ends it there (the rest
 * goes into the value), anything else is an error. */
static void check_name_byte(const char *line, size_t len, size_t k, int b, const gw_header_t *h, int rc)
{
    if (is_tchar(b)) {
        CHECK(rc > 0 && h->name.len == len && memcmp(h->name.base, line, len) == 0);
        CHECK(gw_slice_eq(h->value, "v"));
    } else if (b == ':' && k > 0) {
        CHECK(rc > 0 && h->name.len == k && memcmp(h->name.base, line, k) == 0);
        CHECK(h->value.base == line + k + 1 && h->value.len == len - k - 1 + 3);
    } else {
        CHECK(rc < 0);
    }
}

/* Every byte at every position of field names 1..17 bytes long (one word, two, and a byte of a
 * third), in a request and in a response head. */
static void test_name_bytes_at_every_offset(void)
{
    const char *req_pre = "GET / HTTP/1.1\r\nHost: x\r\n", *res_pre = "HTTP/1.1 200 OK\r\n";
    char buf[128];
    for (size_t len = 1; len <= 17; len++) {
        for (size_t k = 0; k < len; k++) {
            for (int b = 0; b < 256; b++) {
                char name[18];
                for (size_t i = 0; i < len; i++)
                    name[i] = "Ab-Zz"[i % 5];
                name[k] = (char)b;
                for (int res = 0; res < 2; res++) {
                    const char *pre = res ? res_pre : req_pre;
                    size_t plen = strlen(pre), n = plen + len + 7;
                    memcpy(buf, pre, plen);
                    memcpy(buf + plen, name, len);
                    memcpy(buf + plen + len, ": v\r\n\r\n", 7);
                    gw_h1_request_head_t q = {.headers = hdrs};
                    gw_h1_response_head_t r = {.headers = hdrs};
                    int rc =
                        res ? gw_h1_parse_response(buf, n, &r, &lim) : gw_h1_parse_request(buf, n, &q, &lim);
                    check_name_byte(buf + plen, len, k, b, &hdrs[res ? 0 : 1], rc);
                }
            }
        }
    }
}

/* A buffer that ends with an empty line whose head ends earlier: the head's own length comes back. */
static void test_head_ending_before_the_buffer(void)
{
    gw_h1_request_head_t h;
    const char *head = "POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%s0\r\n\r\n", head);
    CHECK_EQ_INT(parse(buf, &h), strlen(head));
    CHECK_EQ_INT(h.num_headers, 2);
    snprintf(buf, sizeof buf, "%sX: y\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ_INT(parse(buf, &h), 27);
    CHECK(gw_slice_eq(h.target, "/"));
    CHECK_EQ_INT(h.num_headers, 1);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: x\r\nBad\r\n\r\n"), -400);
}

static bool is_tchar(int b)
{
    return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
           (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}

/* Every token byte at every position of "content-length" and of the "close" option: the field or
 * option is recognised exactly when the byte is the literal's letter in either case. */
static void test_framing_names_fold_exactly(void)
{
    char name[] = "content-length", opt[] = "close", buf[160];
    gw_h1_request_head_t h;
    gw_h1_framing_t fr;
    for (int b = 0; b < 256; b++) {
        if (!is_tchar(b)) continue;
        for (size_t k = 0; k < strlen(name); k++) {
            char n2[sizeof name];
            memcpy(n2, name, sizeof name);
            n2[k] = (char)b;
            snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: x\r\n%s: 5\r\n\r\n", n2);
            CHECK_EQ_INT(parse(buf, &h), strlen(buf));
            CHECK_EQ_INT(gw_h1_request_framing(&h, &fr), 0);
            bool same = (b | 0x20) == name[k] && (name[k] != '-' || b == '-');
            CHECK_EQ_INT(fr.body == GW_BODY_LENGTH, same);
        }
        for (size_t k = 0; k < strlen(opt); k++) {
            char o2[sizeof opt];
            memcpy(o2, opt, sizeof opt);
            o2[k] = (char)b;
            snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: x\r\nConnection: %s\r\n\r\n", o2);
            CHECK_EQ_INT(parse(buf, &h), strlen(buf));
            CHECK_EQ_INT(gw_h1_request_framing(&h, &fr), 0);
            CHECK_EQ_INT(fr.keep_alive, (b | 0x20) != opt[k]);
        }
    }
}

/* host_lower: set only for a Host with no capital letter (then the codec keeps the header's bytes). */
static void test_host_lower(void)
{
    static const struct {
        const char *host;
        bool lower;
    } cases[] = {{"example.com", true},  {"example.com:8080", true}, {"127.0.0.1:80", true},
                 {"Example.com", false}, {"example.COM:80", false},  {"[::1]:80", false},
                 {"a%41b", false},       {"a%2eb", false},           {"xn--bcher-kva.example", true}};
    char buf[160];
    gw_h1_request_head_t h;
    gw_h1_framing_t fr;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", cases[i].host);
        CHECK_EQ_INT(parse(buf, &h), strlen(buf));
        CHECK_EQ_INT(gw_h1_request_framing(&h, &fr), 0);
        CHECK_EQ_INT(fr.host_lower, cases[i].lower);
    }
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &h), 18);
    CHECK_EQ_INT(gw_h1_request_framing(&h, &fr), 0);
    CHECK(!fr.host_lower && fr.host.len == 0);
}

static void test_many_headers(void)
{
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X-H%d: v%d\r\n", i, i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    gw_h1_request_head_t h;
    CHECK_EQ_INT(parse(buf, &h), n);
    CHECK_EQ_INT(h.num_headers, 32);
    CHECK(header_is(&h.headers[31], "X-H31", "v31"));

    /* One more than max_headers. */
    n -= 2;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "X-Extra: 1\r\n\r\n");
    CHECK_EQ_INT(parse(buf, &h), -431);
    /* ...and detected before the head is complete. */
    CHECK_EQ_INT(parse_lim(buf, n - 2, &h, &lim), -431);
    /* With exactly max_headers complete lines and no end yet: still waiting. */
    CHECK_EQ_INT(parse_lim(buf, n - 14, &h, &lim), 0);
}

static void test_pipelined_and_leading_crlf(void)
{
    const char *one = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[256];
    snprintf(buf, sizeof buf, "%sPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", one);
    gw_h1_request_head_t h;
    int n = parse(buf, &h);
    CHECK_EQ_INT(n, strlen(one));
    CHECK(gw_slice_eq(h.target, "/a"));
    CHECK_EQ_INT(parse(buf + n, &h), strlen(buf + n));
    CHECK(gw_slice_eq(h.method, "POST"));

    CHECK_EQ_INT(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &h), 31);
    CHECK(gw_slice_eq(h.method, "GET"));
    CHECK_EQ_INT(status_of("\r\n"), 0);
    CHECK_EQ_INT(status_of("\r"), 0);
    CHECK_EQ_INT(status_of("\r\r\n"), -400);
    CHECK_EQ_INT(status_of("\nGET / HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of(""), 0);

    /* Endless empty lines are bounded by max_head_bytes. */
    gw_h1_limits_t small = {.max_head_bytes = 64, .max_headers = 8, .max_target_bytes = 32};
    char crlfs[200];
    for (size_t i = 0; i < sizeof crlfs; i += 2)
        memcpy(crlfs + i, "\r\n", 2);
    CHECK_EQ_INT(parse_lim(crlfs, 64, &h, &small), 0);
    CHECK_EQ_INT(parse_lim(crlfs, 66, &h, &small), -431);
}

static void test_incremental(void)
{
    const char *s = "POST /upload HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 5\r\nX:  y \r\n\r\n";
    gw_h1_request_head_t h;
    int early_zero;
    CHECK_EQ_INT(parse_bytewise(s, &h, &early_zero), strlen(s));
    CHECK(early_zero);
    CHECK(gw_slice_eq(h.method, "POST"));
    CHECK(gw_slice_eq(h.target, "/upload"));
    CHECK_EQ_INT(h.num_headers, 3);
    CHECK(header_is(&h.headers[2], "X", "y"));

    CHECK_EQ_INT(parse_bytewise("\r\nOPTIONS * HTTP/1.0\r\n\r\n", &h, &early_zero), 24);
    CHECK(early_zero);

    /* Errors in the request line show up before the head is complete. */
    CHECK_EQ_INT(status_of("GE(T"), -400);
    CHECK_EQ_INT(status_of("GET /a\x01"), -400);
    CHECK_EQ_INT(status_of("GET / HTTQ"), -400);
    CHECK_EQ_INT(status_of("GET / HTTP/2.0"), -505);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\n"), -400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r"), 0);
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: x"), 0);
}

static void test_syntax_errors(void)
{
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\nHost: x\r\n\r\n"), -400);       /* bare LF, request line */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: x\n\r\n\r\n"), -400);   /* bare LF, field */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: x\n\n\r\n\r\n"), -400); /* LF LF */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n"), -400);  /* bare CR in value */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\r\nHost: x\r\n\r\n"), -400);   /* CR CR LF */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA: 1\r\n b\r\n\r\n"), -400);  /* obs-fold SP */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA: 1\r\n\tb\r\n\r\n"), -400); /* obs-fold HTAB */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), -400);    /* space before colon */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"), -400);   /* tab before colon */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n: x\r\n\r\n"), -400);         /* empty name */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), -400);     /* no colon */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA(b: x\r\n\r\n"), -400);      /* non-token name */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA\x80: x\r\n\r\n"), -400);    /* obs-text in name */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n"), -400);   /* DEL in value */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n"), -400);   /* CTL in value */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\nA: x\x1b\r\n\r\n"), -400);    /* ESC in value */
    gw_h1_request_head_t h;
    const char nul[] = "GET / HTTP/1.1\r\nA: x\0y\r\n\r\n";
    CHECK_EQ_INT(parse_lim(nul, sizeof nul - 1, &h, &lim), -400); /* NUL in value */
    const char nul_name[] = "GET / HTTP/1.1\r\nA\0: y\r\n\r\n";
    CHECK_EQ_INT(parse_lim(nul_name, sizeof nul_name - 1, &h, &lim), -400);
}

static void test_request_line_errors(void)
{
    CHECK_EQ_INT(status_of("G@T / HTTP/1.1\r\n\r\n"), -400);    /* bad method */
    CHECK_EQ_INT(status_of("G\x80T / HTTP/1.1\r\n\r\n"), -400); /* bad method */
    CHECK_EQ_INT(status_of(" GET / HTTP/1.1\r\n\r\n"), -400);   /* leading space */
    CHECK_EQ_INT(status_of("GET  / HTTP/1.1\r\n\r\n"), -400);   /* two spaces */
    CHECK_EQ_INT(status_of("GET /  HTTP/1.1\r\n\r\n"), -400);   /* two spaces */
    CHECK_EQ_INT(status_of("GET\t/ HTTP/1.1\r\n\r\n"), -400);   /* HTAB separator */
    CHECK_EQ_INT(status_of("GET /a b HTTP/1.1\r\n\r\n"), -400); /* space in target */
    CHECK_EQ_INT(status_of("GET /a\x7f HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), -400); /* non-ASCII target */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1 \r\n\r\n"), -400);        /* trailing space */
    CHECK_EQ_INT(status_of("GET /\r\n\r\n"), -400);                  /* HTTP/0.9 */
    CHECK_EQ_INT(status_of("GET / HTTP/1.1\r\n\r\n"), 18);
}

static void test_version_errors(void)
{
    CHECK_EQ_INT(status_of("GET / HTTP/2.0\r\n\r\n"), -505);
    CHECK_EQ_INT(status_of("GET / HTTP/1.2\r\n\r\n"), -505);
    CHECK_EQ_INT(status_of("GET / HTTP/0.9\r\n\r\n"), -505);
    CHECK_EQ_INT(status_of("GET / HTTP/3.1\r\n\r\n"), -505);
    CHECK_EQ_INT(status_of("GET / HTTP/1.10\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET / HTTP/11\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET / HTTP/2\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET / http/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET / FOO\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET / HTTP/1.x\r\n\r\n"), -400);
}

static void test_target_forms(void)
{
    gw_h1_request_head_t h;
    CHECK_EQ_INT(parse("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", &h), 58);
    CHECK(gw_slice_eq(h.target, "http://example.com/a?b"));
    CHECK_EQ_INT(parse("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", &h), 59);
    CHECK(gw_slice_eq(h.method, "CONNECT"));
    CHECK(gw_slice_eq(h.target, "example.com:443"));
    CHECK_EQ_INT(parse("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", &h), 49);
    CHECK_EQ_INT(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &h), 31);
    CHECK(gw_slice_eq(h.target, "*"));

    CHECK_EQ_INT(status_of("CONNECT example.com HTTP/1.1\r\n\r\n"), -400); /* port required */
    CHECK_EQ_INT(status_of("CONNECT /path HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("CONNECT a@b:443 HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("CONNECT a:99999 HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET * HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET example.com HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(status_of("GET 1http://x/ HTTP/1.1\r\n\r\n"), -400);
}

static void test_limits(void)
{
    gw_h1_limits_t l = {.max_head_bytes = 256, .max_headers = 4, .max_target_bytes = 16};
    gw_h1_request_head_t h;
    const char *ok = "GET /0123456789abcde HTTP/1.1\r\n\r\n"; /* 16-byte target */
    CHECK_EQ_INT(parse_lim(ok, strlen(ok), &h, &l), strlen(ok));
    const char *longt = "GET /0123456789abcdef HTTP/1.1\r\n\r\n";
    CHECK_EQ_INT(parse_lim(longt, strlen(longt), &h, &l), -414);
    /* -414 as soon as 17 target bytes are there, without waiting for SP or the end of the head. */
    CHECK_EQ_INT(parse_lim(longt, 4 + 16, &h, &l), 0);
    CHECK_EQ_INT(parse_lim(longt, 4 + 17, &h, &l), -414);

    /* Head too large: refused once more than max_head_bytes arrived without the empty line. */
    char big[600];
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: ");
    memset(big + n, 'a', sizeof big - n);
    CHECK_EQ_INT(parse_lim(big, 256, &h, &l), 0);
    CHECK_EQ_INT(parse_lim(big, 257, &h, &l), -431);
    CHECK_EQ_INT(parse_lim(big, sizeof big, &h, &l), -431);

    /* A complete head of exactly max_head_bytes is fine; one byte more is not. */
    char exact[300];
    n = (size_t)snprintf(exact, sizeof exact, "GET / HTTP/1.1\r\nX: ");
    memset(exact + n, 'b', 256 - n - 4);
    memcpy(exact + 252, "\r\n\r\n", 4);
    CHECK_EQ_INT(parse_lim(exact, 256, &h, &l), 256);
    memset(exact + n, 'b', 257 - n - 4);
    memcpy(exact + 253, "\r\n\r\n", 4);
    CHECK_EQ_INT(parse_lim(exact, 257, &h, &l), -431);

    /* An endless method is bounded too. */
    char meth[400];
    memset(meth, 'G', sizeof meth);
    CHECK_EQ_INT(parse_lim(meth, 256, &h, &l), 0);
    CHECK_EQ_INT(parse_lim(meth, sizeof meth, &h, &l), -431);

    /* Too many header lines while the head is still incomplete. */
    const char *many = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n";
    CHECK_EQ_INT(parse_lim(many, strlen(many) - 6, &h, &l), 0);
    CHECK_EQ_INT(parse_lim(many, strlen(many), &h, &l), -431);
}

static void test_framing_length(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_LENGTH);
    CHECK_EQ_INT(f.content_length, 42);
    CHECK(f.keep_alive);
    CHECK(!f.expect_continue);
    CHECK(!f.upgrade);
    CHECK(gw_slice_eq(f.host, "x"));

    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 0\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_LENGTH);
    CHECK_EQ_INT(f.content_length, 0);
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4611686018427387904\r\n\r\n", &f), 0);
    CHECK(f.content_length == (uint64_t)1 << 62);
    CHECK_EQ_INT(
        frame("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000000000000000000000000007\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.content_length, 7);
    /* past 2^62 by a last digit, by a digit more, and where 64 bits would wrap */
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4611686018427387909\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 46116860184273879040\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551617\r\n\r\n"),
                 -400);

    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4611686018427387905\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(
        frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
                 -400);
}

static void test_framing_chunked(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_CHUNKED);
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding:  ChUnKeD \r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_CHUNKED);
    CHECK_EQ_INT(frame("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked,\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_CHUNKED);

    CHECK_EQ_INT(
        frame_status("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
        -400);
    CHECK_EQ_INT(
        frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                 -501);
    /* RFC 9112 §6.3: chunked not the final coding -> the length is unknowable: 400 */
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"),
                 -501);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
                 -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;a=b\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun ked\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
}

static void test_framing_host(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), -400);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), -400);

    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nhost: Example.COM:8080\r\n\r\n", &f), 0);
    CHECK(gw_slice_eq(f.host, "Example.COM:8080"));
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: 192.168.0.1\r\n\r\n", &f), 0);
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", &f), 0);
    CHECK(gw_slice_eq(f.host, "[2001:db8::1]:443"));
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: xn--bcher-kva.example%41\r\n\r\n", &f), 0);
    CHECK_EQ_INT(frame("GET / HTTP/1.0\r\n\r\n", &f), 0);
    CHECK_EQ_INT(f.host.len, 0);
    CHECK(!f.keep_alive);
}

static void test_framing_connection(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &f), 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, CLOSE\r\n\r\n", &f), 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", &f), 0);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &f), 0);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", &f), 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.0\r\nConnection: closed\r\n\r\n", &f), 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(frame_status("GET / HTTP/1.1\r\nHost: x\r\nConnection: a b\r\n\r\n"), -400);

    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", &f),
                 0);
    CHECK(f.upgrade);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", &f), 0);
    CHECK(!f.upgrade);
    CHECK_EQ_INT(frame("GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n", &f), 0);
    CHECK(!f.upgrade);
}

static void test_framing_expect(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(frame("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n", &f),
                 0);
    CHECK(f.expect_continue);
    CHECK_EQ_INT(frame_status("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"), -417);
    CHECK_EQ_INT(frame_status("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, foo\r\n\r\n"), -417);
    CHECK_EQ_INT(frame_status("PUT / HTTP/1.1\r\nHost: x\r\nExpect:\r\n\r\n"), -417);
    /* RFC 9110 10.1.1: ignored in HTTP/1.0. */
    CHECK_EQ_INT(frame("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &f), 0);
    CHECK(!f.expect_continue);
}

static int parse_res(const char *s, gw_h1_response_head_t *r)
{
    *r = (gw_h1_response_head_t){.headers = hdrs};
    return gw_h1_parse_response(s, strlen(s), r, &lim);
}

static int res_frame(const char *s, const char *method, gw_h1_framing_t *f)
{
    gw_h1_response_head_t r;
    int rc = parse_res(s, &r);
    if (rc <= 0) return rc ? rc : -1;
    return gw_h1_response_framing(&r, (gw_slice_t){method, strlen(method)}, f);
}

static void test_response_parse(void)
{
    gw_h1_response_head_t r;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer:  x \r\n\r\nhello";
    CHECK_EQ_INT(parse_res(s, &r), strlen(s) - 5);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.minor_version, 1);
    CHECK(gw_slice_eq(r.reason, "OK"));
    CHECK_EQ_INT(r.num_headers, 2);
    CHECK(header_is(&r.headers[1], "Server", "x"));

    CHECK_EQ_INT(parse_res("HTTP/1.0 404 Not Found Here\r\n\r\n", &r), 31);
    CHECK(gw_slice_eq(r.reason, "Not Found Here"));
    CHECK_EQ_INT(r.minor_version, 0);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200\r\n\r\n", &r), 16);
    CHECK_EQ_INT(r.reason.len, 0);
    CHECK_EQ_INT(parse_res("HTTP/1.1 204 \r\n\r\n", &r), 17);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200 OK\r\n", &r), 0);
    CHECK_EQ_INT(parse_res("HTTP/1.1 2", &r), 0);

    CHECK_EQ_INT(parse_res("HTTP/1.1 2000 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 20 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 099 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 2x0 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/2.0 200 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1  200 OK\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200 O\x01K\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200 OK\nA: b\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("ICY 200 OK\r\n", &r), -502);
    CHECK_EQ_INT(parse_res("\r\nHTTP/1.1 200 OK\r\n\r\n", &r), -502);
}

/* The response's result for every prefix of s: 0 (need more) before the head is complete, then the
 * head's length whatever follows; a malformed head gives -502 from some prefix on, never a length. */
static int parse_res_prefixes(const char *s, size_t len, const gw_h1_limits_t *l)
{
    int first = 0;
    for (size_t i = 0; i <= len; i++) {
        gw_h1_response_head_t r = {.headers = hdrs};
        int rc = gw_h1_parse_response(s, i, &r, l);
        if (first == 0)
            first = rc;
        else
            CHECK_EQ_INT(rc, first); /* once decided, every longer prefix agrees */
    }
    return first;
}

/* Heads whose field names are 1..17 bytes and values 0..17 bytes long, cut at every byte and
 * followed by a body: complete exactly at the end of their empty line, with the fields whole. */
static void test_response_prefixes(void)
{
    char buf[256], name[18], value[18];
    for (size_t nl = 1; nl <= 17; nl++) {
        for (size_t vl = 0; vl <= 17; vl++) {
            memset(name, 'N', nl);
            name[nl] = '\0';
            memset(value, 'v', vl);
            value[vl] = '\0';
            int head = snprintf(buf, sizeof buf, "HTTP/1.1 200 OK\r\n%s: %s\r\nB-2: x\r\n\r\n", name, value);
            memcpy(buf + head, "body\r\n\r\n", 9);
            CHECK_EQ_INT(parse_res_prefixes(buf, strlen(buf), &lim), head);
            gw_h1_response_head_t r = {.headers = hdrs};
            CHECK_EQ_INT(gw_h1_parse_response(buf, strlen(buf), &r, &lim), head);
            CHECK_EQ_INT(r.num_headers, 2);
            CHECK(header_is(&r.headers[0], name, value));
            CHECK(header_is(&r.headers[1], "B-2", "x"));
        }
    }
    static const char *bad[] = {
        "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", "HTTP/1.1 200 OK\r\nA: b\nc: d\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA\r\n\r\n",       "HTTP/1.1 200 OK\r\nA b: c\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\tA: b\r\n\r\n",  "HTTP/1.1 200 OK\r\n: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: \x7f\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\r\n\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(parse_res_prefixes(bad[i], strlen(bad[i]), &lim), -502);
}

/* Limits hold for a response head still arriving: too many fields or too many bytes is -502 before
 * the empty line comes. */
static void test_response_limits(void)
{
    const gw_h1_limits_t small = {.max_head_bytes = 64, .max_headers = 2, .max_target_bytes = 64};
    gw_h1_response_head_t r = {.headers = hdrs};
    const char *two = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    CHECK_EQ_INT(gw_h1_parse_response(two, strlen(two), &r, &small), strlen(two));
    const char *three = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    CHECK_EQ_INT(gw_h1_parse_response(three, strlen(three), &r, &small), -502);
    char big[128];
    int n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nA: %060d", 0);
    CHECK_EQ_INT(gw_h1_parse_response(big, 64, &r, &small), 0);
    CHECK_EQ_INT(gw_h1_parse_response(big, (size_t)n, &r, &small), -502);
}

static void test_response_framing(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_LENGTH);
    CHECK_EQ_INT(f.content_length, 5);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK_EQ_INT(res_frame("HTTP/1.1 204 No Content\r\n\r\n", "GET", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(res_frame("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", "GET", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK_EQ_INT(res_frame("HTTP/1.1 100 Continue\r\n\r\n", "POST", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_CHUNKED);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\n\r\n", "GET", &f), 0);
    CHECK_EQ_INT(f.body, GW_BODY_CLOSE);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(res_frame("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", "GET", &f), 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(
        res_frame("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n", "GET", &f), 0);
    CHECK(f.keep_alive);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", "GET", &f),
                 0);
    CHECK(!f.keep_alive);
    CHECK_EQ_INT(
        res_frame("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                  "GET", &f),
        0);
    CHECK(f.upgrade);
    CHECK_EQ_INT(f.body, GW_BODY_NONE);
}

static void test_response_framing_errors(void)
{
    gw_h1_framing_t f;
    CHECK_EQ_INT(
        res_frame("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &f),
        -502);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "GET", &f),
                 -502);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "GET", &f), -502);
    CHECK_EQ_INT(res_frame("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", &f), -502);
    CHECK_EQ_INT(res_frame("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &f), -502);
}

/* ---- chunked ---- */

typedef struct decoded {
    long rc;        /* last return value */
    size_t used;    /* input bytes consumed over all calls */
    char out[1024]; /* concatenated body data */
    size_t out_len;
    bool done;
} decoded_t;

/* Feeds `in` in pieces of `step` bytes (0: all at once) through a fresh decoder. */
static decoded_t decode(const char *in, size_t len, size_t step, size_t max_line, uint64_t max_body)
{
    decoded_t res = {0};
    gw_chunked_decoder_t d = {0};
    char piece[1024];
    size_t pos = 0;
    if (step == 0) step = len ? len : 1;
    while (pos < len && !d.done) {
        size_t n = len - pos < step ? len - pos : step;
        memcpy(piece, in + pos, n);
        size_t out_n = n;
        res.rc = gw_chunked_decode(&d, piece, &out_n, max_line, max_body);
        if (res.rc < 0) break;
        memcpy(res.out + res.out_len, piece, out_n);
        res.out_len += out_n;
        res.used += (size_t)res.rc;
        pos += n;
    }
    res.done = d.done;
    return res;
}

static decoded_t decode_str(const char *in, size_t step, size_t max_line, uint64_t max_body)
{
    return decode(in, strlen(in), step, max_line, max_body);
}

static bool decoded_is(const decoded_t *r, const char *body)
{
    return r->out_len == strlen(body) && memcmp(r->out, body, r->out_len) == 0;
}

static void test_chunked_basic(void)
{
    const char *in = "5\r\nhello\r\n7\r\n, world\r\nA\r\n0123456789\r\n0\r\n\r\n";
    for (size_t step = 0; step <= 3; step++) {
        decoded_t r = decode(in, strlen(in), step, 64, 1000);
        CHECK(r.rc >= 0);
        CHECK(r.done);
        CHECK_EQ_INT(r.used, strlen(in));
        CHECK(decoded_is(&r, "hello, world0123456789"));
    }

    /* Extensions, upper/lower hex, leading zeros and trailers. */
    const char *ext = "00b;name=value;x=\"q s\"\r\nhello world\r\nf ; a\r\n0123456789abcde\r\n"
                      "0;last\r\nTrailer-A: 1\r\nB:\r\n\r\n";
    decoded_t one = decode(ext, strlen(ext), 0, 64, 1000);
    decoded_t bytes = decode(ext, strlen(ext), 1, 64, 1000);
    CHECK(one.done && bytes.done);
    CHECK(decoded_is(&one, "hello world0123456789abcde"));
    CHECK(decoded_is(&bytes, "hello world0123456789abcde"));
    CHECK_EQ_INT(one.used, strlen(ext));
    CHECK_EQ_INT(bytes.used, strlen(ext));
}

static void test_chunked_leftover(void)
{
    char buf[128];
    const char *in = "3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n";
    size_t len = strlen(in);
    memcpy(buf, in, len);
    gw_chunked_decoder_t d = {0};
    size_t n = len;
    long rc = gw_chunked_decode(&d, buf, &n, 64, 100);
    CHECK_EQ_INT(rc, 13);
    CHECK(d.done);
    CHECK_EQ_INT(n, 3);
    CHECK(memcmp(buf, "abc", 3) == 0);
    CHECK(memcmp(buf + rc, "GET /next HTTP/1.1\r\n", len - 13) == 0);
    CHECK_EQ_INT(d.total, 3);

    /* Once done, nothing more is consumed. */
    n = 5;
    CHECK_EQ_INT(gw_chunked_decode(&d, buf + rc, &n, 64, 100), 0);
    CHECK_EQ_INT(n, 0);

    /* Split: data ends in the middle of a call, the decoder keeps its place. */
    gw_chunked_decoder_t d2 = {0};
    char p1[] = "6\r\nab";
    n = strlen(p1);
    CHECK_EQ_INT(gw_chunked_decode(&d2, p1, &n, 64, 100), 5);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(d2.chunk_remaining, 4);
    char p2[] = "cdef\r\n0\r\n\r\nX";
    n = strlen(p2);
    CHECK_EQ_INT(gw_chunked_decode(&d2, p2, &n, 64, 100), 11);
    CHECK_EQ_INT(n, 4);
    CHECK(memcmp(p2, "cdef", 4) == 0);
    CHECK(d2.done);
}

static void test_chunked_errors(void)
{
    static const char *bad[] = {
        "x\r\n",                     /* bad hex */
        "\r\n",                      /* empty size */
        "-1\r\n",                    /* sign */
        "0x5\r\nhello\r\n0\r\n\r\n", /* 0x prefix */
        "5 \r\nhello\r\n",           /* BWS without extension */
        "5\nhello\r\n",              /* bare LF */
        "5\r\r\n",                   /* CR CR */
        "5\r\nhelloXY",              /* missing CRLF after data */
        "5\r\nhello\n0\r\n\r\n",     /* bare LF after data */
        "5\r\nhello\rX",             /* CR then junk */
        "0\r\nA\r\n\r\n",            /* trailer without colon */
        "0\r\n A: b\r\n\r\n",        /* obs-fold in trailers */
        "0\r\nA: b\x01\r\n\r\n",     /* CTL in trailer */
        "0\r\nA: b\n\r\n",           /* bare LF in trailer */
        "0\r\n\rX",                  /* bad final CRLF */
        "5;a\x01\r\nhello\r\n",      /* CTL in extension */
        "1000000000000000\r\n",      /* 16 hex digits */
        "0000000000000001\r\n",      /* 16 hex digits, leading zeros */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        decoded_t one = decode(bad[i], strlen(bad[i]), 0, 64, 1u << 30);
        decoded_t bytes = decode(bad[i], strlen(bad[i]), 1, 64, 1u << 30);
        CHECK_EQ_INT(one.rc, -400);
        CHECK_EQ_INT(bytes.rc, -400);
        if (one.rc != -400) fprintf(stderr, "  input %zu\n", i);
    }
}

static void test_chunked_limits(void)
{
    /* 15 hex digits is the most we take; with a big enough max_body it is accepted as a size. */
    decoded_t r = decode_str("fffffffffffffff\r\nab", 0, 64, UINT64_MAX);
    CHECK_EQ_INT(r.rc, 19);
    CHECK(!r.done);

    /* A size line, with extensions, over max_line. */
    char line[200];
    memset(line, 'a', sizeof line);
    memcpy(line, "5;", 2);
    r = decode(line, sizeof line, 0, 64, 100);
    CHECK_EQ_INT(r.rc, -400);
    r = decode(line, sizeof line, 1, 64, 100);
    CHECK_EQ_INT(r.rc, -400);
    r = decode_str("5;abc\r\nhello\r\n", 0, 7, 100); /* exactly max_line bytes with CRLF */
    CHECK_EQ_INT(r.rc, 14);
    r = decode_str("5;abcd\r\nhello\r\n", 0, 7, 100);
    CHECK_EQ_INT(r.rc, -400);
    /* Trailer section bounded as a whole. */
    r = decode_str("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0, 10, 100);
    CHECK_EQ_INT(r.rc, -400);

    /* Body limit. */
    r = decode_str("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, 64, 10);
    CHECK_EQ_INT(r.rc, -413);
    CHECK(decoded_is(&r, ""));
    r = decode_str("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 0, 64, 10);
    CHECK_EQ_INT(r.used, 25);
    CHECK(r.done);
    r = decode_str("fffffffffffffff\r\n", 1, 64, 1u << 20);
    CHECK_EQ_INT(r.rc, -413);
}

static void test_chunked_sticky_error(void)
{
    /* Errors are sticky. */
    gw_chunked_decoder_t d = {0};
    char b1[] = "z";
    size_t n = 1;
    CHECK_EQ_INT(gw_chunked_decode(&d, b1, &n, 64, 100), -400);
    char b2[] = "0\r\n\r\n";
    n = 5;
    CHECK_EQ_INT(gw_chunked_decode(&d, b2, &n, 64, 100), -400);
    CHECK(!d.done);
}

int main(void)
{
    test_simple_get();
    test_trimming();
    test_value_bytes_at_every_offset();
    test_name_bytes_at_every_offset();
    test_head_ending_before_the_buffer();
    test_framing_names_fold_exactly();
    test_host_lower();
    test_many_headers();
    test_pipelined_and_leading_crlf();
    test_incremental();
    test_syntax_errors();
    test_request_line_errors();
    test_version_errors();
    test_target_forms();
    test_limits();
    test_framing_length();
    test_framing_chunked();
    test_framing_host();
    test_framing_connection();
    test_framing_expect();
    test_response_parse();
    test_response_prefixes();
    test_response_limits();
    test_response_framing();
    test_response_framing_errors();
    test_chunked_basic();
    test_chunked_leftover();
    test_chunked_errors();
    test_chunked_limits();
    test_chunked_sticky_error();
    return check_report("http1_parser");
}
