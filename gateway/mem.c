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

void *gw_chunk_get(gw_chunk_pool_t *pool)
{
    void *c = pool->free_list;
    if (c) {
        pool->free_list = *(void **)c;
        pool->free_count--;
        return c;
    }
    return malloc(pool->chunk_size);
}

void gw_chunk_put(gw_chunk_pool_t *pool, void *chunk)
{
    if (!chunk) return;
    if (pool->free_count >= pool->max_free) {
        free(chunk);
        return;
    }
    *(void **)chunk = pool->free_list;
    pool->free_list = chunk;
    pool->free_count++;
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

void *gw_arena_alloc(gw_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
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
