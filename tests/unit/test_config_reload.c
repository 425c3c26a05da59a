/* Stable identities across config loads (what lets pools, health and balancer state survive a
 * reload), and environment overrides applied to a loaded tree. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "config_ids.h"
#include "config_include.h"

static gw_config_t *load(const char *yaml)
{
    char err[2048];
    gw_config_t *c = gw_config_load_string("t.yaml", yaml, err, sizeof(err), NULL, NULL);
    if (!c) fprintf(stderr, "load failed: %s\n", err);
    return c;
}

static const char cfg_a[] = "global:\n  loadModules: [rproxy]\n"
                            "upstreams:\n  pool:\n    servers: [\"http://10.0.0.1:80\", \"http://10.0.0.2:80\"]\n"
                            "hosts:\n  - domain: a.test\n    proxyTo: [\"http://10.0.0.3:80\", \"http://10.0.0.4:80\"]\n"
                            "  - domain: b.test\n    proxyTo: http://pool\n";

/* Same text, hosts reordered, one list changed: ids follow the identity, not the position. */
static const char cfg_b[] = "global:\n  loadModules: [rproxy]\n"
                            "upstreams:\n  pool:\n    servers: [\"http://10.0.0.1:80\", \"http://10.0.0.2:80\"]\n"
                            "hosts:\n  - domain: c.test\n    proxyTo: [\"http://10.0.0.9:80\", \"http://10.0.0.3:80\"]\n"
                            "  - domain: b.test\n    proxyTo: http://pool\n"
                            "  - domain: a.test\n    proxyTo: [\"http://10.0.0.3:80\", \"http://10.0.0.4:80\"]\n";

static const gw_target_t *target_named(const gw_config_t *c, const char *url)
{
    for (uint32_t i = 0; i < c->num_targets; i++)
        if (!strcmp(c->targets[i]->url, url)) return c->targets[i];
    return NULL;
}

static void test_stable_ids(void)
{
    gw_config_t *a = load(cfg_a), *b = load(cfg_b);
    CHECK(a && b);
    if (!a || !b) return;
    const char *urls[] = {"http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80", "http://10.0.0.4:80"};
    for (size_t i = 0; i < 4; i++) {
        const gw_target_t *ta = target_named(a, urls[i]), *tb = target_named(b, urls[i]);
        CHECK(ta && tb && ta->id == tb->id);
    }
    CHECK(target_named(b, "http://10.0.0.9:80")->id != target_named(a, "http://10.0.0.3:80")->id);
    /* a.test's list is the same list; c.test's differs; the named group keeps its id */
    CHECK_EQ_INT(a->hosts[0].route.proxy.to.id, b->hosts[2].route.proxy.to.id);
    CHECK(b->hosts[0].route.proxy.to.id != a->hosts[0].route.proxy.to.id);
    CHECK_EQ_INT(a->hosts[1].route.proxy.to.id, b->hosts[1].route.proxy.to.id);
    CHECK_EQ_INT(a->groups[0].id, b->groups[0].id);
    gw_config_free(a);
    gw_config_free(b);
    CHECK_EQ_INT(gw_identity_of("x", 1), gw_identity_of("x", 1));
    CHECK(gw_identity_of("x", 1) != gw_identity_of("y", 1));
}

static const char *fake_env(const char *name)
{
    static const char *const vars[][2] = {
        {"FERRON_PORT", "8080"},          {"GATEWAY_PORT", "9090"},          {"FERRON_LOAD_MODULES", "rproxy, cache"},
        {"FERRON_HTTP2_MAX_FRAME_SIZE", "32768"}, {"FERRON_ENV_VARS", "A,B"}, {"FERRON_ENV_A", "1"},
        {"FERRON_SNI_HOSTS", "*.example.com"}, {"FERRON_SNI_WILDCARD_example_com_CERT", "/c.pem"},
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (!strcmp(vars[i][0], name)) return vars[i][1];
    return NULL;
}

static void *alloc_cb(void *ctx, size_t n)
{
    (void)ctx;
    void **blk = malloc(sizeof(void *) + n); /* a chain so the test frees it all */
    if (!blk) return NULL;
    static void *head;
    *blk = head;
    head = blk;
    if (n == 0) { /* n == 0: free everything */
        while (head) {
            void *next = *(void **)head;
            free(head);
            head = next;
        }
        return NULL;
    }
    return blk + 1;
}

static void test_env(void)
{
    gw_yaml_doc_t doc;
    char err[512];
    const char *yaml = "global:\n  port: 1\n  http2Settings:\n    maxConcurrentStreams: 7\n";
    CHECK(gw_yaml_load_string("e.yaml", yaml, strlen(yaml), &doc, err, sizeof(err)));
    gw_include_ctx_t ic = {.alloc = alloc_cb, .err = err, .errlen = sizeof(err)};
    CHECK(gw_config_apply_env(&ic, &doc, fake_env));
    const gw_node_t *g = gw_yaml_map_get(doc.root, "global");
    const gw_node_t *port = gw_yaml_map_get(g, "port");
    CHECK_STR(port->scalar.text, "9090"); /* our prefix wins */
    CHECK_STR(port->file, "$GATEWAY_PORT");
    CHECK_EQ_INT(gw_yaml_map_get(g, "loadModules")->seq.count, 2);
    CHECK_STR(gw_yaml_map_get(g, "loadModules")->seq.items[1]->scalar.text, "cache");
    const gw_node_t *h2 = gw_yaml_map_get(g, "http2Settings");
    CHECK_STR(gw_yaml_map_get(h2, "maxFrameSize")->scalar.text, "32768");
    CHECK_STR(gw_yaml_map_get(h2, "maxConcurrentStreams")->scalar.text, "7"); /* merged, not replaced */
    const gw_node_t *ev = gw_yaml_map_get(g, "environmentVariables");
    CHECK(ev && ev->map.count == 1);
    CHECK_STR(gw_yaml_map_get(ev, "A")->scalar.text, "1");
    const gw_node_t *sni = gw_yaml_map_get(g, "sni");
    CHECK_STR(gw_yaml_map_get(gw_yaml_map_get(sni, "*.example.com"), "cert")->scalar.text, "/c.pem");
    gw_yaml_free(&doc);
    alloc_cb(NULL, 0);
}

int main(void)
{
    test_stable_ids();
    test_env();
    gw_identity_clear();
    return check_report("config_reload");
}
