/* YAML node tree: structure, locations, scalar flags, and every error the loader reports. */
#include "check.h"
#include "yaml_tree.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char err[512];

static bool load(gw_yaml_doc_t *doc, const char *text)
{
    err[0] = '\0';
    return gw_yaml_load_string("t.yaml", text, strlen(text), doc, err, sizeof err);
}

/* Loads text that must fail; returns the error message. */
static const char *load_err(const char *text)
{
    gw_yaml_doc_t doc;
    if (load(&doc, text)) {
        gw_yaml_free(&doc);
        return "(loaded)";
    }
    CHECK(doc.root == NULL && doc.arena == NULL);
    gw_yaml_free(&doc); /* must be harmless on a failed document */
    return err;
}

static bool at(const gw_node_t *n, int line, int column)
{
    return n && n->line == line && n->column == column;
}

static void test_structure_and_locations(void)
{
    const char *text = "server:\n"
                       "  listen: [\"0.0.0.0:80\", ':443']\n"
                       "  name: edge\n"
                       "routes:\n"
                       "  - path: /api\n"
                       "    upstream: backend\n"
                       "  - path: /static\n";
    gw_yaml_doc_t doc;
    CHECK(load(&doc, text));
    gw_node_t *root = doc.root;
    CHECK(root && root->kind == GW_NODE_MAP && at(root, 1, 1));
    CHECK_EQ_INT(root->map.count, 2);
    CHECK_STR(root->file, "t.yaml");
    CHECK_STR(doc.file, "t.yaml");

    gw_node_t *server = gw_yaml_map_get(root, "server");
    CHECK(server && server->kind == GW_NODE_MAP && at(server, 2, 3));
    CHECK(at(root->map.entries[0].key, 1, 1));
    gw_node_t *listen = gw_yaml_map_get(server, "listen");
    CHECK(listen && listen->kind == GW_NODE_SEQ && at(listen, 2, 11));
    CHECK_EQ_INT(listen->seq.count, 2);
    CHECK_STR(listen->seq.items[0]->scalar.text, "0.0.0.0:80");
    CHECK(at(listen->seq.items[0], 2, 12));
    CHECK_STR(listen->seq.items[1]->scalar.text, ":443");
    CHECK(at(listen->seq.items[1], 2, 26));
    gw_node_t *name = gw_yaml_map_get(server, "name");
    CHECK(name && name->kind == GW_NODE_SCALAR && at(name, 3, 9));
    CHECK_STR(name->scalar.text, "edge");
    CHECK_EQ_INT(name->scalar.len, 4);

    gw_node_t *routes = gw_yaml_map_get(root, "routes");
    CHECK(routes && routes->kind == GW_NODE_SEQ && at(routes, 5, 3));
    CHECK_EQ_INT(routes->seq.count, 2);
    gw_node_t *r0 = routes->seq.items[0];
    CHECK(r0->kind == GW_NODE_MAP && at(r0, 5, 5));
    CHECK(at(gw_yaml_map_get(r0, "upstream"), 6, 15));
    CHECK_STR(gw_yaml_map_get(routes->seq.items[1], "path")->scalar.text, "/static");
    gw_yaml_free(&doc);
    CHECK(doc.root == NULL && doc.arena == NULL);
}

static void test_scalar_root_and_empty_collections(void)
{
    gw_yaml_doc_t doc;
    CHECK(load(&doc, "just text\n"));
    CHECK(doc.root && doc.root->kind == GW_NODE_SCALAR && at(doc.root, 1, 1));
    CHECK_STR(doc.root->scalar.text, "just text");
    gw_yaml_free(&doc);

    CHECK(load(&doc, "a: {}\nb: []\n"));
    gw_node_t *a = gw_yaml_map_get(doc.root, "a"), *b = gw_yaml_map_get(doc.root, "b");
    CHECK(a && a->kind == GW_NODE_MAP && a->map.count == 0);
    CHECK(b && b->kind == GW_NODE_SEQ && b->seq.count == 0);
    gw_yaml_free(&doc);
}

