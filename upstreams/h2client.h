/*
 * HTTP/2 to backends (targets with `protocol: h2` over TLS with ALPN h2, `h2c` with prior
 * knowledge, or `auto` while their ALPN answer is h2; an http/1.1 answer hands the requests to the
 * HTTP/1.1 engine): nghttp2 client sessions on pooled connections, many streams per session. A
 * request becomes one stream on a session of its target's pool that has room (up to the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS, at most proxyHttp2MaxConcurrentStreams); a new session is
 * opened beyond that; idle sessions are checked with PINGs (proxyHttp2PingInterval). The request
 * body follows the stream's flow control; the response body is returned to the backend's window
 * only once the client took it (back-pressure both ways). Trailers (gRPC's grpc-status) pass
 * through; a GOAWAY lets in-flight streams finish while new ones go to another session; a backend
 * failure mid-response becomes an abort (RST_STREAM towards HTTP/2 clients).
 */
#ifndef GW_H2CLIENT_H
#define GW_H2CLIENT_H

#include <stdbool.h>

#include "request.h"
#include "target.h"

struct gw_pool;

/** The HTTP/1.1 engine taking over a request for a `protocol: auto` target whose ALPN answer was
 *  http/1.1, on that target's pool (rproxy.c). False without memory. */
typedef bool (*gw_h2client_fallback_t)(gw_req_t *req, struct gw_pool *pool);

/** Proxies `req` to a target of `list` (whose targets speak HTTP/2, or may: `protocol: auto`).
 *  False without memory. */
bool gw_h2client_start(gw_req_t *req, const gw_target_list_t *list, gw_h2client_fallback_t fallback);

/** Closes the sessions of a pool being freed (`sessions` is the pool's h2 slot, pool.h). */
void gw_h2client_pool_free(void *sessions);

#endif
