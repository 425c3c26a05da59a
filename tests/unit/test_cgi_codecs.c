/* The CGI-family codecs: the CGI response-head parser, FastCGI records, the SCGI netstring. */
#include <stdlib.h>
#include <string.h>

#include "cgi_response.h"
#include "check.h"
#include "fcgi.h"
#include "scgi.h"

static int parse(const char *s, gw_h1_response_head_t *h, gw_header_t *hs)
{
    h->headers = hs;
    return gw_cgi_parse_head(s, strlen(s), h, 4);
}

static void test_cgi_response(void)
{
    gw_header_t hs[4];
    gw_h1_response_head_t h;
    CHECK_EQ_INT(parse("Content-Type: text/plain\r\n\r\nbody", &h, hs), 28);
    CHECK_EQ_INT(h.status, 200);
    CHECK_EQ_INT(h.num_headers, 1);
    CHECK(gw_slice_eq(h.headers[0].value, "text/plain"));
    CHECK_EQ_INT(parse("Status: 404 Not Found\nX-A: 1\n\n", &h, hs), 30);
    CHECK_EQ_INT(h.status, 404);
    CHECK_EQ_INT(h.num_headers, 1); /* Status is not forwarded */
    CHECK(gw_slice_eq(h.reason, "Not Found"));
    CHECK_EQ_INT(parse("Status: HTTP/1.1 503\n\n", &h, hs) > 0, 1);
    CHECK_EQ_INT(h.status, 503);
    CHECK(parse("Location: /x\n\n", &h, hs) > 0 && h.status == 302);
    CHECK(parse("Status: 200\nLocation: /x\n\n", &h, hs) > 0 && h.status == 302);
    CHECK(parse("Status: 201\nLocation: /x\n\n", &h, hs) > 0 && h.status == 201);
    CHECK(parse("Status: 301\nLocation: /x\n\n", &h, hs) > 0 && h.status == 301);
    CHECK_EQ_INT(parse("Content-Type: text/plain\r\n", &h, hs), 0); /* more needed */
    CHECK_EQ_INT(parse("", &h, hs), 0);
    CHECK_EQ_INT(parse("not a header\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("Bad Name: x\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("Status: abc\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("Status: 100 Continue\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("Status: 200\nStatus: 404\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("X: a\x01" "b\n\n", &h, hs), -1);
    CHECK_EQ_INT(parse("A: 1\nB: 2\nC: 3\nD: 4\nE: 5\n\n", &h, hs), -1); /* over the header limit */
}

static gw_cgi_env_t env_of(const char *const *kv, size_t n, gw_header_t *items)
{
    gw_cgi_env_t env = {items, 0, n, 0};
    for (size_t i = 0; i < n; i++) {
        items[i] = (gw_header_t){{kv[2 * i], strlen(kv[2 * i])}, {kv[2 * i + 1], strlen(kv[2 * i + 1])}};
        env.bytes += items[i].name.len + items[i].value.len;
        env.count++;
    }
    return env;
}

static void test_fcgi_request(void)
{
    char big[300];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *kv[] = {"CONTENT_LENGTH", "0", "LONG", big};
    gw_header_t items[2];
    gw_cgi_env_t env = env_of(kv, 2, items);
    char *out = malloc(gw_fcgi_request_size(&env));
    size_t n = gw_fcgi_put_request(out, 1, true, &env, true);
    CHECK(n <= gw_fcgi_request_size(&env));
    const unsigned char *u = (const unsigned char *)out;
    CHECK(u[0] == 1 && u[1] == GW_FCGI_BEGIN_REQUEST && u[3] == 1 && u[5] == 8);
    CHECK(u[9] == 1 && u[10] == 1); /* responder, keep-conn */
    CHECK(u[17] == GW_FCGI_PARAMS);
    size_t clen = (size_t)(u[20] << 8 | u[21]);
    CHECK_EQ_INT(clen, 1 + 1 + 14 + 1 + 1 + 4 + 4 + 299);
    CHECK(u[24] == 14 && u[25] == 1 && memcmp(out + 26, "CONTENT_LENGTH0", 15) == 0);
    CHECK(u[41] == 4 && (u[42] & 0x80) && u[45] == (299 & 0xff)); /* a 4-byte value length */
    const unsigned char *end = u + 24 + clen;
    CHECK(end[1] == GW_FCGI_PARAMS && end[4] == 0 && end[5] == 0);
    CHECK(end[9] == GW_FCGI_STDIN && end[12] == 0 && end[13] == 0);
    CHECK_EQ_INT(n, 24 + clen + 16);
    free(out);
    /* a PARAMS stream over 65535 bytes is split over records */
    char *huge = malloc(100000);
    memset(huge, 'x', 99999);
    huge[99999] = '\0';
    const char *kv2[] = {"H", huge};
    env = env_of(kv2, 1, items);
    out = malloc(gw_fcgi_request_size(&env));
    n = gw_fcgi_put_request(out, 7, false, &env, false);
    u = (const unsigned char *)out;
    CHECK((u[20] << 8 | u[21]) == 65535 && u[19] == 7);
    size_t second = 24 + 65535;
    CHECK(u[second + 1] == GW_FCGI_PARAMS && (size_t)(u[second + 4] << 8 | u[second + 5]) == 1 + 4 + 1 + 99999 - 65535);
    CHECK_EQ_INT(n, 16 + 8 + 65535 + 8 + (1 + 4 + 1 + 99999 - 65535) + 8);
    free(out);
    free(huge);
}

static char errbuf[64];
static size_t errlen;
static void on_err(void *ctx, const char *d, size_t n)
{
    memcpy(errbuf + errlen, d, n);
    errlen += n;
}

static size_t rec(char *p, int type, uint16_t id, const char *content, size_t len, uint8_t pad)
{
    gw_fcgi_record_header(p, type, id, (uint16_t)len, pad);
    memcpy(p + 8, content, len);
    memset(p + 8 + len, 0, pad);
    return 8 + len + pad;
}

static void test_fcgi_decode(void)
{
    char buf[256];
    size_t n = 0;
    n += rec(buf + n, GW_FCGI_STDOUT, 1, "Status: 200\r\n", 13, 3);
    n += rec(buf + n, GW_FCGI_STDERR, 1, "oops", 4, 0);
    n += rec(buf + n, GW_FCGI_STDOUT, 2, "other", 5, 0); /* another request: skipped */
    n += rec(buf + n, GW_FCGI_STDOUT, 1, "\r\nhi", 4, 4);
    n += rec(buf + n, GW_FCGI_STDOUT, 1, "", 0, 0);
    n += rec(buf + n, GW_FCGI_END_REQUEST, 1, "\0\0\0\0\0\0\0\0", 8, 0);
    memcpy(buf + n, "XTRA", 4);
    /* byte by byte, as a backend may send it */
    gw_fcgi_decoder_t d = {.id = 1, .on_stderr = on_err};
    char out[256];
    size_t olen = 0, have = 0, total = n + 4;
    char work[256];
    for (size_t i = 0; i < total && !(d.done && !d.in_record); i++) {
        work[have++] = buf[i];
        size_t len = have;
        long used = gw_fcgi_decode(&d, work, &len);
        CHECK(used >= 0);
        if (used < 0 || (size_t)used > have) break;
        memcpy(out + olen, work, len);
        olen += len;
        memmove(work, work + used, have - (size_t)used);
        have -= (size_t)used;
    }
    CHECK(d.done && !d.in_record && d.protocol_status == 0);
    CHECK_EQ_INT(olen, 17);
    CHECK(memcmp(out, "Status: 200\r\n\r\nhi", 17) == 0);
    CHECK(errlen == 4 && memcmp(errbuf, "oops", 4) == 0);
    /* all at once: stops after END_REQUEST, extra bytes left */
    gw_fcgi_decoder_t d2 = {.id = 1};
    memcpy(work, buf, total);
    size_t len = total;
    long used = gw_fcgi_decode(&d2, work, &len);
    CHECK_EQ_INT(used, (long)n);
    CHECK_EQ_INT(len, 17);
    /* broken streams */
    gw_fcgi_decoder_t d3 = {.id = 1};
    char bad[16] = {2, 6, 0, 1, 0, 0, 0, 0};
    len = 8;
    CHECK_EQ_INT(gw_fcgi_decode(&d3, bad, &len), -1);
    gw_fcgi_decoder_t d4 = {.id = 1};
    rec(bad, GW_FCGI_END_REQUEST, 1, "\0\0\0\0", 4, 0);
    len = 12;
    CHECK_EQ_INT(gw_fcgi_decode(&d4, bad, &len), -1);
}

static void test_scgi_netstring(void)
{
    const char *kv[] = {"CONTENT_LENGTH", "27", "SCGI", "1", "REQUEST_METHOD", "POST"};
    gw_header_t items[3];
    gw_cgi_env_t env = env_of(kv, 3, items);
    char out[128];
    size_t n = gw_scgi_put_netstring(out, &env);
    static const char want[] = "45:CONTENT_LENGTH\0" "27\0" "SCGI\0" "1\0" "REQUEST_METHOD\0" "POST\0,";
    CHECK_EQ_INT(n, sizeof(want) - 1);
    CHECK(memcmp(out, want, sizeof(want) - 1) == 0);
    CHECK(n <= gw_scgi_netstring_size(&env));
}

int main(void)
{
    test_cgi_response();
    test_fcgi_request();
    test_fcgi_decode();
    test_scgi_netstring();
    return check_report("test_cgi_codecs");
}
