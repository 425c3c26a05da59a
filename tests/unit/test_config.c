/* Config loading, Ferron merge semantics, errors with line:column, and routing. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "config_props.h"

static char warnings[4096];

static void collect_warning(void *ctx, const char *msg)
{
    (void)ctx;
    strncat(warnings, msg, sizeof(warnings) - strlen(warnings) - 2);
    strcat(warnings, "\n");
}

static gw_config_t *load(const char *yaml, char *err, size_t len)
{
    warnings[0] = '\0';
    return gw_config_load_string("t.yaml", yaml, err, len, collect_warning, NULL);
}

static const char *scalar(const gw_route_t *r, const char *name)
{
    return gw_node_as_string(gw_route_prop(r, name));
}

static void test_merge(void)
{
    char err[1024];
    gw_config_t *c = load("global:\n"
                          "  wwwroot: /g\n"
                          "  cacheVaryHeaders: [\"A\"]\n"
                          "  customHeaders: {A: \"1\", B: \"2\"}\n"
                          "hosts:\n"
                          "  - domain: example.com\n"
                          "    cacheVaryHeaders: [\"B\"]\n"
                          "    customHeaders: {B: \"3\"}\n"
                          "    locations:\n"
                          "      - path: /docs/\n"
                          "        wwwroot: /d\n",
                          err, sizeof(err));
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s", err);
        return;
    }
    const gw_host_t *h = &c->hosts[0];
    const gw_node_t *bl = gw_route_prop(&h->route, "cacheVaryHeaders");
    CHECK(bl && bl->kind == GW_NODE_SEQ && bl->seq.count == 2); /* lists concatenate */
    const gw_node_t *ch = gw_route_prop(&h->route, "customHeaders");
    CHECK(ch && ch->map.count == 2);
    CHECK_STR(gw_node_as_string(gw_yaml_map_get(ch, "B")), "3"); /* maps key-merge */
    CHECK_STR(gw_node_as_string(gw_yaml_map_get(ch, "A")), "1");
    CHECK_STR(scalar(&h->route, "wwwroot"), "/g");
    CHECK_EQ_INT(h->num_locations, 1);
    CHECK_STR(h->locations[0].path, "/docs"); /* trailing slash ignored */
    CHECK_STR(scalar(&h->locations[0].route, "wwwroot"), "/d");
    CHECK(gw_route_prop(&h->locations[0].route, "cacheVaryHeaders")->seq.count == 2);
    gw_config_free(c);
}

static void expect_error(const char *yaml, const char *needle)
{
    char err[1024];
    gw_config_t *c = load(yaml, err, sizeof(err));
    CHECK(c == NULL);
    if (c) gw_config_free(c);
    if (!strstr(err, needle)) {
        check_failures++;
        fprintf(stderr, "expected error containing '%s', got '%s'\n", needle, err);
    }
}

static void test_errors(void)
{
    expect_error("global:\n  port: abc\n", "t.yaml:2:9: port: expected a port or \"address:port\"");
    expect_error("global:\n  enableETag: \"yes\"\n", "t.yaml:2:15: enableETag: expected a boolean");
    expect_error("hosts:\n  - domain: a\n    port: 80\n", "t.yaml:3:5: port: not allowed in a host");
    expect_error("global:\n  path: /x\n", "t.yaml:2:3: path: not allowed in global");
    expect_error("hosts:\n  - wwwroot: /x\n", "t.yaml:2:5: hosts: a host needs a 'domain' or an 'ip'");
    expect_error("global:\n  loadModules: [nosuch]\n", "t.yaml:2:17: loadModules: cannot load module 'nosuch'");
    expect_error("global:\n  maxRequestHeaders: 0\n", "maxRequestHeaders: 0 is out of range");
    expect_error("hosts:\n  - domain: a\n    locations:\n      - path: /a\n        locations: []\n",
                 "nested locations are not allowed");
    expect_error("include: [\"x.yaml\"]\n", "t.yaml:1:1: include: only resolved when the configuration is loaded from a file");
    expect_error("global: [1, 2]\n", "global: expected a map");
    expect_error("hosts:\n  - ip: not-an-ip\n", "t.yaml:2:9: ip: 'not-an-ip' is not an IP address");
    /* several errors are all reported */
    char err[1024];
    gw_config_t *c = load("global:\n  port: x\n  secure: 3\n", err, sizeof(err));
    CHECK(c == NULL);
    CHECK(strstr(err, "port:") && strstr(err, "secure:"));
}

