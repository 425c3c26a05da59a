/*
 * nonStandardCodes (Ferron 1.x): per-path status rules. The first rule that applies decides:
 *  - `users` (a list of IPs/CIDRs) restricts a rule to those clients (Ferron's targeting list);
 *  - `url` matches the normalised path exactly, `regex` matches "path?query";
 *  - 401: basic auth against the route's users (`userList` narrows them), with
 *    `WWW-Authenticate: Basic realm="<realm>", charset="UTF-8"`; valid credentials let the request
 *    go on (req->remote_user is set); brute-force lockout -> 429 unless disableBruteProtection;
 *  - 301/302/303/307/308 with `location`: a redirect (for `regex`, $1... expand in location);
 *  - any other code: that status with its error page.
 */
#ifndef GW_POLICY_NONSTANDARD_H
#define GW_POLICY_NONSTANDARD_H

#include "acl.h"
#include "basic_auth.h"
#include "handler.h"
#include "regex.h"

typedef struct gw_ns_rule {
    int scode;
    const char *url;       /**< exact path, or NULL */
    gw_regex_t *re;        /**< or a regex on path?query */
    const char *location;  /**< for redirects */
    const char *challenge; /**< WWW-Authenticate value for 401 */
    const char **user_list;
    size_t num_user_list;
    gw_cidr_list_t ips; /**< `users`: empty = every client */
    bool brute_protect;
} gw_ns_rule_t;

typedef struct gw_nonstandard {
    gw_ns_rule_t *rules;
    size_t count;
    const gw_userdb_t *users;
} gw_nonstandard_t;

/** True when `r` applies to the request (client list, url/regex). `url` is "path[?query]". */
bool gw_ns_rule_matches(const gw_ns_rule_t *r, const gw_req_t *req, gw_slice_t url);

/** The nonStandardCodes stage. */
gw_handler_result_t gw_nonstandard_run(const gw_nonstandard_t *ns, gw_req_t *req);

#endif
