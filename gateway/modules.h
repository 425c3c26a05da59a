/*
 * The handler chain of a route: the modules named in loadModules, in that order, then the static
 * file handler (Ferron's fixed pipeline, spec §3.1). Modules are looked up here by name.
 */
#ifndef GW_MODULES_H
#define GW_MODULES_H

#include "config.h"

typedef enum gw_module_status {
    GW_MODULE_UNKNOWN,   /**< not built in: loaded from <modulesDir>/<name>.so */
    GW_MODULE_NOT_BUILT, /**< a Ferron module name this build does not have yet: a warning */
    GW_MODULE_AVAILABLE,
} gw_module_status_t;

/** Tells whether a loadModules name is known and available. */
gw_module_status_t gw_module_status(const char *name);

/** Builds route->handlers from loadModules (built-in or loaded from cfg->modules) + static,
 *  preceded by the redirects (HTTPS, www) the route needs, then the route's response filters. */
void gw_modules_build_chain(gw_route_t *route, gw_arena_t *arena, const gw_config_t *cfg);

/** Builds route->filters: header rules (customHeaders, set/add/remove, HSTS), then compression.
 *  A route without any of them gets no filter and pays nothing per response. */
void gw_modules_build_filters(gw_route_t *route, gw_arena_t *arena);

#endif
