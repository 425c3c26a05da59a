/* The sharded, shared response store. See cache_store.h. */
#include "cache_store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS 64
#define INITIAL_BUCKETS 64
#define ENTRY_OVERHEAD 256 /* bytes counted per entry besides its own strings and body */

typedef struct pending {
    struct pending *next;
    uint64_t hash;
    gw_cache_waiter_t *waiters, **tail;
    size_t key_len;
    char key[]; /* not NUL-terminated */
} pending_t;

typedef struct shard {
    pthread_mutex_t lock;
    gw_cache_entry_t **buckets;
    size_t nbuckets, count;
    gw_cache_entry_t *hand; /* CLOCK hand: next entry the eviction sweep looks at */
    pending_t *pending;
} shard_t;

static shard_t shards[NSHARDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t total_entries, total_bytes, limit_entries, limit_bytes;
static atomic_uint evict_cursor;

static void init_shards(void)
{
    for (size_t i = 0; i < NSHARDS; i++) pthread_mutex_init(&shards[i].lock, NULL);
}

static shard_t *shard_of(uint64_t hash)
{
    pthread_once(&once, init_shards);
    return &shards[(hash >> 58) % NSHARDS];
}

uint64_t gw_cache_hash(gw_slice_t key)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < key.len; i++) h = (h ^ (unsigned char)key.base[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

void gw_cache_set_limits(uint64_t max_entries, uint64_t max_bytes)
{
    atomic_store(&limit_entries, max_entries);
    atomic_store(&limit_bytes, max_bytes);
}

void gw_cache_stats(uint64_t *entries, uint64_t *bytes)
{
    *entries = atomic_load(&total_entries);
    *bytes = atomic_load(&total_bytes);
}

/* ---- entries ---- */

static bool key_eq(gw_slice_t a, const char *b, size_t blen)
{
    return a.len == blen && memcmp(a.base, b, blen) == 0;
}

/* Copies `s` after `*p` with a NUL; returns the copy. */
static char *put_str(char **p, gw_slice_t s)
{
    char *out = *p;
    if (s.len) memcpy(out, s.base, s.len);
    out[s.len] = '\0';
    *p += s.len + 1;
    return out;
}

gw_cache_entry_t *gw_cache_entry_new(const gw_cache_entry_spec_t *s)
{
    size_t strings = s->key.len + s->vary_names.len + s->vary_values.len + 3;
    for (uint32_t i = 0; i < s->num_headers; i++) strings += s->headers[i].name.len + s->headers[i].value.len + 2;
    size_t head = sizeof(gw_cache_entry_t) + s->num_headers * sizeof(gw_header_t);
    gw_cache_entry_t *e = malloc(head + strings);
    if (!e) {
        free(s->body);
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    atomic_init(&e->refs, 1);
    atomic_init(&e->referenced, 0);
    e->headers = (gw_header_t *)(e + 1);
    char *p = (char *)e + head;
    e->key = (gw_slice_t){put_str(&p, s->key), s->key.len};
    e->hash = gw_cache_hash(e->key);
    e->vary_names = (gw_slice_t){put_str(&p, s->vary_names), s->vary_names.len};
    e->vary_values = (gw_slice_t){put_str(&p, s->vary_values), s->vary_values.len};
    for (uint32_t i = 0; i < s->num_headers; i++) {
        gw_slice_t n = {put_str(&p, s->headers[i].name), s->headers[i].name.len};
        gw_slice_t v = {put_str(&p, s->headers[i].value), s->headers[i].value.len};
        e->headers[i] = (gw_header_t){n, v};
        if (gw_slice_eq(n, "etag")) e->etag = v.base;
    }
    e->num_headers = s->num_headers;
    e->num_sent = s->num_targeted < s->num_headers ? s->num_headers - s->num_targeted : 0;
    e->status = s->status;
    e->body = s->body;
    e->body_len = s->body_len;
    e->response_time = s->response_time;
    e->initial_age = s->initial_age;
    e->lifetime = s->lifetime;
    e->date = s->date;
    e->last_modified = s->last_modified;
    e->res_flags = s->res_flags;
    e->swr = s->swr;
    e->sie = s->sie;
    e->auth_ok = s->auth_ok;
    e->size = head + strings + s->body_len + ENTRY_OVERHEAD;
    return e;
}

void gw_cache_entry_ref(gw_cache_entry_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void gw_cache_entry_unref(gw_cache_entry_t *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
    free((void *)e->body);
    free(e);
}

const gw_header_t *gw_cache_entry_header(const gw_cache_entry_t *e, const char *name)
{
    for (uint32_t i = 0; i < e->num_headers; i++)
        if (gw_slice_eq(e->headers[i].name, name)) return &e->headers[i];
    return NULL;
}

/* ---- the table (callers hold the shard lock) ---- */

static bool grow(shard_t *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : INITIAL_BUCKETS;
    gw_cache_entry_t **b = calloc(n, sizeof(*b));
    if (!b) return s->nbuckets > 0;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (gw_cache_entry_t *e = s->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash % n];
            b[e->hash % n] = e;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return true;
}

static void ring_insert(shard_t *s, gw_cache_entry_t *e)
{
    if (!s->hand) {
        e->ring_prev = e->ring_next = e;
        s->hand = e;
        return;
    }
    e->ring_next = s->hand; /* behind the hand: the last one it will look at */
    e->ring_prev = s->hand->ring_prev;
    e->ring_prev->ring_next = e;
    s->hand->ring_prev = e;
}

/* Unlinks `e`; the caller drops the table's reference once the lock is released. */
static void unlink_entry(shard_t *s, gw_cache_entry_t *e)
{
    gw_cache_entry_t **pp = &s->buckets[e->hash % s->nbuckets];
    while (*pp != e) pp = &(*pp)->next;
    *pp = e->next;
    if (e->ring_next == e) {
        s->hand = NULL;
    } else {
        e->ring_prev->ring_next = e->ring_next;
        e->ring_next->ring_prev = e->ring_prev;
        if (s->hand == e) s->hand = e->ring_next;
    }
    e->linked = false;
    s->count--;
    atomic_fetch_sub(&total_entries, 1);
    atomic_fetch_sub(&total_bytes, e->size);
}

static bool same_variant(const gw_cache_entry_t *a, const gw_cache_entry_t *b)
{
    return key_eq(a->key, b->key.base, b->key.len) && key_eq(a->vary_names, b->vary_names.base, b->vary_names.len) &&
           key_eq(a->vary_values, b->vary_values.base, b->vary_values.len);
}

gw_cache_entry_t *gw_cache_lookup(uint64_t hash, gw_slice_t key, gw_cache_match_fn match, void *ctx, bool *variants)
{
    shard_t *s = shard_of(hash);
    gw_cache_entry_t *best = NULL;
    bool any = false;
    pthread_mutex_lock(&s->lock);
    for (gw_cache_entry_t *e = s->nbuckets ? s->buckets[hash % s->nbuckets] : NULL; e; e = e->next) {
        if (e->hash != hash || !key_eq(key, e->key.base, e->key.len)) continue;
        any = true;
        if ((!best || e->response_time > best->response_time) && (!match || match(e, ctx))) best = e;
    }
    if (best) {
        gw_cache_entry_ref(best);
        if (!atomic_load_explicit(&best->referenced, memory_order_relaxed))
            atomic_store_explicit(&best->referenced, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->lock);
    if (variants) *variants = any;
    return best;
}

/* One CLOCK step in shard `s`: returns an unlinked victim, or NULL when the shard is empty. */
static gw_cache_entry_t *clock_victim(shard_t *s)
{
    for (size_t steps = 0; s->hand && steps <= 2 * s->count; steps++) {
        gw_cache_entry_t *e = s->hand;
        if (atomic_exchange_explicit(&e->referenced, 0, memory_order_relaxed)) {
            s->hand = e->ring_next; /* a second chance */
            continue;
        }
        unlink_entry(s, e);
        return e;
    }
    return NULL;
}

static bool over_limits(void)
{
    uint64_t me = atomic_load(&limit_entries), mb = atomic_load(&limit_bytes);
    return (me && atomic_load(&total_entries) > me) || (mb && atomic_load(&total_bytes) > mb);
}

/* Evicts until the limits hold, starting with shard `first`; one shard lock at a time. */
static void enforce_limits(size_t first)
{
    size_t empty_in_a_row = 0, i = first;
    while (over_limits() && empty_in_a_row < NSHARDS) {
        shard_t *s = &shards[i % NSHARDS];
        pthread_mutex_lock(&s->lock);
        gw_cache_entry_t *victim = clock_victim(s);
        pthread_mutex_unlock(&s->lock);
        if (victim) {
            gw_cache_entry_unref(victim);
            empty_in_a_row = 0;
        } else {
            empty_in_a_row++;
        }
        i = atomic_fetch_add(&evict_cursor, 1); /* spread evictions over the shards */
    }
}

bool gw_cache_insert(gw_cache_entry_t *e)
{
    uint64_t mb = atomic_load(&limit_bytes);
    shard_t *s = shard_of(e->hash);
    if (mb && e->size > mb) {
        gw_cache_entry_unref(e);
        return false;
    }
    gw_cache_entry_t *old = NULL;
    pthread_mutex_lock(&s->lock);
    if ((s->count + 1) * 2 > s->nbuckets && !grow(s)) {
        pthread_mutex_unlock(&s->lock);
        gw_cache_entry_unref(e);
        return false;
    }
    for (gw_cache_entry_t *x = s->buckets[e->hash % s->nbuckets]; x; x = x->next)
        if (x->hash == e->hash && same_variant(x, e)) {
            old = x;
            break;
        }
    if (old) unlink_entry(s, old);
    e->next = s->buckets[e->hash % s->nbuckets];
    s->buckets[e->hash % s->nbuckets] = e;
    ring_insert(s, e);
    e->linked = true;
    s->count++;
    atomic_fetch_add(&total_entries, 1);
    atomic_fetch_add(&total_bytes, e->size);
    pthread_mutex_unlock(&s->lock);
    gw_cache_entry_unref(old);
    enforce_limits((size_t)(s - shards));
    return true;
}

void gw_cache_invalidate(uint64_t hash, gw_slice_t key)
{
    shard_t *s = shard_of(hash);
    gw_cache_entry_t *gone = NULL;
    pthread_mutex_lock(&s->lock);
    for (gw_cache_entry_t *e = s->nbuckets ? s->buckets[hash % s->nbuckets] : NULL, *next; e; e = next) {
        next = e->next;
        if (e->hash != hash || !key_eq(key, e->key.base, e->key.len)) continue;
        unlink_entry(s, e);
        e->next = gone; /* the chain link is free once unlinked */
        gone = e;
    }
    pthread_mutex_unlock(&s->lock);
    while (gone) {
        gw_cache_entry_t *next = gone->next;
        gw_cache_entry_unref(gone);
        gone = next;
    }
}

/* ---- fetches in flight ---- */

static pending_t **find_pending(shard_t *s, uint64_t hash, gw_slice_t key)
{
    pending_t **pp = &s->pending;
    while (*pp && !((*pp)->hash == hash && key_eq(key, (*pp)->key, (*pp)->key_len))) pp = &(*pp)->next;
    return pp;
}

gw_cache_collapse_t gw_cache_collapse(uint64_t hash, gw_slice_t key, gw_cache_waiter_t *w)
{
    shard_t *s = shard_of(hash);
    gw_cache_collapse_t r = GW_COLLAPSE_LEAD;
    pthread_mutex_lock(&s->lock);
    pending_t **pp = find_pending(s, hash, key);
    if (*pp && w) {
        w->next = NULL;
        w->queued = true;
        *(*pp)->tail = w;
        (*pp)->tail = &w->next;
        r = GW_COLLAPSE_WAIT;
    } else if (*pp) {
        r = GW_COLLAPSE_NONE;
    } else {
        pending_t *p = malloc(sizeof(*p) + key.len);
        if (p) {
            p->next = NULL;
            p->hash = hash;
            p->waiters = NULL;
            p->tail = &p->waiters;
            p->key_len = key.len;
            memcpy(p->key, key.base, key.len);
            *pp = p;
        } else {
            r = GW_COLLAPSE_NONE;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

bool gw_cache_fetching(uint64_t hash, gw_slice_t key)
{
    shard_t *s = shard_of(hash);
    pthread_mutex_lock(&s->lock);
    bool busy = *find_pending(s, hash, key) != NULL;
    pthread_mutex_unlock(&s->lock);
    return busy;
}

void gw_cache_fetch_done(uint64_t hash, gw_slice_t key)
{
    shard_t *s = shard_of(hash);
    pthread_mutex_lock(&s->lock);
    pending_t **pp = find_pending(s, hash, key), *p = *pp;
    if (p) *pp = p->next;
    gw_cache_waiter_t *w = p ? p->waiters : NULL;
    for (gw_cache_waiter_t *x = w; x; x = x->next) x->queued = false;
    pthread_mutex_unlock(&s->lock);
    free(p);
    while (w) {
        gw_cache_waiter_t *next = w->next; /* read before wake: the waiter may be freed after it */
        w->wake(w);
        w = next;
    }
}

bool gw_cache_waiter_cancel(uint64_t hash, gw_cache_waiter_t *w)
{
    shard_t *s = shard_of(hash);
    bool removed = false;
    pthread_mutex_lock(&s->lock);
    if (w->queued) {
        for (pending_t *p = s->pending; p && !removed; p = p->next) {
            gw_cache_waiter_t **pp = &p->waiters;
            while (*pp && *pp != w) pp = &(*pp)->next;
            if (!*pp) continue;
            *pp = w->next;
            if (p->tail == &w->next) p->tail = pp;
            removed = true;
        }
        w->queued = false;
    }
    pthread_mutex_unlock(&s->lock);
    return removed;
}