static void test_warnings(void)
{
    char err[1024];
    gw_config_t *c = load("global:\n  wwwrot: /x\n  proxyTo: http://a\n", err, sizeof(err));
    CHECK(c != NULL);
    CHECK(strstr(warnings, "t.yaml:2:3: unused configuration property 'wwwrot' (did you mean 'wwwroot'?)") != NULL);
    CHECK(strstr(warnings, "module 'rproxy' is not in loadModules") != NULL);
    gw_config_free(c);
}

static void test_listen(void)
{
    char err[512];
    gw_config_t *c = load("global:\n  port: \"127.0.0.1:9000\"\n", err, sizeof(err));
    CHECK(c && c->num_listens == 1);
    if (c) {
        CHECK_EQ_INT(ntohs(c->listens[0].addr.sin6_port), 9000);
        CHECK(IN6_IS_ADDR_V4MAPPED(&c->listens[0].addr.sin6_addr));
        gw_config_free(c);
    }
    c = load("global:\n  port: \"[::1]:9001\"\n", err, sizeof(err));
    CHECK(c && IN6_IS_ADDR_LOOPBACK(&c->listens[0].addr.sin6_addr));
    gw_config_free(c);
    c = load("", err, sizeof(err));
    CHECK(c && ntohs(c->listens[0].addr.sin6_port) == 80 && c->limits.max_headers == 100);
    gw_config_free(c);
}

/* Whether the route's chain holds the admin endpoints' handler. */
static bool has_admin_handler(const gw_route_t *r)
{
    for (size_t i = 0; i < r->num_handlers; i++)
        if (!strcmp(r->handlers[i]->name, "admin")) return true;
    return false;
}

static void test_admin_listen(void)
{
    char err[1024];
    gw_config_t *c = load("global:\n  port: 9000\n", err, sizeof(err));
    CHECK(c && c->num_listens == 1 && !c->listens[0].admin);
    CHECK(c && has_admin_handler(&c->global_route) && has_admin_handler(c->admin_route));
    gw_config_free(c);
    c = load("global:\n  port: \"127.0.0.1:9000\"\n  adminListen: \"127.0.0.2:9000\"\n"
             "hosts:\n  - domain: a.test\n",
             err, sizeof(err));
    CHECK(c && c->num_listens == 2 && c->listens[1].admin && !c->listens[0].admin);
    if (c) {
        CHECK(strcmp(c->listens[1].text, "127.0.0.2:9000 for the admin endpoints") == 0);
        /* the public routes leave them out; the admin route holds them alone */
        CHECK(!has_admin_handler(&c->global_route) && !has_admin_handler(&c->hosts[0].route));
        CHECK(c->admin_route->num_handlers == 1 && has_admin_handler(c->admin_route));
        gw_config_free(c);
    }
    static const char *const collide[] = {"9000", "\"0.0.0.0:9000\"", "\"[::1]:9000\""};
    for (size_t i = 0; i < sizeof(collide) / sizeof(collide[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "global:\n  port: 9000\n  adminListen: %s\n", collide[i]);
        c = load(yaml, err, sizeof(err));
        CHECK(c == NULL && strstr(err, "t.yaml:3:16: adminListen: ") &&
              strstr(err, "collides with the public listener [::]:9000"));
        gw_config_free(c);
    }
    c = load("global:\n  port: \"unix:/run/a.sock\"\n  adminListen: \"unix:/run/a.sock\"\n", err,
             sizeof(err));
    CHECK(c == NULL && strstr(err, "collides with the public listener unix:/run/a.sock"));
    gw_config_free(c);
    c = load("global:\n  port: \"unix:/run/a.sock\"\n  adminListen: \"unix:/run/admin.sock\"\n", err,
             sizeof(err));
    CHECK(c && c->num_listens == 2 && c->listens[1].admin);
    gw_config_free(c);
}

static const char *route_root(const gw_config_t *c, const char *host, const char *path)
{
    struct in6_addr local = IN6ADDR_LOOPBACK_INIT;
    const gw_route_t *r = gw_config_route(c, (gw_slice_t){host, strlen(host)}, &local, (gw_slice_t){path, strlen(path)});
    return scalar(r, "wwwroot");
}

static void test_routing(void)
{
    char err[1024];
    gw_config_t *c = load("global:\n  wwwroot: /global\n"
                          "hosts:\n"
                          "  - domain: only-ip.test\n    ip: 192.0.2.1\n    wwwroot: /ip\n"
                          "  - domain: example.com\n    wwwroot: /ex\n"
                          "    locations:\n      - path: /docs\n        wwwroot: /docs\n"
                          "  - domain: \"*.wild.test\"\n    wwwroot: /wild\n"
                          "  - domain: example.com\n    wwwroot: /second\n"
                          "  - domain: \"*\"\n    wwwroot: /any\n",
                          err, sizeof(err));
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s", err);
        return;
    }
    CHECK_STR(route_root(c, "example.com", "/"), "/ex");
    CHECK_STR(route_root(c, "example.com:8080", "/"), "/ex"); /* Ferron's port bug fixed */
    CHECK_STR(route_root(c, "example.com.", "/"), "/ex");
    CHECK_STR(route_root(c, "example.com", "/docs"), "/docs");
    CHECK_STR(route_root(c, "example.com", "/docs/a"), "/docs");
    CHECK_STR(route_root(c, "example.com", "/docsx"), "/ex"); /* segment boundary */
    CHECK_STR(route_root(c, "a.wild.test", "/"), "/wild");
    CHECK_STR(route_root(c, "wild.test", "/"), "/wild");
    CHECK_STR(route_root(c, "xwild.test", "/"), "/any");
    CHECK_STR(route_root(c, "only-ip.test", "/"), "/any"); /* local address differs */
    CHECK_STR(route_root(c, "[::1]:8080", "/"), "/any");
    gw_config_free(c);
}

