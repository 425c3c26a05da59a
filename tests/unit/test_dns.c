/*
 * The resolver contract against a fake DNS server served from the test's own loop (a UDP socket on
 * 127.0.0.1, ephemeral port): literal addresses, answers and their order, the cache (hits, TTL
 * expiry, clamping, LRU bound), single flight, negative caching, resolver timeouts, stale answers,
 * cancel, and freeing with queries in flight (leaks are LSan's job).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "dns.h"
#include "errors.h"
#include "loop.h"

/* ---- the fake server ---- */

enum { ANSWER, NXDOMAIN, SILENT };

typedef struct fake_name {
    const char *name;
    int mode;
    uint32_t ttl;
    const char *a;    /* NULL: no A record */
    const char *aaaa; /* NULL: no AAAA record */
    int a_queries;    /* A queries received */
} fake_name_t;

static fake_name_t names[] = {
    {"ok.test", ANSWER, 1, "10.1.1.1", "2001:db8::1", 0},
    {"v4.test", ANSWER, 1, "10.2.2.2", NULL, 0},
    {"flip.test", ANSWER, 1, "10.3.3.1", NULL, 0},
    {"zero.test", ANSWER, 0, "10.5.5.5", NULL, 0},
    {"cancel.test", ANSWER, 60, "10.4.4.4", NULL, 0},
    {"cancel2.test", ANSWER, 60, "10.4.4.5", NULL, 0},
    {"lru1.test", ANSWER, 60, "10.6.6.1", NULL, 0},
    {"lru2.test", ANSWER, 60, "10.6.6.2", NULL, 0},
    {"lru3.test", ANSWER, 60, "10.6.6.3", NULL, 0},
    {"stale.test", ANSWER, 60, "10.7.7.7", "2001:db8::7", 0},
    {"nx.test", NXDOMAIN, 0, NULL, NULL, 0},
    {"slow.test", SILENT, 0, NULL, NULL, 0},
};
#define NUM_NAMES (sizeof(names) / sizeof(names[0]))

typedef struct fake_server {
    gw_io_t io;
    int fd;
    uint16_t port;
    bool mute; /* answer nothing at all */
    int queries;
} fake_server_t;

static fake_name_t *fake_find(const char *name)
{
    for (size_t i = 0; i < NUM_NAMES; i++)
        if (strcasecmp(names[i].name, name) == 0) return &names[i];
    return NULL;
}

static int a_queries(const char *name)
{
    return fake_find(name)->a_queries;
}

/* Reads the question's name as dotted text; returns the offset after QTYPE/QCLASS or 0. */
static size_t parse_question(const uint8_t *p, size_t len, char *name, size_t cap, uint16_t *qtype)
{
    size_t off = 12, out = 0;
    while (off < len && p[off]) {
        size_t l = p[off++];
        if (l > 63 || off + l > len || out + l + 2 > cap) return 0;
        if (out) name[out++] = '.';
        memcpy(name + out, p + off, l);
        out += l;
        off += l;
    }
    name[out] = '\0';
    if (off + 5 > len) return 0;
    *qtype = (uint16_t)(p[off + 1] << 8 | p[off + 2]);
    return off + 5;
}

static size_t put_answer(uint8_t *r, size_t off, uint16_t type, uint32_t ttl, const void *rdata, uint16_t rdlen)
{
    uint8_t rr[12] = {0xc0, 0x0c, (uint8_t)(type >> 8), (uint8_t)type, 0, 1, (uint8_t)(ttl >> 24),
                      (uint8_t)(ttl >> 16), (uint8_t)(ttl >> 8), (uint8_t)ttl, 0, (uint8_t)rdlen};
    memcpy(r + off, rr, sizeof(rr));
    memcpy(r + off + sizeof(rr), rdata, rdlen);
    return off + sizeof(rr) + rdlen;
}

