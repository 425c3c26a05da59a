/*
 * The read side of a server TLS connection: a BIO that takes whatever the socket holds in one
 * read(2) into a chunk of the worker's I/O pool, and hands it to BoringSSL as it asks.
 *
 * Why: BoringSSL reads a record's 5-byte header, then its body, each with its own read from the
 * BIO, and learns that the socket is empty only from one more read failing with EAGAIN: three
 * system calls for a client's flight of one record. Here one read fetches the flight, and a read
 * that came back short marks the socket dry, so the next BIO read answers "retry" at once instead
 * of asking the kernel again (until gw_tls_rbio_rearm).
 *
 * The chunk is held only while it has bytes BoringSSL has not taken (a record cut by the segment
 * boundary): an idle connection holds none.
 */
#ifndef GW_TLS_RBIO_H
#define GW_TLS_RBIO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/bio.h>

#include "mem.h"

/** A read BIO over socket `fd` buffering through `pool` (which must outlive it); NULL on failure.
 * The fd is not closed with the BIO. */
BIO *gw_tls_rbio_new(int fd, gw_chunk_pool_t *pool);

/** Lets the next read reach the socket again: called before each read the codec makes, whose
 * caller learnt from epoll (or from its own loop) that input may be there. */
void gw_tls_rbio_rearm(BIO *bio);

/** True when bytes read from the socket wait in the BIO for BoringSSL (epoll cannot report them). */
bool gw_tls_rbio_has_input(BIO *bio);

/** True when the BIO holds nothing and its last read(2) emptied the socket: a read now would find
 * nothing (until gw_tls_rbio_rearm). */
bool gw_tls_rbio_drained(BIO *bio);

#endif
