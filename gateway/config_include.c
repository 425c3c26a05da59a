/* `include` and environment overrides on the YAML tree. See config_include.h. */
#include "config_include.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_props.h"

#define MAX_DEPTH 16

static void inc_error(gw_include_ctx_t *c, const gw_node_t *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void inc_error(gw_include_ctx_t *c, const gw_node_t *at, const char *fmt, ...)
{
    c->nerrors++;
    va_list ap;
    va_start(ap, fmt);
    gw_config_error_vappend(c->err, c->errlen, &c->errused, at, NULL, "include", fmt, ap);
    va_end(ap);
}

/* A preformatted line (no location prefix of its own). */
static void inc_line(gw_include_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void inc_line(gw_include_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_config_error_vappend(c->err, c->errlen, &c->errused, NULL, NULL, NULL, fmt, ap);
    va_end(ap);
}

static gw_node_t *new_node(gw_include_ctx_t *c, const gw_node_t *like)
{
    gw_node_t *n = c->alloc(c->alloc_ctx, sizeof(*n));
    if (n) *n = *like;
    return n;
}

/* ---- merging two top-level maps ---- */

/* A map whose keys are a's, replaced or extended by b's (shallow). */
static gw_node_t *merge_shallow(gw_include_ctx_t *c, const gw_node_t *a, const gw_node_t *b)
{
    if (a->kind != GW_NODE_MAP || b->kind != GW_NODE_MAP) return (gw_node_t *)b;
    gw_node_t *n = new_node(c, a);
    gw_map_entry_t *es = c->alloc(c->alloc_ctx, (a->map.count + b->map.count + 1) * sizeof(*es));
    if (!n || !es) return (gw_node_t *)b;
    size_t k = 0;
    for (size_t i = 0; i < a->map.count; i++) {
        const gw_node_t *over = gw_yaml_map_get(b, a->map.entries[i].key->scalar.text);
        es[k] = a->map.entries[i];
        if (over) es[k].value = (gw_node_t *)over;
        k++;
    }
    for (size_t i = 0; i < b->map.count; i++)
        if (!gw_yaml_map_get(a, b->map.entries[i].key->scalar.text)) es[k++] = b->map.entries[i];
    n->map.entries = es;
    n->map.count = k;
    return n;
}

static gw_node_t *concat_seq(gw_include_ctx_t *c, const gw_node_t *a, const gw_node_t *b)
{
    if (a->kind != GW_NODE_SEQ || b->kind != GW_NODE_SEQ) return (gw_node_t *)(gw_yaml_is_null(a) ? b : a);
    gw_node_t *n = new_node(c, a);
    gw_node_t **items = c->alloc(c->alloc_ctx, (a->seq.count + b->seq.count + 1) * sizeof(*items));
    if (!n || !items) return (gw_node_t *)a;
    memcpy(items, a->seq.items, a->seq.count * sizeof(*items));
    memcpy(items + a->seq.count, b->seq.items, b->seq.count * sizeof(*items));
    n->seq.items = items;
    n->seq.count = a->seq.count + b->seq.count;
    return n;
}

/* root := root merged with an included root (both maps, `include` already removed from both). */
static gw_node_t *merge_roots(gw_include_ctx_t *c, gw_node_t *root, const gw_node_t *inc)
{
    gw_node_t *n = new_node(c, root);
    gw_map_entry_t *es = c->alloc(c->alloc_ctx, (root->map.count + inc->map.count + 1) * sizeof(*es));
    if (!n || !es) return root;
    size_t k = 0;
    for (size_t i = 0; i < root->map.count; i++) {
        es[k] = root->map.entries[i];
        const char *key = es[k].key->scalar.text;
        const gw_node_t *other = gw_yaml_map_get(inc, key);
        if (other && !strcmp(key, "hosts"))
            es[k].value = concat_seq(c, es[k].value, other);
        else if (other && (!strcmp(key, "global") || !strcmp(key, "upstreams")))
            es[k].value = merge_shallow(c, es[k].value, other);
        k++;
    }
    for (size_t i = 0; i < inc->map.count; i++)
        if (!gw_yaml_map_get(root, inc->map.entries[i].key->scalar.text)) es[k++] = inc->map.entries[i];
    n->map.entries = es;
    n->map.count = k;
    return n;
}

/* The root without its `include` entry (returned separately). */
static gw_node_t *split_include(gw_include_ctx_t *c, gw_node_t *root, const gw_node_t **inc)
{
    *inc = gw_yaml_map_get(root, "include");
    if (!*inc) return root;
    gw_node_t *n = new_node(c, root);
    gw_map_entry_t *es = c->alloc(c->alloc_ctx, (root->map.count + 1) * sizeof(*es));
    if (!n || !es) return root;
    size_t k = 0;
    for (size_t i = 0; i < root->map.count; i++)
        if (strcmp(root->map.entries[i].key->scalar.text, "include") != 0) es[k++] = root->map.entries[i];
    n->map.entries = es;
    n->map.count = k;
    return n;
}

/* ---- loading ---- */

typedef struct chain {
    const char *real; /* realpath of a file being loaded */
    const struct chain *up;
} chain_t;

static gw_node_t *load_tree(gw_include_ctx_t *c, gw_node_t *root, const char *path, const chain_t *up, int depth);

static void dir_of(const char *path, char *out, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, len, ".");
    else if (slash == path)
        snprintf(out, len, "/");
    else
        snprintf(out, len, "%.*s", (int)(slash - path), path);
}

static bool keep_doc(gw_include_ctx_t *c, gw_yaml_doc_t *doc)
{
    gw_yaml_doc_t *grown = realloc(c->docs, (c->num_docs + 1) * sizeof(*grown));
    if (!grown) return false;
    c->docs = grown;
    c->docs[c->num_docs++] = *doc;
    return true;
}

/* Loads one matched file (its own includes first) and merges it into *root. */
static void include_file(gw_include_ctx_t *c, gw_node_t **root, const gw_node_t *at, const char *file,
                         const chain_t *up, int depth)
{
    char real[PATH_MAX];
    if (!realpath(file, real)) {
        inc_error(c, at, "%s: %s", file, strerror(errno));
        return;
    }
    for (const chain_t *p = up; p; p = p->up)
        if (strcmp(p->real, real) == 0) {
            inc_error(c, at, "%s is already being included (include loop)", file);
            return;
        }
    char err[2048];
    gw_yaml_doc_t doc;
    if (!gw_yaml_load(file, &doc, err, sizeof(err))) {
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n') err[--n] = '\0';
        c->nerrors++; /* the file's own located error, then where it was included from */
        inc_line(c, "%s (included from %s:%d:%d)", err, at->file, at->line, at->column);
        return;
    }
    if (!keep_doc(c, &doc)) {
        gw_yaml_free(&doc);
        inc_error(c, at, "out of memory");
        return;
    }
    gw_node_t *sub = doc.root;
    if (!sub || gw_yaml_is_null(sub)) return; /* an empty file adds nothing */
    if (sub->kind != GW_NODE_MAP) {
        inc_error(c, sub, "%s must be a map with 'global' and/or 'hosts'", file);
        return;
    }
    chain_t me = {real, up};
    sub = load_tree(c, sub, file, &me, depth + 1);
    *root = merge_roots(c, *root, sub);
}

static void include_pattern(gw_include_ctx_t *c, gw_node_t **root, const gw_node_t *pn, const char *dir,
                            const chain_t *up, int depth)
{
    const char *pat = pn->kind == GW_NODE_SCALAR ? gw_yaml_is_null(pn) ? NULL : pn->scalar.text : NULL;
    if (!pat || !*pat) {
        inc_error(c, pn, "expected a glob pattern (a string)");
        return;
    }
    char full[PATH_MAX];
    if (snprintf(full, sizeof(full), "%s%s%s", pat[0] == '/' ? "" : dir, pat[0] == '/' ? "" : "/", pat) >=
        (int)sizeof(full)) {
        inc_error(c, pn, "pattern too long");
        return;
    }
    glob_t g;
    int rc = glob(full, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return; /* as Ferron: a pattern matching nothing adds nothing */
    if (rc != 0) {
        inc_error(c, pn, "cannot expand '%s'", pat);
        return;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) include_file(c, root, pn, g.gl_pathv[i], up, depth);
    globfree(&g);
}

static gw_node_t *load_tree(gw_include_ctx_t *c, gw_node_t *root, const char *path, const chain_t *up, int depth)
{
    const gw_node_t *inc;
    root = split_include(c, root, &inc);
    if (!inc || gw_yaml_is_null(inc)) return root;
    if (depth >= MAX_DEPTH) {
        inc_error(c, inc, "includes nested deeper than %d files", MAX_DEPTH);
        return root;
    }
    char dir[PATH_MAX];
    dir_of(path, dir, sizeof(dir));
    if (inc->kind == GW_NODE_SEQ) {
        for (size_t i = 0; i < inc->seq.count; i++) include_pattern(c, &root, inc->seq.items[i], dir, up, depth);
    } else {
        include_pattern(c, &root, inc, dir, up, depth);
    }
    return root;
}

bool gw_config_apply_includes(gw_include_ctx_t *c, gw_yaml_doc_t *doc, const char *path)
{
    if (!doc->root || doc->root->kind != GW_NODE_MAP || !gw_yaml_map_get(doc->root, "include")) return true;
    char real[PATH_MAX];
    chain_t me = {realpath(path, real) ? real : path, NULL};
    int before = c->nerrors;
    doc->root = load_tree(c, doc->root, path, &me, 0);
    return c->nerrors == before;
}

void gw_config_free_includes(gw_yaml_doc_t *docs, size_t n)
{
    for (size_t i = 0; i < n; i++) gw_yaml_free(&docs[i]);
    free(docs);
}