/* Builds the response to one query; 0 when the server stays silent. */
static size_t fake_answer(fake_server_t *s, const uint8_t *q, size_t len, uint8_t *r)
{
    char name[256];
    uint16_t qtype;
    size_t qend = len >= 12 ? parse_question(q, len, name, sizeof(name), &qtype) : 0;
    if (!qend) return 0;
    s->queries++;
    fake_name_t *fn = fake_find(name);
    if (fn && qtype == 1) fn->a_queries++;
    if (s->mute || (fn && fn->mode == SILENT)) return 0;
    memcpy(r, q, qend);
    r[2] = (uint8_t)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
    r[3] = (uint8_t)(0x80 | (!fn || fn->mode == NXDOMAIN ? 3 : 0)); /* RA, rcode */
    memset(r + 4, 0, 8);
    r[5] = 1; /* one question, answers counted below, no authority or additional records */
    size_t off = qend;
    uint8_t addr[16];
    if (fn && fn->mode == ANSWER && qtype == 1 && fn->a && inet_pton(AF_INET, fn->a, addr) == 1) {
        off = put_answer(r, off, 1, fn->ttl, addr, 4);
        r[7] = 1;
    } else if (fn && fn->mode == ANSWER && qtype == 28 && fn->aaaa && inet_pton(AF_INET6, fn->aaaa, addr) == 1) {
        off = put_answer(r, off, 28, fn->ttl, addr, 16);
        r[7] = 1;
    }
    return off;
}

static void on_server_readable(gw_io_t *io, uint32_t events)
{
    (void)events;
    fake_server_t *s = gw_container_of(io, fake_server_t, io);
    uint8_t q[512], r[600];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    ssize_t n;
    while ((n = recvfrom(s->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen)) > 0) {
        size_t rlen = fake_answer(s, q, (size_t)n, r);
        if (rlen) sendto(s->fd, r, rlen, 0, (struct sockaddr *)&from, fromlen);
        fromlen = sizeof(from);
    }
}

static bool fake_start(gw_loop_t *loop, fake_server_t *s)
{
    memset(s, 0, sizeof(*s));
    s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&sa, &len) != 0)
        return false;
    s->port = ntohs(sa.sin_port);
    return gw_io_start(loop, &s->io, s->fd, EPOLLIN, on_server_readable) == 0;
}

/* ---- helpers ---- */

typedef struct result {
    gw_dns_query_t q;
    int calls;
    const char *err;
    size_t n;
    struct sockaddr_in6 addrs[GW_DNS_MAX_ADDRS];
    void (*then)(struct result *r); /* optional follow-up run inside the callback */
    void *ctx;
} result_t;

static void on_result(gw_dns_query_t *q, const char *err, const struct sockaddr_in6 *addrs, size_t n)
{
    result_t *r = q->data;
    r->calls++;
    r->err = err;
    r->n = n;
    if (n) memcpy(r->addrs, addrs, n * sizeof(*addrs));
    if (r->then) r->then(r);
}

static void resolve(gw_dns_t *dns, result_t *r, const char *name, uint16_t port)
{
    void (*then)(result_t *) = r->then;
    void *ctx = r->ctx;
    memset(r, 0, sizeof(*r));
    r->then = then;
    r->ctx = ctx;
    r->q.cb = on_result;
    r->q.data = r;
    gw_dns_resolve(dns, &r->q, name, port);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void run_for(gw_loop_t *loop, int ms)
{
    uint64_t end = mono_ms() + (uint64_t)ms;
    while (mono_ms() < end) gw_loop_run_once(loop, 5);
}

/* Runs the loop until r (and r2 when given) have been called, at most max_ms. */
static void wait_for(gw_loop_t *loop, result_t *r, result_t *r2, int max_ms)
{
    uint64_t end = mono_ms() + (uint64_t)max_ms;
    while ((!r->calls || (r2 && !r2->calls)) && mono_ms() < end) gw_loop_run_once(loop, 5);
}

static bool is_addr(const struct sockaddr_in6 *sa, const char *text, uint16_t port)
{
    struct in6_addr want;
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        memset(&want, 0, sizeof(want));
        want.s6_addr[10] = want.s6_addr[11] = 0xff;
        memcpy(&want.s6_addr[12], &v4, 4);
    } else if (inet_pton(AF_INET6, text, &want) != 1) {
        return false;
    }
    return sa->sin6_family == AF_INET6 && sa->sin6_port == htons(port) &&
           memcmp(&sa->sin6_addr, &want, sizeof(want)) == 0;
}

