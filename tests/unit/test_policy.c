/* Unit tests for policy/: CIDR lists, X-Forwarded-For, password hashes (vectors made by htpasswd,
 * mkpasswd, the argon2 CLI and Python's hashlib), token buckets on a hand-driven clock, regex
 * replacement and rewrite rules, brute-force counters (shared by threads) and the policy built from a
 * config. */
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>

#include "acl.h"
#include "basic_auth.h"
#include "check.h"
#include "config.h"
#include "password.h"
#include "policy.h"
#include "ratelimit.h"
#include "regex.h"
#include "rewrite.h"
#include "state.h"

static struct in6_addr ip(const char *s)
{
    struct in6_addr a;
    memset(&a, 0, sizeof(a));
    CHECK(gw_ip_parse(s, strlen(s), &a));
    return a;
}

static void test_cidr(void)
{
    gw_cidr_t c;
    CHECK(gw_cidr_parse("10.0.0.0/8", &c));
    CHECK_EQ_INT(c.bits, 104);
    struct in6_addr a = ip("10.200.3.4"), b = ip("11.0.0.1");
    CHECK(gw_cidr_match(&c, &a));
    CHECK(!gw_cidr_match(&c, &b));
    struct in6_addr mapped = ip("::ffff:10.1.2.3");
    CHECK(gw_cidr_match(&c, &mapped));           /* v4-mapped normalised */
    CHECK(gw_cidr_parse("192.168.1.77/24", &c)); /* host bits are cleared */
    struct in6_addr in = ip("192.168.1.1"), out = ip("192.168.2.1");
    CHECK(gw_cidr_match(&c, &in));
    CHECK(!gw_cidr_match(&c, &out));
    CHECK(gw_cidr_parse("2001:db8::/33", &c));
    struct in6_addr v6in = ip("2001:db8:7fff::1"), v6out = ip("2001:db8:8000::1");
    CHECK(gw_cidr_match(&c, &v6in));
    CHECK(!gw_cidr_match(&c, &v6out));
    CHECK(gw_cidr_parse("0.0.0.0/0", &c));
    CHECK(gw_cidr_match(&c, &a));
    CHECK(!gw_cidr_match(&c, &v6in)); /* an IPv4 /0 covers IPv4 only */
    CHECK(gw_cidr_parse("::/0", &c));
    CHECK(gw_cidr_match(&c, &v6in));
    CHECK(!gw_cidr_parse("10.0.0.0/33", &c));
    CHECK(!gw_cidr_parse("2001:db8::/129", &c));
    CHECK(!gw_cidr_parse("10.0.0.0/", &c));
    CHECK(!gw_cidr_parse("10.0.0/8", &c));
    CHECK(!gw_cidr_parse("example.com", &c));
    CHECK(!gw_cidr_parse("10.0.0.0/-1", &c));
}

static void test_cidr_list(void)
{
    gw_chunk_pool_t pool;
    gw_arena_t arena;
    gw_chunk_pool_init(&pool, 4096, 0);
    gw_arena_init(&arena, &pool);
    const char *items[] = {"203.0.113.9", "2001:db8::1", "198.51.100.0/24", "::ffff:192.0.2.1", "fd00::/8"};
    gw_cidr_list_t l;
    size_t bad = 99;
    CHECK(gw_cidr_list_build(&l, &arena, items, 5, &bad));
    CHECK_EQ_INT(l.num_hosts, 3);
    CHECK_EQ_INT(l.num_nets, 2);
    const char *yes[] = {"203.0.113.9", "2001:db8::1", "198.51.100.200", "192.0.2.1", "fdab::5"};
    const char *no[] = {"203.0.113.8", "2001:db8::2", "198.51.101.1", "192.0.2.2", "fe80::1"};
    for (int i = 0; i < 5; i++) {
        struct in6_addr y = ip(yes[i]), n = ip(no[i]);
        CHECK(gw_cidr_list_match(&l, &y));
        CHECK(!gw_cidr_list_match(&l, &n));
    }
    const char *broken[] = {"10.0.0.1", "nonsense"};
    CHECK(!gw_cidr_list_build(&l, &arena, broken, 2, &bad));
    CHECK_EQ_INT(bad, 1);
    gw_arena_reset(&arena);
    gw_chunk_pool_clear(&pool);
}

