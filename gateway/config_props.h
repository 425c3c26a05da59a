/*
 * The one property registry: name, where it may appear, its type, range and default, the module
 * it belongs to and a line of help. Validation, "did you mean", `--help` and the documentation
 * test all read this table.
 */
#ifndef GW_CONFIG_PROPS_H
#define GW_CONFIG_PROPS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yaml_tree.h"

/** Where a property may appear (bit set). */
enum {
    GW_SCOPE_GLOBAL = 1,
    GW_SCOPE_HOST = 2,
    GW_SCOPE_LOCATION = 4,
    GW_SCOPE_ERRORCONFIG = 8,
    GW_SCOPE_ANY = 15,
    GW_SCOPE_UPSTREAM = 16, /**< inside a group of the top-level `upstreams:` (not a level) */
};

typedef enum gw_ptype {
    GW_PT_BOOL,
    GW_PT_INT,          /**< decimal integer within [min, max] */
    GW_PT_INT_OR_NULL,  /**< integer, or null for "no limit" */
    GW_PT_STRING,
    GW_PT_PORT,         /**< port number, or "address:port" string */
    GW_PT_STRING_LIST,  /**< list of strings */
    GW_PT_STRING_OR_LIST,
    GW_PT_STRING_MAP,   /**< map of string -> scalar */
    GW_PT_MAP,          /**< map of anything (sub-properties checked by their module) */
    GW_PT_MAP_LIST,     /**< list of maps */
    GW_PT_LIST,         /**< list of anything */
} gw_ptype_t;

typedef struct gw_prop_def {
    const char *name;
    unsigned scopes;
    gw_ptype_t type;
    int64_t min, max;   /**< for integers */
    const char *def;    /**< default as shown in help; NULL = none */
    const char *module; /**< NULL for the core; else the loadModules name it belongs to */
    bool implemented;   /**< false: accepted for Ferron compatibility, warned as not yet honoured */
    const char *help;
} gw_prop_def_t;

/** The registry, sorted by nothing in particular; gw_prop_count entries. */
extern const gw_prop_def_t gw_props_registry[];
extern const size_t gw_prop_count;

/** The type as `--help` and the configuration reference show it: "bool", "int", "list<string>", ... */
const char *gw_prop_type_name(gw_ptype_t type);

/** Finds a property definition by exact name; NULL when unknown. */
const gw_prop_def_t *gw_prop_find(const char *name);

/** The known property name closest to `name` (edit distance <= 3), or NULL. */
const char *gw_prop_suggest(const char *name);

/**
 * Checks the value's type and range. On failure returns false and writes the reason
 * ("expected a boolean (true or false)") to why.
 */
bool gw_prop_check(const gw_prop_def_t *def, const gw_node_t *value, char *why, size_t whylen);

/**
 * Appends one error line to buf[0..cap) at *used: "file:line:column: prefix: message" for a node,
 * "fallback_file: prefix: message" without one, and just the message when both are NULL (a
 * preformatted line). Output that does not fit is cut; buf stays NUL-terminated. The one place
 * where config errors are formatted (config.c, config_include.c).
 */
void gw_config_error_vappend(char *buf, size_t cap, size_t *used, const gw_node_t *at, const char *fallback_file,
                             const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));

/** Parses an unquoted YAML boolean (true/false in any case). */
bool gw_node_as_bool(const gw_node_t *n, bool *out);

/** Parses an unquoted decimal integer. */
bool gw_node_as_int(const gw_node_t *n, int64_t *out);

/** Scalar text or NULL (non-scalar or null). */
const char *gw_node_as_string(const gw_node_t *n);

#endif
