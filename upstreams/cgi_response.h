/*
 * The one CGI-style response-head parser (RFC 3875 §6), shared by cgi, fcgi and scgi: header
 * lines ended by LF or CRLF up to an empty line. `Status:` sets the status and is not forwarded
 * ("404 Not Found", or "HTTP/1.1 404" as Ferron accepts); `Location:` without a 3xx status makes
 * it 302; without either the status is 200.
 */
#ifndef GW_CGI_RESPONSE_H
#define GW_CGI_RESPONSE_H

#include <stddef.h>

#include "http1_parser.h"

/** Most header lines a CGI response head may have (Ferron's limit). */
#define GW_CGI_MAX_HEADERS 128

/**
 * Parses a response head from buf[0..len) into `out` (out->headers: room for `max_headers`;
 * names and values point into buf; Status is left out). Returns the length of the head including
 * the empty line, 0 when more bytes are needed, or -1 when it is not a CGI response head (a line
 * without a colon, a bad name, control bytes, a bad Status, too many headers).
 */
int gw_cgi_parse_head(const char *buf, size_t len, gw_h1_response_head_t *out, size_t max_headers);

#endif
