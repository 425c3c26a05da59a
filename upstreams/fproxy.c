/* The forward proxy: absolute-form requests and CONNECT tunnels on the shared exchange. See fproxy.h. */
#include "fproxy.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "basic_auth.h"
#include "config_props.h"
#include "dns.h"
#include "errors.h"
#include "exchange.h"
#include "log.h"
#include "policy.h"
#include "state.h"
#include "worker.h"

/* Destinations refused unless an allowed CIDR covers them: private, loopback, link-local (cloud
 * metadata at 169.254.169.254), carrier-grade NAT, benchmarking, multicast and reserved ranges. */
static const char *const special_ranges[] = {
    "0.0.0.0/8",    "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",    "::/96",
    "64:ff9b::/96", "fc00::/7",       "fe80::/10",     "fec0::/10",   "ff00::/8",
};

static const char *const default_ports[] = {"80", "443"};

#define DEFAULT_IDLE_MS 300000 /* forwardProxyIdleTimeout */

typedef struct fproxy_route {
    gw_handler_t base;
    bool broken;            /* a setting did not parse: refuse everything */
    gw_cidr_list_t special; /* special_ranges */
    gw_cidr_list_t allow_nets, deny_nets;
    const char **allow_hosts, **deny_hosts;
    size_t num_allow_hosts, num_deny_hosts;
    bool has_allow;
    uint16_t *ports;
    size_t num_ports;
    bool auth;                /* forwardProxyAuth: Proxy-Authorization Basic required */
    uint32_t idle_ms;         /* forwardProxyIdleTimeout: a CONNECT tunnel without traffic */
    const gw_userdb_t *users; /* the route's users (users, htpasswdFile) */
} fproxy_route_t;

typedef struct fproxy_req {
    gw_exchange_t x; /* first: the exchange callbacks get this pointer */
    const fproxy_route_t *fr;
    gw_dns_query_t q;
    bool resolving;
    bool connect;
    char *host; /* without brackets */
    uint16_t port;
    gw_slice_t target; /* origin-form target sent to the origin */
} fproxy_req_t;

/* ---- settings ---- */

/* "*", "*.example.com", or a name of letters, digits, '-', '_' and dots. */
static bool is_host_pattern(const char *s)
{
    if (!strcmp(s, "*")) return true;
    if (s[0] == '*' && s[1] == '.') s += 2;
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_') return false;
    return true;
}

static bool is_ip_or_cidr(const char *s)
{
    gw_cidr_t c;
    return gw_cidr_parse(s, &c);
}

/* A forwardProxyPorts entry: a decimal port; 0 when it is not one. */
static uint16_t port_value(const char *s)
{
    char *end;
    long v = s && *s >= '0' && *s <= '9' ? strtol(s, &end, 10) : 0;
    return v >= 1 && v <= 65535 && !*end ? (uint16_t)v : 0;
}

/* The first bad entry of a destination list (with why), or NULL. */
static const gw_node_t *bad_destination(const gw_node_t *list, char *why, size_t whylen)
{
    for (size_t i = 0; i < list->seq.count; i++) {
        const char *s = gw_node_as_string(list->seq.items[i]);
        if (s && *s && (is_ip_or_cidr(s) || is_host_pattern(s))) continue;
        if (s && *s)
            snprintf(why, whylen,
                     "'%s' is neither a host pattern (example.com, *.example.com) nor an IP address or CIDR",
                     s);
        else
            snprintf(why, whylen, "entry %zu is empty", i + 1);
        return list->seq.items[i];
    }
    return NULL;
}

static const gw_node_t *bad_port(const gw_node_t *list, char *why, size_t whylen)
{
    for (size_t i = 0; i < list->seq.count; i++) {
        const char *s = gw_node_as_string(list->seq.items[i]);
        if (port_value(s)) continue;
        if (s)
            snprintf(why, whylen, "'%s' is not a port (1 to 65535)", s);
        else
            snprintf(why, whylen, "entry %zu is not a port (1 to 65535)", i + 1);
        return list->seq.items[i];
    }
    return NULL;
}

