/*
 * Targeted cache-control fields (RFC 9213), such as CDN-Cache-Control: the same directives as
 * Cache-Control, written as a Structured Fields Dictionary (RFC 8941 §3.2). A cache configured to
 * honour one uses its directives instead of Cache-Control (and Expires) when the response carries
 * it with a valid, non-empty value, and ignores it when it does not parse.
 */
#ifndef GW_CACHE_TARGETED_H
#define GW_CACHE_TARGETED_H

#include "cache_policy.h"

/**
 * Adds the directives of one field line to `cc` and returns how many members it had, or -1 when
 * the line is not a valid dictionary. Integers, strings and tokens are directive values (strings
 * unquoted, e.g. private="x-user"), a Boolean true (a bare key) is a valueless directive, ?0 and
 * members with inner lists or byte sequences are skipped, parameters are ignored. On -1 `cc` may
 * already hold some members: parse into a scratch copy and keep it only when every line is valid.
 */
int gw_cc_parse_targeted(gw_cc_t *cc, gw_slice_t value);

#endif