static void test_xff(void)
{
    gw_chunk_pool_t pool;
    gw_arena_t arena;
    gw_chunk_pool_init(&pool, 4096, 0);
    gw_arena_init(&arena, &pool);
    const char *tr[] = {"127.0.0.1", "10.0.0.0/8"};
    gw_cidr_list_t trusted;
    size_t bad;
    CHECK(gw_cidr_list_build(&trusted, &arena, tr, 2, &bad));
    struct in6_addr out, want;
    gw_slice_t one[] = {GW_SLICE_LIT("198.51.100.7, 10.1.1.1 ,10.2.2.2")};
    CHECK(gw_xff_pick(one, 1, &trusted, &out));
    want = ip("198.51.100.7");
    CHECK(memcmp(&out, &want, 16) == 0);
    /* a client-forged left part is not believed: the rightmost untrusted address wins */
    gw_slice_t forged[] = {GW_SLICE_LIT("1.1.1.1, 203.0.113.5, 10.0.0.3")};
    CHECK(gw_xff_pick(forged, 1, &trusted, &out));
    want = ip("203.0.113.5");
    CHECK(memcmp(&out, &want, 16) == 0);
    /* several header lines count as one list in order */
    gw_slice_t two[] = {GW_SLICE_LIT("192.0.2.44"), GW_SLICE_LIT("10.9.9.9")};
    CHECK(gw_xff_pick(two, 2, &trusted, &out));
    want = ip("192.0.2.44");
    CHECK(memcmp(&out, &want, 16) == 0);
    gw_slice_t v6[] = {GW_SLICE_LIT("[2001:db8::5]:4711, 2001:db8::6")};
    CHECK(gw_xff_pick(v6, 1, &trusted, &out));
    want = ip("2001:db8::6");
    CHECK(memcmp(&out, &want, 16) == 0);
    gw_slice_t port[] = {GW_SLICE_LIT("192.0.2.9:1234")};
    CHECK(gw_xff_pick(port, 1, &trusted, &out));
    want = ip("192.0.2.9");
    CHECK(memcmp(&out, &want, 16) == 0);
    gw_slice_t junk[] = {GW_SLICE_LIT("unknown")};
    CHECK(!gw_xff_pick(junk, 1, &trusted, &out));
    gw_slice_t stop[] = {GW_SLICE_LIT("192.0.2.1, garbage, 10.0.0.1")}; /* stops at garbage */
    CHECK(gw_xff_pick(stop, 1, &trusted, &out));
    want = ip("10.0.0.1");
    CHECK(memcmp(&out, &want, 16) == 0);
    gw_arena_reset(&arena);
    gw_chunk_pool_clear(&pool);
}

