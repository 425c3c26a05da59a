/* The reverse proxy handler (Ferron's rproxy module). */
#ifndef GW_RPROXY_H
#define GW_RPROXY_H

#include "handler.h"

/** Answers requests of routes with `proxyTo` / `secureProxyTo`; others continue. */
extern const gw_handler_t gw_rproxy_handler;

#endif
