/* PROXY protocol v1 and v2 headers. See proxy_proto.h. */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v1_sig[] = "PROXY ";
static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define V1_SIG_LEN (sizeof(v1_sig) - 1)

/* 1: buf starts with sig, -1: buf is a shorter prefix of it, 0: neither. */
static int starts_with(const uint8_t *buf, size_t len, const uint8_t *sig, size_t siglen)
{
    size_t n = len < siglen ? len : siglen;
    if (memcmp(buf, sig, n) != 0) return 0;
    return n == siglen ? 1 : -1;
}

int gw_pp_detect(const uint8_t *buf, size_t len)
{
    int v1 = starts_with(buf, len, v1_sig, V1_SIG_LEN);
    int v2 = starts_with(buf, len, v2_sig, sizeof(v2_sig));
    if (v1 == 1 || v2 == 1) return 1;
    return v1 == -1 || v2 == -1 ? -1 : 0;
}

/* ---- v1: "PROXY TCP4 src dst sport dport\r\n" ---- */

static bool parse_port(const char *s, in_port_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0')) return false;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > 65535) return false;
    *out = htons((uint16_t)v);
    return true;
}

/* An address of the line's family into a v4-mapped or IPv6 sockaddr. */
static bool parse_v1_addr(const char *s, bool v6, struct sockaddr_in6 *out)
{
    memset(out, 0, sizeof(*out));
    out->sin6_family = AF_INET6;
    if (v6) return inet_pton(AF_INET6, s, &out->sin6_addr) == 1;
    out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
    return inet_pton(AF_INET, s, &out->sin6_addr.s6_addr[12]) == 1;
}

/* The fields of a TCP4/TCP6 line after "PROXY TCPx ": exactly four, single spaces. */
static bool parse_v1_fields(char *rest, bool v6, gw_pp_header_t *out)
{
    char *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = strsep(&rest, " ");
        if (!f[i]) return false;
    }
    return !rest && parse_v1_addr(f[0], v6, &out->src) && parse_v1_addr(f[1], v6, &out->dst) &&
           parse_port(f[2], &out->src.sin6_port) && parse_port(f[3], &out->dst.sin6_port);
}

static int parse_v1(const uint8_t *buf, size_t len, size_t max, gw_pp_header_t *out)
{
    size_t limit = max < GW_PP_V1_MAX ? max : GW_PP_V1_MAX;
    const uint8_t *lf = memchr(buf, '\n', len < limit ? len : limit);
    if (!lf) return len >= limit ? -1 : 0;
    size_t line_len = (size_t)(lf - buf);
    if (line_len < V1_SIG_LEN || buf[line_len - 1] != '\r') return -1;
    char line[GW_PP_V1_MAX + 1];
    memcpy(line, buf, line_len - 1);
    line[line_len - 1] = '\0';
    if (memchr(line, '\0', line_len - 1)) return -1;
    char *rest = line + V1_SIG_LEN;
    out->has_addr = false;
    if (!strncmp(rest, "UNKNOWN", 7) && (rest[7] == '\0' || rest[7] == ' ')) return (int)line_len + 1;
    bool v6 = !strncmp(rest, "TCP6 ", 5);
    if (!v6 && strncmp(rest, "TCP4 ", 5) != 0) return -1;
    if (!parse_v1_fields(rest + 5, v6, out)) return -1;
    out->has_addr = true;
    return (int)line_len + 1;
}

/* ---- v2: signature, version/command, family/protocol, length, addresses, TLVs ---- */

enum { V2_LOCAL = 0x20, V2_PROXY = 0x21, V2_TCP4 = 0x11, V2_TCP6 = 0x21 };

static void v2_addr(struct sockaddr_in6 *out, const uint8_t *ip, size_t iplen, const uint8_t *port)
{
    memset(out, 0, sizeof(*out));
    out->sin6_family = AF_INET6;
    if (iplen == 4) {
        out->sin6_addr.s6_addr[10] = out->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&out->sin6_addr.s6_addr[12], ip, 4);
    } else {
        memcpy(&out->sin6_addr, ip, 16);
    }
    memcpy(&out->sin6_port, port, 2); /* both in network order */
}

