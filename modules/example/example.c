/*
 * The example module: answers GET /hello with "Hello World!" and lets every other request pass
 * (Ferron's `example`). Built against gateway/module.h only, as a third-party module would be.
 */
#include <string.h>

#include "module.h"

static gw_mod_result_t hello(void *state, gw_mod_request_t *req)
{
    (void)state;
    size_t len;
    const char *path = gw_mod_path(req, &len);
    if (len != 6 || memcmp(path, "/hello", 6) != 0) return GW_MOD_CONTINUE;
    static const char body[] = "Hello World!";
    return gw_mod_respond(req, 200, NULL, body, sizeof(body) - 1) == 0 ? GW_MOD_DONE : GW_MOD_ERROR;
}

static const gw_module_def_t example = {
    .abi_version = GW_MODULE_ABI_VERSION,
    .name = "example",
    .handle = hello,
};

const gw_module_def_t *gw_module_entry(void)
{
    return &example;
}