/* Each made by the tool named, with the password shown. */
static const struct {
    const char *hash, *pw, *scheme;
} vectors[] = {
    /* htpasswd -nbB / -nb / -nbs / -nb2 / -nb5 */
    {"$2y$05$6PJjFzbng98J23xBgUWKOeyq425OFF4NmCahcAYUs7R.oOxR2gpEO", "b-secret", "bcrypt"},
    {"$apr1$T7Z8IwHW$ZynIBaC1Zg1XmXsiZhCrX0", "m-secret", "apr1-md5"},
    {"{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ=", "s-secret", "sha1"},
    {"$5$0/mKXZom7XPG.ai0$6H0jAocUmDYoG3JY2.iUBr/uIqq04i3Jw8dVtHV0Tb6", "x", "sha256-crypt"},
    /* mkpasswd -m sha512crypt / yescrypt / scrypt */
    {"$6$2om/kUV1D/puD2u5$x7vcHhMIVqa90RJK.3unfofrdCblrXO4mEOF4kpNzwJT9hhLBEuwY274xEMQnXmfj2lcH2cwKPLMgQj/"
     "NxQMA0",
     "c-secret", "sha512-crypt"},
    {"$y$j9T$vGPh.VCtaR481o//goESG0$bhrZiscqeJVx1CAbRc3vdRy.Vns5f1eMLvqaNTfMbbC", "y-secret", "yescrypt"},
    {"$7$CU..../....x7G78A3G7cgHDM827SGt./$9rN52l0gVUUFA1eUwRa3a84B/ntxDybRDvLpjLdXN.4", "k-secret",
     "scrypt-crypt"},
    /* argon2 CLI: -id -t 2 -m 12 -p 1 -e / -i -t 2 -m 10 -p 2 -e */
    {"$argon2id$v=19$m=4096,t=2,p=1$c29tZXNhbHQxMjM0$vq5HTS9upGIaStDE+KXnorr1+jvNcDbo9KRe0VPJSKY", "a-secret",
     "argon2id"},
    {"$argon2i$v=19$m=1024,t=2,p=2$b3RoZXJzYWx0OTk$hq7NlYVHIUgdZIjRG+TlFr59Cez8TXiJGbQDYGdvCeA", "i-secret",
     "argon2i"},
    /* Python hashlib: pbkdf2_hmac / scrypt, salt decoded from B64, or the salt text as is */
    {"$pbkdf2-sha256$i=10000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$mcV4mQmxQUos/DTbFi6Y3OSW08VKBc01n0taoyZBB1s",
     "p-secret", "pbkdf2-sha256"},
    {"$pbkdf2-sha256$i=5000,l=32$c2FsdHNhbHRzYWx0$ppwIyfFRlrS3k8Oh/lEfvXF78WJ1J5RxskoZcx+0XEg", "p-secret",
     "pbkdf2-sha256"},
    {"$pbkdf2-sha512$i=2000,l=64$MDEyMzQ1Njc4OWFiY2RlZg$RtCo+DRU11on/TAZkUQ3gOaTuuGJ7Hlt1uj9NvzuQjaSNkGtk/"
     "S4vCgsFK13Yvo34J6tpYZ2NWOm2vrojj2rJA",
     "p-secret", "pbkdf2-sha512"},
    {"$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$g8MhtX7rkbcyETAXO/0gfKtTsaWuwf91h99HNPH/d5c", "k-secret",
     "scrypt"},
};

static void test_passwords(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *h = vectors[i].hash, *pw = vectors[i].pw;
        CHECK_STR(gw_password_scheme(h), vectors[i].scheme);
        CHECK(gw_password_check_format(h) == NULL);
        CHECK_EQ_INT(gw_password_verify(h, pw, strlen(pw)), GW_PW_OK);
        CHECK_EQ_INT(gw_password_verify(h, "wrong", 5), GW_PW_MISMATCH);
        CHECK_EQ_INT(gw_password_verify(h, pw, strlen(pw) - 1), GW_PW_MISMATCH);
        char longer[64];
        snprintf(longer, sizeof(longer), "%sx", pw);
        CHECK_EQ_INT(gw_password_verify(h, longer, strlen(longer)), GW_PW_MISMATCH);
        if (gw_password_verify(h, pw, strlen(pw)) != GW_PW_OK) fprintf(stderr, "  vector %zu: %s\n", i, h);
    }
    CHECK_EQ_INT(gw_password_verify("$6$salt$", "x", 1) == GW_PW_OK, 0);
    CHECK_EQ_INT(gw_password_verify("secret", "secret", 6), GW_PW_BAD_HASH); /* plain text never matches */
    CHECK(gw_password_check_format("secret") != NULL);
    CHECK(gw_password_check_format("") != NULL);
    CHECK(gw_password_check_format("$pbkdf2-sha256$i=1$!!$!!") != NULL);
    CHECK(gw_password_check_format("$nonsense$abc") != NULL);
    CHECK_EQ_INT(gw_password_verify("$argon2id$v=19$m=4096,t=2,p=1$broken", "x", 1), GW_PW_BAD_HASH);
    /* a NUL inside the password cannot reach crypt(3) truncated */
    CHECK_EQ_INT(gw_password_verify(vectors[0].hash, "b-secret\0tail", 13), GW_PW_MISMATCH);
}

