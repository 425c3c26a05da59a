/* nonStandardCodes. See nonstandard.h. */
#include "nonstandard.h"

#include <stdio.h>
#include <string.h>

#include "state.h"

static gw_slice_t request_url(gw_req_t *req)
{
    if (!req->has_query) return req->path;
    char *s = gw_arena_printf(&req->arena, "%.*s?%.*s", (int)req->path.len, req->path.base,
                              (int)req->query.len, req->query.base);
    return s ? (gw_slice_t){s, strlen(s)} : req->path;
}

bool gw_ns_rule_matches(const gw_ns_rule_t *r, const gw_req_t *req, gw_slice_t url)
{
    if (!gw_cidr_list_empty(&r->ips) && !gw_cidr_list_match(&r->ips, &req->client_ip)) return false;
    if (r->url) return gw_slice_eq(req->path, r->url);
    return r->re && gw_regex_match(r->re, url.base, url.len);
}

static gw_handler_result_t refuse(gw_req_t *req, int status, const char *hname, const char *hvalue)
{
    if (hname && hvalue)
        gw_res_add_header(req, (gw_slice_t){hname, strlen(hname)}, (gw_slice_t){hvalue, strlen(hvalue)});
    req->res.status = status;
    return GW_ERROR;
}

static gw_handler_result_t basic_auth(const gw_nonstandard_t *ns, const gw_ns_rule_t *r, gw_req_t *req)
{
    int64_t now = gw_policy_clock();
    uint32_t retry;
    if (r->brute_protect && gw_brute_locked(&req->client_ip, now, &retry)) {
        char *v = gw_arena_printf(&req->arena, "%u", retry);
        return refuse(req, 429, "retry-after", v);
    }
    const gw_header_t *h = gw_req_header(req, "authorization");
    gw_slice_t authz = h ? h->value : (gw_slice_t){NULL, 0};
    const char *user = NULL;
    gw_userdb_t none = {0};
    gw_auth_result_t res =
        gw_basic_auth_check(ns->users ? ns->users : &none, authz, (const char *const *)r->user_list,
                            r->num_user_list, &user, now);
    if (res == GW_AUTH_OK) {
        req->remote_user = user;
        return GW_CONTINUE;
    }
    if (res == GW_AUTH_FAILED && r->brute_protect) gw_brute_fail(&req->client_ip, now);
    return refuse(req, 401, "www-authenticate", r->challenge);
}

static gw_handler_result_t redirect(const gw_ns_rule_t *r, gw_req_t *req, gw_slice_t url)
{
    const char *loc = r->location;
    if (r->re) {
        size_t cap = url.len * 2 + strlen(r->location) + 64;
        char *buf = gw_arena_alloc(&req->arena, cap + 1);
        size_t outlen = cap;
        if (buf && gw_regex_replace(r->re, url.base, url.len, r->location, buf, &outlen) == 1) {
            buf[outlen] = '\0';
            loc = buf;
        }
    }
    gw_res_add_header(req, GW_SLICE_LIT("location"), (gw_slice_t){loc, strlen(loc)});
    gw_send_inline(req, r->scode, NULL, "", 0);
    return GW_DONE;
}

gw_handler_result_t gw_nonstandard_run(const gw_nonstandard_t *ns, gw_req_t *req)
{
    gw_slice_t url = request_url(req);
    for (size_t i = 0; i < ns->count; i++) {
        const gw_ns_rule_t *r = &ns->rules[i];
        if (!gw_ns_rule_matches(r, req, url)) continue;
        if (r->scode == 401) return basic_auth(ns, r, req);
        if (r->location && r->scode >= 300 && r->scode < 400) return redirect(r, req, url);
        req->res.status = r->scode;
        return GW_ERROR;
    }
    return GW_CONTINUE;
}
