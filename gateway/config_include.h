/*
 * Top-level `include` (spec §1) and environment overrides, applied to the YAML tree before the
 * typed config is built, so every later error still names the file, line and column it came from.
 */
#ifndef GW_CONFIG_INCLUDE_H
#define GW_CONFIG_INCLUDE_H

#include <stdbool.h>
#include <stddef.h>

#include "yaml_tree.h"

/** Where merged nodes are allocated (the config's arena) and where included documents are kept. */
typedef struct gw_include_ctx {
    void *(*alloc)(void *ctx, size_t n);
    void *alloc_ctx;
    gw_yaml_doc_t *docs; /**< included documents (malloc'd array), owned by the config */
    size_t num_docs;
    char *err;
    size_t errlen, errused;
    int nerrors;
} gw_include_ctx_t;

/**
 * Resolves `include` in `doc` (loaded from `path`): each entry is a glob pattern (a string or a
 * list of them) relative to the including file's directory; matched files are loaded in order,
 * their own includes first (an include loop is an error); `hosts` are appended after the
 * including file's, `global` and `upstreams` keys are shallow-replaced. doc->root becomes the
 * merged tree, without `include`. Returns false after writing located errors to ctx->err.
 */
bool gw_config_apply_includes(gw_include_ctx_t *ctx, gw_yaml_doc_t *doc, const char *path);

/**
 * Environment overrides (spec §1), applied after includes, all to `global`: FERRON_PORT,
 * FERRON_SPORT, FERRON_HTTP2_*, FERRON_LOG_FILE_PATH ... and the same names with our GATEWAY_
 * prefix (which wins when both are set). Values are read as unquoted YAML scalars; a node made
 * from variable NAME reports errors as "$NAME:1:1". `getenv_fn` is getenv (tests pass their own).
 */
bool gw_config_apply_env(gw_include_ctx_t *ctx, gw_yaml_doc_t *doc, const char *(*getenv_fn)(const char *));

/** Frees the included documents of a context. */
void gw_config_free_includes(gw_yaml_doc_t *docs, size_t n);

#endif