static char servers[64];

static gw_dns_config_t base_config(void)
{
    return (gw_dns_config_t){.servers = servers,
                             .min_ttl_ms = 300,
                             .max_ttl_ms = 3600000,
                             .negative_ttl_ms = 5000,
                             .stale_ms = 60000,
                             .timeout_ms = 100,
                             .tries = 2,
                             .max_entries = 64};
}

static gw_dns_t *new_dns(gw_loop_t *loop, const gw_dns_config_t *cfg)
{
    char err[256] = "";
    gw_dns_t *dns = gw_dns_new(loop, cfg, err, sizeof(err));
    if (!dns) fprintf(stderr, "gw_dns_new: %s\n", err);
    CHECK(dns != NULL);
    return dns;
}

/* ---- tests ---- */

static void test_literals(gw_dns_t *dns)
{
    result_t r = {0};
    resolve(dns, &r, "127.0.0.1", 80);
    CHECK_EQ_INT(r.calls, 1); /* synchronous */
    CHECK(r.err == NULL);
    CHECK_EQ_INT(r.n, 1);
    CHECK(is_addr(&r.addrs[0], "127.0.0.1", 80));
    resolve(dns, &r, "::1", 8080);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "::1", 8080));
    resolve(dns, &r, "[2001:db8::5]", 443);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "2001:db8::5", 443));
    resolve(NULL, &r, "[::1]", 1); /* literals need no resolver at all */
    CHECK(r.calls == 1 && r.err == NULL && is_addr(&r.addrs[0], "::1", 1));
    resolve(NULL, &r, "ok.test", 1);
    CHECK(r.calls == 1 && r.err == gw_err_dns && r.n == 0);
    const char *bad[] = {"", "bad name", "a..b", ".lead", "[::1", "[1.2.3.4]", "x/y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resolve(dns, &r, bad[i], 80);
        CHECK(r.calls == 1 && r.err == gw_err_dns && r.n == 0);
    }
}

static void test_resolve_and_cache(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r = {0};
    resolve(dns, &r, "ok.test", 443);
    CHECK_EQ_INT(r.calls, 0); /* asynchronous */
    wait_for(loop, &r, NULL, 2000);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL);
    CHECK_EQ_INT(r.n, 2);
    CHECK(is_addr(&r.addrs[0], "10.1.1.1", 443)); /* IPv4 first, v4-mapped */
    CHECK(is_addr(&r.addrs[1], "2001:db8::1", 443));
    CHECK_EQ_INT(a_queries("ok.test"), 1);
    resolve(dns, &r, "OK.Test", 8080); /* cache hit, case-insensitive, port of this query */
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n == 2);
    CHECK(is_addr(&r.addrs[0], "10.1.1.1", 8080) && is_addr(&r.addrs[1], "2001:db8::1", 8080));
    CHECK_EQ_INT(a_queries("ok.test"), 1);
}

static void test_single_flight(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r1 = {0}, r2 = {0};
    resolve(dns, &r1, "v4.test", 1);
    resolve(dns, &r2, "v4.test", 2);
    CHECK(r1.calls == 0 && r2.calls == 0);
    wait_for(loop, &r1, &r2, 2000);
    CHECK(r1.calls == 1 && r2.calls == 1);
    CHECK(r1.err == NULL && r1.n == 1 && is_addr(&r1.addrs[0], "10.2.2.2", 1));
    CHECK(r2.err == NULL && r2.n == 1 && is_addr(&r2.addrs[0], "10.2.2.2", 2));
    CHECK_EQ_INT(a_queries("v4.test"), 1);
}

static void test_nxdomain(gw_loop_t *loop, gw_dns_t *dns, fake_server_t *srv)
{
    result_t r = {0};
    resolve(dns, &r, "nx.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == gw_err_dns);
    CHECK_EQ_INT(r.n, 0);
    CHECK_EQ_INT(a_queries("nx.test"), 1);
    int before = srv->queries;
    resolve(dns, &r, "nx.test", 80); /* negative cache: answered at once, nothing sent */
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == gw_err_dns);
    run_for(loop, 50);
    CHECK_EQ_INT(srv->queries, before);
}

