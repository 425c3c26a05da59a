/*
 * Asynchronous DNS: one c-ares channel per worker, driven by the worker's loop, and a per-worker
 * cache with single-flight waiters. See dns.h.
 *
 * c-ares integration (1.18.1): the socket-state callback maps each c-ares socket to a gw_io watcher
 * (allocated one by one, so the loop's pointers never move); a ready fd is handed to
 * ares_process_fd(); one gw_timer follows ares_timeout() and calls ares_process_fd(BAD, BAD) to
 * expire tries. Every entry into c-ares (resolve, io, timer) is bracketed by enter()/leave(): the
 * timer is re-armed once on the way out, and a gw_dns_free() called from inside a callback is
 * deferred until the outermost call returns (c-ares must not be destroyed from its own callback).
 *
 * Callbacks may run synchronously inside ares_getaddrinfo() (hosts file, immediate failures), and
 * a user callback may resolve, cancel or free: nothing here touches an entry or a waiter after
 * calling into c-ares or into a user callback. Waiters are detached from their entry and the
 * addresses copied to the stack before the first user callback runs.
 *
 * Cache states of an entry (key: the lower-cased name):
 *   querying            a lookup is in flight; waiters wait on it (pinned: never evicted)
 *   fresh               now < expires_ms; naddrs > 0 answers, naddrs == 0 is a cached failure
 *   stale, retry window a refresh failed less than stale_ms after expiry: the old addresses are
 *                       served at once until retry_ms, then the next resolve refreshes again
 *   expired             the next resolve starts a refresh and waits for it
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/time.h>

#include "errors.h"
#include "metrics.h"

#define MAX_NAME 254 /* 253 characters, plus an optional trailing dot */
#define MIN_BUCKETS 16u
#define MAX_BUCKETS 65536u

typedef struct gw_dns_entry {
    struct gw_dns_entry *hnext;               /* hash chain */
    struct gw_dns_entry *lru_prev, *lru_next; /* lru_head is the most recently used */
    gw_dns_t *dns;
    gw_dns_query_t *waiters;
    uint64_t expires_ms; /* answer (or cached failure) valid until */
    uint64_t retry_ms;   /* after a failed refresh: stale addresses served without asking until */
    uint32_t hash;
    bool querying;
    uint8_t naddrs; /* 0: cached failure (or no answer yet) */
    struct in6_addr addrs[GW_DNS_MAX_ADDRS]; /* IPv4 as v4-mapped */
    char name[];
} entry_t;

/* One watched c-ares socket; allocated separately so that its address never changes. */
typedef struct watcher {
    gw_io_t io;
    gw_dns_t *dns;
    struct watcher *next;
} watcher_t;

struct gw_dns {
    gw_loop_t *loop;
    ares_channel channel;
    gw_timer_t timer;
    watcher_t *watchers;
    entry_t **buckets;
    uint32_t mask;
    uint32_t seed;
    entry_t *lru_head, *lru_tail;
    size_t count;
    gw_dns_config_t cfg; /* servers not kept: c-ares has its own copy */
    unsigned depth;      /* nesting of enter()/leave() */
    bool ares_touched;   /* c-ares was called: re-arm the timer on the way out */
    bool closing;        /* inside destroy(): answer everything with an error */
    bool free_pending;   /* gw_dns_free() was called from inside a callback */
};

static void destroy(gw_dns_t *dns);

/* ---- entry/exit bracket ---- */

static void enter(gw_dns_t *dns)
{
    dns->depth++;
}

