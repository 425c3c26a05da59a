/*
 * Request-target normalisation, done once per request before routing, so that routing, policy and
 * every handler see the same path (an encoded variant cannot slip past a rule written for the
 * plain one). Behaviour follows Ferron 1.x's URL sanitiser (spec §3.4).
 */
#ifndef GW_URI_H
#define GW_URI_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Normalises the path part `in[0..len)` (no query) into `out` (capacity `cap`, at least len*3+2).
 * - NUL bytes (raw or %00) are removed;
 * - %XX must be valid hex (else error); 0xC0, 0xC1 and >= 0xFE, escaped or raw, are errors; escapes of
 *   unreserved/sub-delim/":@/" characters are decoded, other escapes kept as given;
 * - raw < > ^ ` { | } are percent-encoded (so are controls, space, '"', DEL and bytes >= 0x80);
 *   `\` is a separator; repeated slashes collapse unless allow_double_slashes;
 * - trailing dots of a segment are removed ("a." -> "a", "..." -> removed), "." segments dropped,
 *   ".." pops the previous segment and is clamped at the root;
 * - a leading "/" is enforced; a trailing "/" is kept.
 * "*" and the empty path are returned unchanged. Returns the output length, or -1 for a request
 * that must get 400 (bad escape, forbidden byte), or -2 when `cap` is too small.
 */
long gw_uri_normalize(const char *in, size_t len, char *out, size_t cap, bool allow_double_slashes);

/**
 * Percent-decodes in[0..len) into out (capacity >= len). Returns the decoded length, -1 for a bad
 * escape or a NUL byte (decoded or raw), or -2 when `cap` is too small. Used by handlers that map the
 * normalised path onto the file system.
 */
long gw_uri_decode(const char *in, size_t len, char *out, size_t cap);

#endif
