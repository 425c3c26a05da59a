/*
 * Request-body spooling: for backends that must be told the body's length before it (FastCGI,
 * SCGI, CGI: CONTENT_LENGTH), a body of unknown length (HTTP/1.1 chunked, HTTP/2 without
 * content-length) is read in full first. It is kept in memory up to requestBufferMemory bytes, then
 * in an unlinked temporary file in requestBufferDirectory (default /tmp); more than the route's
 * maxRequestBodyBytes is refused with 413. Memory stays bounded; the only waiting on the worker is
 * local file writes.
 *
 * Once the body is complete the request looks like a Content-Length request: body_kind becomes
 * GW_BODY_LENGTH, content_length the spooled size, and gw_req_read_body()/gw_req_body_proceed()
 * serve the body from the spool (req->body_source) with the usual one-piece-at-a-time contract.
 * The temporary file is closed (and so deleted) when the request ends.
 */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include <stdint.h>

#include "handler.h"
#include "request.h"

/** Called once the body is spooled (`ok`, total length in req->content_length); when !ok the
 *  request was already answered (413, 400, 500) or the client went away: nothing more to do. */
typedef void (*gw_spool_done_cb)(gw_req_t *req, void *ctx, bool ok);

/** Starts reading the body into the spool. Returns false (nothing started) without memory. */
bool gw_spool_start(gw_req_t *req, gw_spool_done_cb cb, void *ctx);

/**
 * For a handler that needs the body's length: spools the body, then runs `self` again on the now
 * sized request and acts on its answer as the dispatcher would (GW_CONTINUE goes on with the
 * chain, GW_ERROR answers with the error status). Returns what the handler returns now: GW_DONE
 * (suspended), or GW_ERROR (500) when spooling could not start.
 */
gw_handler_result_t gw_spool_then_rerun(const gw_handler_t *self, gw_req_t *req);

#endif
