/*
 * A small, bounded JSON reader for ACME (RFC 8555) responses: the CA's answers are read in place
 * (no tree), by looking up a member of an object and walking the elements of an array. Only what
 * the client needs: strings (with \uXXXX escapes of the BMP) and raw values. Nesting is bounded
 * (GW_JSON_MAX_DEPTH), so a hostile body cannot exhaust the stack.
 */
#ifndef GW_ACME_JSON_H
#define GW_ACME_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "slice.h"

#define GW_JSON_MAX_DEPTH 32

/**
 * The raw text of member `key` of the object `obj` (which must be a whole JSON object, leading
 * and trailing blanks allowed); {NULL, 0} when obj is not a valid object or has no such member.
 */
gw_slice_t gw_json_get(gw_slice_t obj, const char *key);

/**
 * Decodes the JSON string `v` (with its quotes) into out (NUL-terminated). Returns false when v is
 * not a string or does not fit in cap bytes.
 */
bool gw_json_string(gw_slice_t v, char *out, size_t cap);

/** Member `key` of `obj` as a string (gw_json_get + gw_json_string). */
bool gw_json_get_string(gw_slice_t obj, const char *key, char *out, size_t cap);

/**
 * Iterates over the elements of the array `arr`: *pos starts at 0; each call stores the next
 * element's raw text in *elem and returns true, false at the end or on a malformed array.
 */
bool gw_json_array_next(gw_slice_t arr, size_t *pos, gw_slice_t *elem);

#endif
