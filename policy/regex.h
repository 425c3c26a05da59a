/*
 * Regular expressions for rewriteMap and nonStandardCodes (PCRE2, JIT-compiled at config load).
 * Replacement strings use $1, ${1}, ${name} and $$ as Ferron's do.
 */
#ifndef GW_POLICY_REGEX_H
#define GW_POLICY_REGEX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_regex gw_regex_t;

/** Compiles `pattern`; on failure returns NULL and writes "offset N: reason" to err. */
gw_regex_t *gw_regex_compile(const char *pattern, char *err, size_t errlen);

/** Frees a compiled pattern (NULL is ignored). */
void gw_regex_free(gw_regex_t *re);

/** True when `re` matches somewhere in s[0..len). */
bool gw_regex_match(const gw_regex_t *re, const char *s, size_t len);

/**
 * Replaces the first match of `re` in s[0..len) with the expansion of `repl`, keeping the text
 * around it (Rust's Regex::replace, which Ferron uses). Writes the result to out (capacity *outlen)
 * and sets *outlen. Returns 1 when replaced, 0 when there is no match, -1 when out is too small
 * (*outlen then holds the size needed), -2 on another error (a bad group reference).
 */
int gw_regex_replace(const gw_regex_t *re, const char *s, size_t len, const char *repl, char *out,
                     size_t *outlen);

#endif
