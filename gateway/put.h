/*
 * Appending text to a buffer sized beforehand (message heads, header fields): what the request
 * path uses instead of the printf family, whose format parsing costs more than the bytes written.
 */
#ifndef GW_PUT_H
#define GW_PUT_H

#include <stdint.h>
#include <string.h>

/** Appends n bytes at p; returns the new end. */
static inline char *gw_put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/** Appends a string literal (its length counted by the compiler). */
#define GW_PUT_LIT(p, lit) gw_put((p), (lit), sizeof(lit) - 1)

/** Appends the decimal digits of v (at most 20). */
static inline char *gw_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n) *p++ = tmp[--n];
    return p;
}

/** Appends the lower-case hexadecimal digits of v without leading zeros (at most 16): a chunk size. */
static inline char *gw_put_hex(char *p, uint64_t v)
{
    int shift = 60;
    while (shift > 0 && !(v >> shift)) shift -= 4;
    for (; shift >= 0; shift -= 4) *p++ = "0123456789abcdef"[(v >> shift) & 15];
    return p;
}

#endif
