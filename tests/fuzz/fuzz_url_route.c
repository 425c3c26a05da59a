/*
 * libFuzzer target: URL sanitising (gw_uri_normalize) and routing over a compiled config. Besides
 * memory errors it checks the properties the security rule of the config issue rests on: the
 * normalised path is a fixed point, holds no "." or ".." segment even after percent-decoding,
 * decoding it creates no new "/" (so a handler that decodes sees the same segments routing saw),
 * and a path that a handler would read as /admin... is routed to the /admin location.
 *
 * Input: byte 0 holds flags (bit 0: allowDoubleSlashes; bit 1: ask for an unknown host), the rest
 * is the path part of a request target.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "uri.h"

static const char config_yaml[] = "global:\n"
                                  "  port: 8080\n"
                                  "hosts:\n"
                                  "  - domain: example.com\n"
                                  "    locations:\n"
                                  "      - path: /admin\n"
                                  "        serverAdministratorEmail: admin@example.com\n"
                                  "      - path: /static/files\n"
                                  "        serverAdministratorEmail: files@example.com\n";

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "property violated: %s\n", what);
        abort();
    }
}

static const gw_config_t *config(void)
{
    static gw_config_t *cfg;
    if (!cfg) {
        char err[1024];
        cfg = gw_config_load_string("fuzz.yaml", config_yaml, err, sizeof err, NULL, NULL);
        if (!cfg) {
            fprintf(stderr, "fuzz config does not load: %s\n", err);
            abort();
        }
    }
    return cfg;
}

/* Whether `p` lies under the location prefix `loc` on a segment boundary (as the router decides). */
static int under(const char *p, size_t len, const char *loc)
{
    size_t l = strlen(loc);
    return len >= l && memcmp(p, loc, l) == 0 && (len == l || p[l] == '/');
}

static size_t count_byte(const char *p, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == c;
    return n;
}

static void check_segments(const char *p, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/') continue;
        size_t sl = i - start;
        require(!(sl == 1 && p[start] == '.'), "no \".\" segment");
        require(!(sl == 2 && p[start] == '.' && p[start + 1] == '.'), "no \"..\" segment");
        start = i + 1;
    }
}

static void check_route(const char *out, size_t n, const char *decoded, size_t dn, int unknown_host)
{
    const gw_config_t *cfg = config();
    gw_slice_t host = unknown_host ? GW_SLICE_LIT("other.test") : GW_SLICE_LIT("example.com:8080");
    const gw_route_t *r = gw_config_route(cfg, host, NULL, (gw_slice_t){out, n});
    const gw_route_t *admin = gw_config_route(cfg, GW_SLICE_LIT("example.com"), NULL, GW_SLICE_LIT("/admin"));
    require(r != NULL, "a route for every path");
    if (unknown_host) {
        require(r == &cfg->global_route, "unknown host gets the global route");
        return;
    }
    require((r == admin) == under(out, n, "/admin"), "router agrees with the segment rule");
    require(under(out, n, "/admin") == under(decoded, dn, "/admin"), "decoding cannot reach /admin");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int allow_double = data[0] & 1, unknown_host = (data[0] >> 1) & 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1, cap = len * 3 + 2;
    char *out = malloc(cap), *again = malloc(cap), *decoded = malloc(cap);
    long n = gw_uri_normalize(in, len, out, cap, allow_double);
    require(n >= -1, "capacity len*3+2 is always enough");
    if (n >= 0) {
        int passthrough = len == 0 || (len == 1 && in[0] == '*');
        require(passthrough || (n > 0 && out[0] == '/'), "leading slash");
        long m = gw_uri_normalize(out, (size_t)n, again, cap, allow_double);
        require(m == n && memcmp(out, again, (size_t)n) == 0, "normalisation is a fixed point");
        if (!allow_double && !passthrough) require(!memmem(out, (size_t)n, "//", 2), "slashes collapsed");
        long dn = gw_uri_decode(out, (size_t)n, decoded, cap);
        if (dn >= 0) {
            require(count_byte(decoded, (size_t)dn, '/') == count_byte(out, (size_t)n, '/'),
                    "decoding adds no separator");
            check_segments(decoded, (size_t)dn);
            if (!passthrough) check_route(out, (size_t)n, decoded, (size_t)dn, unknown_host);
        }
    }
    free(out);
    free(again);
    free(decoded);
    return 0;
}
