/* Well-known response header names for HTTP/2. See http2_names.h. */
#include "http2_names.h"

#include <stdint.h>
#include <string.h>

typedef struct known_name {
    const char *name; /* lower-case */
    gw_h2_name_kind_t kind;
} known_name_t;

/* clang-format off */
/* (one line per length reads better than one line per name) */
#define KNOWN(s) {s, GW_H2_NAME_KNOWN}
#define MAX_PER_LENGTH 6
#define MAX_LENGTH 28

/* Indexed by length, so that a lookup compares with a handful of names at most; in each row the
 * names every static response carries come first. */
static const known_name_t by_length[MAX_LENGTH][MAX_PER_LENGTH] = {
    [3] = {KNOWN("age")},
    [4] = {KNOWN("etag"), KNOWN("vary"), {"date", GW_H2_NAME_DATE}, KNOWN("link")},
    [5] = {KNOWN("allow")},
    [6] = {KNOWN("server")},
    [7] = {KNOWN("alt-svc"), KNOWN("expires"), {"upgrade", GW_H2_NAME_HOP}},
    [8] = {KNOWN("location")},
    [10] = {KNOWN("set-cookie"), {"connection", GW_H2_NAME_HOP}, {"keep-alive", GW_H2_NAME_HOP}},
    [11] = {KNOWN("grpc-status"), KNOWN("retry-after")},
    [12] = {KNOWN("content-type"), KNOWN("cache-status"), KNOWN("grpc-message"), KNOWN("x-request-id")},
    [13] = {KNOWN("last-modified"), KNOWN("accept-ranges"), KNOWN("cache-control"), KNOWN("content-range")},
    [14] = {{"content-length", GW_H2_NAME_LENGTH}},
    [15] = {KNOWN("x-gateway-cache"), KNOWN("x-frame-options"), KNOWN("referrer-policy")},
    [16] = {KNOWN("content-encoding"), KNOWN("content-language"), KNOWN("content-location"),
            KNOWN("www-authenticate"), {"proxy-connection", GW_H2_NAME_HOP}},
    [17] = {{"transfer-encoding", GW_H2_NAME_HOP}},
    [18] = {KNOWN("proxy-authenticate")},
    [19] = {KNOWN("content-disposition")},
    [22] = {KNOWN("x-content-type-options")},
    [23] = {KNOWN("content-security-policy")},
    [25] = {KNOWN("strict-transport-security")},
    [27] = {KNOWN("access-control-allow-origin")},
};
/* clang-format on */

static uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Handlers add lower-case names: compared a word at a time first, the last word overlapping the
 * one before it rather than finishing byte by byte. */
static bool same_bytes(const char *s, const char *lower, size_t n)
{
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (load64(s + i) != load64(lower + i)) return false;
        return load64(s + n - 8) == load64(lower + n - 8);
    }
    if (n >= 4) return load32(s) == load32(lower) && load32(s + n - 4) == load32(lower + n - 4);
    for (size_t i = 0; i < n; i++)
        if (s[i] != lower[i]) return false;
    return true;
}

static bool same_lower(const char *s, const char *lower, size_t n)
{
    if (same_bytes(s, lower, n)) return true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32) : s[i];
        if (c != lower[i]) return false;
    }
    return true;
}

gw_h2_name_kind_t gw_h2_name_lookup(gw_slice_t name, const char **lower)
{
    if (name.len >= MAX_LENGTH) return GW_H2_NAME_OTHER;
    const known_name_t *k = by_length[name.len];
    for (size_t i = 0; i < MAX_PER_LENGTH && k[i].name; i++) {
        if (k[i].name[0] != (name.base[0] | 0x20) || !same_lower(name.base, k[i].name, name.len)) continue;
        *lower = k[i].name;
        return k[i].kind;
    }
    return GW_H2_NAME_OTHER;
}
