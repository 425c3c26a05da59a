/* `gateway --explain`: arguments, the request, its route. See explain.h. */
#include "explain.h"

#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "config.h"
#include "explain_stages.h"
#include "handler.h"
#include "mem.h"

#define MAX_HEADERS 64

typedef struct explain_args {
    const char *config, *method, *url, *ip;
    gw_header_t headers[MAX_HEADERS];
    size_t num_headers;
} explain_args_t;

void gw_explain_usage(FILE *f)
{
    fprintf(f, "usage: gateway --explain -c FILE METHOD URL [--ip A] [--header \"Name: value\"]...\n"
               "  prints the host and location a request is routed to, each policy stage with its verdict\n"
               "  (decided offline where it can be) and the handler that would answer; URL is a path\n"
               "  (/a/b?q) or absolute (http://host/a/b, https:// for a TLS client); --ip: the client\n"
               "  address (default 127.0.0.1); the host comes from the URL or a Host header\n");
}

static bool add_header(explain_args_t *a, const char *text)
{
    const char *colon = strchr(text, ':');
    if (!colon || colon == text || a->num_headers == MAX_HEADERS) return false;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    a->headers[a->num_headers++] = (gw_header_t){{text, (size_t)(colon - text)}, {v, strlen(v)}};
    return true;
}

static bool parse_args(int argc, char **argv, explain_args_t *a)
{
    for (int i = 0; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "-c") && has_value)
            a->config = argv[++i];
        else if (!strcmp(argv[i], "--ip") && has_value)
            a->ip = argv[++i];
        else if (!strcmp(argv[i], "--header") && has_value) {
            if (!add_header(a, argv[++i])) return false;
        } else if (argv[i][0] == '-' || a->url)
            return false;
        else if (!a->method)
            a->method = argv[i];
        else
            a->url = argv[i];
    }
    return a->config && a->method && a->url;
}

static void warn_to_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "warning: %s\n", msg);
}

/* The Host header's value, lower-cased as the codecs keep it (absolute-form URLs replace it). */
static gw_slice_t host_header(gw_req_t *req)
{
    const gw_header_t *h = gw_req_header(req, "host");
    char *low = h ? gw_arena_strndup(&req->arena, h->value.base, h->value.len) : NULL;
    for (char *p = low; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
    return low ? (gw_slice_t){low, h->value.len} : (gw_slice_t){"", 0};
}

/* A request as a codec would hand it over, from a client at `ip` reaching the first listener. */
static void build_request(gw_req_t *req, gw_conn_info_t *conn, gw_chunk_pool_t *pool, const gw_config_t *cfg,
                          explain_args_t *a, const struct in6_addr *ip)
{
    memset(conn, 0, sizeof(*conn));
    conn->peer.sin6_family = AF_INET6;
    conn->peer.sin6_addr = *ip;
    if (cfg->num_listens) conn->local = cfg->listens[0].addr;
    conn->tls = !strncmp(a->url, "https://", 8);
    memset(req, 0, sizeof(*req));
    gw_arena_init(&req->arena, pool);
    req->conn = conn;
    req->cfg = cfg;
    req->method = (gw_slice_t){a->method, strlen(a->method)};
    req->method_id = gw_method_intern(req->method);
    req->target = (gw_slice_t){a->url, strlen(a->url)};
    req->version = 11;
    req->headers = a->headers;
    req->num_headers = a->num_headers;
    req->authority = host_header(req);
    req->client_ip = *ip;
}

static void print_scope(FILE *out, const char *what, const gw_scope_t *sc)
{
    const gw_node_t *n = sc ? sc->level : NULL;
    const char *name = sc ? sc->name : "global";
    if (!strncmp(name, "global ", 7)) name += 7; /* scope names start with their parents' */
    fprintf(out, "%-10s %s", what, name);
    if (n && n->file) fprintf(out, " (%s:%d:%d)", n->file, n->line, n->column);
    fputc('\n', out);
}

static void print_request(FILE *out, const gw_req_t *req)
{
    char ip[64];
    gw_ip_text(&req->client_ip, ip, sizeof(ip));
    fprintf(out, "%-10s %.*s %.*s from %s%s\n", "request:", (int)req->method.len, req->method.base,
            (int)req->target.len, req->target.base, ip, req->conn->tls ? " over TLS" : "");
}

static void print_route(FILE *out, const gw_req_t *req)
{
    const gw_route_t *r = req->route;
    if (req->authority.len)
        fprintf(out, "%-10s %.*s\n", "authority:", (int)req->authority.len, req->authority.base);
    else
        fprintf(out, "%-10s (none: only hosts without a domain match)\n", "authority:");
    const gw_scope_t *sc = r->scope;
    if (sc && sc->parent && sc->parent->parent) { /* a location: show its host too */
        print_scope(out, "host:", sc->parent);
        print_scope(out, "location:", sc);
    } else {
        print_scope(out, sc && sc->parent ? "host:" : "route:", sc);
    }
    fprintf(out, "%-10s %.*s%s%.*s\n", "path:", (int)req->path.len, req->path.base, req->has_query ? "?" : "",
            (int)req->query.len, req->query.base);
}

static void explain(gw_req_t *req, FILE *out)
{
    print_request(out, req);
    int err = gw_req_route(req);
    if (err) {
        fprintf(out, "%-10s the path cannot be normalised\nanswer:    %d, before any handler\n",
                "path:", err);
        return;
    }
    print_route(out, req);
    fprintf(out, "handlers, in order:\n");
    gw_explain_t e = {.req = req, .out = out};
    const gw_route_t *r = req->route;
    for (size_t i = 0; i < r->num_handlers; i++)
        gw_explain_stage(&e, r->handlers[i], i + 1);
    if (e.status)
        fprintf(out, "answer:    %d (error page)\n", e.status);
    else
        fprintf(out, "answer:    %s\n", e.answer ? e.answer : "404 (no handler answers)");
}

int gw_explain_main(int argc, char **argv)
{
    explain_args_t a = {.ip = "127.0.0.1"};
    struct in6_addr ip;
    if (!parse_args(argc, argv, &a)) {
        gw_explain_usage(stderr);
        return 2;
    }
    if (!gw_ip_parse(a.ip, strlen(a.ip), &ip)) {
        fprintf(stderr, "--ip: '%s' is not an IP address\n", a.ip);
        gw_explain_usage(stderr);
        return 2;
    }
    static char err[8192];
    gw_config_t *cfg = gw_config_load(a.config, err, sizeof(err), warn_to_stderr, NULL);
    if (!cfg) {
        fprintf(stderr, "%s%s", err, err[0] && err[strlen(err) - 1] != '\n' ? "\n" : "");
        return 1;
    }
    gw_chunk_pool_t pool;
    gw_chunk_pool_init(&pool, 16384, 0);
    gw_req_t req;
    gw_conn_info_t conn;
    build_request(&req, &conn, &pool, cfg, &a, &ip);
    explain(&req, stdout);
    gw_arena_reset(&req.arena);
    gw_chunk_pool_clear(&pool);
    gw_config_free(cfg);
    return 0;
}