const gw_node_t *gw_fproxy_check_property(const char *name, const gw_node_t *value, char *why, size_t whylen)
{
    if (value->kind != GW_NODE_SEQ) return NULL; /* the type check reports it */
    if (!strcmp(name, "forwardProxyAllow") || !strcmp(name, "forwardProxyDeny"))
        return bad_destination(value, why, whylen);
    if (!strcmp(name, "forwardProxyPorts")) return bad_port(value, why, whylen);
    return NULL;
}

/* Splits a list of patterns into CIDRs and host patterns (entries checked at load). */
static bool build_list(const gw_route_t *route, const char *prop, gw_arena_t *arena, gw_cidr_list_t *nets,
                       const char ***hosts, size_t *num_hosts, bool *present)
{
    const gw_node_t *n = gw_route_prop(route, prop);
    *present = n && n->kind == GW_NODE_SEQ && n->seq.count;
    if (!*present) return true;
    char why[160];
    if (bad_destination(n, why, sizeof(why))) return false;
    size_t count = n->seq.count, nn = 0, nh = 0;
    const char **netv = gw_arena_alloc(arena, count * sizeof(*netv));
    *hosts = gw_arena_alloc(arena, count * sizeof(**hosts));
    if (!netv || !*hosts) return false;
    for (size_t i = 0; i < count; i++) {
        const char *s = gw_node_as_string(n->seq.items[i]);
        if (is_ip_or_cidr(s)) {
            netv[nn++] = s;
            continue;
        }
        char *low = gw_arena_strndup(arena, s, strlen(s));
        if (!low) return false;
        for (char *p = low; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        (*hosts)[nh++] = low;
    }
    *num_hosts = nh;
    size_t bad = 0;
    return gw_cidr_list_build(nets, arena, netv, nn, &bad);
}

static bool build_ports(fproxy_route_t *fr, const gw_route_t *route, gw_arena_t *arena)
{
    const gw_node_t *n = gw_route_prop(route, "forwardProxyPorts");
    bool set = n && n->kind == GW_NODE_SEQ;
    size_t count = set ? n->seq.count : 2;
    fr->ports = gw_arena_alloc(arena, (count ? count : 1) * sizeof(*fr->ports));
    if (!fr->ports) return false;
    for (size_t i = 0; i < count; i++) {
        uint16_t port = port_value(set ? gw_node_as_string(n->seq.items[i]) : default_ports[i]);
        if (!port) return false; /* checked at load */
        fr->ports[fr->num_ports++] = port;
    }
    return true;
}

static gw_handler_result_t fproxy_on_request(const gw_handler_t *self, gw_req_t *req);

static bool build_route(fproxy_route_t *fr, const gw_route_t *route, gw_arena_t *arena)
{
    size_t bad = 0;
    bool deny_present = false;
    if (!gw_cidr_list_build(&fr->special, arena, special_ranges,
                            sizeof(special_ranges) / sizeof(special_ranges[0]), &bad))
        return false;
    return build_list(route, "forwardProxyAllow", arena, &fr->allow_nets, &fr->allow_hosts,
                      &fr->num_allow_hosts, &fr->has_allow) &&
           build_list(route, "forwardProxyDeny", arena, &fr->deny_nets, &fr->deny_hosts, &fr->num_deny_hosts,
                      &deny_present) &&
           build_ports(fr, route, arena);
}

const gw_handler_t *gw_fproxy_handler_new(const gw_route_t *route, gw_arena_t *arena)
{
    fproxy_route_t *fr = gw_arena_alloc(arena, sizeof(*fr));
    if (!fr) return NULL;
    memset(fr, 0, sizeof(*fr));
    fr->base = (gw_handler_t){"fproxy", fproxy_on_request};
    gw_node_as_bool(gw_route_prop(route, "forwardProxyAuth"), &fr->auth);
    int64_t idle; /* range-checked at load */
    bool has_idle = gw_node_as_int(gw_route_prop(route, "forwardProxyIdleTimeout"), &idle);
    fr->idle_ms = has_idle ? (uint32_t)idle : DEFAULT_IDLE_MS;
    fr->users = gw_policy_users(route->policy);
    if (!build_route(fr, route, arena)) {
        gw_log_error("error",
                     "fproxy: invalid forward-proxy settings: every forward-proxy request is refused");
        fr->broken = true;
    }
    return &fr->base;
}

/* ---- destination policy ---- */

/* "*.example.com" matches names under example.com; "*" every name; anything else exactly. */
static bool host_matches(const char *pattern, const char *host)
{
    if (strcmp(pattern, "*") == 0) return true;
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t pl = strlen(pattern + 1), hl = strlen(host);
        return hl > pl && strcasecmp(host + hl - pl, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

static bool host_listed(const char *const *patterns, size_t n, const char *host)
{
    for (size_t i = 0; i < n; i++)
        if (host_matches(patterns[i], host)) return true;
    return false;
}

static bool port_allowed(const fproxy_route_t *fr, uint16_t port)
{
    for (size_t i = 0; i < fr->num_ports; i++)
        if (fr->ports[i] == port) return true;
    return false;
}

/* Why a resolved address is refused, or NULL when it may be used. */
static const char *address_refused(const fproxy_route_t *fr, const char *host, const struct in6_addr *a)
{
    if (gw_cidr_list_match(&fr->deny_nets, a)) return "address denied by forwardProxyDeny";
    bool net_allowed = gw_cidr_list_match(&fr->allow_nets, a);
    if (gw_cidr_list_match(&fr->special, a) && !net_allowed) return "private or special address";
    if (fr->has_allow && !net_allowed && !host_listed(fr->allow_hosts, fr->num_allow_hosts, host))
        return "not in forwardProxyAllow";
    return NULL;
}

static void refuse(fproxy_req_t *f, const char *why)
{
    char peer[64];
    gw_ip_text(&f->x.req->client_ip, peer, sizeof(peer));
    gw_log_error("warn", "forward proxy: %s to %s port %u refused: %s", peer, f->host, (unsigned)f->port,
                 why);
    gw_send_error(f->x.req, 403);
}

/* ---- the request to the origin ---- */

static bool fproxy_build_head(gw_exchange_t *x)
{
    fproxy_req_t *f = (fproxy_req_t *)x;
    gw_req_t *req = x->req;
    if (f->connect) { /* nothing but raw bytes on a tunnel's connection */
        static char none[1];
        x->head = none;
        x->head_len = 0;
        return true;
    }
    size_t extra = f->target.len + req->authority.len + 256;
    char *p = x->head = gw_arena_alloc(&req->arena, gw_exchange_head_capacity(req, extra));
    if (!p) return false;
    p = gw_put(p, req->method.base, req->method.len);
    p = gw_put(p, " ", 1);
    p = gw_put(p, f->target.base, f->target.len);
    p = gw_put(p, " HTTP/1.1\r\nHost: ", 17);
    p = gw_put(p, req->authority.base, req->authority.len);
    p = gw_put(p, "\r\n", 2);
    static const gw_proxy_route_t plain = {.x_forwarded = false};
    p = gw_exchange_put_client_headers(p, req, &plain);
    p = gw_exchange_put_framing(x, p);
    p = gw_put(p, "\r\n", 2);
    x->head_len = (size_t)(p - x->head);
    return true;
}

static const gw_exchange_ops_t fproxy_ops = {.build_head = fproxy_build_head};

/* Proxy-Authorization and the other Proxy-* fields are for this hop only. */
static void strip_proxy_headers(gw_req_t *req)
{
    size_t kept = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        gw_slice_t n = req->headers[i].name;
        if (n.len >= 6 && strncasecmp(n.base, "proxy-", 6) == 0) continue;
        req->headers[kept++] = req->headers[i];
    }
    req->num_headers = kept;
}

static void start_exchange(fproxy_req_t *f, const struct in6_addr *a)
{
    gw_req_t *req = f->x.req;
    char ip[64];
    gw_ip_text(a, ip, sizeof(ip));
    gw_pool_t *pool = gw_pool_get_dynamic(req->worker, ip, f->port);
    if (!pool) {
        gw_send_error(req, 503);
        return;
    }
    if (!gw_exchange_init_pool(&f->x, req, &fproxy_ops, pool)) {
        gw_send_error(req, 500);
        return;
    }
    f->x.send_body = !f->connect;
    f->x.raw_tunnel = f->connect;
    f->x.tunnel_idle_ms = f->fr->idle_ms;
    f->x.waiter.fresh = f->connect; /* a tunnel never borrows a kept-alive HTTP connection */
    gw_exchange_start(&f->x);
}

static void on_resolved(gw_dns_query_t *q, const char *err, const struct sockaddr_in6 *addrs, size_t n)
{
    fproxy_req_t *f = q->data;
    f->resolving = false;
    if (err || !n) {
        gw_log_error("warn", "forward proxy: cannot resolve %s", f->host);
        gw_send_error(f->x.req, gw_error_status(gw_err_dns));
        return;
    }
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *r = address_refused(f->fr, f->host, &addrs[i].sin6_addr);
        if (!r) {
            start_exchange(f, &addrs[i].sin6_addr);
            return;
        }
        if (!why) why = r;
    }
    refuse(f, why);
}

static void fproxy_cleanup(void *arg)
{
    fproxy_req_t *f = arg;
    if (f->resolving) gw_dns_cancel(&f->q);
    f->resolving = false;
}

/* ---- parsing the destination ---- */

/* "host:port", "[v6]:port", or without the port when `def_port` is not 0. Returns 0 or 400. */
static int parse_authority(gw_req_t *req, gw_slice_t a, uint16_t def_port, char **host, uint16_t *port)
{
    const char *s = a.base, *end = a.base + a.len, *hend, *colon = NULL;
    if (!a.len || memchr(s, '@', a.len)) return 400; /* no userinfo (RFC 9110 4.2.4) */
    if (*s == '[') {
        const char *rb = memchr(s, ']', a.len);
        if (!rb) return 400;
        hend = rb;
        s++;
        if (rb + 1 < end) {
            if (rb[1] != ':') return 400;
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', a.len);
        hend = colon ? colon : end;
    }
    if (hend == s) return 400;
    long p = def_port;
    if (colon) {
        if (colon + 1 >= end || end - colon > 6) return 400;
        p = 0;
        for (const char *c = colon + 1; c < end; c++) {
            if (*c < '0' || *c > '9') return 400;
            p = p * 10 + (*c - '0');
        }
    }
    if (p < 1 || p > 65535) return 400;
    *host = gw_arena_strndup(&req->arena, s, (size_t)(hend - s));
    if (!*host) return 500;
    for (char *c = *host; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
    *port = (uint16_t)p;
    return 0;
}

/* Absolute-form: the scheme, the authority and the origin-form rest as the client wrote it. */
static int parse_absolute(gw_req_t *req, fproxy_req_t *f)
{
    gw_slice_t t = req->target;
    if (t.len >= 8 && strncasecmp(t.base, "https://", 8) == 0) return 400; /* as Ferron */
    if (t.len < 7 || strncasecmp(t.base, "http://", 7) != 0) return 400;
    const char *auth = t.base + 7, *end = t.base + t.len, *rest = auth;
    while (rest < end && *rest != '/' && *rest != '?' && *rest != '#')
        rest++;
    int err = parse_authority(req, (gw_slice_t){auth, (size_t)(rest - auth)}, 80, &f->host, &f->port);
    if (err) return err;
    const char *frag = memchr(rest, '#', (size_t)(end - rest));
    if (frag) end = frag;
    if (rest == end) {
        f->target = GW_SLICE_LIT("/");
    } else if (*rest == '?') {
        char *with = gw_arena_printf(&req->arena, "/%.*s", (int)(end - rest), rest);
        if (!with) return 500;
        f->target = (gw_slice_t){with, strlen(with)};
    } else {
        f->target = (gw_slice_t){rest, (size_t)(end - rest)};
    }
    return 0;
}

/* forwardProxyAuth: Basic credentials in Proxy-Authorization (RFC 9110 11.7.1), 407 otherwise, with
 * the same brute-force lockout as basic auth. */
static gw_handler_result_t check_auth(const fproxy_route_t *fr, gw_req_t *req)
{
    int64_t now = gw_policy_clock();
    uint32_t retry;
    if (gw_brute_locked(&req->client_ip, now, &retry)) {
        char *v = gw_arena_printf(&req->arena, "%u", retry);
        if (v) gw_res_add_header(req, GW_SLICE_LIT("retry-after"), (gw_slice_t){v, strlen(v)});
        req->res.status = 429;
        return GW_ERROR;
    }
    const gw_header_t *h = gw_req_header(req, "proxy-authorization");
    gw_slice_t authz = h ? h->value : (gw_slice_t){NULL, 0};
    const char *user = NULL;
    static const gw_userdb_t none;
    gw_auth_result_t res = gw_basic_auth_check(fr->users ? fr->users : &none, authz, NULL, 0, &user, now);
    if (res == GW_AUTH_OK) {
        req->remote_user = user;
        return GW_CONTINUE;
    }
    if (res == GW_AUTH_FAILED) gw_brute_fail(&req->client_ip, now);
    gw_res_add_header(req, GW_SLICE_LIT("proxy-authenticate"),
                      GW_SLICE_LIT("Basic realm=\"proxy\", charset=\"UTF-8\""));
    req->res.status = 407;
    return GW_ERROR;
}

static gw_handler_result_t fail(gw_req_t *req, int status)
{
    req->res.status = status;
    return GW_ERROR;
}

static gw_handler_result_t fproxy_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const fproxy_route_t *fr = (const fproxy_route_t *)self;
    bool connect = req->method_id == GW_M_CONNECT;
    gw_slice_t t = req->target;
    if (!connect && (!t.len || t.base[0] == '/' || gw_slice_eq(t, "*"))) return GW_CONTINUE; /* origin-form */
    if (connect && req->version == 10) return GW_CONTINUE;        /* no tunnels for HTTP/1.0 (501) */
    if (connect && t.len && t.base[0] == '/') return GW_CONTINUE; /* HTTP/2 extended CONNECT (RFC 8441) */
    if (fr->auth && !fr->broken) {
        gw_handler_result_t a = check_auth(fr, req);
        if (a != GW_CONTINUE) return a;
    }
    fproxy_req_t *f = gw_arena_alloc(&req->arena, sizeof(*f));
    if (!f) return fail(req, 500);
    memset(f, 0, sizeof(*f));
    f->x.req = req;
    f->fr = fr;
    f->connect = connect;
    int err = connect ? parse_authority(req, t, 0, &f->host, &f->port) : parse_absolute(req, f);
    if (err) return fail(req, err);
    if (fr->broken) {
        refuse(f, "the forward-proxy settings are invalid");
        return GW_DONE;
    }
    if (!port_allowed(fr, f->port)) {
        refuse(f, "port not in forwardProxyPorts");
        return GW_DONE;
    }
    if (host_listed(fr->deny_hosts, fr->num_deny_hosts, f->host)) {
        refuse(f, "name denied by forwardProxyDeny");
        return GW_DONE;
    }
    strip_proxy_headers(req);
    if (!gw_req_defer(req, fproxy_cleanup, f)) return fail(req, 500);
    f->q.cb = on_resolved;
    f->q.data = f;
    f->resolving = true;
    /* may answer at once (a literal address, a cached name): the request may be over on return */
    gw_dns_resolve(req->worker->dns, &f->q, f->host, f->port);
    return GW_DONE;
}

/* Without the route's settings nothing is known to be allowed: refuse (modules.c always makes the
 * per-route handler). */
static fproxy_route_t default_route = {.broken = true};

static gw_handler_result_t default_on_request(const gw_handler_t *self, gw_req_t *req)
{
    return fproxy_on_request(&default_route.base, req);
}

const gw_handler_t gw_fproxy_handler = {"fproxy", default_on_request};