static void test_quoted_and_null(void)
{
    const char *text = "plain: null\n"
                       "single: 'null'\n"
                       "double: \"~\"\n"
                       "tilde: ~\n"
                       "empty:\n"
                       "Null: Null\n"
                       "NULL: NULL\n"
                       "word: nil\n"
                       "literal: |\n"
                       "  line one\n"
                       "  line two\n"
                       "folded: >\n"
                       "  a\n"
                       "  b\n"
                       "esc: \"a\\tb\"\n";
    gw_yaml_doc_t doc;
    CHECK(load(&doc, text));
    const gw_node_t *m = doc.root;
    CHECK(gw_yaml_is_null(gw_yaml_map_get(m, "plain")));
    CHECK(!gw_yaml_map_get(m, "plain")->scalar.quoted);
    CHECK(!gw_yaml_is_null(gw_yaml_map_get(m, "single")));
    CHECK(gw_yaml_map_get(m, "single")->scalar.quoted);
    CHECK(!gw_yaml_is_null(gw_yaml_map_get(m, "double")));
    CHECK(gw_yaml_map_get(m, "double")->scalar.quoted);
    CHECK(gw_yaml_is_null(gw_yaml_map_get(m, "tilde")));
    gw_node_t *empty = gw_yaml_map_get(m, "empty");
    CHECK(empty && empty->kind == GW_NODE_SCALAR && empty->scalar.len == 0 && gw_yaml_is_null(empty));
    CHECK(gw_yaml_is_null(gw_yaml_map_get(m, "Null")));
    CHECK(gw_yaml_is_null(gw_yaml_map_get(m, "NULL")));
    CHECK(!gw_yaml_is_null(gw_yaml_map_get(m, "word")));
    gw_node_t *lit = gw_yaml_map_get(m, "literal");
    CHECK(lit && lit->scalar.quoted && at(lit, 9, 10));
    CHECK_STR(lit->scalar.text, "line one\nline two\n");
    gw_node_t *folded = gw_yaml_map_get(m, "folded");
    CHECK(folded && folded->scalar.quoted);
    CHECK_STR(folded->scalar.text, "a b\n");
    CHECK_STR(gw_yaml_map_get(m, "esc")->scalar.text, "a\tb");
    CHECK(!gw_yaml_is_null(NULL));
    CHECK(!gw_yaml_is_null(m)); /* a map is not null */
    gw_yaml_free(&doc);
}

static void test_map_get(void)
{
    gw_yaml_doc_t doc;
    CHECK(load(&doc, "a: 1\nabc: 2\n'quoted key': 3\nlist: [x]\n"));
    CHECK_STR(gw_yaml_map_get(doc.root, "a")->scalar.text, "1");
    CHECK_STR(gw_yaml_map_get(doc.root, "abc")->scalar.text, "2");
    CHECK_STR(gw_yaml_map_get(doc.root, "quoted key")->scalar.text, "3");
    CHECK(gw_yaml_map_get(doc.root, "ab") == NULL);
    CHECK(gw_yaml_map_get(doc.root, "") == NULL);
    CHECK(gw_yaml_map_get(gw_yaml_map_get(doc.root, "list"), "x") == NULL); /* not a map */
    CHECK(gw_yaml_map_get(gw_yaml_map_get(doc.root, "a"), "a") == NULL);    /* a scalar */
    CHECK(gw_yaml_map_get(NULL, "a") == NULL);
    gw_yaml_free(&doc);
}

