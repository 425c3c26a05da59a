/* Module registry and handler chains. See modules.h. */
#include "modules.h"

#include <string.h>

#include "acme_challenge.h"
#include "admin.h"
#include "config_props.h"
#include "module_loader.h"
#include "policy.h"
#include "cache.h"
#include "cgi.h"
#include "fauth.h"
#include "fcgi.h"
#include "fproxy.h"
#include "scgi.h"
#include "rproxy.h"
#include "static.h"
#include "compress.h"
#include "response.h"

/* Ferron 1.x built-in module names; handler NULL = not in this build yet. Any other name (such as
 * `example`) is a shared object loaded by module_loader.c. */
static const struct {
    const char *name;
    const gw_handler_t *handler;
} modules[] = {
    {"cache", &gw_cache_default_handler}, {"cgi", &gw_cgi_handler},     {"fauth", &gw_fauth_handler},   {"fcgi", &gw_fcgi_handler}, {"fproxy", &gw_fproxy_handler},
    {"rproxy", &gw_rproxy_handler}, {"scgi", &gw_scgi_handler},   {"wsgi", NULL}, {"wsgid", NULL}, {"asgi", NULL},
};

static int module_index(const char *name)
{
    for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]); i++)
        if (strcmp(modules[i].name, name) == 0) return (int)i;
    return -1;
}

gw_module_status_t gw_module_status(const char *name)
{
    int i = module_index(name);
    if (i < 0) return GW_MODULE_UNKNOWN;
    return modules[i].handler ? GW_MODULE_AVAILABLE : GW_MODULE_NOT_BUILT;
}

static const gw_handler_t *loaded_handler(const gw_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->num_modules; i++)
        if (strcmp(cfg->modules[i].name, name) == 0) return &cfg->modules[i].handler;
    return NULL;
}

void gw_modules_build_chain(gw_route_t *route, gw_arena_t *arena, const gw_config_t *cfg)
{
    const gw_node_t *mods = gw_route_prop(route, "loadModules");
    size_t n = mods && mods->kind == GW_NODE_SEQ ? mods->seq.count : 0;
    const gw_handler_t **chain = gw_arena_alloc(arena, (n + 4 + GW_POLICY_MAX_STAGES) * sizeof(*chain));
    route->handlers = chain;
    route->num_handlers = 0;
    if (!chain) return;
    /* health, readiness, metrics (admin.h): before policy and redirects, for allowed peers only;
     * on adminListen's own route instead when it is set */
    const gw_handler_t *admin = gw_admin_has_own_listener(route) ? NULL : gw_admin_handler_new(route, arena);
    if (admin) chain[route->num_handlers++] = admin;
    /* HTTP-01 answers for the ACME validator: before policy and redirects, as the CA must reach them */
    const gw_handler_t *acme = gw_acme_challenge_handler(route);
    if (acme) chain[route->num_handlers++] = acme;
    /* spec §3.1: client address, redirects, then access lists, rewrites, nonStandardCodes, limits */
    route->num_handlers += gw_policy_stages(route->policy, true, chain + route->num_handlers);
    const gw_handler_t *redirects = gw_redirect_handler_new(route, arena);
    if (redirects) chain[route->num_handlers++] = redirects;
    route->num_handlers += gw_policy_stages(route->policy, false, chain + route->num_handlers);
    for (size_t i = 0; i < n; i++) {
        const char *name = gw_node_as_string(mods->seq.items[i]);
        int m = name ? module_index(name) : -1;
        const gw_handler_t *h = m >= 0 ? modules[m].handler : name ? loaded_handler(cfg, name) : NULL;
        if (h == &gw_cache_default_handler) h = gw_cache_handler_new(route, arena); /* per-route settings */
        if (h == &gw_fproxy_handler) h = gw_fproxy_handler_new(route, arena); /* destination policy */
        if (h) chain[route->num_handlers++] = h;
    }
    chain[route->num_handlers++] = &gw_static_handler;
    gw_modules_build_filters(route, arena);
}

/* Whether `cache` is in the route's loadModules. */
static bool cache_loaded(const gw_route_t *route)
{
    const gw_node_t *mods = gw_route_prop(route, "loadModules");
    for (size_t i = 0; mods && mods->kind == GW_NODE_SEQ && i < mods->seq.count; i++) {
        const char *name = gw_node_as_string(mods->seq.items[i]);
        if (name && strcmp(name, "cache") == 0) return true;
    }
    return false;
}

void gw_modules_build_filters(gw_route_t *route, gw_arena_t *arena)
{
    /* the cache first: it stores what the handler sent, before header rules and compression, which
     * then apply to hits as to any response; header rules before compression, so compression sees
     * a Cache-Control or Content-Type they set */
    const gw_filter_t *candidates[] = {cache_loaded(route) ? &gw_cache_filter : NULL,
                                       gw_headers_filter_new(route, arena), gw_compress_filter_new(route, arena)};
    const size_t max = sizeof(candidates) / sizeof(candidates[0]);
    const gw_filter_t **filters = gw_arena_alloc(arena, max * sizeof(*filters));
    route->filters = filters;
    route->num_filters = 0;
    for (size_t i = 0; filters && i < max; i++)
        if (candidates[i]) filters[route->num_filters++] = candidates[i];
}
