/* Unit tests: the Cache-Control parser, freshness, storability and use decisions (RFC 9111), and
 * the shared store's replacement, eviction and collapsing bookkeeping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_policy.h"
#include "cache_store.h"
#include "cache_targeted.h"
#include "check.h"

static gw_cc_t cc_of(const char *s)
{
    gw_cc_t cc;
    gw_cc_init(&cc);
    gw_cc_parse(&cc, (gw_slice_t){s, strlen(s)});
    return cc;
}

static void test_parse(void)
{
    gw_cc_t cc = cc_of("max-age=60, s-maxage=30, public, must-revalidate");
    CHECK_EQ_INT(cc.max_age, 60);
    CHECK_EQ_INT(cc.s_maxage, 30);
    CHECK(cc.flags & GW_CC_PUBLIC);
    CHECK(cc.flags & GW_CC_MUST_REVALIDATE);
    CHECK(!(cc.flags & GW_CC_NO_STORE));

    cc = cc_of("NO-STORE,Max-Age = 5");
    CHECK(cc.flags & GW_CC_NO_STORE);
    CHECK_EQ_INT(cc.max_age, 5);

    cc = cc_of("max-age=\"120\"");
    CHECK_EQ_INT(cc.max_age, 120);

    cc = cc_of("max-age=abc");
    CHECK_EQ_INT(cc.max_age, 0); /* invalid: stale */
    CHECK(cc.flags & GW_CC_INVALID);

    cc = cc_of("max-age=100, max-age=10");
    CHECK_EQ_INT(cc.max_age, 10); /* duplicates: the most conservative */

    cc = cc_of("max-age=99999999999999999999");
    CHECK_EQ_INT(cc.max_age, 2147483648LL);

    cc = cc_of("private=\"Set-Cookie, X-User\", no-cache=\"X-A\"");
    CHECK(!(cc.flags & GW_CC_PRIVATE));
    CHECK(cc.flags & GW_CC_PRIVATE_FIELDS);
    CHECK(gw_cc_list_has(cc.fields_private, GW_SLICE_LIT("x-user")));
    CHECK(gw_cc_list_has(cc.fields_private, GW_SLICE_LIT("set-cookie")));
    CHECK(!gw_cc_list_has(cc.fields_private, GW_SLICE_LIT("x-a")));
    CHECK(cc.flags & GW_CC_NO_CACHE_FIELDS);
    CHECK(!(cc.flags & GW_CC_NO_CACHE));

    cc = cc_of("no-cache, private");
    CHECK(cc.flags & GW_CC_NO_CACHE);
    CHECK(cc.flags & GW_CC_PRIVATE);

    cc = cc_of("max-stale, min-fresh=7, only-if-cached");
    CHECK(cc.flags & GW_CC_MAX_STALE_ANY);
    CHECK_EQ_INT(cc.min_fresh, 7);
    CHECK(cc.flags & GW_CC_ONLY_IF_CACHED);
    cc = cc_of("max-stale=30");
    CHECK_EQ_INT(cc.max_stale, 30);
    CHECK(!(cc.flags & GW_CC_MAX_STALE_ANY));

    cc = cc_of("stale-while-revalidate=10, stale-if-error=20, foo=\"a,b\", bar");
    CHECK_EQ_INT(cc.stale_while_revalidate, 10);
    CHECK_EQ_INT(cc.stale_if_error, 20);

    cc = cc_of("");
    CHECK_EQ_INT(cc.flags, 0);
    CHECK_EQ_INT(cc.max_age, -1);
    cc = cc_of(" , ,, ");
    CHECK_EQ_INT(cc.flags, 0);

    /* two field lines combine */
    gw_cc_init(&cc);
    gw_cc_parse(&cc, GW_SLICE_LIT("public"));
    gw_cc_parse(&cc, GW_SLICE_LIT("max-age=3"));
    CHECK(cc.flags & GW_CC_PUBLIC);
    CHECK_EQ_INT(cc.max_age, 3);
}

