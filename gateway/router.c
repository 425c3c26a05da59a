/*
 * Per-request routing over the precompiled config: host by domain and local address, then the
 * location by path prefix on a segment boundary. Everything was merged at load time.
 */
#include <string.h>

#include "config.h"

/* Strips ":port" from a Host value (keeping "[v6]" literals whole). */
static gw_slice_t host_without_port(gw_slice_t h)
{
    if (h.len && h.base[0] == '[') {
        const char *close = memchr(h.base, ']', h.len);
        if (close) h.len = (size_t)(close - h.base) + 1;
        return h;
    }
    const char *colon = memchr(h.base, ':', h.len);
    if (colon) h.len = (size_t)(colon - h.base);
    return h;
}

static bool domain_matches(const gw_host_t *host, gw_slice_t name)
{
    if (!host->domain) return true;
    size_t dl = strlen(host->domain);
    if (name.len && name.base[name.len - 1] == '.') name.len--; /* absolute FQDN form */
    if (name.len == dl && memcmp(name.base, host->domain, dl) == 0) return true;
    if (!host->wildcard || name.len <= dl + 1) return false;
    /* *.example.com: any subdomain; the apex was checked above */
    const char *tail = name.base + name.len - dl;
    return tail[-1] == '.' && memcmp(tail, host->domain, dl) == 0;
}

static bool ip_matches(const gw_host_t *host, const struct in6_addr *local)
{
    return !host->has_ip || (local && memcmp(&host->ip, local, sizeof(*local)) == 0);
}

static bool location_matches(const gw_location_t *loc, gw_slice_t path)
{
    if (loc->path_len == 0) return true; /* "/" */
    if (path.len < loc->path_len || memcmp(path.base, loc->path, loc->path_len) != 0) return false;
    return path.len == loc->path_len || path.base[loc->path_len] == '/';
}

const gw_route_t *gw_config_route(const gw_config_t *cfg, gw_slice_t host, const struct in6_addr *local,
                                  gw_slice_t path)
{
    gw_slice_t name = host_without_port(host);
    for (size_t i = 0; i < cfg->num_hosts; i++) {
        const gw_host_t *h = &cfg->hosts[i];
        if (!domain_matches(h, name) || !ip_matches(h, local)) continue;
        for (size_t j = 0; j < h->num_locations; j++)
            if (location_matches(&h->locations[j], path)) return &h->locations[j].route;
        return &h->route;
    }
    return &cfg->global_route;
}