/* protocol per upstream group and h2c:// URLs: HTTP/2 targets never share a pool with HTTP/1.1 ones. */
static void test_backend_protocols(void)
{
    char err[1024];
    gw_config_t *c = load("upstreams:\n"
                          "  a: {protocol: h2c, servers: [\"http://10.0.0.1:80\"]}\n"
                          "  b: {servers: [\"http://10.0.0.1:80\"]}\n"
                          "  c: {protocol: auto, servers: [\"https://10.0.0.2\"]}\n"
                          "global:\n  loadModules: [rproxy]\n  proxyTo: \"h2c://10.0.0.3:81/base\"\n",
                          err, sizeof(err));
    CHECK(c != NULL);
    if (!c) return;
    CHECK(c->num_groups == 3);
    const gw_target_t *a = c->groups[0].items[0], *b = c->groups[1].items[0];
    const gw_target_t *auto_t = c->groups[2].items[0];
    CHECK(a->proto == GW_PROTO_H2C && b->proto == GW_PROTO_HTTP1 && auto_t->proto == GW_PROTO_AUTO);
    CHECK(a != b && a->id != b->id); /* same URL, two protocols: two targets, two pools */
    const gw_target_t *t = c->global_route.proxy.to.items[0];
    CHECK(t->proto == GW_PROTO_H2C && t->port == 81 && !t->tls);
    CHECK_STR(t->base_path, "/base");
    CHECK(c->pool.h2_max_streams == 100 && c->pool.h2_window == 65535 && c->pool.h2_ping_ms == 10000);
    gw_config_free(c);
    expect_error("upstreams:\n  a: {protocol: h2, servers: [\"http://x\"]}\n", "protocol h2 needs an https:// URL");
    expect_error("upstreams:\n  a: {protocol: h3, servers: [\"http://x\"]}\n",
                 "t.yaml:2:17: protocol: expected http1, h2, h2c or auto");
    expect_error("global:\n  proxyHttp2WindowSize: 100\n", "proxyHttp2WindowSize: 100 is out of range");
}

static void test_registry(void)
{
    CHECK(gw_prop_find("wwwroot") != NULL);
    CHECK(gw_prop_find("nope") == NULL);
    CHECK_STR(gw_prop_suggest("ProxyTo"), "proxyTo");
    CHECK(gw_prop_suggest("completelydifferent") == NULL);
    for (size_t i = 0; i < gw_prop_count; i++) {
        CHECK(gw_props_registry[i].help && gw_props_registry[i].help[0]);
        for (size_t j = i + 1; j < gw_prop_count; j++) CHECK(strcmp(gw_props_registry[i].name, gw_props_registry[j].name));
    }
}

int main(void)
{
    test_merge();
    test_errors();
    test_warnings();
    test_listen();
    test_admin_listen();
    test_routing();
    test_backend_protocols();
    test_registry();
    return check_report("config");
}