static void test_ttl(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r = {0};
    resolve(dns, &r, "flip.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "10.3.3.1", 80));
    fake_find("flip.test")->a = "10.3.3.2";
    run_for(loop, 500); /* beyond dnsMinTtl (300 ms), within the record's TTL (1 s) */
    resolve(dns, &r, "flip.test", 80);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "10.3.3.1", 80));
    CHECK_EQ_INT(a_queries("flip.test"), 1);
    run_for(loop, 800); /* the TTL has run out: asked again, new answer */
    resolve(dns, &r, "flip.test", 80);
    CHECK_EQ_INT(r.calls, 0);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "10.3.3.2", 80));
    CHECK_EQ_INT(a_queries("flip.test"), 2);

    /* TTL 0 is raised to dnsMinTtl */
    resolve(dns, &r, "zero.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1);
    resolve(dns, &r, "zero.test", 80);
    CHECK_EQ_INT(r.calls, 1);
    CHECK_EQ_INT(a_queries("zero.test"), 1);
}

static void test_max_ttl(gw_loop_t *loop)
{
    gw_dns_config_t cfg = base_config();
    cfg.min_ttl_ms = 0;
    cfg.max_ttl_ms = 200; /* the record says 60 s */
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t r = {0};
    int before = a_queries("cancel.test");
    resolve(dns, &r, "cancel.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1);
    run_for(loop, 400);
    resolve(dns, &r, "cancel.test", 80);
    CHECK_EQ_INT(r.calls, 0);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1);
    CHECK_EQ_INT(a_queries("cancel.test"), before + 2);
    gw_dns_free(dns);
}

static void test_timeout(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r = {0};
    uint64_t t0 = mono_ms();
    resolve(dns, &r, "slow.test", 80);
    wait_for(loop, &r, NULL, 5000);
    uint64_t elapsed = mono_ms() - t0;
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == gw_err_dns);
    /* c-ares doubles the timeout on each try: 100 + 200 ms for two tries on one server */
    CHECK(elapsed >= 250);
    CHECK(elapsed < 300 + 500);
    CHECK_EQ_INT(a_queries("slow.test"), 2);
    resolve(dns, &r, "slow.test", 80); /* the failure is cached for dnsNegativeTtl */
    CHECK(r.calls == 1 && r.err == gw_err_dns);
    CHECK_EQ_INT(a_queries("slow.test"), 2);
}

static void test_stale(gw_loop_t *loop, fake_server_t *srv)
{
    gw_dns_config_t cfg = base_config();
    cfg.min_ttl_ms = 0;
    cfg.max_ttl_ms = 200;
    cfg.stale_ms = 700;
    cfg.negative_ttl_ms = 5000; /* longer than the stale window: it bounds the retry window */
    cfg.tries = 1;
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t r = {0};
    uint64_t t0 = mono_ms();
    resolve(dns, &r, "stale.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 2);
    srv->mute = true;
    run_for(loop, 350);
    int before = a_queries("stale.test");
    resolve(dns, &r, "stale.test", 81); /* expired: a refresh is tried, fails, stale answer used */
    CHECK_EQ_INT(r.calls, 0);
    wait_for(loop, &r, NULL, 2000);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL);
    CHECK(r.n == 2 && is_addr(&r.addrs[0], "10.7.7.7", 81) && is_addr(&r.addrs[1], "2001:db8::7", 81));
    CHECK_EQ_INT(a_queries("stale.test"), before + 1);
    resolve(dns, &r, "stale.test", 82); /* right after a failed refresh: stale at once, no query */
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n == 2 && is_addr(&r.addrs[0], "10.7.7.7", 82));
    CHECK_EQ_INT(a_queries("stale.test"), before + 1);
    /* past expiry + stale time: the refresh fails and there is nothing left to serve */
    uint64_t spent = mono_ms() - t0;
    run_for(loop, spent < 1250 ? (int)(1250 - spent) : 0);
    resolve(dns, &r, "stale.test", 80);
    wait_for(loop, &r, NULL, 2000);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == gw_err_dns && r.n == 0);
    CHECK_EQ_INT(a_queries("stale.test"), before + 2);
    srv->mute = false;
    gw_dns_free(dns);
}

