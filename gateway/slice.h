/* Byte slices that point into a buffer owned by someone else (a read buffer, an arena). */
#ifndef GW_SLICE_H
#define GW_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/** A view of `len` bytes at `base`; never NUL-terminated by contract. */
typedef struct gw_slice {
    const char *base;
    size_t len;
} gw_slice_t;

#define GW_SLICE_LIT(s) ((gw_slice_t){(s), sizeof(s) - 1})

/** Case-sensitive equality with a C string literal or NUL-terminated string. */
static inline bool gw_slice_eq(gw_slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.base, lit, n) == 0;
}

/** ASCII case-insensitive equality (header names, tokens). */
static inline bool gw_slice_ieq(gw_slice_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.base, lit, n) == 0;
}

#endif