/* Re-arms the timer from ares_timeout(): the c-ares deadline of the next try, or none. */
static void rearm(gw_dns_t *dns)
{
    struct timeval tv;
    if (!ares_timeout(dns->channel, NULL, &tv)) {
        gw_timer_cancel(&dns->timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + ((uint64_t)tv.tv_usec + 999u) / 1000u;
    gw_timer_set(dns->loop, &dns->timer, ms);
}

static void leave(gw_dns_t *dns)
{
    if (--dns->depth) return;
    if (dns->free_pending) {
        destroy(dns);
        return;
    }
    if (dns->ares_touched) {
        dns->ares_touched = false;
        rearm(dns);
    }
}

/* ---- c-ares sockets and timer ---- */

static void on_io(gw_io_t *io, uint32_t events)
{
    watcher_t *w = gw_container_of(io, watcher_t, io);
    gw_dns_t *dns = w->dns;
    uint32_t armed = io->events;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    if ((armed & EPOLLIN) && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) rfd = io->fd;
    if ((armed & EPOLLOUT) && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) wfd = io->fd;
    enter(dns);
    dns->ares_touched = true;
    ares_process_fd(dns->channel, rfd, wfd); /* may close the socket and free w */
    leave(dns);
}

static void on_timer(gw_timer_t *t)
{
    gw_dns_t *dns = gw_container_of(t, gw_dns_t, timer);
    enter(dns);
    dns->ares_touched = true;
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    leave(dns);
}

static watcher_t **find_watcher(gw_dns_t *dns, int fd)
{
    watcher_t **pw = &dns->watchers;
    while (*pw && (*pw)->io.fd != fd) pw = &(*pw)->next;
    return pw;
}

/* c-ares opens, re-arms or (readable = writable = 0) is about to close one of its sockets. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    gw_dns_t *dns = data;
    watcher_t **pw = find_watcher(dns, fd);
    uint32_t ev = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    if (*pw && !ev) {
        watcher_t *w = *pw;
        *pw = w->next;
        gw_io_stop(&w->io);
        free(w);
    } else if (*pw) {
        gw_io_modify(&(*pw)->io, ev);
    } else if (ev) {
        /* on failure the socket is never read and its queries end with a timeout */
        watcher_t *w = calloc(1, sizeof(*w));
        if (!w) return;
        w->dns = dns;
        if (gw_io_start(dns->loop, &w->io, fd, ev, on_io) != 0) {
            free(w);
            return;
        }
        w->next = dns->watchers;
        dns->watchers = w;
    }
}

/* ---- names and literal addresses ---- */

static void v4_mapped(struct in6_addr *out, const struct in_addr *v4)
{
    memset(out, 0, sizeof(*out));
    out->s6_addr[10] = out->s6_addr[11] = 0xff;
    memcpy(&out->s6_addr[12], v4, 4);
}

/* Parses the zone of "fe80::1%eth0" (interface name or number); 0 when unknown. */
static uint32_t parse_scope(const char *zone)
{
    char *end;
    unsigned long n = strtoul(zone, &end, 10);
    if (*zone && !*end) return n <= UINT32_MAX ? (uint32_t)n : 0;
    return if_nametoindex(zone);
}

/* "1.2.3.4", "::1", "[::1]", "fe80::1%eth0": true with *sa filled (port not set). */
static bool parse_literal(const char *name, struct sockaddr_in6 *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sin6_family = AF_INET6;
    struct in_addr v4;
    if (inet_pton(AF_INET, name, &v4) == 1) {
        v4_mapped(&sa->sin6_addr, &v4);
        return true;
    }
    size_t len = strlen(name);
    if (len && name[0] == '[') {
        if (len < 3 || name[len - 1] != ']') return false;
        name++;
        len -= 2;
    }
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    if (len >= sizeof(buf) || !memchr(name, ':', len)) return false;
    memcpy(buf, name, len);
    buf[len] = '\0';
    char *zone = strchr(buf, '%');
    if (zone) *zone++ = '\0';
    if (inet_pton(AF_INET6, buf, &sa->sin6_addr) != 1) return false;
    if (zone && !(sa->sin6_scope_id = parse_scope(zone))) return false;
    return true;
}

/* Lower-cases a host name into key; false for anything that cannot be a DNS name. */
static bool make_key(const char *name, char *key, size_t *len)
{
    size_t n = 0;
    char prev = '.';
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (n >= MAX_NAME) return false;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!ok || (c == '.' && prev == '.')) return false; /* no empty label, no leading dot */
        key[n] = prev = c;
    }
    key[n] = '\0';
    *len = n;
    return n > 0;
}