static void test_cancel(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r1 = {0}, r2 = {0};
    resolve(dns, &r1, "cancel.test", 80);
    resolve(dns, &r2, "cancel.test", 80);
    gw_dns_cancel(&r1.q);
    wait_for(loop, &r2, NULL, 2000);
    run_for(loop, 20);
    CHECK_EQ_INT(r1.calls, 0);
    CHECK(r2.calls == 1 && r2.err == NULL && is_addr(&r2.addrs[0], "10.4.4.4", 80));
    gw_dns_cancel(&r2.q); /* already answered: nothing happens */
    gw_dns_cancel(&r1.q); /* cancelled twice: nothing happens */

    /* the only waiter goes away: the answer still fills the cache */
    int before = a_queries("cancel2.test");
    resolve(dns, &r1, "cancel2.test", 80);
    gw_dns_cancel(&r1.q);
    uint64_t end = mono_ms() + 2000;
    while (a_queries("cancel2.test") == before && mono_ms() < end) gw_loop_run_once(loop, 5);
    run_for(loop, 50);
    CHECK_EQ_INT(r1.calls, 0);
    resolve(dns, &r1, "cancel2.test", 80);
    CHECK(r1.calls == 1 && r1.err == NULL && is_addr(&r1.addrs[0], "10.4.4.5", 80));
    CHECK_EQ_INT(a_queries("cancel2.test"), before + 1);
}

static void test_lru(gw_loop_t *loop)
{
    gw_dns_config_t cfg = base_config();
    cfg.max_entries = 2;
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t r = {0};
    const char *order[] = {"lru1.test", "lru2.test", "lru3.test"};
    for (int i = 0; i < 3; i++) {
        resolve(dns, &r, order[i], 80);
        wait_for(loop, &r, NULL, 2000);
        CHECK(r.err == NULL && r.n == 1);
    }
    resolve(dns, &r, "lru3.test", 80);
    CHECK_EQ_INT(r.calls, 1);
    resolve(dns, &r, "lru2.test", 80);
    CHECK_EQ_INT(r.calls, 1);
    resolve(dns, &r, "lru1.test", 80); /* the least recently used was evicted */
    CHECK_EQ_INT(r.calls, 0);
    wait_for(loop, &r, NULL, 2000);
    CHECK(r.err == NULL && r.n == 1 && is_addr(&r.addrs[0], "10.6.6.1", 80));
    CHECK_EQ_INT(a_queries("lru1.test"), 2);
    CHECK_EQ_INT(a_queries("lru2.test"), 1);
    gw_dns_free(dns);

    /* entries with waiters are never evicted, even beyond the bound */
    cfg.max_entries = 1;
    dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t a = {0}, b = {0}, c = {0};
    resolve(dns, &a, "lru1.test", 80);
    resolve(dns, &b, "lru2.test", 80);
    resolve(dns, &c, "lru1.test", 81);
    wait_for(loop, &a, &b, 2000);
    wait_for(loop, &c, NULL, 2000);
    CHECK(a.err == NULL && a.n == 1 && is_addr(&a.addrs[0], "10.6.6.1", 80));
    CHECK(b.err == NULL && b.n == 1 && is_addr(&b.addrs[0], "10.6.6.2", 80));
    CHECK(c.err == NULL && c.n == 1 && is_addr(&c.addrs[0], "10.6.6.1", 81));
    CHECK_EQ_INT(a_queries("lru1.test"), 3);
    gw_dns_free(dns);
}

static void test_free_pending(gw_loop_t *loop)
{
    gw_dns_config_t cfg = base_config();
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t r1 = {0}, r2 = {0}, r3 = {0};
    resolve(dns, &r1, "slow.test", 80);
    resolve(dns, &r2, "slow.test", 81);
    resolve(dns, &r3, "ok.test", 82);
    gw_loop_run_once(loop, 5);
    CHECK(r1.calls == 0 && r2.calls == 0);
    gw_dns_free(dns);
    CHECK(r1.calls == 1 && r1.err == gw_err_dns && r1.n == 0);
    CHECK(r2.calls == 1 && r2.err == gw_err_dns && r2.n == 0);
    CHECK_EQ_INT(r3.calls, 1);
    run_for(loop, 50); /* no stray watcher or timer fires into freed memory */
}

