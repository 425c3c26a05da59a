/* The sized block pool (the allocator nghttp2 sessions get): every size class and the large
 * blocks beyond them, realloc keeping contents across classes, freed blocks reused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mem.h"

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i);
}

static int intact(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i)) return 0;
    return 1;
}

static void test_sizes_and_alignment(void)
{
    gw_sized_pool_t pool;
    gw_sized_pool_init(&pool, 64 << 10);
    static const size_t sizes[] = {0, 1, 47, 48, 49, 112, 113, 240, 1000, 4080, 4081, 10000, 100000};
    void *blocks[sizeof(sizes) / sizeof(sizes[0])];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        blocks[i] = gw_sized_alloc(&pool, sizes[i]);
        CHECK(blocks[i] != NULL);
        CHECK_EQ_INT((uintptr_t)blocks[i] % 16, 0);
        fill(blocks[i], sizes[i], (unsigned char)i);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        CHECK(intact(blocks[i], sizes[i], (unsigned char)i)); /* no block overlaps another */
        gw_sized_free(&pool, blocks[i]);
    }
    gw_sized_free(&pool, NULL);
    gw_sized_pool_clear(&pool);
}

static void test_realloc_keeps_contents(void)
{
    gw_sized_pool_t pool;
    gw_sized_pool_init(&pool, 64 << 10);
    unsigned char *p = gw_sized_realloc(&pool, NULL, 30); /* NULL: a plain allocation */
    CHECK(p != NULL);
    fill(p, 30, 7);
    static const size_t steps[] = {40, 200, 3000, 5000, 70000, 6000, 2000, 20};
    size_t kept = 30;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        p = gw_sized_realloc(&pool, p, steps[i]);
        CHECK(p != NULL);
        size_t n = kept < steps[i] ? kept : steps[i];
        CHECK(intact(p, n, 7));
        fill(p, steps[i], 7);
        kept = steps[i];
    }
    gw_sized_free(&pool, p);
    gw_sized_pool_clear(&pool);
}

static void test_reuse_within_a_class(void)
{
    gw_sized_pool_t pool;
    gw_sized_pool_init(&pool, 64 << 10);
    void *a = gw_sized_alloc(&pool, 100);
    gw_sized_free(&pool, a);
    void *b = gw_sized_alloc(&pool, 90); /* same class */
    CHECK(b != NULL);
    if (pool.classes[1].max_free) /* under ASan nothing is cached, so that a reuse is caught */
        CHECK(a == b);            /* the freed block comes back */
    gw_sized_free(&pool, b);
    gw_sized_pool_clear(&pool);
}

int main(void)
{
    test_sizes_and_alignment();
    test_realloc_keeps_contents();
    test_reuse_within_a_class();
    return check_report("mem");
}
