/* RFC 9111 rules as pure functions. See cache_policy.h. */
#include "cache_policy.h"

#include <strings.h>

#define DELTA_MAX 2147483648LL /* RFC 9111 §1.2.2: larger values are sent as 2^31 */

void gw_cc_init(gw_cc_t *cc)
{
    *cc = (gw_cc_t){0, -1, -1, -1, -1, -1, -1, {NULL, 0}, {NULL, 0}};
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads delta-seconds; false when `v` is not all digits (or empty). */
static bool delta_seconds(gw_slice_t v, int64_t *out)
{
    if (!v.len) return false;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9') return false;
        if (n < DELTA_MAX) n = n * 10 + (v.base[i] - '0');
    }
    *out = n > DELTA_MAX ? DELTA_MAX : n;
    return true;
}

/* Stores a delta-seconds directive: the smallest of duplicates wins. */
static void set_delta(gw_cc_t *cc, int64_t *slot, gw_slice_t v, bool has_value, bool invalid_is_zero)
{
    int64_t n;
    if (!has_value || !delta_seconds(v, &n)) {
        cc->flags |= GW_CC_INVALID;
        if (!invalid_is_zero) return;
        n = 0;
    }
    if (*slot < 0 || n < *slot) *slot = n;
}

void gw_cc_apply(gw_cc_t *cc, gw_slice_t name, gw_slice_t v, bool has_value)
{
    static const struct {
        const char *name;
        unsigned flag;
    } flags[] = {
        {"no-store", GW_CC_NO_STORE},          {"public", GW_CC_PUBLIC},
        {"must-revalidate", GW_CC_MUST_REVALIDATE}, {"proxy-revalidate", GW_CC_PROXY_REVALIDATE},
        {"only-if-cached", GW_CC_ONLY_IF_CACHED}, {"no-transform", GW_CC_NO_TRANSFORM},
        {"must-understand", GW_CC_MUST_UNDERSTAND}, {"immutable", GW_CC_IMMUTABLE},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (gw_slice_ieq(name, flags[i].name)) {
            cc->flags |= flags[i].flag;
            return;
        }
    if (gw_slice_ieq(name, "no-cache")) {
        if (has_value && v.len) {
            cc->flags |= GW_CC_NO_CACHE_FIELDS;
            cc->fields_no_cache = v;
        } else {
            cc->flags |= GW_CC_NO_CACHE;
        }
    } else if (gw_slice_ieq(name, "private")) {
        if (has_value && v.len) {
            cc->flags |= GW_CC_PRIVATE_FIELDS;
            cc->fields_private = v;
        } else {
            cc->flags |= GW_CC_PRIVATE;
        }
    } else if (gw_slice_ieq(name, "max-age")) {
        set_delta(cc, &cc->max_age, v, has_value, true);
    } else if (gw_slice_ieq(name, "s-maxage")) {
        set_delta(cc, &cc->s_maxage, v, has_value, true);
    } else if (gw_slice_ieq(name, "max-stale")) {
        if (!has_value) cc->flags |= GW_CC_MAX_STALE_ANY;
        else set_delta(cc, &cc->max_stale, v, true, false);
    } else if (gw_slice_ieq(name, "min-fresh")) {
        set_delta(cc, &cc->min_fresh, v, has_value, false);
    } else if (gw_slice_ieq(name, "stale-while-revalidate")) {
        set_delta(cc, &cc->stale_while_revalidate, v, has_value, false);
    } else if (gw_slice_ieq(name, "stale-if-error")) {
        set_delta(cc, &cc->stale_if_error, v, has_value, false);
    }
}

void gw_cc_parse(gw_cc_t *cc, gw_slice_t value)
{
    const char *p = value.base, *end = value.base + value.len;
    while (p < end) {
        while (p < end && (is_ws(*p) || *p == ',')) p++;
        const char *n = p;
        while (p < end && *p != '=' && *p != ',' && !is_ws(*p)) p++;
        gw_slice_t name = {n, (size_t)(p - n)};
        while (p < end && is_ws(*p)) p++;
        gw_slice_t v = {p, 0};
        bool has_value = p < end && *p == '=';
        if (has_value) {
            p++;
            while (p < end && is_ws(*p)) p++;
            if (p < end && *p == '"') {
                const char *s = ++p;
                while (p < end && *p != '"') p += (*p == '\\' && p + 1 < end) ? 2 : 1;
                v = (gw_slice_t){s, (size_t)(p - s)};
                if (p < end) p++;
            } else {
                const char *s = p;
                while (p < end && *p != ',' && !is_ws(*p)) p++;
                v = (gw_slice_t){s, (size_t)(p - s)};
            }
        }
        if (name.len) gw_cc_apply(cc, name, v, has_value);
        while (p < end && *p != ',') p++; /* junk after a value: skip to the next element */
    }
}

bool gw_cc_list_has(gw_slice_t list, gw_slice_t name)
{
    const char *p = list.base, *end = list.base + list.len;
    while (p < end) {
        while (p < end && (is_ws(*p) || *p == ',')) p++;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && is_ws(e[-1])) e--;
        if ((size_t)(e - s) == name.len && name.len && strncasecmp(s, name.base, name.len) == 0) return true;
    }
    return false;
}

