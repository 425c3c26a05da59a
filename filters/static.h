/* Static files from `wwwroot`: GET/HEAD, index files, MIME types, ETag/Last-Modified, sendfile. */
#ifndef GW_STATIC_H
#define GW_STATIC_H

#include "handler.h"

/** The static file handler: the last handler of every route. */
extern const gw_handler_t gw_static_handler;

/** MIME type for a file name by extension ("application/octet-stream" when unknown). */
const char *gw_mime_type(const char *name, size_t len);

/** Formats an IMF-fixdate (RFC 9110 §5.6.7) of `t` into buf (>= 30 bytes). */
void gw_http_date(int64_t t, char *buf);

#endif