static uint32_t hash_name(uint32_t seed, const char *s, size_t len)
{
    uint32_t h = 2166136261u ^ seed; /* FNV-1a, seeded per resolver */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* ---- the cache ---- */

static void lru_unlink(gw_dns_t *dns, entry_t *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        dns->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        dns->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(gw_dns_t *dns, entry_t *e)
{
    e->lru_prev = NULL;
    e->lru_next = dns->lru_head;
    if (dns->lru_head)
        dns->lru_head->lru_prev = e;
    else
        dns->lru_tail = e;
    dns->lru_head = e;
}

static void lru_touch(gw_dns_t *dns, entry_t *e)
{
    if (dns->lru_head == e) return;
    lru_unlink(dns, e);
    lru_push_head(dns, e);
}

static entry_t *entry_find(gw_dns_t *dns, uint32_t h, const char *key, size_t len)
{
    for (entry_t *e = dns->buckets[h & dns->mask]; e; e = e->hnext)
        if (e->hash == h && memcmp(e->name, key, len + 1) == 0) return e;
    return NULL;
}

static void entry_free(gw_dns_t *dns, entry_t *e)
{
    entry_t **pe = &dns->buckets[e->hash & dns->mask];
    while (*pe != e) pe = &(*pe)->hnext;
    *pe = e->hnext;
    lru_unlink(dns, e);
    dns->count--;
    GW_STAT(dns_entries, -1);
    free(e);
}

/* Evicts the least recently used entry that nobody waits on; false when all are pinned. */
static bool evict_one(gw_dns_t *dns)
{
    for (entry_t *e = dns->lru_tail; e; e = e->lru_prev) {
        if (e->querying || e->waiters) continue;
        entry_free(dns, e);
        return true;
    }
    return false;
}

/* A new, empty (expired) entry. The count may exceed max_entries only by entries in flight. */
static entry_t *entry_new(gw_dns_t *dns, uint32_t h, const char *key, size_t len)
{
    while (dns->count >= dns->cfg.max_entries && evict_one(dns)) {
    }
    entry_t *e = calloc(1, sizeof(*e) + len + 1);
    if (!e) return NULL;
    e->dns = dns;
    e->hash = h;
    memcpy(e->name, key, len + 1);
    e->hnext = dns->buckets[h & dns->mask];
    dns->buckets[h & dns->mask] = e;
    lru_push_head(dns, e);
    dns->count++;
    GW_STAT(dns_entries, 1);
    return e;
}

/* ---- answering waiters ---- */

static size_t fill_addrs(struct sockaddr_in6 *out, const struct in6_addr *in, size_t n, uint16_t port)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].sin6_family = AF_INET6;
        out[i].sin6_port = htons(port);
        out[i].sin6_addr = in[i];
    }
    return n;
}

static void answer(gw_dns_query_t *q, const char *err, const struct in6_addr *addrs, size_t n)
{
    struct sockaddr_in6 sa[GW_DNS_MAX_ADDRS];
    if (err || !n) {
        q->cb(q, err ? err : gw_err_dns, NULL, 0);
        return;
    }
    q->cb(q, NULL, sa, fill_addrs(sa, addrs, n, q->port));
}

/* Completes every waiter of e. The waiters are detached and the addresses copied first: the
 * callbacks may resolve (and so evict e), cancel other waiters of the list, or free the resolver. */
static void complete(entry_t *e, const char *err)
{
    struct in6_addr addrs[GW_DNS_MAX_ADDRS];
    size_t n = err ? 0 : e->naddrs;
    memcpy(addrs, e->addrs, n * sizeof(addrs[0]));
    gw_dns_query_t *list = e->waiters;
    e->waiters = NULL;
    if (list) list->pprev = &list;
    while (list) {
        gw_dns_query_t *q = list;
        list = q->next;
        if (list) list->pprev = &list;
        q->next = NULL;
        q->pprev = NULL;
        q->entry = NULL;
        answer(q, err, addrs, n);
    }
}

/* ---- lookups ---- */

static uint64_t clamp_ttl(const gw_dns_t *dns, uint64_t ttl_ms)
{
    if (ttl_ms > dns->cfg.max_ttl_ms) ttl_ms = dns->cfg.max_ttl_ms;
    if (ttl_ms < dns->cfg.min_ttl_ms) ttl_ms = dns->cfg.min_ttl_ms;
    return ttl_ms;
}

static bool have_addr(const entry_t *e, size_t n, const struct in6_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&e->addrs[i], a, sizeof(*a)) == 0) return true;
    return false;
}

/* Stores the answer: IPv4 first, then IPv6, each in the resolver's order, without duplicates.
 * Returns the number of addresses and the smallest TTL (seconds) in *ttl. */
