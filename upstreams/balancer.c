/* Load-balancing policies. See balancer.h. */
#include "balancer.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health.h"
#include "pool.h"
#include "worker.h"

/* Per worker, per list: smooth weighted round-robin current weights. */
typedef struct lb_state {
    int64_t *current;
    size_t count;
} lb_state_t;

typedef struct lb_table {
    lb_state_t *lists;
    uint32_t cap;
} lb_table_t;

static uint64_t next_random(struct gw_worker *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

static lb_state_t *state_of(struct gw_worker *w, const gw_target_list_t *list)
{
    lb_table_t *t = w->lb;
    if (!t && !(t = w->lb = calloc(1, sizeof(*t)))) return NULL;
    if (list->id >= t->cap) {
        uint32_t cap = t->cap ? t->cap : 8;
        while (cap <= list->id) cap *= 2;
        lb_state_t *grown = realloc(t->lists, cap * sizeof(*grown));
        if (!grown) return NULL;
        memset(grown + t->cap, 0, (cap - t->cap) * sizeof(*grown));
        t->lists = grown;
        t->cap = cap;
    }
    lb_state_t *s = &t->lists[list->id];
    if (!s->current && !(s->current = calloc(list->count, sizeof(int64_t)))) return NULL;
    s->count = list->count;
    return s;
}

void gw_balance_worker_free(struct gw_worker *w)
{
    lb_table_t *t = w->lb;
    if (!t) return;
    for (uint32_t i = 0; i < t->cap; i++) free(t->lists[i].current);
    free(t->lists);
    free(t);
    w->lb = NULL;
}

/* ---- health ---- */

typedef struct pick_ctx {
    gw_req_t *req;
    const gw_target_list_t *list;
    const gw_target_t *avoid;
    bool health_check;
    uint32_t max_fails;
    bool probes; /* skip targets that active health checks marked down */
} pick_ctx_t;

static bool usable(const pick_ctx_t *c, size_t i)
{
    const gw_target_t *t = c->list->items[i];
    if (t == c->avoid && c->list->count > 1) return false;
    if (c->probes && c->list->health && gw_health_down(c->list->health[i])) return false;
    gw_pool_t *p = gw_pool_get(c->req->worker, t);
    if (p && gw_pool_backing_off(p)) return false;
    if (!c->health_check) return true;
    return !p || gw_pool_recent_failures(p) <= c->max_fails;
}

static uint32_t active_of(const pick_ctx_t *c, size_t i)
{
    gw_pool_t *p = gw_pool_get(c->req->worker, c->list->items[i]);
    return p ? gw_pool_active(p) : 0;
}

/* ---- policies; each returns an index or -1 when no target is usable ---- */

static long pick_random(const pick_ctx_t *c)
{
    uint64_t total = 0;
    for (size_t i = 0; i < c->list->count; i++)
        if (usable(c, i)) total += c->list->weights[i];
    if (!total) return -1;
    uint64_t r = next_random(c->req->worker) % total;
    for (size_t i = 0; i < c->list->count; i++) {
        if (!usable(c, i)) continue;
        if (r < c->list->weights[i]) return (long)i;
        r -= c->list->weights[i];
    }
    return -1;
}

static long pick_round_robin(const pick_ctx_t *c)
{
    lb_state_t *s = state_of(c->req->worker, c->list);
    if (!s) return pick_random(c);
    long best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < c->list->count; i++) {
        if (!usable(c, i)) continue;
        s->current[i] += c->list->weights[i];
        total += c->list->weights[i];
        if (best < 0 || s->current[i] > s->current[best]) best = (long)i;
    }
    if (best >= 0) s->current[best] -= total;
    return best;
}

static long pick_least_conn(const pick_ctx_t *c)
{
    long best = -1;
    uint64_t best_load = 0;
    for (size_t i = 0; i < c->list->count; i++) {
        if (!usable(c, i)) continue;
        /* compare active/weight without division: a*wb < b*wa */
        uint64_t load = (uint64_t)active_of(c, i) * 1000000u / c->list->weights[i];
        if (best < 0 || load < best_load) {
            best = (long)i;
            best_load = load;
        }
    }
    return best;
}

static long pick_two_choices(const pick_ctx_t *c)
{
    long a = pick_random(c), b = pick_random(c);
    if (a < 0 || b < 0) return a < 0 ? b : a;
    return active_of(c, (size_t)b) * c->list->weights[a] < active_of(c, (size_t)a) * c->list->weights[b] ? b : a;
}

