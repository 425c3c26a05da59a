/* `gateway --explain`, handler by handler. See explain_stages.h. */
#include "explain_stages.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "acl.h"
#include "basic_auth.h"
#include "cgi_env.h"
#include "config.h"
#include "config_props.h"
#include "nonstandard.h"
#include "policy.h"
#include "state.h"

typedef void (*describe_fn)(gw_explain_t *e, const gw_handler_t *h);

static void refuse(gw_explain_t *e, int status)
{
    e->status = status ? status : 500;
    fprintf(e->out, "refused: %d\n", e->status);
}

static void print_targets(FILE *out, const gw_target_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        fprintf(out, "%s%s", i ? ", " : "", l->items[i]->url);
}

/* ---- policy stages that run for real: they only read the request ---- */

static void client_address(gw_explain_t *e, const gw_handler_t *h)
{
    struct in6_addr before = e->req->client_ip;
    if (h->on_request(h, e->req) == GW_ERROR) return refuse(e, e->req->res.status);
    char ip[64];
    gw_ip_text(&e->req->client_ip, ip, sizeof(ip));
    bool moved = memcmp(&before, &e->req->client_ip, sizeof(before)) != 0;
    fprintf(e->out, "client %s%s\n", ip, moved ? " (from X-Forwarded-For)" : " (X-Forwarded-For not used)");
}

static void access_list(gw_explain_t *e, const gw_handler_t *h)
{
    char ip[64];
    gw_ip_text(&e->req->client_ip, ip, sizeof(ip));
    if (h->on_request(h, e->req) == GW_ERROR) {
        fprintf(e->out, "%s is blocked or not allowed; ", ip);
        return refuse(e, e->req->res.status);
    }
    fprintf(e->out, "%s is allowed\n", ip);
}

static void rewrite(gw_explain_t *e, const gw_handler_t *h)
{
    gw_req_t *req = e->req;
    gw_slice_t before = req->path;
    if (h->on_request(h, req) == GW_ERROR) return refuse(e, req->res.status);
    if (before.base == req->path.base) {
        fprintf(e->out, "no rule applies\n");
        return;
    }
    fprintf(e->out, "%.*s -> %.*s%s%.*s\n", (int)before.len, before.base, (int)req->path.len, req->path.base,
            req->has_query ? "?" : "", (int)req->query.len, req->query.base);
}

/* ---- nonStandardCodes: the rules are matched for real; a 401 rule checks given credentials ---- */

static void ns_basic_auth(gw_explain_t *e, const gw_nonstandard_t *ns, const gw_ns_rule_t *r)
{
    const gw_header_t *h = gw_req_header(e->req, "authorization");
    fprintf(e->out, "basic auth (%s)", r->challenge);
    if (!h) {
        fprintf(e->out, ", no Authorization header; ");
        return refuse(e, 401);
    }
    const char *user = NULL;
    gw_userdb_t none = {0};
    gw_auth_result_t res =
        gw_basic_auth_check(ns->users ? ns->users : &none, h->value, (const char *const *)r->user_list,
                            r->num_user_list, &user, gw_policy_clock());
    if (res != GW_AUTH_OK) {
        fprintf(e->out, ", credentials refused; ");
        return refuse(e, 401);
    }
    e->req->remote_user = user;
    fprintf(e->out, ", user %s accepted (a brute-force lockout is decided at run time)\n", user);
}

