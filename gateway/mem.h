/*
 * Memory for the request path: a per-worker pool of fixed-size I/O chunks (no malloc/free per read
 * or write in steady state) and a per-request arena that is released in one step.
 */
#ifndef GW_MEM_H
#define GW_MEM_H

#include <stddef.h>
#include <stdint.h>

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

/** Returns a chunk of pool->chunk_size bytes, or NULL when memory is exhausted. */
void *gw_chunk_get(gw_chunk_pool_t *pool);

/** Gives a chunk back (NULL is ignored). */
void gw_chunk_put(gw_chunk_pool_t *pool, void *chunk);

/** A bump allocator whose blocks come from a chunk pool; large requests are malloc'd directly. */
typedef struct gw_arena {
    gw_chunk_pool_t *pool;
    struct gw_arena_block *blocks; /**< pool-sized blocks, newest first */
    struct gw_arena_block *large;  /**< directly malloc'd allocations */
    char *cur, *end;
} gw_arena_t;

/** Prepares an arena; takes no memory until the first allocation. */
void gw_arena_init(gw_arena_t *a, gw_chunk_pool_t *pool);

/** Allocates `n` bytes aligned to 16; NULL when memory is exhausted. */
void *gw_arena_alloc(gw_arena_t *a, size_t n);

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
