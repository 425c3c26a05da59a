/* IP/CIDR lists and X-Forwarded-For parsing. See acl.h. */
#include "acl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_props.h"

static void v4_mapped(struct in6_addr *out, const struct in_addr *v4)
{
    memset(out, 0, sizeof(*out));
    out->s6_addr[10] = out->s6_addr[11] = 0xff;
    memcpy(&out->s6_addr[12], v4, 4);
}

bool gw_ip_parse(const char *s, size_t len, struct in6_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf)) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        v4_mapped(out, &v4);
        return true;
    }
    return inet_pton(AF_INET6, buf, out) == 1;
}

static void mask_bits(struct in6_addr *a, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        a->s6_addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

bool gw_cidr_parse(const char *s, gw_cidr_t *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (!gw_ip_parse(s, alen, &out->addr)) return false;
    bool v4 = memchr(s, ':', alen) == NULL;
    unsigned max = v4 ? 32 : 128;
    unsigned bits = max;
    if (slash) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9') return false;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (*end || b > max) return false;
        bits = (unsigned)b;
    }
    out->bits = (uint8_t)(v4 ? bits + 96 : bits);
    mask_bits(&out->addr, out->bits);
    return true;
}

bool gw_cidr_match(const gw_cidr_t *c, const struct in6_addr *ip)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr.s6_addr, ip->s6_addr, full) != 0) return false;
    if (!rest) return true;
    uint8_t m = (uint8_t)(0xff00u >> rest);
    return (ip->s6_addr[full] & m) == c->addr.s6_addr[full];
}

static int cmp_addr(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(struct in6_addr));
}

bool gw_cidr_list_build(gw_cidr_list_t *l, gw_arena_t *arena, const char *const *items, size_t n, size_t *bad)
{
    memset(l, 0, sizeof(*l));
    if (!n) return true;
    l->hosts = gw_arena_alloc(arena, n * sizeof(*l->hosts));
    l->nets = gw_arena_alloc(arena, n * sizeof(*l->nets));
    if (!l->hosts || !l->nets) {
        *bad = 0;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        gw_cidr_t c;
        if (!items[i] || !gw_cidr_parse(items[i], &c)) {
            *bad = i;
            return false;
        }
        if (c.bits == 128)
            l->hosts[l->num_hosts++] = c.addr;
        else
            l->nets[l->num_nets++] = c;
    }
    qsort(l->hosts, l->num_hosts, sizeof(*l->hosts), cmp_addr);
    return true;
}

const gw_node_t *gw_cidr_seq_check(const gw_node_t *seq, char *why, size_t whylen)
{
    for (size_t i = 0; seq->kind == GW_NODE_SEQ && i < seq->seq.count; i++) {
        const char *s = gw_node_as_string(seq->seq.items[i]);
        gw_cidr_t c;
        if (s && gw_cidr_parse(s, &c)) continue;
        snprintf(why, whylen, "'%s' is not an IP address or CIDR prefix", s ? s : "null");
        return seq->seq.items[i];
    }
    return NULL;
}

bool gw_cidr_list_from_seq(gw_cidr_list_t *l, gw_arena_t *arena, const gw_node_t *seq)
{
    const char **items = gw_arena_alloc(arena, (seq->seq.count + 1) * sizeof(*items));
    if (!items) return false;
    for (size_t i = 0; i < seq->seq.count; i++) items[i] = gw_node_as_string(seq->seq.items[i]);
    size_t bad;
    return gw_cidr_list_build(l, arena, items, seq->seq.count, &bad);
}

bool gw_cidr_list_match(const gw_cidr_list_t *l, const struct in6_addr *ip)
{
    if (l->num_hosts && bsearch(ip, l->hosts, l->num_hosts, sizeof(*l->hosts), cmp_addr)) return true;
    for (size_t i = 0; i < l->num_nets; i++)
        if (gw_cidr_match(&l->nets[i], ip)) return true;
    return false;
}

/* "00" to "99": two digits of an octet at a time, without a division for each. */
static const char digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* One IPv4 octet in decimal. */
static char *put_octet(char *p, unsigned v)
{
    if (v < 10) {
        *p = (char)('0' + v);
        return p + 1;
    }
    if (v >= 100) {
        *p++ = (char)('0' + v / 100);
        v %= 100;
    }
    memcpy(p, digit_pairs + 2 * v, 2);
    return p + 2;
}

size_t gw_ip_text(const struct in6_addr *ip, char *buf, size_t len)
{
    if (IN6_IS_ADDR_V4MAPPED(ip) && len >= INET_ADDRSTRLEN) { /* by hand: inet_ntop runs sprintf */
        char *p = put_octet(buf, ip->s6_addr[12]);
        for (int i = 13; i < 16; i++) {
            *p++ = '.';
            p = put_octet(p, ip->s6_addr[i]);
        }
        *p = '\0';
        return (size_t)(p - buf);
    }
    const char *text = IN6_IS_ADDR_V4MAPPED(ip) ? inet_ntop(AF_INET, &ip->s6_addr[12], buf, (socklen_t)len)
                                                : inet_ntop(AF_INET6, ip, buf, (socklen_t)len);
    if (!text && len) buf[0] = '\0'; /* too small a buffer: nothing printed */
    return text ? strlen(buf) : 0;
}

static gw_slice_t trim(gw_slice_t s)
{
    while (s.len && (s.base[0] == ' ' || s.base[0] == '\t'))
        s.base++, s.len--;
    while (s.len && (s.base[s.len - 1] == ' ' || s.base[s.len - 1] == '\t'))
        s.len--;
    return s;
}

bool gw_xff_element_parse(gw_slice_t s, struct in6_addr *out)
{
    s = trim(s);
    if (s.len && s.base[0] == '[') { /* "[v6]" or "[v6]:port" */
        const char *close = memchr(s.base, ']', s.len);
        return close && gw_ip_parse(s.base + 1, (size_t)(close - s.base - 1), out);
    }
    const char *colon = memchr(s.base, ':', s.len);
    if (colon && !memchr(colon + 1, ':', s.len - (size_t)(colon - s.base) - 1)) /* "v4:port" */
        return gw_ip_parse(s.base, (size_t)(colon - s.base), out);
    return gw_ip_parse(s.base, s.len, out);
}

/* The element of value `v` that ends just before byte `end` (elements are comma separated). */
static gw_slice_t element_before(gw_slice_t v, size_t end, size_t *start)
{
    size_t b = end;
    while (b > 0 && v.base[b - 1] != ',')
        b--;
    *start = b;
    return (gw_slice_t){v.base + b, end - b};
}

bool gw_xff_pick(const gw_slice_t *xff, size_t n, const gw_cidr_list_t *trusted, struct in6_addr *out)
{
    bool found = false;
    for (size_t i = n; i-- > 0;) {
        size_t end = xff[i].len;
        for (;;) {
            size_t start;
            gw_slice_t e = element_before(xff[i], end, &start);
            struct in6_addr a;
            if (trim(e).len) {
                if (!gw_xff_element_parse(e, &a)) return found;
                *out = a;
                found = true;
                if (!gw_cidr_list_match(trusted, &a)) return true;
            }
            if (start == 0) break;
            end = start - 1;
        }
    }
    return found;
}
