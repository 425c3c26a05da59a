/*
 * Response compression as a route filter (gw_filter_t): gzip (zlib) and brotli, negotiated from
 * Accept-Encoding with q-values (br preferred on a tie). It streams: each piece a handler sends is
 * compressed as it passes, never the whole body, so memory per request is the encoder state plus
 * an output buffer as large as the largest piece. Applies to any handler's response (static files,
 * proxied and application responses), and leaves alone what must not or need not be compressed:
 * small bodies, already-compressed media types, ranges, `Cache-Control: no-transform`, bodies
 * that already have a Content-Encoding, and statuses without a body.
 */
#ifndef GW_COMPRESS_H
#define GW_COMPRESS_H

#include <stdbool.h>

#include "config.h"
#include "request.h"

typedef enum gw_encoding {
    GW_ENC_IDENTITY = 0,
    GW_ENC_GZIP = 1,
    GW_ENC_BR = 2,
} gw_encoding_t;

/** Bit for an encoding in an `allowed` mask. */
#define GW_ENC_BIT(e) (1u << (e))

/**
 * The content-coding to use for a request's Accept-Encoding value among the `allowed` ones
 * (GW_ENC_BIT mask): the acceptable one (q > 0) with the highest q, br before gzip when equal;
 * `*` stands for codings not listed. GW_ENC_IDENTITY when none is acceptable.
 */
gw_encoding_t gw_accept_encoding_pick(gw_slice_t value, unsigned allowed);

/** The token of an encoding ("br", "gzip"); NULL for identity. */
const char *gw_encoding_token(gw_encoding_t e);

/** Whether a Content-Type is worth compressing (text, JSON, XML, JS, SVG, fonts without their own
 *  compression...). Images, audio, video, archives and unknown binaries are not. */
bool gw_compressible_type(gw_slice_t content_type);

/** Whether a Cache-Control value carries the no-transform directive. */
bool gw_no_transform(gw_slice_t cache_control);

/** Builds the compression filter of a route, or NULL when enableCompression is false. */
const gw_filter_t *gw_compress_filter_new(const gw_route_t *route, gw_arena_t *arena);

/** Appends `token` to the response's Vary header unless it is already there (or Vary is `*`). */
void gw_res_vary(gw_req_t *req, const char *token);

/** Replaces the value of response header `name`, or adds it. Values must outlive the request. */
void gw_res_set_header(gw_req_t *req, gw_slice_t name, gw_slice_t value);

/** Removes every response header named `name`. */
void gw_res_remove_header(gw_req_t *req, const char *name);

/** Returns `etag` ("x" or W/"x") with "-<token>" before the closing quote, in the request arena. */
gw_slice_t gw_etag_with_suffix(gw_req_t *req, gw_slice_t etag, const char *token);

#endif
