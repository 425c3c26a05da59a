/* A Structured Fields Dictionary reader for targeted cache-control fields. See cache_targeted.h. */
#include "cache_targeted.h"

#include <string.h>

typedef struct sf {
    const char *p, *end;
} sf_t;

typedef enum sf_kind { SF_TRUE, SF_FALSE, SF_VALUE, SF_OTHER } sf_kind_t;

static bool at(const sf_t *s, char c)
{
    return s->p < s->end && *s->p == c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_alpha(char c)
{
    return is_lcalpha(c) || (c >= 'A' && c <= 'Z');
}

static bool is_tchar(char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void skip_sp(sf_t *s)
{
    while (at(s, ' '))
        s->p++;
}

static void skip_ows(sf_t *s)
{
    while (at(s, ' ') || at(s, '\t'))
        s->p++;
}

/* key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ) */
static bool sf_key(sf_t *s, gw_slice_t *out)
{
    const char *k = s->p;
    if (!(at(s, '*') || (s->p < s->end && is_lcalpha(*s->p)))) return false;
    while (s->p < s->end &&
           (is_lcalpha(*s->p) || is_digit(*s->p) || (*s->p && strchr("_-.*", *s->p) != NULL)))
        s->p++;
    *out = (gw_slice_t){k, (size_t)(s->p - k)};
    return true;
}

static size_t digits(sf_t *s)
{
    const char *d = s->p;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return (size_t)(s->p - d);
}

/* An Integer (up to 15 digits) or a Decimal (up to 12 digits, a dot, 1 to 3 digits). */
static bool sf_number(sf_t *s, gw_slice_t *out)
{
    const char *n = s->p;
    if (at(s, '-')) s->p++;
    size_t whole = digits(s);
    if (!whole) return false;
    if (at(s, '.')) {
        s->p++;
        size_t frac = digits(s);
        if (whole > 12 || frac < 1 || frac > 3) return false;
    } else if (whole > 15) {
        return false;
    }
    *out = (gw_slice_t){n, (size_t)(s->p - n)};
    return true;
}

/* A String: printable ASCII between quotes, with only \" and \\ escaped; `out` is what is inside. */
static bool sf_string(sf_t *s, gw_slice_t *out)
{
    const char *b = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *out = (gw_slice_t){b, (size_t)(s->p - b)};
            s->p++;
            return true;
        }
        if (c == '\\') {
            if (s->p + 1 >= s->end || (s->p[1] != '"' && s->p[1] != '\\')) return false;
            s->p += 2;
            continue;
        }
        if (c < 0x20 || c > 0x7e) return false;
        s->p++;
    }
    return false;
}

static bool sf_token(sf_t *s, gw_slice_t *out)
{
    const char *t = s->p++;
    while (s->p < s->end && (is_tchar(*s->p) || *s->p == ':' || *s->p == '/'))
        s->p++;
    *out = (gw_slice_t){t, (size_t)(s->p - t)};
    return true;
}

static bool sf_bytes(sf_t *s)
{
    s->p++;
    while (s->p < s->end && (is_alpha(*s->p) || is_digit(*s->p) || (*s->p && strchr("+/=", *s->p) != NULL)))
        s->p++;
    if (!at(s, ':')) return false;
    s->p++;
    return true;
}

static bool sf_bare_item(sf_t *s, gw_slice_t *v, sf_kind_t *kind)
{
    if (s->p >= s->end) return false;
    char c = *s->p;
    *kind = SF_VALUE;
    if (c == '-' || is_digit(c)) return sf_number(s, v);
    if (c == '"') return sf_string(s, v);
    if (c == '*' || is_alpha(c)) return sf_token(s, v);
    *kind = SF_OTHER;
    if (c == ':') return sf_bytes(s);
    if (c != '?' || s->p + 1 >= s->end || (s->p[1] != '0' && s->p[1] != '1')) return false;
    *kind = s->p[1] == '1' ? SF_TRUE : SF_FALSE;
    s->p += 2;
    return true;
}

/* parameters = *( ";" *SP key [ "=" bare-item ] ): checked, never used */
static bool sf_params(sf_t *s)
{
    while (at(s, ';')) {
        s->p++;
        skip_sp(s);
        gw_slice_t k, v;
        sf_kind_t kind;
        if (!sf_key(s, &k)) return false;
        if (at(s, '=')) {
            s->p++;
            if (!sf_bare_item(s, &v, &kind)) return false;
        }
    }
    return true;
}

/* inner-list = "(" *SP [ item *( 1*SP item ) *SP ] ")" parameters */
static bool sf_inner_list(sf_t *s)
{
    s->p++;
    for (;;) {
        skip_sp(s);
        if (at(s, ')')) {
            s->p++;
            return sf_params(s);
        }
        gw_slice_t v;
        sf_kind_t kind;
        if (!sf_bare_item(s, &v, &kind) || !sf_params(s)) return false;
        if (!at(s, ' ') && !at(s, ')')) return false;
    }
}

/* dict-member = key ( parameters / "=" ( item / inner-list ) ) */
static bool sf_member(sf_t *s, gw_slice_t *k, gw_slice_t *v, sf_kind_t *kind)
{
    *v = (gw_slice_t){NULL, 0};
    *kind = SF_TRUE;
    if (!sf_key(s, k)) return false;
    if (!at(s, '=')) return sf_params(s);
    s->p++;
    if (at(s, '(')) {
        *kind = SF_OTHER;
        return sf_inner_list(s);
    }
    return sf_bare_item(s, v, kind) && sf_params(s);
}

int gw_cc_parse_targeted(gw_cc_t *cc, gw_slice_t value)
{
    sf_t s = {value.base, value.base + value.len};
    skip_sp(&s);
    while (s.end > s.p && s.end[-1] == ' ')
        s.end--;
    int members = 0;
    while (s.p < s.end) {
        gw_slice_t k, v;
        sf_kind_t kind;
        if (!sf_member(&s, &k, &v, &kind)) return -1;
        members++;
        if (kind == SF_TRUE) gw_cc_apply(cc, k, (gw_slice_t){NULL, 0}, false);
        if (kind == SF_VALUE) gw_cc_apply(cc, k, v, true);
        skip_ows(&s);
        if (s.p == s.end) break;
        if (!at(&s, ',')) return -1;
        s.p++;
        skip_ows(&s);
        if (s.p == s.end) return -1; /* a trailing comma */
    }
    return members;
}
