/* Process-wide brute-force counters. See brute_force.h. */
#include "brute_force.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/siphash.h>

#define WAYS 4
#define SHARDS 64

typedef struct entry {
    struct in6_addr ip;
    uint32_t failures; /* 0: free */
    int64_t since;     /* the first failure of the window */
} entry_t;

typedef struct set {
    _Atomic uint32_t used; /* entries with failures; written under the shard's lock */
    entry_t e[WAYS];
} set_t;

typedef struct table {
    size_t num_sets;
    uint64_t sip_key[2];
    set_t sets[];
} table_t;

static table_t *_Atomic table;
static _Atomic size_t wanted_clients = GW_BRUTE_DEFAULT_CLIENTS;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t shard_locks[SHARDS];
static pthread_once_t shard_once = PTHREAD_ONCE_INIT;

static void init_shard_locks(void)
{
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&shard_locks[i], NULL);
}

void gw_brute_configure(size_t max_clients)
{
    atomic_store_explicit(&wanted_clients, max_clients, memory_order_relaxed);
}

static table_t *table_new(void)
{
    size_t num_sets = (atomic_load_explicit(&wanted_clients, memory_order_relaxed) + WAYS - 1) / WAYS;
    if (num_sets == 0) num_sets = 1;
    table_t *t = calloc(1, sizeof(*t) + num_sets * sizeof(set_t));
    if (!t) return NULL;
    t->num_sets = num_sets;
    if (getrandom(t->sip_key, sizeof(t->sip_key), 0) != (ssize_t)sizeof(t->sip_key)) {
        t->sip_key[0] = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull; /* still varies per process */
        t->sip_key[1] = (uint64_t)(uintptr_t)&table;
    }
    return t;
}

/* The table, created on the first failure (a process nobody fails a login on never allocates it). */
static table_t *table_get(bool create)
{
    table_t *t = atomic_load_explicit(&table, memory_order_acquire);
    if (t || !create) return t;
    pthread_once(&shard_once, init_shard_locks);
    pthread_mutex_lock(&create_lock);
    t = atomic_load_explicit(&table, memory_order_relaxed);
    if (!t) {
        t = table_new();
        atomic_store_explicit(&table, t, memory_order_release);
    }
    pthread_mutex_unlock(&create_lock);
    return t;
}

static size_t set_index(const table_t *t, const struct in6_addr *ip)
{
    /* keyed: an attacker cannot aim addresses at one set to push a victim's counter out */
    return (size_t)(SIPHASH_24(t->sip_key, ip->s6_addr, sizeof(ip->s6_addr)) % t->num_sets);
}

static pthread_mutex_t *lock_of(size_t set)
{
    return &shard_locks[set % SHARDS];
}

/* Frees the set's entries whose window is over (the set's lock held). */
static void sweep(set_t *s, int64_t now)
{
    for (int i = 0; i < WAYS; i++)
        if (s->e[i].failures && now - s->e[i].since >= GW_BRUTE_WINDOW_MS) {
            s->e[i].failures = 0;
            atomic_fetch_sub_explicit(&s->used, 1, memory_order_relaxed);
        }
}

static entry_t *find(set_t *s, const struct in6_addr *ip)
{
    for (int i = 0; i < WAYS; i++)
        if (s->e[i].failures && memcmp(&s->e[i].ip, ip, sizeof(*ip)) == 0) return &s->e[i];
    return NULL;
}

/* A free entry, else the one whose window began first (forgetting it only makes the lockout more
 * lenient for that address, never stricter for anyone). */
static entry_t *make_room(set_t *s)
{
    entry_t *victim = &s->e[0];
    for (int i = 0; i < WAYS; i++) {
        if (!s->e[i].failures) {
            atomic_fetch_add_explicit(&s->used, 1, memory_order_relaxed);
            return &s->e[i];
        }
        if (s->e[i].since < victim->since) victim = &s->e[i];
    }
    return victim;
}

bool gw_brute_locked(const struct in6_addr *ip, int64_t now_ms, uint32_t *retry_s)
{
    table_t *t = table_get(false);
    if (!t) return false;
    size_t i = set_index(t, ip);
    set_t *s = &t->sets[i];
    if (atomic_load_explicit(&s->used, memory_order_relaxed) == 0) return false; /* the lock-free path */
    pthread_mutex_lock(lock_of(i));
    sweep(s, now_ms);
    const entry_t *e = find(s, ip);
    bool locked = e && e->failures >= GW_BRUTE_MAX_FAILURES;
    int64_t left = locked ? e->since + GW_BRUTE_WINDOW_MS - now_ms : 0;
    pthread_mutex_unlock(lock_of(i));
    if (!locked) return false;
    *retry_s = (uint32_t)((left + 999) / 1000);
    if (*retry_s == 0) *retry_s = 1;
    return true;
}

void gw_brute_fail(const struct in6_addr *ip, int64_t now_ms)
{
    table_t *t = table_get(true);
    if (!t) return; /* no memory: no lockout rather than no service */
    size_t i = set_index(t, ip);
    set_t *s = &t->sets[i];
    pthread_mutex_lock(lock_of(i));
    sweep(s, now_ms);
    entry_t *e = find(s, ip);
    if (!e) {
        e = make_room(s);
        *e = (entry_t){.ip = *ip, .failures = 0, .since = now_ms};
    }
    e->failures++;
    pthread_mutex_unlock(lock_of(i));
}
