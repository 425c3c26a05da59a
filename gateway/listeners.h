/*
 * Listening sockets. They belong to the process, keyed by address (gw_listen_same): a reload opens
 * the addresses that are new and closes the ones that are gone, and never closes and reopens one
 * that stays (that would drop the connections waiting in its accept queue). A TCP address gets one
 * SO_REUSEPORT socket per worker; a Unix-socket address (`port: "unix:/path"`) one socket, shared by
 * the workers through dup()ed descriptors.
 */
#ifndef GW_LISTENERS_H
#define GW_LISTENERS_H

#include <stdbool.h>

#include "config.h"

/** True when a and b name the same listener: same address (or socket path), TLS mode and role. */
bool gw_listen_same(const gw_listen_t *a, const gw_listen_t *b);

/**
 * True when a and b would take each other's connections: the same socket path, or the same port
 * on the same address or with either on the wildcard address (SO_REUSEPORT lets both bind, and the
 * more specific one would silently win the clients it matches).
 */
bool gw_listen_overlap(const gw_listen_t *a, const gw_listen_t *b);

/** [::] or 0.0.0.0 (stored v4-mapped): every local address of its family. */
bool gw_listen_is_wildcard(const struct in6_addr *a);

/**
 * Opens the `workers` descriptors of listener `l` into fds[0..workers). Returns 0, or -errno with
 * nothing left open. A stale Unix socket file (no one listening) is replaced.
 */
int gw_listen_open_all(const gw_listen_t *l, unsigned workers, int *fds);

/** Removes the socket file of a Unix-socket listener (once the last descriptor is closed). */
void gw_listen_unlink(const gw_listen_t *l);

#endif