static void nonstandard(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    gw_req_t *req = e->req;
    const gw_nonstandard_t *ns = gw_policy_nonstandard(req->route->policy);
    char *url = gw_arena_printf(&req->arena, "%.*s%s%.*s", (int)req->path.len, req->path.base,
                                req->has_query ? "?" : "", (int)req->query.len, req->query.base);
    for (size_t i = 0; ns && url && i < ns->count; i++) {
        const gw_ns_rule_t *r = &ns->rules[i];
        if (!gw_ns_rule_matches(r, req, (gw_slice_t){url, strlen(url)})) continue;
        fprintf(e->out, "rule %zu (scode %d) applies: ", i + 1, r->scode);
        if (r->scode == 401) return ns_basic_auth(e, ns, r);
        if (r->location && r->scode >= 300 && r->scode < 400) {
            e->answer = gw_arena_printf(&req->arena, "%d redirect to %s (nonStandardCodes rule %zu)",
                                        r->scode, r->location, i + 1);
            fprintf(e->out, "redirect to %s\n", r->location);
            return;
        }
        return refuse(e, r->scode);
    }
    fprintf(e->out, "no rule applies\n");
}

/* ---- stages that need live state ---- */

static void rate_limit(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    const gw_node_t *m = gw_route_prop(e->req->route, "rateLimit");
    const char *req_n = gw_node_as_string(gw_yaml_map_get(m, "requests"));
    const char *per = gw_node_as_string(gw_yaml_map_get(m, "per"));
    const char *key = gw_node_as_string(gw_yaml_map_get(m, "key"));
    const char *zone = gw_node_as_string(gw_yaml_map_get(m, "zone"));
    fprintf(e->out, "%s requests per %s, key %s, ", req_n ? req_n : "?", per ? per : "1s", key ? key : "ip");
    if (zone)
        fprintf(e->out, "zone %s", zone);
    else
        fprintf(e->out, "buckets of the level that writes the rule");
    fprintf(e->out, ": decided at run time (429 when the bucket is empty)\n");
}

static void admin(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    fprintf(e->out,
            "answers healthPath, readyPath and metricsPath for peers in adminAllow; other paths pass\n");
}

static void redirects(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    bool secure = false, off = false, www = false;
    gw_node_as_bool(gw_route_prop(e->req->route, "secure"), &secure);
    gw_node_as_bool(gw_route_prop(e->req->route, "disableToHTTPSRedirect"), &off);
    gw_node_as_bool(gw_route_prop(e->req->route, "wwwredirect"), &www);
    if (secure && !off && !e->req->conn->tls && e->req->authority.len) {
        e->answer = "301 redirect to HTTPS";
        fprintf(e->out, "a plain-HTTP request: 301 to HTTPS\n");
        return;
    }
    fprintf(e->out, "%s%s\n", secure && !off ? "HTTPS redirect (not for this request)" : "",
            www ? " www redirect for the host's own domain" : "");
}

/* ---- modules ---- */

static void rproxy(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    const gw_proxy_route_t *pr = &e->req->route->proxy;
    const gw_target_list_t *list = e->req->conn->tls && pr->secure_to.count ? &pr->secure_to : &pr->to;
    if (!list->count) {
        fprintf(e->out, "no proxyTo here: passes\n");
        return;
    }
    fprintf(e->out, "proxies to ");
    print_targets(e->out, list);
    fprintf(e->out, " (the balancer picks at run time)");
    if (pr->pp_to_backend) fprintf(e->out, ", PROXY protocol v%d header first", pr->pp_to_backend);
    fputc('\n', e->out);
    e->answer = "the backend's response (rproxy)";
}

static void fauth(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    if (!e->req->route->fauth.to.count) {
        fprintf(e->out, "no authTo here: passes\n");
        return;
    }
    fprintf(e->out, "asks ");
    print_targets(e->out, &e->req->route->fauth.to);
    fprintf(e->out, " first: a 2xx goes on, any other answer is returned (decided at run time)\n");
}

