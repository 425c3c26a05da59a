/* Read buffers for backend responses, in size classes. See resbuf.h. */
#include "resbuf.h"

#include <stdlib.h>

#include "worker.h"

/* Classes: the I/O chunk times 2, 4, ... 2^MAX_CLASSES (16 KiB chunks: up to 64 MiB). */
#define MAX_CLASSES 12
/* Buffers kept per class: a response holds one only between its first read and its last write,
 * so a few serve a busy worker; more are in use only while clients lag behind (back-pressure). */
#define KEEP_PER_CLASS 4

typedef struct resbufs {
    gw_chunk_pool_t classes[MAX_CLASSES]; /* classes[k]: chunk_size << (k + 1) bytes */
} resbufs_t;

static resbufs_t *resbufs_of(gw_worker_t *w)
{
    resbufs_t *r = w->resbufs;
    if (r) return r;
    if (!(r = w->resbufs = malloc(sizeof(*r)))) return NULL;
    for (int k = 0; k < MAX_CLASSES; k++)
        gw_chunk_pool_init(&r->classes[k], w->io_pool.chunk_size << (k + 1), KEEP_PER_CLASS);
    return r;
}

/* The class of a buffer of `size` bytes above the chunk: -1 for the chunk itself. */
static int class_of(const gw_worker_t *w, size_t size)
{
    int k = -1;
    while (k + 1 < MAX_CLASSES && (w->io_pool.chunk_size << (k + 1)) < size) k++;
    return k;
}

char *gw_resbuf_get(gw_worker_t *w, size_t want, size_t max, size_t *cap)
{
    size_t chunk = w->io_pool.chunk_size;
    int k = class_of(w, want < max ? want : max);
    if (k >= 0 && (chunk << (k + 1)) > max) k--; /* never above proxyBufferSize */
    resbufs_t *r = k >= 0 ? resbufs_of(w) : NULL;
    if (!r) {
        *cap = chunk;
        return gw_chunk_get(&w->io_pool);
    }
    *cap = r->classes[k].chunk_size;
    return gw_chunk_get(&r->classes[k]);
}

void gw_resbuf_put(gw_worker_t *w, char *buf, size_t cap)
{
    if (!buf) return;
    int k = class_of(w, cap);
    if (k < 0)
        gw_chunk_put(&w->io_pool, buf);
    else
        gw_chunk_put(&((resbufs_t *)w->resbufs)->classes[k], buf);
}

void gw_resbufs_free(gw_worker_t *w)
{
    resbufs_t *r = w->resbufs;
    if (!r) return;
    for (int k = 0; k < MAX_CLASSES; k++) gw_chunk_pool_clear(&r->classes[k]);
    free(r);
    w->resbufs = NULL;
}
