/*
 * Request-target path normalisation (contract in uri.h). Two passes over the caller's buffer, no
 * allocation: the first canonicalises bytes and escapes into out[1..], the second resolves segments
 * in place (its output never outgrows its input, so it can write behind its read position).
 */
#include "uri.h"

#include <string.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Value of the escape at in[i] == '%', or -1 when it is truncated or not hex. */
static int escape_value(const unsigned char *in, size_t len, size_t i)
{
    if (len - i < 3) return -1;
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* The bytes of most paths, none of them special to either pass: copied as they are. */
static bool is_plain(unsigned char c)
{
    return is_alnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~';
}

/* Characters whose escapes are decoded: unreserved, sub-delims, ":", "@", "/", "[" and "]". Decoding
 * them gives every spelling of a path one form; "/" and "." are decoded on purpose so that "%2e%2e"
 * and "%2F" are resolved below like their plain forms and cannot slip past a prefix rule. */
static bool is_safe(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!$&'()*+,-./:;=@[]_~", c) != NULL);
}

/* Raw bytes that are percent-encoded: < > ^ ` { | } as in Ferron, plus what can never appear in a
 * valid request target (controls, space, '"', DEL and non-ASCII), so no handler ever sees them raw. */
static bool must_encode(unsigned char c)
{
    return c <= 0x20 || c >= 0x7F || c == '"' || strchr("<>^`{|}", c) != NULL;
}

static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (cap - *o < n) return false;
    memcpy(out + *o, s, n);
    *o += n;
    return true;
}

/* 0xC0/0xC1 start overlong UTF-8 (the classic "%c0%af" = "/" bypass); 0xFE/0xFF are never UTF-8.
 * Rejected raw as well as escaped: the raw byte would come out escaped, and that output must itself
 * be accepted. */
static bool is_forbidden(int v)
{
    return v == 0xC0 || v == 0xC1 || v >= 0xFE;
}

/* Handles the escape at in[i]; returns -1 (reject), -2 (no room) or 0. */
static int canon_escape(const unsigned char *in, size_t len, size_t i, char *out, size_t cap, size_t *o)
{
    int v = escape_value(in, len, i);
    if (v < 0 || is_forbidden(v)) return -1;
    if (v == 0) return 0;
    char c = (char)v;
    bool ok = is_safe((unsigned char)v) ? put(out, cap, o, &c, 1) : put(out, cap, o, (const char *)in + i, 3);
    return ok ? 0 : -2;
}

/* Pass one: validates escapes, decodes the safe ones, encodes unsafe raw bytes, turns `\` into `/`
 * and drops NUL bytes. Returns the length written, -1 or -2. */
static long canonicalise(const unsigned char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = in[i];
        bool ok = true;
        if (is_plain(c)) {
            if (o == cap) return -2;
            out[o++] = (char)c;
        } else if (c == '%') {
            int r = canon_escape(in, len, i, out, cap, &o);
            if (r < 0) return r;
            i += 2;
        } else if (is_forbidden(c)) {
            return -1;
        } else if (c == '\\') {
            ok = put(out, cap, &o, "/", 1);
        } else if (c != 0 && must_encode(c)) {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            ok = put(out, cap, &o, esc, 3);
        } else if (c != 0) {
            ok = put(out, cap, &o, (const char *)&c, 1);
        }
        if (!ok) return -2;
    }
    return (long)o;
}

/* Drops the last "/segment" unit of out[0..w); clamps at the root. */
static size_t pop_segment(const char *out, size_t w)
{
    while (w > 0 && out[w - 1] != '/')
        w--;
    return w > 0 ? w - 1 : 0;
}

/* Appends segment seg[0..n) to the "/segment" units in out[0..w) and returns the new length.
 * `keep_empty`: an empty segment between two slashes is kept (double slashes allowed). */
static size_t add_segment(char *out, size_t w, const char *seg, size_t n, bool keep_empty)
{
    if (n == 1 && seg[0] == '.') return w;
    if (n == 2 && seg[0] == '.' && seg[1] == '.') return pop_segment(out, w);
    if (n == 0 && !keep_empty) return w;
    /* Windows ignores trailing dots, so "x.php." would reach x.php without matching rules for it. */
    size_t kept = n;
    while (kept > 0 && seg[kept - 1] == '.')
        kept--;
    if (kept == 0 && n > 0) return w;
    out[w] = '/';
    memmove(out + w + 1, seg, kept);
    return w + 1 + kept;
}

/* Pass two: resolves the path out[start..start+n), which begins with '/', into out[0..). */
static long resolve_segments(char *out, size_t start, size_t n, bool keep_empty)
{
    const size_t end = start + n;
    const bool trailing_slash = out[end - 1] == '/';
    size_t w = 0;
    for (size_t r = start + 1;;) {
        size_t e = r;
        while (e < end && out[e] != '/')
            e++;
        w = add_segment(out, w, out + r, e - r, keep_empty && e < end);
        if (e == end) break;
        r = e + 1;
    }
    if (w == 0 || trailing_slash) out[w++] = '/';
    return (long)w;
}

/*
 * True when in[0..len) is its own normal form, as most request paths are: a leading '/', plain bytes
 * only, no empty segment ("//") and no segment ending in '.' (".", ".." and trailing dots). Both
 * passes would then copy it unchanged, so one scan and a copy do their work.
 */
static bool is_normal(const char *in, size_t len)
{
    if (in[0] != '/' || in[len - 1] == '.') return false;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!is_plain(c) || (c == '/' && (in[i - 1] == '/' || in[i - 1] == '.'))) return false;
    }
    return true;
}

long gw_uri_normalize(const char *in, size_t len, char *out, size_t cap, bool allow_double_slashes)
{
    if (len == 0 || (len == 1 && in[0] == '*')) {
        if (cap < len) return -2;
        if (len) out[0] = '*';
        return (long)len;
    }
    if (len <= cap && is_normal(in, len)) {
        memcpy(out, in, len);
        return (long)len;
    }
    if (cap < 2) return -2;
    /* out[0] is kept free for the leading '/' the path may lack. */
    long m = canonicalise((const unsigned char *)in, len, out + 1, cap - 1);
    if (m < 0) return m;
    size_t start = 1;
    if (m == 0 || out[1] != '/') {
        out[0] = '/';
        start = 0;
        m++;
    }
    return resolve_segments(out, start, (size_t)m, allow_double_slashes);
}

long gw_uri_decode(const char *in, size_t len, char *out, size_t cap)
{
    /* most paths have no escape: a search for '%' and one for NUL (libc's, word at a time), a copy */
    if (len <= cap && !memchr(in, '%', len) && strnlen(in, len) == len) {
        memcpy(out, in, len);
        return (long)len;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = (unsigned char)in[i];
        if (v == '%') {
            v = escape_value((const unsigned char *)in, len, i);
            i += 2;
        }
        if (v <= 0) /* bad escape, or a NUL that would cut a file name short */
            return -1;
        if (o == cap) return -2;
        out[o++] = (char)v;
    }
    return (long)o;
}