static void test_duplicate_keys(void)
{
    CHECK_STR(load_err("name: a\nport: 1\nname: b\n"), "t.yaml:3:1: duplicate key 'name'");
    CHECK_STR(load_err("outer:\n  k: 1\n  'k': 2\n"), "t.yaml:3:3: duplicate key 'k'");
    CHECK_STR(load_err("{a: 1, b: 2, a: 3}"), "t.yaml:1:14: duplicate key 'a'");
    /* the same key in different maps is fine, and so are many distinct keys (set growth) */
    gw_yaml_doc_t doc;
    CHECK(load(&doc, "a: {k: 1}\nb: {k: 2}\n"));
    gw_yaml_free(&doc);
    char big[8192];
    size_t n = 0;
    for (int i = 0; i < 500; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "k%d: %d\n", i, i);
    CHECK(load(&doc, big));
    CHECK_EQ_INT(doc.root->map.count, 500);
    CHECK_STR(gw_yaml_map_get(doc.root, "k499")->scalar.text, "499");
    gw_yaml_free(&doc);
    snprintf(big + n, sizeof big - n, "k123: again\n");
    CHECK_STR(load_err(big), "t.yaml:501:1: duplicate key 'k123'");
}

static void test_aliases_anchors_tags(void)
{
    CHECK_STR(load_err("a: &x 1\n"), "t.yaml:1:4: aliases and anchors are not supported");
    CHECK_STR(load_err("a: 1\nb: *x\n"), "t.yaml:2:4: aliases and anchors are not supported");
    CHECK_STR(load_err("base: &b {x: 1}\n"), "t.yaml:1:7: aliases and anchors are not supported");
    CHECK_STR(load_err("list: &l\n  - 1\n"), "t.yaml:1:7: aliases and anchors are not supported");
    CHECK_STR(load_err("a: !!str 1\n"), "t.yaml:1:4: tags are not supported");
}

