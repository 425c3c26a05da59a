/*
 * Strict, allocation-free HTTP/1.1 message-head parser (RFC 9112), used for requests from clients
 * and for responses from backends. The parser only reads the caller's buffer; every name, value,
 * method and target it returns is a slice of that buffer.
 */
#ifndef GW_HTTP1_PARSER_H
#define GW_HTTP1_PARSER_H

#include "slice.h"

/** One header field as it appeared on the wire (name case preserved, value trimmed of OWS). */
typedef struct gw_header {
    gw_slice_t name;
    gw_slice_t value;
} gw_header_t;

/** Limits a peer cannot exceed; each maps to a config property. */
typedef struct gw_h1_limits {
    size_t max_head_bytes;   /**< request/status line + headers + final CRLF; over: 431 (or 414) */
    size_t max_headers;      /**< header field count; over: 431 */
    size_t max_target_bytes; /**< request-target length; over: 414 */
} gw_h1_limits_t;

/** Result of parsing a request head. */
typedef struct gw_h1_request_head {
    gw_slice_t method;
    gw_slice_t target;
    int minor_version;    /**< 0 or 1 (HTTP/1.0 or HTTP/1.1) */
    gw_header_t *headers; /**< caller-provided array of at least limits->max_headers entries */
    size_t num_headers;   /**< out: number of headers filled */
} gw_h1_request_head_t;

/** Result of parsing a response head (from a backend). */
typedef struct gw_h1_response_head {
    int status; /**< 100..999 */
    gw_slice_t reason;
    int minor_version;
    gw_header_t *headers;
    size_t num_headers;
} gw_h1_response_head_t;

/**
 * Parses a request head from buf[0..len).
 * Returns the number of bytes of the head (including the final CRLF CRLF) when complete, 0 when
 * more bytes are needed (and the limits are not yet exceeded), or a negative HTTP status code for
 * a request that must be refused: -400 (syntax: bad method token, bad target characters, bare CR or
 * LF, obs-fold, whitespace before ':', invalid name or value bytes incl. NUL), -414 (target too
 * long), -431 (head too large or too many headers), -505 (version other than HTTP/1.0 or 1.1).
 * Leading empty lines (CRLF) before the request line are skipped, as RFC 9112 §2.2 allows;
 * they count towards the returned length.
 */
int gw_h1_parse_request(const char *buf, size_t len, gw_h1_request_head_t *out, const gw_h1_limits_t *lim);

/**
 * Same as gw_h1_parse_request for a status line + headers; errors are -502 (malformed, or over a
 * limit). The head is validated as it arrives, so a malformed one fails before it is complete.
 * *out is meaningful only when a length is returned.
 */
int gw_h1_parse_response(const char *buf, size_t len, gw_h1_response_head_t *out, const gw_h1_limits_t *lim);

/** How the body of a message is delimited (RFC 9112 §6.3). */
typedef enum gw_body_kind {
    GW_BODY_NONE,    /**< no body */
    GW_BODY_LENGTH,  /**< Content-Length bytes */
    GW_BODY_CHUNKED, /**< Transfer-Encoding: chunked */
    GW_BODY_CLOSE,   /**< until the connection closes (responses only) */
    GW_BODY_TUNNEL,  /**< raw bytes after a 101 (WebSocket) until either side closes */
} gw_body_kind_t;

/** Framing facts of a request, computed once from its headers. */
typedef struct gw_h1_framing {
    gw_body_kind_t body;
    uint64_t content_length;
    bool keep_alive;       /**< false for HTTP/1.0 without keep-alive, or Connection: close */
    bool expect_continue;  /**< Expect: 100-continue */
    bool upgrade;          /**< Connection: upgrade with an Upgrade header */
    gw_slice_t host;       /**< the single Host header value (empty if absent, HTTP/1.0 only) */
    bool host_lower;       /**< host has no A-Z for certain (learnt while validating it): no folding needed */
} gw_h1_framing_t;

/**
 * Derives the body framing and connection facts of a parsed request and rejects the smuggling
 * shapes: both Content-Length and Transfer-Encoding (-400), a Content-Length that is not a
 * decimal number or several different ones (-400), Transfer-Encoding other than a final
 * "chunked" (-501; any coding we do not implement), HTTP/1.0 with Transfer-Encoding (-400),
 * a missing Host in HTTP/1.1 or more than one Host (-400), an invalid Expect (-417).
 * Returns 0 on success.
 */
int gw_h1_request_framing(const gw_h1_request_head_t *req, gw_h1_framing_t *out);

/**
 * Same for a backend response to a request with method `method`. 1xx, 204, 304 and any response to
 * HEAD have no body; no framing header means GW_BODY_CLOSE. Returns 0 or -502.
 */
int gw_h1_response_framing(const gw_h1_response_head_t *res, gw_slice_t method, gw_h1_framing_t *out);

/** Incremental decoder for chunked bodies. Zero-initialise before use. */
typedef struct gw_chunked_decoder {
    uint64_t chunk_remaining; /**< bytes left in the current chunk's data */
    uint64_t total;           /**< data bytes decoded so far */
    uint32_t line_bytes;      /**< bytes of the current size line / trailer section seen */
    uint8_t state;            /**< private */
    bool done;                /**< true once the last chunk and the trailer section were consumed */
} gw_chunked_decoder_t;

/**
 * Decodes chunked framing in place. On entry buf[0..*len) holds input bytes. On return the body
 * data found in them is compacted to buf[0..*len) and the return value is the number of input
 * bytes consumed. All input is consumed unless the message ended (d->done): then the bytes from
 * the returned offset to the original end are left untouched and belong to the next message.
 * Chunk extensions and trailer fields are skipped (each line bounded by max_line).
 * Returns -400 on malformed framing or a line over max_line bytes, -413 when the data total would
 * exceed max_body.
 */
long gw_chunked_decode(gw_chunked_decoder_t *d, char *buf, size_t *len, size_t max_line, uint64_t max_body);

#endif