/* The address block of a PROXY command; the TLVs after it are skipped (none is used). */
static bool parse_v2_addrs(uint8_t fam, const uint8_t *a, size_t alen, gw_pp_header_t *out)
{
    uint8_t af = fam >> 4, proto = fam & 0x0f;
    out->has_addr = false;
    if (af == 0 || af == 3) return true; /* AF_UNSPEC, AF_UNIX: keep the socket's addresses */
    if ((af != 1 && af != 2) || proto != 1) return false; /* only TCP over IPv4/IPv6 */
    size_t iplen = af == 1 ? 4 : 16;
    if (alen < 2 * iplen + 4) return false;
    v2_addr(&out->src, a, iplen, a + 2 * iplen);
    v2_addr(&out->dst, a + iplen, iplen, a + 2 * iplen + 2);
    out->has_addr = true;
    return true;
}

static int parse_v2(const uint8_t *buf, size_t len, size_t max, gw_pp_header_t *out)
{
    if (len < GW_PP_V2_FIXED) return 0;
    size_t total = GW_PP_V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
    if (total > max || (buf[12] != V2_LOCAL && buf[12] != V2_PROXY)) return -1;
    if (len < total) return 0;
    if (buf[12] == V2_LOCAL) { /* the balancer's own connection (health check) */
        out->has_addr = false;
        return (int)total;
    }
    return parse_v2_addrs(buf[13], buf + GW_PP_V2_FIXED, total - GW_PP_V2_FIXED, out) ? (int)total : -1;
}

int gw_pp_parse(const uint8_t *buf, size_t len, size_t max, gw_pp_header_t *out)
{
    if (starts_with(buf, len, v2_sig, sizeof(v2_sig)) == 1) return parse_v2(buf, len, max, out);
    int v1 = starts_with(buf, len, v1_sig, V1_SIG_LEN);
    if (v1 == 0) return -1;
    return v1 == -1 ? 0 : parse_v1(buf, len, max, out);
}

/* ---- writing ---- */

static bool is_v4(const struct sockaddr_in6 *a)
{
    return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
}

static size_t write_v1(const struct sockaddr_in6 *src, const struct sockaddr_in6 *dst, bool v4, uint8_t *buf)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    int af = v4 ? AF_INET : AF_INET6;
    size_t off = v4 ? 12 : 0;
    inet_ntop(af, &src->sin6_addr.s6_addr[off], s, sizeof(s));
    inet_ntop(af, &dst->sin6_addr.s6_addr[off], d, sizeof(d));
    int n = snprintf((char *)buf, GW_PP_WRITE_MAX, "PROXY TCP%c %s %s %u %u\r\n", v4 ? '4' : '6', s, d,
                     ntohs(src->sin6_port), ntohs(dst->sin6_port));
    return n > 0 && n < GW_PP_WRITE_MAX ? (size_t)n : 0;
}

static size_t write_v2(const struct sockaddr_in6 *src, const struct sockaddr_in6 *dst, bool v4, uint8_t *buf)
{
    size_t iplen = v4 ? 4 : 16, off = v4 ? 12 : 0, alen = 2 * iplen + 4;
    memcpy(buf, v2_sig, sizeof(v2_sig));
    buf[12] = V2_PROXY;
    buf[13] = v4 ? V2_TCP4 : V2_TCP6;
    buf[14] = 0;
    buf[15] = (uint8_t)alen;
    uint8_t *a = buf + GW_PP_V2_FIXED;
    memcpy(a, &src->sin6_addr.s6_addr[off], iplen);
    memcpy(a + iplen, &dst->sin6_addr.s6_addr[off], iplen);
    memcpy(a + 2 * iplen, &src->sin6_port, 2);
    memcpy(a + 2 * iplen + 2, &dst->sin6_port, 2);
    return GW_PP_V2_FIXED + alen;
}

size_t gw_pp_write(int version, const struct sockaddr_in6 *src, const struct sockaddr_in6 *dst, uint8_t *buf)
{
    if (IN6_IS_ADDR_UNSPECIFIED(&src->sin6_addr)) { /* no IP to pass on (a Unix-socket client) */
        if (version == 1) {
            memcpy(buf, "PROXY UNKNOWN\r\n", 15);
            return 15;
        }
        memcpy(buf, v2_sig, sizeof(v2_sig));
        buf[12] = V2_PROXY;
        buf[13] = buf[14] = buf[15] = 0;
        return GW_PP_V2_FIXED;
    }
    bool v4 = is_v4(src) && is_v4(dst);
    return version == 1 ? write_v1(src, dst, v4, buf) : write_v2(src, dst, v4, buf);
}