static size_t store_answer(entry_t *e, const struct ares_addrinfo *res, uint64_t *ttl)
{
    size_t n = 0;
    int64_t min_ttl = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (const struct ares_addrinfo_node *ai = res->nodes; ai && n < GW_DNS_MAX_ADDRS; ai = ai->ai_next) {
            struct in6_addr a;
            if (pass == 0 && ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in))
                v4_mapped(&a, &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr);
            else if (pass == 1 && ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6))
                a = ((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
            else
                continue;
            if (have_addr(e, n, &a)) continue;
            e->addrs[n++] = a;
            int64_t t = ai->ai_ttl > 0 ? ai->ai_ttl : 0;
            if (min_ttl < 0 || t < min_ttl) min_ttl = t;
        }
    }
    *ttl = min_ttl > 0 ? (uint64_t)min_ttl : 0;
    return n;
}

/* A failure that says the name has no address (as opposed to a resolver that failed). */
static bool is_negative(int status)
{
    return status == ARES_ENOTFOUND || status == ARES_ENODATA;
}

/* Records a failed lookup: stale addresses while allowed (returns NULL), else a cached error. */
static const char *record_failure(gw_dns_t *dns, entry_t *e, int status, uint64_t now)
{
    uint64_t stale_end = e->expires_ms + dns->cfg.stale_ms;
    if (e->naddrs && !is_negative(status) && now < stale_end) {
        uint64_t retry = now + dns->cfg.negative_ttl_ms;
        e->retry_ms = retry < stale_end ? retry : stale_end;
        return NULL;
    }
    e->naddrs = 0;
    e->retry_ms = 0;
    e->expires_ms = now + dns->cfg.negative_ttl_ms;
    return gw_err_dns;
}

/* The c-ares answer for e (possibly synchronously inside ares_getaddrinfo, or inside
 * ares_destroy with ARES_EDESTRUCTION). */
static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    entry_t *e = arg;
    gw_dns_t *dns = e->dns;
    uint64_t now = gw_loop_now(dns->loop);
    const char *err = NULL;
    e->querying = false;
    if (status == ARES_EDESTRUCTION || dns->closing) {
        err = gw_err_dns;
    } else if (status == ARES_SUCCESS && res && res->nodes) {
        uint64_t ttl_s;
        size_t n = store_answer(e, res, &ttl_s);
        if (n) {
            e->naddrs = (uint8_t)n;
            e->retry_ms = 0;
            e->expires_ms = now + clamp_ttl(dns, ttl_s * 1000u);
        } else {
            err = record_failure(dns, e, ARES_ENODATA, now);
        }
    } else {
        err = record_failure(dns, e, status == ARES_SUCCESS ? ARES_ENODATA : status, now);
    }
    if (res) ares_freeaddrinfo(res);
    complete(e, err);
}

static void start_query(gw_dns_t *dns, entry_t *e)
{
    struct ares_addrinfo_hints hints = {.ai_flags = ARES_AI_NOSORT, .ai_family = AF_UNSPEC};
    e->querying = true;
    dns->ares_touched = true;
    ares_getaddrinfo(dns->channel, e->name, NULL, &hints, on_addrinfo, e);
    /* e may be gone: the callback can have run already */
}

static void lookup(gw_dns_t *dns, gw_dns_query_t *q, const char *key, size_t len)
{
    uint64_t now = gw_loop_now(dns->loop);
    uint32_t h = hash_name(dns->seed, key, len);
    entry_t *e = entry_find(dns, h, key, len);
    if (e && !e->querying && (now < e->expires_ms || (e->naddrs && now < e->retry_ms))) {
        lru_touch(dns, e);
        answer(q, e->naddrs ? NULL : gw_err_dns, e->addrs, e->naddrs);
        return;
    }
    if (!e && !(e = entry_new(dns, h, key, len))) {
        answer(q, gw_err_dns, NULL, 0);
        return;
    }
    lru_touch(dns, e);
    q->entry = e;
    q->next = e->waiters;
    if (q->next) q->next->pprev = &q->next;
    q->pprev = &e->waiters;
    e->waiters = q;
    if (!e->querying) start_query(dns, e);
}