static void test_non_scalar_keys(void)
{
    CHECK_STR(load_err("[a, b]: 1\n"), "t.yaml:1:1: map keys must be scalars");
    CHECK_STR(load_err("x:\n  ? {a: 1}\n  : 2\n"), "t.yaml:2:5: map keys must be scalars");
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void test_depth_limit(void)
{
    enum { N = 100000 };
    char *deep = malloc(2 * N + 1);
    memset(deep, '[', N);
    memset(deep + N, ']', N);
    deep[2 * N] = '\0';
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    CHECK_STR(load_err(deep), "t.yaml:1:33: nesting deeper than 32 levels");
    double took = seconds_since(&start);
    CHECK(took < 0.25);
    if (took >= 0.25) fprintf(stderr, "deep nesting took %.3f s\n", took);

    free(deep);

    /* exactly GW_YAML_MAX_DEPTH levels are accepted */
    char ok32[2 * GW_YAML_MAX_DEPTH + 1];
    memset(ok32, '[', GW_YAML_MAX_DEPTH);
    memset(ok32 + GW_YAML_MAX_DEPTH, ']', GW_YAML_MAX_DEPTH);
    ok32[2 * GW_YAML_MAX_DEPTH] = '\0';
    gw_yaml_doc_t doc;
    CHECK(load(&doc, ok32));
    gw_yaml_free(&doc);

    /* block style counts the same way */
    char block[4096];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(block + n, sizeof block - n, "%*sk:\n", 2 * i, "");
    CHECK_STR(load_err(block), "t.yaml:33:65: nesting deeper than 32 levels");
}

static void test_syntax_errors(void)
{
    CHECK_STR(load_err("a:\n\tb: 1\n"),
              "t.yaml:2:1: found character that cannot start any token while scanning for the next token");
    CHECK_STR(
        load_err("a: 'unclosed\n"),
        "t.yaml:2:1: found unexpected end of stream while scanning a quoted scalar that started at 1:4");
    CHECK_STR(load_err("a:\n  b: 1\n c: 2\n"),
              "t.yaml:3:2: did not find expected key while parsing a block mapping that started at 1:1");
    CHECK_STR(
        load_err("a: [1, 2\n"),
        "t.yaml:2:1: did not find expected ',' or ']' while parsing a flow sequence that started at 1:4");
    CHECK_STR(load_err("a: 1\n b: 2\n"), "t.yaml:2:3: mapping values are not allowed in this context");
    /* reader errors carry a byte offset; the location is computed from it */
    CHECK_STR(load_err("a: 1\nb: \xff\n"), "t.yaml:2:4: invalid leading UTF-8 octet (0xFF)");
    CHECK_STR(load_err("a: \xc3\xa9\x01\n"), "t.yaml:1:5: control characters are not allowed (0x1)");
}

static void test_empty_and_multi_document(void)
{
    gw_yaml_doc_t doc;
    CHECK(load(&doc, ""));
    CHECK(doc.root == NULL);
    gw_yaml_free(&doc);
    CHECK(load(&doc, "# only a comment\n\n"));
    CHECK(doc.root == NULL);
    gw_yaml_free(&doc);
    CHECK(gw_yaml_load_string("n", NULL, 0, &doc, err, sizeof err));
    CHECK(doc.root == NULL);
    gw_yaml_free(&doc);

    /* only the first document is used; the rest is not even parsed */
    CHECK(load(&doc, "a: 1\n---\nb: [unclosed\n"));
    CHECK(doc.root && doc.root->kind == GW_NODE_MAP && doc.root->map.count == 1);
    CHECK(gw_yaml_map_get(doc.root, "b") == NULL);
    gw_yaml_free(&doc);
    CHECK(load(&doc, "---\nfirst: 1\n...\n---\nsecond: 2\n"));
    CHECK(gw_yaml_map_get(doc.root, "first") && at(doc.root, 2, 1));
    gw_yaml_free(&doc);

    gw_yaml_free(NULL);
    gw_yaml_doc_t zero = {0};
    gw_yaml_free(&zero);
}

static void test_files(void)
{
    char path[] = "/tmp/gw_yaml_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "listen: 8080\nhosts:\n  - a.example\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    gw_yaml_doc_t doc;
    CHECK(gw_yaml_load(path, &doc, err, sizeof err));
    gw_node_t *hosts = gw_yaml_map_get(doc.root, "hosts");
    CHECK(hosts && hosts->seq.count == 1 && at(hosts->seq.items[0], 3, 5));
    CHECK_STR(hosts->seq.items[0]->file, path);
    gw_yaml_free(&doc);

    /* an error in a file names the file */
    FILE *f = fopen(path, "w");
    fputs("a: 1\na: 2\n", f);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "%s:2:1: duplicate key 'a'", path);
    CHECK(!gw_yaml_load(path, &doc, err, sizeof err));
    CHECK_STR(err, want);

    /* larger than 4 MiB */
    f = fopen(path, "w");
    for (int i = 0; i < 4 * 1024 + 1; i++)
        fprintf(f, "#%01022d\n", 0);
    fclose(f);
    snprintf(want, sizeof want, "%s: larger than 4 MiB", path);
    CHECK(!gw_yaml_load(path, &doc, err, sizeof err));
    CHECK_STR(err, want);
    unlink(path);

    CHECK(!gw_yaml_load("/nonexistent/dir/gw.yaml", &doc, err, sizeof err));
    CHECK_STR(err, "/nonexistent/dir/gw.yaml: cannot read: No such file or directory");
    CHECK(doc.root == NULL);
}

static void test_small_error_buffer(void)
{
    gw_yaml_doc_t doc;
    char tiny[8];
    CHECK(!gw_yaml_load_string("t.yaml", "a: *x", 5, &doc, tiny, sizeof tiny));
    CHECK_STR(tiny, "t.yaml:");
    CHECK(!gw_yaml_load_string("t.yaml", "a: *x", 5, &doc, NULL, 0));
}

int main(void)
{
    test_structure_and_locations();
    test_scalar_root_and_empty_collections();
    test_quoted_and_null();
    test_map_get();
    test_duplicate_keys();
    test_aliases_anchors_tags();
    test_non_scalar_keys();
    test_depth_limit();
    test_syntax_errors();
    test_empty_and_multi_document();
    test_files();
    test_small_error_buffer();
    return check_report("yaml_tree");
}