static void test_lifetime(void)
{
    gw_cache_times_t t = {1000, -1, -1, -1, 1000, 1000};
    bool h;
    gw_cc_t cc = cc_of("max-age=60, s-maxage=10");
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 10);
    CHECK(!h);
    cc = cc_of("max-age=60");
    t.expires = 5000;
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 60);
    cc = cc_of("");
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 4000); /* Expires - Date */
    t.expires = 500;
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 0);
    t.expires = INT64_MIN; /* invalid Expires */
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 0);
    t.expires = -1;
    t.last_modified = 0;
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 100); /* 10% of Date - Last-Modified */
    CHECK(h);
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 302, &h), 0); /* not heuristically cacheable */
    CHECK(!h);
    t.date = 100000000;
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 86400); /* capped */
    t.date = 1000;
    t.last_modified = -1;
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 0);
    cc = cc_of("public");
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 302, &h), GW_CACHE_PUBLIC_DEFAULT);
    /* Date absent: response_time stands in */
    t = (gw_cache_times_t){-1, 1100, -1, -1, 1000, 1000};
    cc = cc_of("");
    CHECK_EQ_INT(gw_cache_lifetime(&cc, &t, 200, &h), 100);
}

static void test_age(void)
{
    gw_cache_times_t t = {1000, -1, -1, -1, 1000, 1000};
    CHECK_EQ_INT(gw_cache_initial_age(&t), 0);
    t.age = 30;
    CHECK_EQ_INT(gw_cache_initial_age(&t), 30);
    t.request_time = 995; /* response delay adds */
    CHECK_EQ_INT(gw_cache_initial_age(&t), 35);
    t = (gw_cache_times_t){900, -1, -1, 10, 1000, 1000}; /* apparent age wins */
    CHECK_EQ_INT(gw_cache_initial_age(&t), 100);
    t = (gw_cache_times_t){2000, -1, -1, -1, 1000, 1000}; /* Date in the future */
    CHECK_EQ_INT(gw_cache_initial_age(&t), 0);
}

static gw_cache_store_verdict_t storable(const char *req, const char *res, int status, bool auth)
{
    gw_cc_t rq = cc_of(req), rs = cc_of(res);
    gw_cache_store_in_t in = {true, status, auth, false, false, false, false};
    return gw_cache_storable(&rq, &rs, &in);
}

static void test_storable(void)
{
    CHECK_EQ_INT(storable("", "max-age=60", 200, false), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "", 200, false), GW_STORE_OK); /* heuristically cacheable */
    CHECK_EQ_INT(storable("", "", 302, false), GW_STORE_NO_FRESHNESS);
    CHECK_EQ_INT(storable("", "max-age=60", 302, false), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "max-age=60", 206, false), GW_STORE_NO_STATUS);
    CHECK_EQ_INT(storable("", "max-age=60", 304, false), GW_STORE_NO_STATUS);
    CHECK_EQ_INT(storable("", "max-age=60", 599, false), GW_STORE_OK); /* explicit freshness: allowed */
    CHECK_EQ_INT(storable("", "max-age=60, must-understand", 599, false), GW_STORE_NO_STATUS);
    CHECK_EQ_INT(storable("", "max-age=60, must-understand, no-store", 200, false), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "max-age=60, no-store", 200, false), GW_STORE_NO_STORE);
    CHECK_EQ_INT(storable("no-store", "max-age=60", 200, false), GW_STORE_NO_STORE);
    CHECK_EQ_INT(storable("", "max-age=60, private", 200, false), GW_STORE_PRIVATE);
    CHECK_EQ_INT(storable("", "max-age=60, private=\"x\"", 200, false), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "max-age=60", 200, true), GW_STORE_AUTH);
    CHECK_EQ_INT(storable("", "max-age=60, public", 200, true), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "s-maxage=60", 200, true), GW_STORE_OK);
    CHECK_EQ_INT(storable("", "max-age=60, must-revalidate", 200, true), GW_STORE_OK);
    gw_cc_t e = cc_of(""), m = cc_of("max-age=1");
    gw_cache_store_in_t in = {false, 200, false, false, false, false, false};
    CHECK_EQ_INT(gw_cache_storable(&e, &m, &in), GW_STORE_NO_METHOD);
    in.get = true;
    in.vary_star = true;
    CHECK_EQ_INT(gw_cache_storable(&e, &m, &in), GW_STORE_VARY_STAR);
    in.vary_star = false;
    in.status = 307;
    in.has_expires = true;
    CHECK_EQ_INT(gw_cache_storable(&e, &e, &in), GW_STORE_OK);
}

