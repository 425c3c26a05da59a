/* Feeds arbitrary bytes to the YAML tree loader and checks the invariants of what it returns. */
#include "yaml_tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_node(const gw_node_t *n, int depth)
{
    /* collections nest at most GW_YAML_MAX_DEPTH deep; a scalar inside the deepest is one more */
    if (!n || n->line < 1 || n->column < 1 || depth > GW_YAML_MAX_DEPTH + 1 || strcmp(n->file, "fuzz.yaml") != 0)
        abort();
    switch (n->kind) {
    case GW_NODE_SCALAR:
        if (n->scalar.text[n->scalar.len] != '\0') abort();
        break;
    case GW_NODE_MAP:
        for (size_t i = 0; i < n->map.count; i++) {
            const gw_node_t *k = n->map.entries[i].key;
            if (!k || k->kind != GW_NODE_SCALAR) abort();
            /* no duplicates: the first entry with this key is this one */
            if (k->scalar.len == strlen(k->scalar.text) &&
                gw_yaml_map_get(n, k->scalar.text) != n->map.entries[i].value)
                abort();
            check_node(k, depth + 1);
            check_node(n->map.entries[i].value, depth + 1);
        }
        break;
    case GW_NODE_SEQ:
        for (size_t i = 0; i < n->seq.count; i++)
            check_node(n->seq.items[i], depth + 1);
        break;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_yaml_doc_t doc;
    char err[256];
    err[0] = '\0';
    if (gw_yaml_load_string("fuzz.yaml", (const char *)data, size, &doc, err, sizeof err)) {
        if (doc.root) check_node(doc.root, 1);
        (void)gw_yaml_is_null(doc.root);
        (void)gw_yaml_map_get(doc.root, "listen");
    } else if (strncmp(err, "fuzz.yaml:", 10) != 0) {
        abort();
    }
    gw_yaml_free(&doc);
    return 0;
}
