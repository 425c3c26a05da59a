/*
 * FastCGI (`fcgiTo`, `fcgiPath`, `fcgiScriptExtensions`): an adapter on the shared exchange with a
 * FastCGI codec: the request is BEGIN_REQUEST (RESPONDER, FCGI_KEEP_CONN so PHP-FPM connections
 * are pooled), PARAMS from the shared CGI environment builder, the body as STDIN records ended by
 * an empty one; the response is demultiplexed from STDOUT/STDERR/END_REQUEST records, STDOUT
 * parsed as a CGI response, STDERR written to the error log. One request per connection at a time.
 */
#ifndef GW_FCGI_H
#define GW_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgi_env.h"
#include "handler.h"

enum {
    GW_FCGI_BEGIN_REQUEST = 1,
    GW_FCGI_ABORT_REQUEST = 2,
    GW_FCGI_END_REQUEST = 3,
    GW_FCGI_PARAMS = 4,
    GW_FCGI_STDIN = 5,
    GW_FCGI_STDOUT = 6,
    GW_FCGI_STDERR = 7,
};
#define GW_FCGI_HEADER_LEN 8
#define GW_FCGI_MAX_CONTENT 65535

/** Writes a record header (version 1) at h. */
void gw_fcgi_record_header(char *h, int type, uint16_t id, uint16_t content_len, uint8_t padding);

/** Room gw_fcgi_put_request needs for `env`. */
size_t gw_fcgi_request_size(const gw_cgi_env_t *env);

/**
 * Writes BEGIN_REQUEST (responder; keep_conn), the PARAMS stream of `env` (pairs split over
 * records of at most 65535 bytes) and its empty end record, and, when `no_body`, the empty STDIN
 * record. Returns the bytes written.
 */
size_t gw_fcgi_put_request(char *out, uint16_t id, bool keep_conn, const gw_cgi_env_t *env, bool no_body);

/** Response record demultiplexer state; zero it and set id (and on_stderr) to start. */
typedef struct gw_fcgi_decoder {
    uint16_t id; /**< the request id answered; records of others are skipped */
    void (*on_stderr)(void *ctx, const char *data, size_t len);
    void *ctx;
    /* progress */
    bool in_record, ours, done;
    uint8_t type;
    uint32_t content_left, pad_left;
    uint32_t app_status;     /**< from END_REQUEST */
    uint8_t protocol_status; /**< from END_REQUEST: 0 REQUEST_COMPLETE */
} gw_fcgi_decoder_t;

/**
 * Decodes records from buf[0..*len) in place: the STDOUT bytes are moved to buf[0..*len out),
 * STDERR bytes go to on_stderr. Stops after END_REQUEST (d->done) and before a record header that
 * is not complete. Returns the input bytes used, or -1 for a broken stream (bad version, short
 * END_REQUEST).
 */
long gw_fcgi_decode(gw_fcgi_decoder_t *d, char *buf, size_t *len);

/** The `fcgi` module's handler. */
extern const gw_handler_t gw_fcgi_handler;

#endif