static gw_cache_use_t use(const char *req, int64_t lifetime, int64_t age, const char *res)
{
    gw_cc_t rq = cc_of(req), rs = cc_of(res);
    gw_cache_stored_t s = {lifetime, age, rs.flags | (rs.s_maxage >= 0 ? GW_CC_PROXY_REVALIDATE : 0u)};
    return gw_cache_use(&rq, &s);
}

static void test_use(void)
{
    CHECK_EQ_INT(use("", 60, 10, ""), GW_USE_FRESH);
    CHECK_EQ_INT(use("", 60, 60, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("no-cache", 60, 10, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("", 60, 10, "no-cache"), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("", 60, 10, "no-cache=\"x\""), GW_USE_FRESH);
    CHECK_EQ_INT(use("max-age=5", 60, 10, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("max-age=20", 60, 10, ""), GW_USE_FRESH);
    CHECK_EQ_INT(use("max-age=0", 60, 0, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("min-fresh=40", 60, 10, ""), GW_USE_FRESH);
    CHECK_EQ_INT(use("min-fresh=51", 60, 10, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("max-stale=10", 60, 65, ""), GW_USE_STALE_OK);
    CHECK_EQ_INT(use("max-stale=10", 60, 75, ""), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("max-stale", 60, 7500, ""), GW_USE_STALE_OK);
    CHECK_EQ_INT(use("max-stale", 60, 65, "must-revalidate"), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("max-stale", 60, 65, "proxy-revalidate"), GW_USE_VALIDATE);
    CHECK_EQ_INT(use("max-stale", 60, 65, "s-maxage=60"), GW_USE_VALIDATE);
    CHECK(gw_cache_stale_allowed(30, 10, 0));
    CHECK(!gw_cache_stale_allowed(30, 40, 0));
    CHECK(!gw_cache_stale_allowed(-1, 0, 0));
    CHECK(!gw_cache_stale_allowed(30, 10, GW_CC_MUST_REVALIDATE));
}

static gw_cache_entry_t *entry(const char *key, const char *vv, size_t body)
{
    gw_header_t h[] = {{GW_SLICE_LIT("etag"), GW_SLICE_LIT("\"x\"")}};
    char *b = malloc(body ? body : 1);
    memset(b, 'b', body);
    gw_cache_entry_spec_t s = {{key, strlen(key)}, GW_SLICE_LIT("accept"), {vv, strlen(vv)}, 200, h, 1, b, body,
                               1000, 0, 60, 1000, -1, -1, -1, 0, false, 0};
    return gw_cache_entry_new(&s);
}

static bool always(const gw_cache_entry_t *e, void *ctx)
{
    return strcmp(e->vary_values.base, (const char *)ctx) == 0;
}

static int woken;

static void on_wake(gw_cache_waiter_t *w)
{
    (void)w;
    woken++;
}

static void test_store(void)
{
    gw_cache_set_limits(3, 0);
    gw_slice_t k = GW_SLICE_LIT("http://u/a");
    uint64_t h = gw_cache_hash(k);
    CHECK(gw_cache_insert(entry("http://u/a", "1", 10)));
    CHECK(gw_cache_insert(entry("http://u/a", "2", 10)));
    gw_cache_entry_t *held = gw_cache_lookup(h, k, always, "1", NULL);
    CHECK(held != NULL);
    CHECK_STR(held ? held->etag : NULL, "\"x\"");
    CHECK(gw_cache_insert(entry("http://u/a", "1", 20))); /* replaces variant 1, the old one stays readable */
    uint64_t n, bytes;
    gw_cache_stats(&n, &bytes);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(held ? held->body_len : 0, 10);
    gw_cache_entry_unref(held);
    bool any = false;
    CHECK(gw_cache_lookup(h, k, always, "3", &any) == NULL);
    CHECK(any);
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "http://u/e%d", i);
        gw_cache_insert(entry(key, "", 1));
    }
    gw_cache_stats(&n, &bytes);
    CHECK(n <= 3); /* maximumCacheEntries */
    gw_cache_invalidate(h, k);
    CHECK(gw_cache_lookup(h, k, NULL, NULL, &any) == NULL);
    CHECK(!any);
    gw_cache_set_limits(0, 1000);
    CHECK(!gw_cache_insert(entry("http://u/huge", "", 5000))); /* larger than the bound */

    /* collapsing */
    gw_cache_waiter_t w1 = {0}, w2 = {0};
    CHECK_EQ_INT(gw_cache_collapse(h, k, &w1), GW_COLLAPSE_LEAD);
    CHECK(gw_cache_fetching(h, k));
    CHECK_EQ_INT(gw_cache_collapse(h, k, &w1), GW_COLLAPSE_WAIT);
    CHECK_EQ_INT(gw_cache_collapse(h, k, &w2), GW_COLLAPSE_WAIT);
    CHECK_EQ_INT(gw_cache_collapse(h, k, NULL), GW_COLLAPSE_NONE);
    CHECK(gw_cache_waiter_cancel(h, &w2));
    CHECK(!gw_cache_waiter_cancel(h, &w2));
    w1.wake = on_wake;
    gw_cache_fetch_done(h, k);
    CHECK_EQ_INT(woken, 1);
    CHECK(!gw_cache_fetching(h, k));
    CHECK_EQ_INT(gw_cache_collapse(h, k, &w1), GW_COLLAPSE_LEAD);
    gw_cache_fetch_done(h, k);
    CHECK_EQ_INT(woken, 1);
}

/* Members of a targeted field (RFC 9213) read as a Structured Fields Dictionary (RFC 8941). */
static int targeted(const char *s, gw_cc_t *cc)
{
    gw_cc_init(cc);
    return gw_cc_parse_targeted(cc, (gw_slice_t){s, strlen(s)});
}

static void test_targeted(void)
{
    gw_cc_t cc;
    CHECK_EQ_INT(targeted("max-age=60, s-maxage=30, public", &cc), 3);
    CHECK_EQ_INT(cc.max_age, 60);
    CHECK_EQ_INT(cc.s_maxage, 30);
    CHECK(cc.flags & GW_CC_PUBLIC);

    CHECK_EQ_INT(targeted("  no-store ,\tmax-age=5;a=1;b  ", &cc), 2); /* OWS, parameters ignored */
    CHECK(cc.flags & GW_CC_NO_STORE);
    CHECK_EQ_INT(cc.max_age, 5);

    CHECK_EQ_INT(targeted("no-store=?0, must-revalidate=?1", &cc), 2); /* Booleans */
    CHECK(!(cc.flags & GW_CC_NO_STORE));
    CHECK(cc.flags & GW_CC_MUST_REVALIDATE);

    CHECK_EQ_INT(targeted("private=\"X-User\", a=(1 \"b\" c);p, b=:AQID:, c=tok/en:x, d=-1.5", &cc), 5);
    CHECK(cc.flags & GW_CC_PRIVATE_FIELDS);
    CHECK(gw_cc_list_has(cc.fields_private, GW_SLICE_LIT("x-user")));

    CHECK_EQ_INT(targeted("", &cc), 0);
    CHECK_EQ_INT(targeted("   ", &cc), 0);

    static const char *const invalid[] = {
        "max-age=60,",      /* trailing comma */
        "Max-Age=60",       /* keys are lower case */
        "max-age=60 public", /* members need commas */
        "max-age=",         /* no value */
        "private=\"x",      /* open string */
        "a=\"\\n\"",         /* only \" and \\ may be escaped */
        "a=1;;",            /* empty parameter */
        "a=(1 2",           /* open inner list */
        "a=:AQ==",          /* open byte sequence */
        "a=?2",             /* not a Boolean */
        "a=1234567890123456", /* 16 digits */
        "a=1.2345",         /* 4 decimals */
        ", a",              /* leading comma */
        "a=\x01",           /* control character */
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (targeted(invalid[i], &cc) != -1) fprintf(stderr, "accepted: %s\n", invalid[i]);
        CHECK_EQ_INT(targeted(invalid[i], &cc), -1);
    }
}

int main(void)
{
    test_parse();
    test_targeted();
    test_lifetime();
    test_age();
    test_storable();
    test_use();
    test_store();
    return check_report("cache_policy");
}
