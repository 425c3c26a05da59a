/*
 * The HTTP-01 answer (RFC 8555 §8.3): GET /.well-known/acme-challenge/TOKEN gets the key
 * authorization the ACME thread published for TOKEN (acme_store.h), before any policy or redirect
 * (the CA's validator must reach it on the plain port). Unknown tokens go on to the other handlers.
 */
#ifndef GW_ACME_CHALLENGE_H
#define GW_ACME_CHALLENGE_H

#include "config.h"
#include "handler.h"

/** The handler for routes of a config with enableAutomaticTLS, else NULL. */
const gw_handler_t *gw_acme_challenge_handler(const gw_route_t *route);

#endif