static void test_basic_auth(void)
{
    gw_user_t users[] = {{"alice", vectors[0].hash}, {"bob", vectors[9].hash}};
    gw_userdb_t db = {users, 2, {0}, NULL};
    gw_userdb_seal(&db);
    const char *u = NULL;
    /* alice:b-secret, bob:p-secret, alice:nope */
    gw_slice_t ok = GW_SLICE_LIT("Basic YWxpY2U6Yi1zZWNyZXQ="), bob = GW_SLICE_LIT("basic Ym9iOnAtc2VjcmV0");
    gw_slice_t bad = GW_SLICE_LIT("Basic YWxpY2U6bm9wZQ==");
    CHECK_EQ_INT(gw_basic_auth_check(&db, ok, NULL, 0, &u, 1000), GW_AUTH_OK);
    CHECK_STR(u, "alice");
    CHECK_EQ_INT(gw_basic_auth_check(&db, ok, NULL, 0, &u, 2000), GW_AUTH_OK); /* from the cache */
    CHECK_EQ_INT(gw_basic_auth_check(&db, bob, NULL, 0, &u, 1000), GW_AUTH_OK);
    CHECK_STR(u, "bob");
    CHECK_EQ_INT(gw_basic_auth_check(&db, bad, NULL, 0, &u, 1000), GW_AUTH_FAILED);
    /* an unknown user is verified against the decoy (alice's hash), whose match opens nothing */
    CHECK(db.decoy_hash == vectors[0].hash);
    CHECK_EQ_INT(gw_basic_auth_check(&db, GW_SLICE_LIT("Basic bWFsbG9yeTpiLXNlY3JldA=="), NULL, 0, &u, 1000),
                 GW_AUTH_FAILED);
    CHECK_EQ_INT(gw_basic_auth_check(&db, (gw_slice_t){NULL, 0}, NULL, 0, &u, 1000), GW_AUTH_MISSING);
    CHECK_EQ_INT(gw_basic_auth_check(&db, GW_SLICE_LIT("Bearer abc"), NULL, 0, &u, 1000), GW_AUTH_MISSING);
    CHECK_EQ_INT(gw_basic_auth_check(&db, GW_SLICE_LIT("Basic !!!"), NULL, 0, &u, 1000), GW_AUTH_FAILED);
    const char *only_bob[] = {"bob"};
    CHECK_EQ_INT(gw_basic_auth_check(&db, ok, only_bob, 1, &u, 3000),
                 GW_AUTH_FAILED); /* cached, not listed */
    CHECK_EQ_INT(gw_basic_auth_check(&db, bob, only_bob, 1, &u, 3000), GW_AUTH_OK);
    /* another user set with the same header is not served from the first set's cache */
    gw_user_t other[] = {{"alice", vectors[4].hash}};
    gw_userdb_t db2 = {other, 1, {0}, NULL};
    gw_userdb_seal(&db2);
    CHECK_EQ_INT(gw_basic_auth_check(&db2, ok, NULL, 0, &u, 3000), GW_AUTH_FAILED);
}

static void test_brute(void)
{
    struct in6_addr a = ip("192.0.2.50"), b = ip("192.0.2.51");
    uint32_t retry = 0;
    int64_t t0 = 10000000;
    for (int i = 0; i < GW_BRUTE_MAX_FAILURES; i++) {
        CHECK(!gw_brute_locked(&a, t0 + i, &retry));
        gw_brute_fail(&a, t0 + i);
    }
    CHECK(gw_brute_locked(&a, t0 + 20, &retry));
    CHECK_EQ_INT(retry, 300);
    CHECK(!gw_brute_locked(&b, t0 + 20, &retry));
    CHECK(gw_brute_locked(&a, t0 + 299000, &retry));
    CHECK_EQ_INT(retry, 1);
    CHECK(!gw_brute_locked(&a, t0 + GW_BRUTE_WINDOW_MS, &retry));
}

typedef struct fail_args {
    struct in6_addr ip;
    int64_t t;
    int n;
} fail_args_t;

static void *fail_in_thread(void *p)
{
    const fail_args_t *a = p;
    for (int i = 0; i < a->n; i++)
        gw_brute_fail(&a->ip, a->t + i);
    return NULL;
}

/* Workers are threads: failures counted on one lock the client out on every other. */
static void test_brute_shared(void)
{
    struct in6_addr a = ip("2001:db8::60");
    int64_t t0 = 20000000;
    uint32_t retry = 0;
    fail_args_t args = {a, t0, GW_BRUTE_MAX_FAILURES - 1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, fail_in_thread, &args) == 0);
    pthread_join(th, NULL);
    CHECK(!gw_brute_locked(&a, t0 + 100, &retry));
    gw_brute_fail(&a, t0 + 100);
    CHECK(gw_brute_locked(&a, t0 + 101, &retry));
    CHECK_EQ_INT(retry, 300);
    /* once the window is over, a new failure starts a new window of its own */
    gw_brute_fail(&a, t0 + GW_BRUTE_WINDOW_MS);
    CHECK(!gw_brute_locked(&a, t0 + GW_BRUTE_WINDOW_MS + 1, &retry));
    /* many failing addresses: the table stays bounded and keeps answering */
    for (int i = 0; i < 3 * GW_BRUTE_DEFAULT_CLIENTS; i++) {
        struct in6_addr x = a;
        memcpy(&x.s6_addr[12], &i, sizeof(i));
        gw_brute_fail(&x, t0 + 1000);
    }
    struct in6_addr fresh = ip("198.51.100.77");
    CHECK(!gw_brute_locked(&fresh, t0 + 2000, &retry));
}