static uint32_t fnv1a(const char *s, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* MurmurHash3's finaliser: FNV-1a alone spreads short keys badly over the ring. */
static uint32_t mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

static gw_slice_t cookie_value(const gw_req_t *req, const char *name)
{
    const gw_header_t *h = gw_req_header(req, "cookie");
    size_t nl = strlen(name);
    const char *p = h ? h->value.base : NULL, *end = h ? p + h->value.len : NULL;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == ';')) p++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) semi = end;
        if (eq && eq < semi && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0)
            return (gw_slice_t){eq + 1, (size_t)(semi - eq - 1)};
        p = semi;
    }
    return (gw_slice_t){NULL, 0};
}

static uint32_t request_hash(const pick_ctx_t *c)
{
    const gw_req_t *req = c->req;
    if (c->list->hash_key == GW_HASH_HEADER) {
        const gw_header_t *h = gw_req_header(req, c->list->hash_name);
        if (h) return mix(fnv1a(h->value.base, h->value.len, 2166136261u));
    } else if (c->list->hash_key == GW_HASH_COOKIE) {
        gw_slice_t v = cookie_value(req, c->list->hash_name);
        if (v.base) return mix(fnv1a(v.base, v.len, 2166136261u));
    }
    const struct in6_addr *ip = IN6_IS_ADDR_UNSPECIFIED(&req->client_ip) ? &req->conn->peer.sin6_addr : &req->client_ip;
    return mix(fnv1a((const char *)ip, sizeof(*ip), 2166136261u));
}

static long pick_hash(const pick_ctx_t *c)
{
    const gw_target_list_t *l = c->list;
    if (!l->ring_len) return pick_random(c);
    uint32_t h = request_hash(c);
    size_t lo = 0, hi = l->ring_len;
    while (lo < hi) { /* first point >= h */
        size_t mid = (lo + hi) / 2;
        if (l->ring[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < l->ring_len; k++) { /* walk on past unusable targets */
        size_t i = l->ring_target[(lo + k) % l->ring_len];
        if (usable(c, i)) return (long)i;
    }
    return -1;
}

static long pick_by_policy(const pick_ctx_t *c)
{
    switch (c->list->balance) {
    case GW_LB_ROUND_ROBIN: return pick_round_robin(c);
    case GW_LB_LEAST_CONN: return pick_least_conn(c);
    case GW_LB_TWO_CHOICES: return pick_two_choices(c);
    case GW_LB_HASH: return pick_hash(c);
    default: return pick_random(c);
    }
}

const gw_target_t *gw_balance_pick(gw_req_t *req, const gw_target_list_t *list, const gw_target_t *avoid,
                                   bool health_check, uint32_t max_fails)
{
    pick_ctx_t c = {req, list, avoid, health_check, max_fails, true};
    if (list->count == 1) return list->items[0];
    long i = pick_by_policy(&c);
    if (i < 0 && list->health) {
        /* every server is down by its probes: ignore them and let passive health and back-off
         * choose, as Envoy's panic mode does, rather than fail every request as nginx ("no live
         * upstreams", 502) and HAProxy (503) do; a probe may be wrong, the servers may not be */
        c.probes = false;
        i = pick_by_policy(&c);
    }
    if (i < 0) { /* every target is failing or paused: use one anyway rather than refuse (Ferron) */
        c.health_check = false;
        c.avoid = NULL;
        for (size_t k = 0; k < list->count && i < 0; k++) {
            gw_pool_t *p = gw_pool_get(req->worker, list->items[k]);
            if (!p || !gw_pool_backing_off(p)) i = (long)k;
        }
        if (i < 0) i = (long)(next_random(req->worker) % list->count);
    }
    return list->items[i < 0 ? 0 : i];
}

static int cmp_points(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool gw_balance_build_ring(gw_target_list_t *list, void *(*alloc)(void *ctx, size_t n), void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; i < list->count; i++) n += 160u * list->weights[i];
    uint64_t *points = malloc(n * sizeof(*points)); /* hash << 16 | target, sorted, then split */
    list->ring = alloc(ctx, n * sizeof(uint32_t));
    list->ring_target = alloc(ctx, n * sizeof(uint16_t));
    if (!points || !list->ring || !list->ring_target) {
        free(points);
        return false;
    }
    size_t k = 0;
    for (size_t i = 0; i < list->count; i++)
        for (uint32_t j = 0; j < 160u * list->weights[i]; j++) {
            uint32_t h = fnv1a(list->items[i]->url, strlen(list->items[i]->url), 2166136261u);
            h = fnv1a((const char *)&j, sizeof(j), h);
            points[k++] = ((uint64_t)mix(h) << 16) | (uint16_t)i;
        }
    qsort(points, n, sizeof(*points), cmp_points);
    for (size_t i = 0; i < n; i++) {
        list->ring[i] = (uint32_t)(points[i] >> 16);
        list->ring_target[i] = (uint16_t)(points[i] & 0xffff);
    }
    list->ring_len = n;
    free(points);
    return true;
}
