/*
 * YAML file -> node tree that remembers where every node came from (line, column), built with
 * libyaml's event API so that nesting depth can be bounded (libyaml 0.2.5 has no limit and is
 * quadratic on deep nesting). The typed configuration is built from this tree.
 */
#ifndef GW_YAML_TREE_H
#define GW_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum gw_node_kind { GW_NODE_SCALAR, GW_NODE_MAP, GW_NODE_SEQ } gw_node_kind_t;

typedef struct gw_node gw_node_t;

/** One map entry: key (always a scalar) and its value node. */
typedef struct gw_map_entry {
    gw_node_t *key;
    gw_node_t *value;
} gw_map_entry_t;

struct gw_node {
    gw_node_kind_t kind;
    int line;   /**< 1-based */
    int column; /**< 1-based */
    const char *file; /**< file name as given to gw_yaml_load (shared, owned by the document) */
    union {
        struct {
            char *text;   /**< NUL-terminated scalar text */
            size_t len;
            bool quoted;  /**< single/double quoted or block scalar: never a null/bool/number */
        } scalar;
        struct {
            gw_map_entry_t *entries;
            size_t count;
        } map;
        struct {
            gw_node_t **items;
            size_t count;
        } seq;
    };
};

/** A loaded document: owns every node and string. */
typedef struct gw_yaml_doc {
    gw_node_t *root; /**< NULL for an empty file */
    char *file;
    void *arena;     /**< private */
} gw_yaml_doc_t;

/** Nesting deeper than this is an error (config files need about 6 levels). */
#define GW_YAML_MAX_DEPTH 32

/**
 * Loads the first document of `path`. On failure returns false and writes
 * "file:line:column: what is wrong" to err (line and column 1-based), e.g. a syntax error, nesting
 * deeper than GW_YAML_MAX_DEPTH, an alias or anchor (not supported), a tag (not supported), a
 * non-scalar map key, or a duplicate key in one map (reported at the second occurrence). Errors about
 * the file as a whole have no line:column: "file: cannot read: <strerror>", "file: larger than 4 MiB".
 * Documents after the first are not parsed.
 */
bool gw_yaml_load(const char *path, gw_yaml_doc_t *doc, char *err, size_t errlen);

/** Same as gw_yaml_load, from memory; `name` is used in error messages and node->file. */
bool gw_yaml_load_string(const char *name, const char *data, size_t len, gw_yaml_doc_t *doc, char *err,
                         size_t errlen);

/** Frees everything the document owns. Safe on a zeroed or failed document. */
void gw_yaml_free(gw_yaml_doc_t *doc);

/** Looks up key `name` in a map node; NULL when absent or when `map` is not a map. */
gw_node_t *gw_yaml_map_get(const gw_node_t *map, const char *name);

/** True when the scalar is an unquoted YAML null (`~`, `null`, `Null`, `NULL`, or empty). */
bool gw_yaml_is_null(const gw_node_t *n);

#endif