static void fcgi(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    const gw_cgi_route_t *c = &e->req->route->cgi;
    if (!c->fcgi_to.count) {
        fprintf(e->out, "no fcgiPath or fcgiScriptExtensions here: passes\n");
        return;
    }
    if (c->fcgi_path && gw_cgi_prefix_match(e->req->path, c->fcgi_path)) {
        fprintf(e->out, "under fcgiPath %s: sent to ", c->fcgi_path[0] ? c->fcgi_path : "/");
        print_targets(e->out, &c->fcgi_to);
        fputc('\n', e->out);
        e->answer = "the FastCGI application's response";
        return;
    }
    fprintf(e->out, "scripts with fcgiScriptExtensions under wwwroot go to ");
    print_targets(e->out, &c->fcgi_to);
    fprintf(e->out, " (the file lookup is decided at run time)\n");
}

static void scgi(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    const gw_cgi_route_t *c = &e->req->route->cgi;
    if (!c->scgi_to.count || !c->scgi_path || !gw_cgi_prefix_match(e->req->path, c->scgi_path)) {
        fprintf(e->out, "not under an scgiPath: passes\n");
        return;
    }
    fprintf(e->out, "under scgiPath %s: sent to ", c->scgi_path[0] ? c->scgi_path : "/");
    print_targets(e->out, &c->scgi_to);
    fputc('\n', e->out);
    e->answer = "the SCGI application's response";
}

static void cgi(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    fprintf(e->out,
            "programs under /cgi-bin/ or with cgiScriptExtensions run as CGI (the file lookup is decided "
            "at run time)\n");
}

static void cache(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    fprintf(e->out, "a fresh stored response would answer here (decided at run time)\n");
}

static void fproxy(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    fprintf(e->out,
            "answers CONNECT and absolute-form http:// requests (forwardProxyAllow/Deny, decided at run "
            "time on the resolved address)\n");
}

/* What the static handler would open: the path under wwwroot (RESOLVE_BENEATH at run time). */
static void static_files(gw_explain_t *e, const gw_handler_t *h)
{
    (void)h;
    const gw_route_t *r = e->req->route;
    if (!r->wwwroot) {
        fprintf(e->out, "no wwwroot: 404\n");
        e->answer = "404 (no wwwroot)";
        return;
    }
    const gw_slice_t p = e->req->path;
    char *rel = gw_arena_printf(&e->req->arena, "%.*s", (int)(p.len > 1 ? p.len - 1 : 1),
                                p.len > 1 ? p.base + 1 : ".");
    struct stat st;
    bool found = rel && r->root_fd >= 0 && fstatat(r->root_fd, rel, &st, 0) == 0;
    const char *kind = !found                ? "missing: 404"
                       : S_ISDIR(st.st_mode) ? "a directory: index file or listing"
                                             : "a file";
    fprintf(e->out, "wwwroot %s -> %s%.*s (%s)\n", r->wwwroot, r->wwwroot, (int)p.len, p.base, kind);
    e->answer =
        found ? gw_arena_printf(&e->req->arena, "the static %s", S_ISDIR(st.st_mode) ? "directory" : "file")
              : "404 (no such file)";
}

static const struct {
    const char *name;
    describe_fn fn;
} describers[] = {
    {"admin", admin},
    {"client-address", client_address},
    {"access-list", access_list},
    {"redirects", redirects},
    {"rewriteMap", rewrite},
    {"nonStandardCodes", nonstandard},
    {"rateLimit", rate_limit},
    {"rproxy", rproxy},
    {"fauth", fauth},
    {"fcgi", fcgi},
    {"scgi", scgi},
    {"cgi", cgi},
    {"cache", cache},
    {"fproxy", fproxy},
    {"static", static_files},
};

void gw_explain_stage(gw_explain_t *e, const gw_handler_t *h, size_t n)
{
    fprintf(e->out, "  %zu. %s: ", n, h->name);
    if (e->status || e->answer) {
        fprintf(e->out, "not reached\n");
        return;
    }
    for (size_t i = 0; i < sizeof(describers) / sizeof(describers[0]); i++) {
        if (strcmp(describers[i].name, h->name) != 0) continue;
        describers[i].fn(e, h);
        return;
    }
    fprintf(e->out, "a loaded module: its own rules, decided at run time\n");
}
