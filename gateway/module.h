/*
 * The gateway module ABI: the only header a module includes. A module is a shared object named
 * <name>.so in the modules directory, listed in `loadModules`; it exports one function,
 *
 *     const gw_module_def_t *gw_module_entry(void);
 *
 * returning a definition whose abi_version is GW_MODULE_ABI_VERSION. Only opaque handles and the
 * accessor functions below cross the boundary, so the gateway's internals can change without
 * breaking built modules. Every callback runs on a worker thread and must not block.
 */
#ifndef GW_MODULE_H
#define GW_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GW_MODULE_ABI_VERSION 1u

/** A request as modules see it; valid during the handler call and until a response is sent. */
typedef struct gw_mod_request gw_mod_request_t;

/** The module's view of the configuration (the merged `global` properties). */
typedef struct gw_mod_config gw_mod_config_t;

/** What a handler answers: the same contract as built-in handlers. */
typedef enum gw_mod_result {
    GW_MOD_CONTINUE = 0, /**< not mine: the next handler runs */
    GW_MOD_DONE = 1,     /**< I sent (gw_mod_respond) the response */
    GW_MOD_ERROR = 2,    /**< answer with the status set by gw_mod_set_status (default 500) */
} gw_mod_result_t;

typedef struct gw_module_def {
    uint32_t abi_version; /**< GW_MODULE_ABI_VERSION */
    const char *name;
    /** Once at load time (config check included). Returns 0, or non-zero with a message in err. */
    int (*init)(void **state, const gw_mod_config_t *config, char *err, size_t errlen);
    /** Once per worker thread before it serves requests (optional). */
    int (*worker_init)(void *state, unsigned worker_id);
    /** For each request, in loadModules order (optional). */
    gw_mod_result_t (*handle)(void *state, gw_mod_request_t *req);
    /** Before any response head is sent, for every request of a route using the module (optional). */
    void (*response_filter)(void *state, gw_mod_request_t *req);
    /** When the gateway exits (optional). */
    void (*cleanup)(void *state);
} gw_module_def_t;

/** The one symbol a module exports. */
typedef const gw_module_def_t *(*gw_module_entry_fn)(void);

/* ---- accessors the gateway exports to modules ---- */

/** Request method, normalised path (no query), and query (without '?'); lengths in *len. */
const char *gw_mod_method(const gw_mod_request_t *req, size_t *len);
const char *gw_mod_path(const gw_mod_request_t *req, size_t *len);
const char *gw_mod_query(const gw_mod_request_t *req, size_t *len);

/** First request header named `name` (case-insensitive), or NULL. */
const char *gw_mod_header(const gw_mod_request_t *req, const char *name, size_t *len);

/** Memory freed with the request. */
void *gw_mod_alloc(gw_mod_request_t *req, size_t size);

/** Adds a response header (copied). Returns 0, or -1 after the head was sent or without memory. */
int gw_mod_add_header(gw_mod_request_t *req, const char *name, const char *value);

/** Sends a complete response (body copied; content_type may be NULL). Returns 0 or -1. */
int gw_mod_respond(gw_mod_request_t *req, int status, const char *content_type, const void *body, size_t len);

/** Sets the status used with GW_MOD_ERROR, or the status of a response not yet sent. */
void gw_mod_set_status(gw_mod_request_t *req, int status);

/** A global configuration property as a string (scalars only), or NULL. */
const char *gw_mod_config_string(const gw_mod_config_t *config, const char *name);

#ifdef __cplusplus
}
#endif

#endif
