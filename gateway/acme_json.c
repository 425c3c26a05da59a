/* A bounded in-place JSON reader. See acme_json.h. */
#include "acme_json.h"

#include <string.h>

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool skip_string(cursor_t *c)
{
    if (c->p >= c->end || *c->p != '"') return false;
    for (c->p++; c->p < c->end; c->p++) {
        if (*c->p == '\\') {
            c->p++; /* the escaped character; \uXXXX digits are plain characters here */
            continue;
        }
        if ((unsigned char)*c->p < 0x20) return false;
        if (*c->p == '"') {
            c->p++;
            return true;
        }
    }
    return false;
}

static bool skip_value(cursor_t *c, int depth);

/* An object or array body after its opening bracket, up to and including the closing one. */
static bool skip_container(cursor_t *c, char close, int depth)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        skip_ws(c);
        if (close == '}') {
            if (!skip_string(c)) return false;
            skip_ws(c);
            if (c->p >= c->end || *c->p++ != ':') return false;
        }
        if (!skip_value(c, depth)) return false;
        skip_ws(c);
        if (c->p >= c->end) return false;
        char ch = *c->p++;
        if (ch == close) return true;
        if (ch != ',') return false;
    }
}

static bool skip_scalar(cursor_t *c)
{
    const char *start = c->p;
    while (c->p < c->end && strchr("+-.0123456789eEtruefalsn", *c->p))
        c->p++;
    size_t n = (size_t)(c->p - start);
    if (!n) return false;
    if ((*start >= '0' && *start <= '9') || *start == '-') return true;
    return (n == 4 && (!memcmp(start, "true", 4) || !memcmp(start, "null", 4))) ||
           (n == 5 && !memcmp(start, "false", 5));
}

static bool skip_value(cursor_t *c, int depth)
{
    skip_ws(c);
    if (c->p >= c->end) return false;
    if (*c->p == '"') return skip_string(c);
    if (*c->p == '{' || *c->p == '[') {
        if (depth >= GW_JSON_MAX_DEPTH) return false;
        char close = *c->p == '{' ? '}' : ']';
        c->p++;
        return skip_container(c, close, depth + 1);
    }
    return skip_scalar(c);
}

/* Compares the JSON string at c (not advanced) with key; only escape-free keys can match. */
static bool key_is(const cursor_t *c, const char *key)
{
    size_t n = strlen(key);
    return c->end - c->p >= (ptrdiff_t)(n + 2) && c->p[0] == '"' && !memcmp(c->p + 1, key, n) &&
           c->p[n + 1] == '"';
}

gw_slice_t gw_json_get(gw_slice_t obj, const char *key)
{
    gw_slice_t none = {NULL, 0};
    if (!obj.base) return none; /* before any arithmetic on the pointer: NULL + 0 is undefined */
    cursor_t c = {obj.base, obj.base + obj.len};
    skip_ws(&c);
    if (c.p >= c.end || *c.p++ != '{') return none;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') return none;
    for (;;) {
        skip_ws(&c);
        bool hit = key_is(&c, key);
        if (!skip_string(&c)) return none;
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ':') return none;
        skip_ws(&c);
        const char *start = c.p;
        if (!skip_value(&c, 1)) return none;
        if (hit) return (gw_slice_t){start, (size_t)(c.p - start)};
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != ',') return none; /* '}' or garbage: not found */
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Writes the code point of \uXXXX at s (after the 'u') as UTF-8; returns bytes written, 0 if bad. */
static size_t put_unicode(const char *s, const char *end, char *out)
{
    if (end - s < 4) return 0;
    unsigned cp = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0) return 0;
        cp = cp << 4 | (unsigned)d;
    }
    if (cp >= 0xd800 && cp <= 0xdfff) return 0; /* surrogates: nothing ACME sends needs them */
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

static char simple_escape(char ch)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = ch ? strchr(from, ch) : NULL;
    return hit ? to[hit - from] : 0;
}

bool gw_json_string(gw_slice_t v, char *out, size_t cap)
{
    if (!v.base || !cap) return false; /* before any arithmetic on the pointer: NULL + 0 is undefined */
    cursor_t c = {v.base, v.base + v.len};
    if (!skip_string(&c) || c.p != c.end) return false;
    size_t n = 0;
    for (const char *s = v.base + 1; s < v.base + v.len - 1; s++) {
        if (cap - n < 4) return false;
        if (*s != '\\') {
            out[n++] = *s;
        } else if (s[1] == 'u') {
            size_t w = put_unicode(s + 2, v.base + v.len - 1, out + n);
            if (!w) return false;
            n += w;
            s += 5;
        } else {
            char e = simple_escape(s[1]);
            if (!e) return false;
            out[n++] = e;
            s++;
        }
    }
    out[n] = '\0';
    return true;
}

bool gw_json_get_string(gw_slice_t obj, const char *key, char *out, size_t cap)
{
    return gw_json_string(gw_json_get(obj, key), out, cap);
}

bool gw_json_array_next(gw_slice_t arr, size_t *pos, gw_slice_t *elem)
{
    if (!arr.base) return false;
    cursor_t c = {arr.base, arr.base + arr.len};
    if (*pos == 0) {
        skip_ws(&c);
        if (c.p >= c.end || *c.p++ != '[') return false;
    } else {
        c.p = arr.base + *pos;
    }
    skip_ws(&c);
    if (c.p >= c.end || *c.p == ']') return false;
    const char *start = c.p;
    if (!skip_value(&c, 1)) return false;
    *elem = (gw_slice_t){start, (size_t)(c.p - start)};
    skip_ws(&c);
    if (c.p < c.end && *c.p == ',')
        c.p++;
    else if (c.p >= c.end || *c.p != ']')
        return false;
    *pos = (size_t)(c.p - arr.base);
    return true;
}
