/*
 * Automatic TLS (`enableAutomaticTLS`): certificates from an ACME CA (RFC 8555) for every
 * non-wildcard `domain` of the hosts, one certificate for them all. A dedicated ACME thread runs
 * the sequential issuance (its requests to the CA are made by worker 0's loop, acme_http.h, while
 * the thread waits; polls and back-off sleep on the thread, never on a worker), installs through the
 * process-wide store (acme_store.h; served from the next handshake, no reload), persists the
 * account key, the certificate and its key with mode 0600 in `automaticTLSContactCacheDirectory`,
 * and renews `automaticTLSRenewBefore` seconds before expiry. A failure is logged and retried with
 * exponential back-off up to `automaticTLSRetryMax`, or as long as the CA's Retry-After asks (a day
 * at most); what is served stays.
 * A valid cached certificate is installed at start without contacting the CA.
 */
#ifndef GW_ACME_H
#define GW_ACME_H

#include <stdbool.h>
#include <stddef.h>

struct gw_config;
struct gw_worker;

typedef struct gw_acme gw_acme_t;

/** True when `cfg` turns automatic TLS on. */
bool gw_acme_enabled(const struct gw_config *cfg);

/**
 * Installs a valid cached certificate at once, then starts the ACME thread (which copies what it
 * needs from cfg); its requests to the CA are made by worker `w0`, which must run until gw_acme_stop
 * returns. Returns NULL when automatic TLS is off or cannot start (logged).
 */
gw_acme_t *gw_acme_start(const struct gw_config *cfg, struct gw_worker *w0);

/** True when a reload from `old` to `cfg` leaves automatic TLS as it is (its properties and the
 *  host domains it orders for); the ACME thread keeps the start-up settings until a restart. */
bool gw_acme_same_settings(const struct gw_config *old, const struct gw_config *cfg);

/** Stops the thread (interrupting a request to the CA in progress) and frees it; what it installed
 *  stays served until gw_acme_store_free (acme_store.h), once the workers have stopped. */
void gw_acme_stop(gw_acme_t *a);

#endif
