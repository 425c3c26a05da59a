/*
 * HTTP/2 server codec on nghttp2 (1.52, v1 API): one server session per client connection driven
 * with mem_recv/mem_send over the connection's transport (plain TCP for h2c with prior knowledge,
 * TLS with ALPN h2). Each stream is a gw_req_t in its own arena implementing gw_codec_ops_t, so
 * handlers do not know which protocol they answer. Output is flushed once per loop iteration from
 * the worker's idle hook, in buffers of whole TLS records.
 */
#ifndef GW_HTTP2_H
#define GW_HTTP2_H

#include <stddef.h>

#include "conn.h"

struct gw_worker;

/**
 * Looks at the first bytes of a fresh connection: 1 when it speaks HTTP/2 (ALPN h2, or the client
 * connection preface on any transport), 0 when not (or when enableHTTP2 is false), -1 when the
 * bytes are a strict prefix of the preface and more are needed to decide.
 */
int gw_h2_detect(const gw_conn_t *c, const char *buf, size_t len);

/**
 * Takes over a connection from the HTTP/1.1 codec: the fd (whose gw_io the caller has stopped), the
 * transport and its state, the connection facts, and the `len` bytes already read. The caller then
 * frees its own struct without closing anything. On failure the connection is closed here.
 */
void gw_h2_takeover(const gw_conn_t *from, const char *buf, size_t len);

/** Writes the output of every HTTP/2 connection that has some (the worker's idle hook). */
void gw_h2_flush_pending(struct gw_worker *w);

/** Frees the worker's HTTP/2 state (callbacks, options); after its loop has stopped. */
void gw_h2_worker_free(struct gw_worker *w);

#endif
