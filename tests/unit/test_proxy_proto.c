/* PROXY protocol headers: detection on partial input, v1/v2 parsing with its bounds, and what
 * gw_pp_write makes parsing back to the same addresses. */
#include "check.h"
#include "proxy_proto.h"

#include <arpa/inet.h>

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int parse(const char *s, gw_pp_header_t *h)
{
    return gw_pp_parse((const uint8_t *)s, strlen(s), 512, h);
}

static const char *src_text(const gw_pp_header_t *h)
{
    static char buf[INET6_ADDRSTRLEN];
    return inet_ntop(AF_INET6, &h->src.sin6_addr, buf, sizeof(buf));
}

static void test_detect(void)
{
    CHECK_EQ_INT(gw_pp_detect((const uint8_t *)"PRO", 3), -1);
    CHECK_EQ_INT(gw_pp_detect((const uint8_t *)"PROXY ", 6), 1);
    CHECK_EQ_INT(gw_pp_detect((const uint8_t *)"PROPFIND", 8), 0);
    CHECK_EQ_INT(gw_pp_detect((const uint8_t *)"PRI * HTTP/2.0", 14), 0);
    CHECK_EQ_INT(gw_pp_detect((const uint8_t *)"\x16\x03\x01", 3), 0); /* a TLS ClientHello */
    CHECK_EQ_INT(gw_pp_detect(sig, 5), -1);
    CHECK_EQ_INT(gw_pp_detect(sig, 12), 1);
}

static void test_v1(void)
{
    gw_pp_header_t h;
    CHECK_EQ_INT(parse("PROXY TCP4 192.0.2.1 198.51.100.2 5555 80\r\nGET", &h), 43);
    CHECK(h.has_addr);
    CHECK_STR(src_text(&h), "::ffff:192.0.2.1");
    CHECK_EQ_INT(ntohs(h.src.sin6_port), 5555);
    CHECK_EQ_INT(ntohs(h.dst.sin6_port), 80);
    CHECK_EQ_INT(parse("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n", &h), 40);
    CHECK_STR(src_text(&h), "2001:db8::1");
    CHECK_EQ_INT(parse("PROXY UNKNOWN\r\n", &h), 15);
    CHECK(!h.has_addr);
    CHECK_EQ_INT(parse("PROXY TCP4 192.0.2.1 198.51.100.2 5555", &h), 0); /* more to come */
    CHECK_EQ_INT(parse("PROXY TCP4 192.0.2.1 198.51.100.2 05 80\r\n", &h), -1);
    CHECK_EQ_INT(parse("PROXY TCP6 192.0.2.1 198.51.100.2 5 80\r\n", &h), -1);
    CHECK_EQ_INT(parse("PROXY TCP4 192.0.2.1 198.51.100.2 5 80 9\r\n", &h), -1);
    char longline[200];
    memset(longline, '1', sizeof(longline) - 1);
    memcpy(longline, "PROXY TCP4 ", 11);
    longline[sizeof(longline) - 1] = '\0';
    CHECK_EQ_INT(parse(longline, &h), -1); /* no CRLF within 107 bytes */
}

static void test_v2(void)
{
    uint8_t b[64];
    memcpy(b, sig, 12);
    memcpy(b + 12, "\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x02\x15\xb3\x00\x50", 16);
    gw_pp_header_t h;
    CHECK_EQ_INT(gw_pp_parse(b, 28, 512, &h), 28);
    CHECK_STR(src_text(&h), "::ffff:192.0.2.1");
    CHECK_EQ_INT(ntohs(h.src.sin6_port), 5555);
    CHECK_EQ_INT(gw_pp_parse(b, 27, 512, &h), 0);
    CHECK_EQ_INT(gw_pp_parse(b, 28, 27, &h), -1); /* longer than allowed */
    b[12] = 0x20;                                 /* LOCAL */
    CHECK_EQ_INT(gw_pp_parse(b, 28, 512, &h), 28);
    CHECK(!h.has_addr);
    b[12] = 0x11; /* version 1 in a v2 header */
    CHECK_EQ_INT(gw_pp_parse(b, 28, 512, &h), -1);
    b[12] = 0x21;
    b[13] = 0x12; /* UDP */
    CHECK_EQ_INT(gw_pp_parse(b, 28, 512, &h), -1);
}

static struct sockaddr_in6 addr(const char *text, unsigned port)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    inet_pton(AF_INET6, text, &a.sin6_addr);
    return a;
}

static void round_trip(int version, const char *src, const char *dst, const char *v1_text)
{
    struct sockaddr_in6 s = addr(src, 1234), d = addr(dst, 443);
    uint8_t buf[GW_PP_WRITE_MAX];
    size_t n = gw_pp_write(version, &s, &d, buf);
    if (v1_text) CHECK(n == strlen(v1_text) && !memcmp(buf, v1_text, n));
    gw_pp_header_t h;
    CHECK_EQ_INT(gw_pp_parse(buf, n, 512, &h), (int)n);
    CHECK(h.has_addr && !memcmp(&h.src, &s, sizeof(s)) && !memcmp(&h.dst, &d, sizeof(d)));
}

static void test_write(void)
{
    round_trip(1, "::ffff:192.0.2.1", "::ffff:10.0.0.1", "PROXY TCP4 192.0.2.1 10.0.0.1 1234 443\r\n");
    round_trip(1, "2001:db8::1", "::ffff:10.0.0.1", "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1234 443\r\n");
    round_trip(2, "::ffff:192.0.2.1", "::ffff:10.0.0.1", NULL);
    round_trip(2, "2001:db8::1", "2001:db8::2", NULL);
    struct sockaddr_in6 none = addr("::", 0);
    uint8_t buf[GW_PP_WRITE_MAX];
    CHECK_EQ_INT(gw_pp_write(1, &none, &none, buf), 15);
    gw_pp_header_t h;
    CHECK_EQ_INT(gw_pp_parse(buf, gw_pp_write(2, &none, &none, buf), 512, &h), 16);
    CHECK(!h.has_addr);
}

int main(void)
{
    test_detect();
    test_v1();
    test_v2();
    test_write();
    return check_report("proxy_proto");
}