static void test_bucket(void)
{
    /* 10 requests per second, burst 20: 20 at once, then one every 100 ms */
    double tokens = 20, rate = 10.0 / 1000;
    int64_t last = 0;
    uint32_t retry = 0;
    int allowed = 0;
    for (int i = 0; i < 25; i++)
        allowed += gw_bucket_take(&tokens, &last, rate, 20, 0, &retry);
    CHECK_EQ_INT(allowed, 20);
    CHECK_EQ_INT(retry, 100);
    CHECK(!gw_bucket_take(&tokens, &last, rate, 20, 50, &retry));
    CHECK_EQ_INT(retry, 50);
    CHECK(gw_bucket_take(&tokens, &last, rate, 20, 100, &retry));
    CHECK(!gw_bucket_take(&tokens, &last, rate, 20, 100, &retry));
    /* one second later: 10 more */
    allowed = 0;
    for (int i = 0; i < 15; i++)
        allowed += gw_bucket_take(&tokens, &last, rate, 20, 1100, &retry);
    CHECK_EQ_INT(allowed, 10);
    /* a long idle time refills only up to the burst */
    allowed = 0;
    for (int i = 0; i < 30; i++)
        allowed += gw_bucket_take(&tokens, &last, rate, 20, 100000, &retry);
    CHECK_EQ_INT(allowed, 20);
    /* a clock going backwards grants nothing */
    CHECK(!gw_bucket_take(&tokens, &last, rate, 20, 50000, &retry));
    /* steady state over a simulated minute: exactly rate x time + burst */
    tokens = 5;
    last = 0;
    allowed = 0;
    for (int64_t t = 0; t < 60000; t += 7)
        allowed += gw_bucket_take(&tokens, &last, 2.0 / 1000, 5, t, &retry);
    CHECK(allowed >= 5 + 119 && allowed <= 5 + 120);
}

static void test_ratelimit_table(void)
{
    gw_ratelimit_t rl = {.zone = 42, .requests = 2, .per_ms = 1000, .burst = 3, .key = GW_RL_KEY_IP};
    uint32_t retry = 0;
    int64_t t = 5000000;
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += gw_ratelimit_take(&rl, "client-a", 8, t, &retry);
    CHECK_EQ_INT(ok, 3);
    CHECK_EQ_INT(retry, 1);
    CHECK(gw_ratelimit_take(&rl, "client-b", 8, t, &retry)); /* own bucket */
    gw_ratelimit_t other = rl;
    other.zone = 43;
    CHECK(gw_ratelimit_take(&other, "client-a", 8, t, &retry)); /* another zone */
    CHECK(gw_ratelimit_take(&rl, "client-a", 8, t + 500, &retry));
    CHECK(!gw_ratelimit_take(&rl, "client-a", 8, t + 500, &retry));
    /* a slow rule (1 per 3 s): Retry-After is the wait rounded up to whole seconds */
    gw_ratelimit_t slow = {.zone = 44, .requests = 1, .per_ms = 3000, .burst = 1, .key = GW_RL_KEY_IP};
    CHECK(gw_ratelimit_take(&slow, "client-a", 8, t, &retry));
    CHECK(!gw_ratelimit_take(&slow, "client-a", 8, t, &retry));
    CHECK_EQ_INT(retry, 3);
    CHECK(!gw_ratelimit_take(&slow, "client-a", 8, t + 2500, &retry));
    CHECK_EQ_INT(retry, 1);
    CHECK(gw_ratelimit_take(&slow, "client-a", 8, t + 3000, &retry));
    /* many keys: the table stays bounded and answers */
    for (int i = 0; i < 100000; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "k%d", i);
        gw_ratelimit_take(&rl, k, (size_t)n, t, &retry);
    }
    uint32_t ms;
    CHECK(gw_duration_parse("1s", &ms) && ms == 1000);
    CHECK(gw_duration_parse("250ms", &ms) && ms == 250);
    CHECK(gw_duration_parse("1.5s", &ms) && ms == 1500);
    CHECK(gw_duration_parse("2m", &ms) && ms == 120000);
    CHECK(gw_duration_parse("1h", &ms) && ms == 3600000);
    CHECK(gw_duration_parse("300", &ms) && ms == 300);
    CHECK(!gw_duration_parse("soon", &ms));
    CHECK(!gw_duration_parse("1d", &ms));
    CHECK(!gw_duration_parse("0s", &ms));
}

