/*
 * Conditional requests and byte ranges (RFC 9110 §13 and §14): HTTP-date parsing, entity-tag
 * comparison, the precondition evaluation order of §13.2.2, and the Range parser. Pure functions
 * over header values, so every rule is unit-tested without a connection.
 */
#ifndef GW_HTTP_COND_H
#define GW_HTTP_COND_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"

/**
 * Parses an HTTP-date: IMF-fixdate, the obsolete RFC 850 form and asctime (RFC 9110 §5.6.7).
 * Returns false for anything else (an invalid date makes its condition be ignored).
 */
bool gw_http_date_parse(gw_slice_t s, int64_t *out);

/**
 * Whether the entity-tag list `list` (If-Match / If-None-Match / If-Range syntax, or "*")
 * matches `etag` (a quoted strong tag, as we generate them). `weak`: weak comparison (W/ prefixes
 * ignored); else strong (a W/ tag in the list never matches). A listed tag also matches when it is
 * `etag` with an encoding suffix (`"x-br"`, `"x-gzip"`), the tag the compression filter gives the
 * encoded representation of the same resource.
 */
bool gw_etag_match(gw_slice_t list, const char *etag, bool weak);

/** What the preconditions of a request decide. */
typedef enum gw_cond {
    GW_COND_PASS = 0,       /**< go on and send the representation */
    GW_COND_NOT_MODIFIED,   /**< 304 */
    GW_COND_FAILED,         /**< 412 */
} gw_cond_t;

/**
 * Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in the order of
 * RFC 9110 §13.2.2 against a representation with entity-tag `etag` (NULL: none) last modified at
 * `mtime` (seconds). If-Modified-Since is only used for GET and HEAD, and a date condition is
 * ignored when the matching tag condition is present or the date is invalid.
 */
gw_cond_t gw_cond_evaluate(const gw_req_t *req, const char *etag, int64_t mtime);

/** One satisfiable byte range, inclusive offsets converted to [first, first+len). */
typedef struct gw_range {
    uint64_t first;
    uint64_t len;
} gw_range_t;

/** Outcome of parsing a Range header against a representation of known size. */
typedef enum gw_range_result {
    GW_RANGE_NONE = 0,       /**< absent, malformed, another unit or too many: send it all (200) */
    GW_RANGE_OK,             /**< `*count` ranges, sorted and with overlaps merged (206) */
    GW_RANGE_UNSATISFIABLE,  /**< valid syntax but no range overlaps the body (416) */
} gw_range_result_t;

/** Most ranges one request may ask for; more is treated as no Range at all. */
#define GW_MAX_RANGES 32

/**
 * Parses `value` (RFC 9110 §14.1.2: "bytes=0-99, 200-, -50") for a body of `size` bytes into at
 * most `max` ranges. Ranges are sorted and overlapping or adjacent ones coalesced (§14.2 allows
 * it; it defeats overlapping-range amplification), so the result never covers a byte twice.
 */
gw_range_result_t gw_range_parse(gw_slice_t value, uint64_t size, gw_range_t *out, size_t max, size_t *count);

/**
 * Whether a Range request should be honoured given its If-Range (RFC 9110 §13.1.5): true when
 * If-Range is absent or matches the current `etag` strongly, or is a date equal to `mtime`.
 */
bool gw_if_range_ok(const gw_req_t *req, const char *etag, int64_t mtime);

/**
 * Sends a 206 for `n` ranges (from gw_range_parse) of a body of `size` bytes of type `mime` that is
 * in memory (`data`) or in file `fd` (sendfile where possible): one range as a plain body with
 * Content-Range, several as multipart/byteranges. Headers already set are kept. `data`, `fd` and
 * `mime` must stay valid until the request ends.
 */
void gw_send_ranges(gw_req_t *req, const char *data, int fd, uint64_t size, const char *mime, const gw_range_t *r,
                    size_t n);

#endif