bool gw_cache_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308: case 404: case 405: case 410:
    case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* Final status codes whose semantics this cache knows (must-understand, §5.2.2.3). */
static bool status_understood(int s)
{
    switch (s) {
    case 200: case 201: case 202: case 203: case 204: case 205: case 300: case 301: case 302: case 303:
    case 307: case 308: case 400: case 401: case 403: case 404: case 405: case 406: case 409: case 410:
    case 411: case 412: case 413: case 414: case 415: case 421: case 422: case 429: case 451: case 500:
    case 501: case 502: case 503: case 504:
        return true;
    default:
        return false;
    }
}

int64_t gw_cache_lifetime(const gw_cc_t *res, const gw_cache_times_t *t, int status, bool *heuristic)
{
    if (heuristic) *heuristic = false;
    if (res->s_maxage >= 0) return res->s_maxage;
    if (res->max_age >= 0) return res->max_age;
    int64_t date = t->date >= 0 ? t->date : t->response_time;
    if (t->expires == INT64_MIN) return 0; /* an invalid Expires means "already expired" (§5.3) */
    if (t->expires >= 0) return t->expires > date ? t->expires - date : 0;
    if (!gw_cache_status_heuristic(status) && !(res->flags & GW_CC_PUBLIC)) return 0;
    if (heuristic) *heuristic = true;
    if (t->last_modified >= 0 && date > t->last_modified) {
        int64_t h = (date - t->last_modified) * GW_CACHE_HEURISTIC_PERCENT / 100;
        return h > GW_CACHE_HEURISTIC_MAX ? GW_CACHE_HEURISTIC_MAX : h;
    }
    if (res->flags & GW_CC_PUBLIC) return GW_CACHE_PUBLIC_DEFAULT;
    if (heuristic) *heuristic = false;
    return 0;
}

int64_t gw_cache_initial_age(const gw_cache_times_t *t)
{
    int64_t date = t->date >= 0 ? t->date : t->response_time;
    int64_t apparent = t->response_time > date ? t->response_time - date : 0;
    int64_t delay = t->response_time > t->request_time ? t->response_time - t->request_time : 0;
    int64_t corrected = (t->age > 0 ? t->age : 0) + delay;
    return apparent > corrected ? apparent : corrected;
}

gw_cache_store_verdict_t gw_cache_storable(const gw_cc_t *req, const gw_cc_t *res, const gw_cache_store_in_t *in)
{
    if (!in->get) return GW_STORE_NO_METHOD;
    int s = in->status;
    if (s < 200 || s == 206 || s == 304 || s > 599) return GW_STORE_NO_STATUS;
    bool understood = status_understood(s);
    if ((res->flags & GW_CC_MUST_UNDERSTAND) && !understood) return GW_STORE_NO_STATUS;
    if (req->flags & GW_CC_NO_STORE) return GW_STORE_NO_STORE;
    if ((res->flags & GW_CC_NO_STORE) && !((res->flags & GW_CC_MUST_UNDERSTAND) && understood))
        return GW_STORE_NO_STORE;
    if (res->flags & GW_CC_PRIVATE) return GW_STORE_PRIVATE;
    if (in->authorization && !(res->flags & (GW_CC_PUBLIC | GW_CC_MUST_REVALIDATE)) && res->s_maxage < 0)
        return GW_STORE_AUTH;
    if (in->vary_star) return GW_STORE_VARY_STAR;
    bool explicit_ok = (res->flags & GW_CC_PUBLIC) || res->max_age >= 0 || res->s_maxage >= 0 || in->has_expires;
    if (!explicit_ok && !gw_cache_status_heuristic(s)) return GW_STORE_NO_FRESHNESS;
    if (!understood && !explicit_ok) return GW_STORE_NO_STATUS;
    return GW_STORE_OK;
}

gw_cache_use_t gw_cache_use(const gw_cc_t *req, const gw_cache_stored_t *s)
{
    if ((req->flags & GW_CC_NO_CACHE) || (s->res_flags & GW_CC_NO_CACHE)) return GW_USE_VALIDATE;
    if (req->max_age >= 0 && (s->age > req->max_age || req->max_age == 0)) return GW_USE_VALIDATE;
    int64_t left = s->lifetime - s->age;
    if (req->min_fresh >= 0 && left < req->min_fresh) return GW_USE_VALIDATE;
    if (left > 0) return GW_USE_FRESH;
    if (s->res_flags & (GW_CC_MUST_REVALIDATE | GW_CC_PROXY_REVALIDATE)) return GW_USE_VALIDATE;
    if ((req->flags & GW_CC_MAX_STALE_ANY) || (req->max_stale >= 0 && -left <= req->max_stale))
        return GW_USE_STALE_OK;
    return GW_USE_VALIDATE;
}

bool gw_cache_stale_allowed(int64_t window, int64_t staleness, unsigned res_flags)
{
    if (res_flags & (GW_CC_MUST_REVALIDATE | GW_CC_PROXY_REVALIDATE | GW_CC_NO_CACHE)) return false;
    return window >= 0 && staleness <= window;
}
