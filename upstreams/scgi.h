/*
 * SCGI (`scgiTo`, `scgiPath`; spec §3.3): an adapter on the shared exchange. The request is a
 * netstring of the shared CGI environment (CONTENT_LENGTH first, SCGI=1) followed by the raw body;
 * the response is CGI-style, its body running until the application closes the connection (so
 * connections are not reused). Unlike Ferron, `/scgi` does not match `/scgifoo`.
 */
#ifndef GW_SCGI_H
#define GW_SCGI_H

#include <stddef.h>

#include "cgi_env.h"
#include "handler.h"

/** Room gw_scgi_put_netstring needs for `env`. */
size_t gw_scgi_netstring_size(const gw_cgi_env_t *env);

/** Writes `<len>:NAME\0VALUE\0...,` for env at out; returns the bytes written. */
size_t gw_scgi_put_netstring(char *out, const gw_cgi_env_t *env);

/** The `scgi` module's handler. */
extern const gw_handler_t gw_scgi_handler;

#endif
