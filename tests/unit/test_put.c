/* The printf-free text writers of the request path: decimal and hexadecimal numbers (put.h) and
 * addresses (gw_ip_text), checked against what printf and inet_ntop make. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "check.h"
#include "put.h"

static void test_numbers(void)
{
    static const uint64_t values[] = {0, 1, 9, 10, 15, 16, 99, 100, 255, 256, 4095, 65536, 1000000007,
                                      UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX / 3, UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char got[32], want[32];
        *gw_put_u64(got, values[i]) = '\0';
        snprintf(want, sizeof(want), "%" PRIu64, values[i]);
        CHECK_STR(got, want);
        *gw_put_hex(got, values[i]) = '\0';
        snprintf(want, sizeof(want), "%" PRIx64, values[i]);
        CHECK_STR(got, want);
    }
    char lit[8];
    *GW_PUT_LIT(lit, "ab\r\n") = '\0';
    CHECK_STR(lit, "ab\r\n");
}

static struct in6_addr mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    struct in6_addr ip = {.s6_addr = {[10] = 0xff, [11] = 0xff, [12] = a, [13] = b, [14] = c, [15] = d}};
    return ip;
}

static void test_addresses(void)
{
    static const uint8_t octets[] = {0, 1, 9, 10, 99, 100, 199, 200, 254, 255};
    size_t n = sizeof(octets);
    for (size_t i = 0; i < n * n; i++) { /* each of these values in each position, against inet_ntop */
        struct in6_addr ip =
            mapped(octets[i % n], octets[i / n], octets[(i + 3) % n], octets[(i / n + 7) % n]);
        char got[INET6_ADDRSTRLEN], want[INET_ADDRSTRLEN];
        size_t len = gw_ip_text(&ip, got, sizeof(got));
        inet_ntop(AF_INET, &ip.s6_addr[12], want, sizeof(want));
        CHECK_STR(got, want);
        CHECK_EQ_INT(len, strlen(want));
    }
    for (unsigned v = 0; v < 256; v++) { /* every octet value, first and last */
        struct in6_addr ip = mapped((uint8_t)v, 7, 77, (uint8_t)(255 - v));
        char got[INET6_ADDRSTRLEN], want[INET_ADDRSTRLEN];
        size_t len = gw_ip_text(&ip, got, sizeof(got));
        inet_ntop(AF_INET, &ip.s6_addr[12], want, sizeof(want));
        CHECK_STR(got, want);
        CHECK_EQ_INT(len, strlen(want));
    }
    struct in6_addr ip = mapped(255, 255, 255, 255);
    char small[INET_ADDRSTRLEN];
    CHECK_EQ_INT(gw_ip_text(&ip, small, sizeof(small)), 15); /* the longest one fits exactly */
    CHECK_STR(small, "255.255.255.255");
    char tiny[8];
    CHECK_EQ_INT(gw_ip_text(&ip, tiny, sizeof(tiny)), 0); /* does not fit: empty */
    CHECK_STR(tiny, "");
    char v6[INET6_ADDRSTRLEN];
    CHECK_EQ_INT(gw_ip_text(&in6addr_loopback, v6, sizeof(v6)), 3);
    CHECK_STR(v6, "::1");
}

int main(void)
{
    test_numbers();
    test_addresses();
    return check_report("put");
}
