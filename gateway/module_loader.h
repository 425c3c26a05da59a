/* Loading `.so` modules (gateway/module.h ABI) and the accessors they call. */
#ifndef GW_MODULE_LOADER_H
#define GW_MODULE_LOADER_H

#include "handler.h"
#include "module.h"
#include "yaml_tree.h"

/** A loaded module; `handler` lets it sit in a route's handler chain like a built-in. */
typedef struct gw_loaded_module {
    gw_handler_t handler;
    const gw_module_def_t *def;
    void *state;
    void *dl;
    char name[64];
} gw_loaded_module_t;

/**
 * Loads `<dir>/<name>.so` (dir NULL: the default, `modules/` beside the binary, then
 * `../lib/gateway/modules`), checks its entry symbol and ABI version, and runs its init with the
 * global config map. Returns 0, or -1 with the reason in err.
 */
int gw_module_load(gw_loaded_module_t *m, const char *dir, const char *name, const gw_node_t *global, char *err,
                   size_t errlen);

/** Runs the module's cleanup and unloads it. */
void gw_module_unload(gw_loaded_module_t *m);

/** The directory modules are looked up in when `modulesDir` is not set. */
const char *gw_module_default_dir(char *buf, size_t len);

#endif
