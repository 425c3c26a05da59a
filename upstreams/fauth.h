/* Forward authentication (Ferron's fauth, Traefik's ForwardAuth). */
#ifndef GW_FAUTH_H
#define GW_FAUTH_H

#include "handler.h"

/**
 * For routes with `authTo`: sends a GET with the client's headers and X-Forwarded-Method/-Proto/
 * -Host/-Uri/-For to the auth server. A 2xx response lets the request go on, with the headers named
 * in `forwardedAuthCopyHeaders` copied from it (the client's own copies are always removed first, so
 * they cannot be forged); any other response is returned to the client as it is (a 302 to a login
 * page works). An auth server that cannot be reached answers 503 (fail closed).
 */
extern const gw_handler_t gw_fauth_handler;

#endif
