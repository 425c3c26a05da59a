/* Chunk pool and request arena. See mem.h. */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_arena_block {
    struct gw_arena_block *next;
    max_align_t align[]; /* payload */
};

#define ARENA_HDR sizeof(struct gw_arena_block)

/* Under AddressSanitizer nothing is cached: a chunk given back is really freed, so a use after
 * the end of a request (arena blocks, buffers) is reported instead of hidden by reuse. */
#if defined(__SANITIZE_ADDRESS__)
#define GW_POOL_CACHES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_POOL_CACHES 0
#endif
#endif
#ifndef GW_POOL_CACHES
#define GW_POOL_CACHES 1
#endif

void gw_chunk_pool_init(gw_chunk_pool_t *pool, size_t chunk_size, size_t max_free)
{
    if (!GW_POOL_CACHES) max_free = 0;
    pool->chunk_size = chunk_size < 64 ? 64 : chunk_size;
    pool->free_list = NULL;
    pool->free_count = 0;
    pool->max_free = max_free;
}

void gw_chunk_pool_clear(gw_chunk_pool_t *pool)
{
    while (pool->free_list) {
        void *next = *(void **)pool->free_list;
        free(pool->free_list);
        pool->free_list = next;
    }
    pool->free_count = 0;
}

/* The header in front of a sized block: its class, or GW_SIZED_CLASSES for a malloc'd one. */
typedef struct sized_hdr {
    _Alignas(max_align_t) size_t cls; /* 16 bytes: the block after it keeps malloc's alignment */
} sized_hdr_t;

#define SIZED_MIN 64

void gw_sized_pool_init(gw_sized_pool_t *p, size_t keep_bytes)
{
    for (size_t k = 0; k < GW_SIZED_CLASSES; k++)
        gw_chunk_pool_init(&p->classes[k], (size_t)SIZED_MIN << k, keep_bytes / ((size_t)SIZED_MIN << k));
}

void gw_sized_pool_clear(gw_sized_pool_t *p)
{
    for (size_t k = 0; k < GW_SIZED_CLASSES; k++)
        gw_chunk_pool_clear(&p->classes[k]);
}

static size_t sized_class(size_t n)
{
    size_t k = 0;
    while (k < GW_SIZED_CLASSES && ((size_t)SIZED_MIN << k) - sizeof(sized_hdr_t) < n)
        k++;
    return k;
}

void *gw_sized_alloc(gw_sized_pool_t *p, size_t n)
{
    if (n > SIZE_MAX - sizeof(sized_hdr_t)) return NULL;
    size_t k = sized_class(n);
    sized_hdr_t *h = k < GW_SIZED_CLASSES ? gw_chunk_get(&p->classes[k]) : malloc(sizeof(*h) + n);
    if (!h) return NULL;
    h->cls = k;
    return h + 1;
}

void gw_sized_free(gw_sized_pool_t *p, void *ptr)
{
    if (!ptr) return;
    sized_hdr_t *h = (sized_hdr_t *)ptr - 1;
    if (h->cls < GW_SIZED_CLASSES)
        gw_chunk_put(&p->classes[h->cls], h);
    else
        free(h);
}

void *gw_sized_realloc(gw_sized_pool_t *p, void *ptr, size_t n)
{
    if (!ptr) return gw_sized_alloc(p, n);
    if (n > SIZE_MAX - sizeof(sized_hdr_t)) return NULL;
    sized_hdr_t *h = (sized_hdr_t *)ptr - 1;
    if (h->cls >= GW_SIZED_CLASSES && n > ((size_t)SIZED_MIN << (GW_SIZED_CLASSES - 1)) - sizeof(*h)) {
        sized_hdr_t *nh = realloc(h, sizeof(*h) + n); /* large stays large: the header moves along */
        return nh ? nh + 1 : NULL;
    }
    if (h->cls < GW_SIZED_CLASSES && n <= ((size_t)SIZED_MIN << h->cls) - sizeof(*h)) return ptr;
    void *np = gw_sized_alloc(p, n);
    if (!np) return NULL;
    /* a large block is only ever shrunk into a class here, so n bounds the copy either way */
    size_t old = h->cls < GW_SIZED_CLASSES ? ((size_t)SIZED_MIN << h->cls) - sizeof(*h) : n;
    memcpy(np, ptr, old < n ? old : n);
    gw_sized_free(p, ptr);
    return np;
}

void gw_arena_init(gw_arena_t *a, gw_chunk_pool_t *pool)
{
    a->pool = pool;
    a->blocks = NULL;
    a->large = NULL;
    a->cur = a->end = NULL;
}

static void *arena_large(gw_arena_t *a, size_t n)
{
    struct gw_arena_block *b = malloc(ARENA_HDR + n);
    if (!b) return NULL;
    b->next = a->large;
    a->large = b;
    return b->align;
}

void *gw_arena_alloc_slow(gw_arena_t *a, size_t n) /* n: already rounded up to 16 */
{
    size_t usable = a->pool->chunk_size - ARENA_HDR;
    if (n > usable / 4) return arena_large(a, n);
    struct gw_arena_block *b = gw_chunk_get(a->pool);
    if (!b) return NULL;
    b->next = a->blocks;
    a->blocks = b;
    a->cur = (char *)b->align + n;
    a->end = (char *)b + a->pool->chunk_size;
    return b->align;
}

char *gw_arena_strndup(gw_arena_t *a, const char *s, size_t n)
{
    char *p = gw_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gw_arena_concat3(gw_arena_t *a, const char *x, const char *y, const char *z)
{
    size_t lx = strlen(x), ly = strlen(y), lz = strlen(z);
    char *p = gw_arena_alloc(a, lx + ly + lz + 1);
    if (!p) return NULL;
    memcpy(p, x, lx);
    memcpy(p + lx, y, ly);
    memcpy(p + lx + ly, z, lz);
    p[lx + ly + lz] = '\0';
    return p;
}

char *gw_arena_u64(gw_arena_t *a, uint64_t v)
{
    char buf[20], *end = buf + sizeof(buf), *d = end;
    do {
        *--d = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return gw_arena_strndup(a, d, (size_t)(end - d));
}

char *gw_arena_printf(gw_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = gw_arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void gw_arena_reset(gw_arena_t *a)
{
    while (a->blocks) {
        struct gw_arena_block *next = a->blocks->next;
        gw_chunk_put(a->pool, a->blocks);
        a->blocks = next;
    }
    while (a->large) {
        struct gw_arena_block *next = a->large->next;
        free(a->large);
        a->large = next;
    }
    a->cur = a->end = NULL;
}