/* Callbacks that call back into the resolver: a new lookup, and gw_dns_free itself. */
static void then_resolve(result_t *r)
{
    result_t *next = r->ctx;
    resolve(next->ctx, next, "v4.test", 99);
}

static void then_free(result_t *r)
{
    gw_dns_free(r->ctx);
}

static void test_reentrancy(gw_loop_t *loop)
{
    gw_dns_config_t cfg = base_config();
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t inner = {.ctx = dns}, outer = {.then = then_resolve, .ctx = &inner};
    resolve(dns, &outer, "ok.test", 80);
    wait_for(loop, &outer, NULL, 2000);
    wait_for(loop, &inner, NULL, 2000);
    CHECK(outer.calls == 1 && outer.err == NULL);
    CHECK(inner.calls == 1 && inner.err == NULL && is_addr(&inner.addrs[0], "10.2.2.2", 99));

    /* a cache hit whose callback frees the resolver, with another lookup pending */
    result_t pending = {0}, freer = {.then = then_free, .ctx = dns};
    resolve(dns, &pending, "slow.test", 80);
    resolve(dns, &freer, "ok.test", 80);
    CHECK_EQ_INT(freer.calls, 1);
    CHECK(pending.calls == 1 && pending.err == gw_err_dns);
    run_for(loop, 50);

    /* the same from a hosts-file answer, which c-ares gives inside ares_getaddrinfo */
    dns = new_dns(loop, &cfg);
    if (!dns) return;
    result_t pending2 = {0}, freer2 = {.then = then_free, .ctx = dns};
    resolve(dns, &pending2, "slow.test", 80);
    resolve(dns, &freer2, "localhost", 80);
    if (!freer2.calls) wait_for(loop, &freer2, NULL, 2000);
    CHECK(freer2.calls == 1 && freer2.err == NULL);
    CHECK(pending2.calls == 1 && pending2.err == gw_err_dns);
    run_for(loop, 50);
}

static void test_localhost(gw_loop_t *loop, gw_dns_t *dns)
{
    result_t r = {0};
    resolve(dns, &r, "localhost", 80); /* hosts file: c-ares may answer synchronously */
    wait_for(loop, &r, NULL, 2000);
    CHECK_EQ_INT(r.calls, 1);
    CHECK(r.err == NULL && r.n >= 1);
    bool loopback = false;
    for (size_t i = 0; i < r.n; i++) loopback |= is_addr(&r.addrs[i], "127.0.0.1", 80) || is_addr(&r.addrs[i], "::1", 80);
    CHECK(loopback);
}

static void test_bad_config(gw_loop_t *loop)
{
    gw_dns_config_t cfg = base_config();
    cfg.servers = "not an address";
    char err[256] = "";
    gw_dns_t *dns = gw_dns_new(loop, &cfg, err, sizeof(err));
    CHECK(dns == NULL);
    CHECK(strstr(err, "not an address") != NULL);
    gw_dns_free(NULL);
}

int main(void)
{
    gw_loop_t *loop = gw_loop_new(1024);
    CHECK(loop != NULL);
    if (!loop) return check_report("dns");
    fake_server_t srv;
    CHECK(fake_start(loop, &srv));
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", srv.port);
    gw_dns_config_t cfg = base_config();
    gw_dns_t *dns = new_dns(loop, &cfg);
    if (dns) {
        test_literals(dns);
        test_resolve_and_cache(loop, dns);
        test_single_flight(loop, dns);
        test_nxdomain(loop, dns, &srv);
        test_ttl(loop, dns);
        test_timeout(loop, dns);
        test_cancel(loop, dns);
        test_localhost(loop, dns);
        gw_dns_free(dns);
    }
    test_max_ttl(loop);
    test_stale(loop, &srv);
    test_lru(loop);
    test_free_pending(loop);
    test_reentrancy(loop);
    test_bad_config(loop);
    gw_io_stop(&srv.io);
    close(srv.fd);
    gw_loop_free(loop);
    return check_report("dns");
}