static const char *replace(const char *pat, const char *s, const char *repl)
{
    static char out[256];
    char err[128];
    gw_regex_t *re = gw_regex_compile(pat, err, sizeof(err));
    if (!re) return "(compile error)";
    size_t n = sizeof(out) - 1;
    int rc = gw_regex_replace(re, s, strlen(s), repl, out, &n);
    gw_regex_free(re);
    if (rc == 0) return "(no match)";
    if (rc < 0) return "(error)";
    out[n] = '\0';
    return out;
}

static void test_regex(void)
{
    CHECK_STR(replace("^/old/(.*)$", "/old/a/b?x=1", "/new/$1"), "/new/a/b?x=1");
    CHECK_STR(replace("^/user/([0-9]+)", "/user/42/profile", "/u?id=${1}"), "/u?id=42/profile");
    CHECK_STR(replace("(?<name>[a-z]+)\\.php", "/x/page.php?q", "/idx?p=${name}"), "/x//idx?p=page?q");
    CHECK_STR(replace("b", "abcb", "X"), "aXcb"); /* the first match only */
    CHECK_STR(replace("^/a$", "/b", "/c"), "(no match)");
    CHECK_STR(replace("^/(.*)", "/p", "$$1-$1"), "$1-p");
    char err[128];
    CHECK(gw_regex_compile("([", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "offset") != NULL);
    /* an output that needs a bigger buffer reports its size */
    gw_regex_t *re = gw_regex_compile("x", err, sizeof(err));
    char small[4];
    size_t n = sizeof(small);
    CHECK_EQ_INT(gw_regex_replace(re, "x", 1, "0123456789", small, &n), -1);
    CHECK(n >= 10);
    gw_regex_free(re);
}

static void test_rewrite(void)
{
    gw_chunk_pool_t pool;
    gw_arena_t arena;
    gw_chunk_pool_init(&pool, 4096, 0);
    gw_arena_init(&arena, &pool);
    char err[128];
    gw_rewrite_rule_t rules[] = {
        {gw_regex_compile("^/blog/([0-9]+)$", err, sizeof(err)), "/post.php?id=$1", false, false, false,
         false},
        {gw_regex_compile("^/post\\.php", err, sizeof(err)), "/p", false, false, false, true},
        {gw_regex_compile("^/p", err, sizeof(err)), "/never", false, false, false, false},
        {gw_regex_compile("^/a$", err, sizeof(err)), "//x//y", false, false, true, false},
    };
    gw_rewrite_t rw = {rules, 4, false};
    gw_slice_t out;
    bool dbl = false;
    CHECK_EQ_INT(gw_rewrite_apply(&rw, -1, &arena, "/blog/7", 7, &out, &dbl), 1);
    CHECK(gw_slice_eq(out, "/p?id=7")); /* chained, stopped by `last` */
    CHECK_EQ_INT(gw_rewrite_apply(&rw, -1, &arena, "/other", 6, &out, &dbl), 0);
    CHECK_EQ_INT(gw_rewrite_apply(&rw, -1, &arena, "/a", 2, &out, &dbl), 1);
    CHECK(gw_slice_eq(out, "//x//y"));
    CHECK(dbl);
    for (size_t i = 0; i < 4; i++)
        gw_regex_free(rules[i].re);
    gw_arena_reset(&arena);
    gw_chunk_pool_clear(&pool);
}

static char errs[4096];
static char warnings[4096];

static void collect_warning(void *ctx, const char *msg)
{
    (void)ctx;
    size_t n = strlen(warnings);
    snprintf(warnings + n, sizeof(warnings) - n, "%s\n", msg);
}

