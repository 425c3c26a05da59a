/*
 * Read buffers for backend responses (nginx's proxy_buffers, HAProxy's bufsize, but sized per
 * response): the worker's I/O chunk, or for a response larger than it a buffer of the chunk size
 * times a power of two, up to proxyBufferSize, so that a 64 KiB body is read with one read and
 * sent with one write. Buffers above the chunk size come from per-worker free lists, one per size
 * class, so that steady traffic neither mallocs nor touches fresh pages per response. They are
 * held only while a response is being read and sent, never by an idle connection.
 */
#ifndef GW_RESBUF_H
#define GW_RESBUF_H

#include <stddef.h>

struct gw_worker;

/** A buffer of at least `want` bytes, or of the largest size allowed (`max`: proxyBufferSize),
 *  never smaller than the I/O chunk; its size in *cap. NULL without memory. */
char *gw_resbuf_get(struct gw_worker *w, size_t want, size_t max, size_t *cap);

/** Gives back a buffer of gw_resbuf_get with its size (NULL is ignored). */
void gw_resbuf_put(struct gw_worker *w, char *buf, size_t cap);

/** Frees the worker's cached buffers (at worker exit). */
void gw_resbufs_free(struct gw_worker *w);

#endif
