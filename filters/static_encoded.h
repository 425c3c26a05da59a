/*
 * Compressed variants of static files, kept on their open-file cache entry: the first request for
 * a file in a coding is compressed on the fly by the compress filter (streamed as usual) and its
 * output is kept; later requests for the same file version and coding are served those bytes as
 * they would be served a precompressed sibling. The variant goes with the entry (a changed file
 * is a new entry) and all variants of a worker stay under `compressionCacheMaxBytes`.
 */
#ifndef GW_STATIC_ENCODED_H
#define GW_STATIC_ENCODED_H

#include <stdbool.h>

#include "file_cache.h"
#include "request.h"

/** Answers with the kept variant of `e` in the coding the compress filter would pick for this
 *  request; false (nothing sent) when there is none. */
bool gw_static_serve_encoded(gw_req_t *req, gw_file_entry_t *e);

/** After gw_start_response of the whole file `e`: if the compress filter took the response and the
 *  coding is not kept yet, keeps a copy of the compressed bytes for the next requests. */
void gw_static_keep_encoded(gw_req_t *req, gw_file_entry_t *e);

#endif