static gw_config_t *load(const char *yaml)
{
    return gw_config_load_string("policy.yaml", yaml, errs, sizeof(errs), NULL, NULL);
}

static void test_config(void)
{
    gw_config_t *cfg = load("global:\n  blocklist: [\"10.0.0.0/8\"]\n  trustedProxies: [127.0.0.1]\n"
                            "  rateLimit: {requests: 5, per: 1s}\n"
                            "  nonStandardCodes:\n    - {scode: 403, url: /private}\n"
                            "  rewriteMap:\n    - {regex: \"^/x\", replacement: /y}\n");
    CHECK(cfg != NULL);
    if (cfg) {
        const char *names[8];
        size_t n = 0;
        for (size_t i = 0; i < cfg->global_route.num_handlers && n < 8; i++)
            names[n++] = cfg->global_route.handlers[i]->name;
        CHECK(n >= 7);
        if (n >= 7) {
            CHECK_STR(names[0], "admin"); /* health/readiness endpoints come before any policy */
            CHECK_STR(names[1], "client-address");
            CHECK_STR(names[2], "access-list");
            CHECK_STR(names[3], "rewriteMap");
            CHECK_STR(names[4], "nonStandardCodes");
            CHECK_STR(names[5], "rateLimit");
        }
        gw_config_free(cfg);
    }
    /* located errors, each reported once although built into several routes */
    cfg = load(
        "global:\n  blocklist: [\"10.0.0.0/40\"]\n  users: [{name: a, pass: plain}]\n"
        "  rewriteMap: [{regex: \"([\", replacement: x}]\n"
        "  nonStandardCodes: [{scode: 302, url: /x}]\n  rateLimit: {requests: 1, per: soon, key: cookie}\n"
        "hosts:\n  - domain: a.test\n  - domain: b.test\n    locations: [{path: /x}]\n");
    CHECK(cfg == NULL);
    CHECK(strstr(errs, "policy.yaml:2:15: blocklist: '10.0.0.0/40' is not an IP address or CIDR prefix") !=
          NULL);
    CHECK(strstr(errs, "users:") == NULL); /* a user that cannot log in is a warning, not an error */
    CHECK(strstr(errs, "rewriteMap: bad regex at offset") != NULL);
    CHECK(strstr(errs, "nonStandardCodes: a 302 rule needs a 'location'") != NULL);
    CHECK(strstr(errs, "rateLimit: per: expected a duration") != NULL);
    CHECK(strstr(errs, "rateLimit: key: expected ip, user or header:<name>") != NULL);
    const char *first = strstr(errs, "blocklist:");
    CHECK(first && !strstr(first + 1, "blocklist:"));
    /* Ferron's documentation writes `user:` and a placeholder hash: it loads, with one warning each */
    warnings[0] = '\0';
    cfg = gw_config_load_string(
        "policy.yaml",
        "global:\n  users:\n    - {user: admin, pass: x}\n    - {name: joe, pass: hunter2}\n"
        "hosts:\n  - domain: a.test\n  - domain: b.test\n",
        errs, sizeof(errs), collect_warning, NULL);
    CHECK(cfg != NULL);
    CHECK(strstr(warnings, "policy.yaml:3:7: users: an entry needs 'name' and 'pass' strings: ignored\n") !=
          NULL);
    CHECK(strstr(warnings, "policy.yaml:4:25: users: user 'joe' can never log in: not a password hash") !=
          NULL);
    const char *w = strstr(warnings, "joe");
    CHECK(w && !strstr(w + 1, "joe")); /* once, although three routes hold it */
    gw_config_free(cfg);
    cfg = load("hosts:\n  - domain: a.test\n    htpasswdFile: /nonexistent/htpasswd\n");
    CHECK(cfg == NULL);
    CHECK(strstr(errs, "htpasswdFile: cannot open '/nonexistent/htpasswd'") != NULL);
}

static int64_t fake_now;
static int64_t fake_clock(void)
{
    return fake_now;
}

int main(void)
{
    gw_policy_clock = fake_clock;
    test_cidr();
    test_cidr_list();
    test_xff();
    test_passwords();
    test_basic_auth();
    test_brute();
    test_brute_shared();
    test_bucket();
    test_ratelimit_table();
    test_regex();
    test_rewrite();
    test_config();
    gw_policy_thread_release();
    return check_report("test_policy");
}