void gw_dns_resolve(gw_dns_t *dns, gw_dns_query_t *q, const char *name, uint16_t port)
{
    struct sockaddr_in6 sa;
    char key[MAX_NAME + 1];
    size_t len;
    q->next = NULL;
    q->pprev = NULL;
    q->entry = NULL;
    q->port = port;
    if (parse_literal(name, &sa)) {
        sa.sin6_port = htons(port);
        q->cb(q, NULL, &sa, 1);
        return;
    }
    if (!dns || dns->closing || !make_key(name, key, &len)) {
        q->cb(q, gw_err_dns, NULL, 0);
        return;
    }
    enter(dns);
    lookup(dns, q, key, len);
    leave(dns);
}

void gw_dns_cancel(gw_dns_query_t *q)
{
    if (!q->pprev) return;
    if (q->next) q->next->pprev = q->pprev;
    *q->pprev = q->next;
    q->next = NULL;
    q->pprev = NULL;
    q->entry = NULL;
}

/* ---- life cycle ---- */

static void library_init(void)
{
    ares_library_init(ARES_LIB_INIT_ALL); /* a no-op on POSIX; once per process anyway */
}

static uint32_t random_seed(const void *salt)
{
    uint32_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint32_t)(uintptr_t)salt * 2654435761u;
    return seed;
}

static int init_channel(gw_dns_t *dns, const gw_dns_config_t *cfg, char *err, size_t errlen)
{
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    int mask = ARES_OPT_SOCK_STATE_CB;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = dns;
    if (cfg->timeout_ms) {
        o.timeout = cfg->timeout_ms > INT32_MAX ? INT32_MAX : (int)cfg->timeout_ms;
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (cfg->tries) {
        o.tries = cfg->tries > 100 ? 100 : (int)cfg->tries;
        mask |= ARES_OPT_TRIES;
    }
    int rc = ares_init_options(&dns->channel, &o, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: %s", ares_strerror(rc));
        return -1;
    }
    if (cfg->servers && *cfg->servers && (rc = ares_set_servers_ports_csv(dns->channel, cfg->servers)) != 0) {
        snprintf(err, errlen, "resolver '%s': %s", cfg->servers, ares_strerror(rc));
        return -1;
    }
    return 0;
}

static uint32_t bucket_count(uint32_t max_entries)
{
    uint32_t n = MIN_BUCKETS;
    while (n < max_entries && n < MAX_BUCKETS) n <<= 1;
    return n;
}

gw_dns_t *gw_dns_new(gw_loop_t *loop, const gw_dns_config_t *cfg, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, library_init);
    gw_dns_t *dns = calloc(1, sizeof(*dns));
    if (!dns) goto nomem;
    dns->loop = loop;
    dns->cfg = *cfg;
    dns->cfg.servers = NULL;
    if (!dns->cfg.max_entries) dns->cfg.max_entries = 1;
    dns->seed = random_seed(dns);
    uint32_t nb = bucket_count(dns->cfg.max_entries);
    dns->mask = nb - 1;
    dns->buckets = calloc(nb, sizeof(*dns->buckets));
    if (!dns->buckets) goto nomem;
    gw_timer_init(&dns->timer, on_timer);
    if (init_channel(dns, cfg, err, errlen) != 0) goto fail;
    return dns;
nomem:
    snprintf(err, errlen, "resolver: out of memory");
fail:
    if (dns && dns->channel) ares_destroy(dns->channel);
    if (dns) {
        while (dns->watchers) on_sock_state(dns, dns->watchers->io.fd, 0, 0);
        free(dns->buckets);
    }
    free(dns);
    return NULL;
}

/* Completes every pending waiter with gw_err_dns (c-ares calls on_addrinfo with
 * ARES_EDESTRUCTION and closes its sockets), then frees everything. */
static void destroy(gw_dns_t *dns)
{
    dns->closing = true;
    dns->depth++; /* callbacks that resolve must not re-enter destroy() */
    ares_destroy(dns->channel);
    while (dns->watchers) on_sock_state(dns, dns->watchers->io.fd, 0, 0);
    gw_timer_cancel(&dns->timer);
    while (dns->lru_head) {
        entry_t *e = dns->lru_head;
        complete(e, gw_err_dns); /* none expected: every waiter belongs to a query */
        entry_free(dns, e);
    }
    free(dns->buckets);
    free(dns);
}

void gw_dns_free(gw_dns_t *dns)
{
    if (!dns || dns->closing) return;
    if (dns->depth) {
        dns->free_pending = true; /* inside a callback: done when the outermost call returns */
        return;
    }
    destroy(dns);
}
