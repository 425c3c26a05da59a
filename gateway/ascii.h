/*
 * ASCII case folding of header names, eight bytes at a time. strncasecmp and tolower consult the
 * locale and go byte by byte; header names are ASCII and short, so a word-wide fold (exact for every
 * byte value: only A-Z change) compares or copies a name in a couple of steps.
 */
#ifndef GW_ASCII_H
#define GW_ASCII_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "slice.h"

/** The eight bytes of `w` with A-Z turned into a-z and every other byte unchanged. */
static inline uint64_t gw_ascii_lower8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t low7 = w & ~high;                        /* adding to 7 bits never carries into the next byte */
    uint64_t from_a = low7 + ones * (0x80 - 'A');     /* high bit set where the byte is >= 'A' */
    uint64_t past_z = low7 + ones * (0x80 - 'Z' - 1); /* high bit set where the byte is > 'Z' */
    uint64_t upper = from_a & ~past_z & ~w & high;    /* ~w: bytes >= 0x80 are not letters */
    return w | (upper >> 2);                          /* 0x80 >> 2 is the case bit 0x20 */
}

static inline char gw_ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Lower-cases the eight bytes at src + i into dst + i. */
static inline void gw_ascii_lower_word(char *dst, const char *src, size_t i)
{
    uint64_t w;
    memcpy(&w, src + i, 8);
    w = gw_ascii_lower8(w);
    memcpy(dst + i, &w, 8);
}

/** Copies n bytes from src to dst (not overlapping) with A-Z lower-cased. From eight bytes on, the
 *  last word overlaps the one before instead of a byte loop. */
static inline void gw_ascii_lower_copy(char *dst, const char *src, size_t n)
{
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            dst[i] = gw_ascii_lower(src[i]);
        return;
    }
    for (size_t i = 0; n - i > 8; i += 8)
        gw_ascii_lower_word(dst, src, i);
    gw_ascii_lower_word(dst, src, n - 8);
}

/* Loads n (<= 8) bytes into a word, the rest zero (a zero byte folds to itself). */
static inline uint64_t gw_ascii_load(const char *p, size_t n)
{
    uint64_t w = 0;
    memcpy(&w, p, n);
    return w;
}

/** Is `s` equal to `lower_lit` (lower-case) ignoring ASCII case? The length is compared first; for a
 *  literal the compiler counts strlen and unrolls the rest into a few word comparisons, the last
 *  word overlapping the one before instead of a byte loop. */
static inline bool gw_ascii_ieq(gw_slice_t s, const char *lower_lit)
{
    size_t n = strlen(lower_lit);
    if (s.len != n) return false;
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (gw_ascii_lower(s.base[i]) != lower_lit[i]) return false;
        return true;
    }
    size_t step = n < 8 ? 4 : 8, i = 0;
    for (; n - i > step; i += step)
        if (gw_ascii_lower8(gw_ascii_load(s.base + i, step)) != gw_ascii_load(lower_lit + i, step))
            return false;
    i = n - step; /* the last word, overlapping what was compared */
    return gw_ascii_lower8(gw_ascii_load(s.base + i, step)) == gw_ascii_load(lower_lit + i, step);
}

#endif
