/*
 * Memory for the request path: a per-worker pool of fixed-size I/O chunks (no malloc/free per read
 * or write in steady state) and a per-request arena that is released in one step.
 */
#ifndef GW_MEM_H
#define GW_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/** A per-worker free list of equally sized chunks. Not thread-safe by design. */
typedef struct gw_chunk_pool {
    size_t chunk_size;
    void *free_list;
    size_t free_count;
    size_t max_free; /**< chunks kept beyond this are returned to malloc */
} gw_chunk_pool_t;

/** Sets up a pool handing out chunks of `chunk_size` bytes (>= 64). */
void gw_chunk_pool_init(gw_chunk_pool_t *pool, size_t chunk_size, size_t max_free);

/** Frees every cached chunk. */
void gw_chunk_pool_clear(gw_chunk_pool_t *pool);

/** Returns a chunk of pool->chunk_size bytes, or NULL when memory is exhausted. Inline: it runs
 *  several times per request (arenas, buffers, nghttp2's blocks). */
static inline void *gw_chunk_get(gw_chunk_pool_t *pool)
{
    void *c = pool->free_list;
    if (!c) return malloc(pool->chunk_size);
    pool->free_list = *(void **)c;
    pool->free_count--;
    return c;
}

/** Gives a chunk back (NULL is ignored). */
static inline void gw_chunk_put(gw_chunk_pool_t *pool, void *chunk)
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

#define GW_SIZED_CLASSES 7 /* blocks of 64 B .. 4 KiB */

/**
 * malloc/free of any size for a library that takes an allocator (nghttp2's streams, frames and HPACK
 * entries): blocks up to 4 KiB come from per-size-class chunk pools, larger ones from malloc. Each
 * block starts with a 16-byte header naming its class, so free and realloc need no size. Not
 * thread-safe: one per worker.
 */
typedef struct gw_sized_pool {
    gw_chunk_pool_t classes[GW_SIZED_CLASSES];
} gw_sized_pool_t;

/** Sets up the classes, each keeping at most `keep_bytes` of free blocks. */
void gw_sized_pool_init(gw_sized_pool_t *p, size_t keep_bytes);

/** Frees every cached block (blocks still in use stay valid and may be freed later). */
void gw_sized_pool_clear(gw_sized_pool_t *p);

/** `n` bytes aligned to 16; NULL when memory is exhausted. */
void *gw_sized_alloc(gw_sized_pool_t *p, size_t n);

/** Like realloc: NULL `ptr` allocates, the contents are kept up to the smaller size. */
void *gw_sized_realloc(gw_sized_pool_t *p, void *ptr, size_t n);

/** Gives a block back (NULL is ignored). */
void gw_sized_free(gw_sized_pool_t *p, void *ptr);

/** A bump allocator whose blocks come from a chunk pool; large requests are malloc'd directly. */
typedef struct gw_arena {
    gw_chunk_pool_t *pool;
    struct gw_arena_block *blocks; /**< pool-sized blocks, newest first */
    struct gw_arena_block *large;  /**< directly malloc'd allocations */
    char *cur, *end;
} gw_arena_t;

/** Prepares an arena; takes no memory until the first allocation. */
void gw_arena_init(gw_arena_t *a, gw_chunk_pool_t *pool);

/** The part of gw_arena_alloc that takes a new block (or a large allocation). */
void *gw_arena_alloc_slow(gw_arena_t *a, size_t n);

/** Allocates `n` bytes aligned to 16; NULL when memory is exhausted. The bump is inline: a request
 *  makes a dozen or more of these. */
static inline void *gw_arena_alloc(gw_arena_t *a, size_t n)
{
    if (n > SIZE_MAX - 15) return NULL;
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) >= n) {
        void *p = a->cur;
        a->cur += n;
        return p;
    }
    return gw_arena_alloc_slow(a, n);
}

/** Copies `n` bytes (plus a NUL) into the arena. */
char *gw_arena_strndup(gw_arena_t *a, const char *s, size_t n);

/** Concatenates three strings (any may be "") into the arena; NULL on failure. Cheaper than
 *  gw_arena_printf on per-request paths (no format parsing). */
char *gw_arena_concat3(gw_arena_t *a, const char *x, const char *y, const char *z);

/** The decimal digits of `v` in the arena; NULL on failure. */
char *gw_arena_u64(gw_arena_t *a, uint64_t v);

/** Formats into the arena (like asprintf); NULL on failure. */
char *gw_arena_printf(gw_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Releases everything allocated; the arena can be used again. */
void gw_arena_reset(gw_arena_t *a);

#endif
