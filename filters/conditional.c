/* HTTP-dates, entity-tag comparison and precondition evaluation. See http_cond.h. */
#include "http_cond.h"

#include <string.h>
#include <strings.h>

/* ---- HTTP-date (RFC 9110 §5.6.7) ---- */

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static bool take_char(cursor_t *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Reads exactly `n` digits (or 1..n when `n` is negative). */
static bool take_num(cursor_t *c, int n, int *out)
{
    int max = n < 0 ? -n : n, got = 0, v = 0;
    while (got < max && c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        v = v * 10 + (*c->p++ - '0');
        got++;
    }
    *out = v;
    return n < 0 ? got > 0 : got == n;
}

static bool take_month(cursor_t *c, int *mon)
{
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (c->end - c->p < 3) return false;
    for (int i = 0; i < 12; i++)
        if (memcmp(c->p, names + 3 * i, 3) == 0) {
            *mon = i + 1;
            c->p += 3;
            return true;
        }
    return false;
}

static bool take_time(cursor_t *c, int *h, int *m, int *s)
{
    return take_num(c, 2, h) && take_char(c, ':') && take_num(c, 2, m) && take_char(c, ':') && take_num(c, 2, s);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool finish_date(int y, int mon, int d, int h, int mi, int s, int64_t *out)
{
    if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1900) return false;
    *out = days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60 + s;
    return true;
}

/* After "Sun, ": "06 Nov 1994 08:49:37 GMT" or "06-Nov-94 08:49:37 GMT". */
static bool parse_after_comma(cursor_t *c, int64_t *out)
{
    int d, mon, y, h, mi, s;
    if (!take_num(c, 2, &d)) return false;
    bool rfc850 = take_char(c, '-');
    if (!rfc850 && !take_char(c, ' ')) return false;
    if (!take_month(c, &mon) || !take_char(c, rfc850 ? '-' : ' ')) return false;
    if (!take_num(c, rfc850 ? 2 : 4, &y)) return false;
    if (rfc850) y += y < 70 ? 2000 : 1900;
    if (!take_char(c, ' ') || !take_time(c, &h, &mi, &s) || !take_char(c, ' ')) return false;
    if (c->end - c->p != 3 || memcmp(c->p, "GMT", 3) != 0) return false;
    return finish_date(y, mon, d, h, mi, s, out);
}

/* After "Sun ": asctime "Nov  6 08:49:37 1994". */
static bool parse_asctime(cursor_t *c, int64_t *out)
{
    int d, mon, y, h, mi, s;
    if (!take_month(c, &mon) || !take_char(c, ' ')) return false;
    take_char(c, ' ');
    if (!take_num(c, -2, &d) || !take_char(c, ' ') || !take_time(c, &h, &mi, &s) || !take_char(c, ' ')) return false;
    if (!take_num(c, 4, &y) || c->p != c->end) return false;
    return finish_date(y, mon, d, h, mi, s, out);
}

bool gw_http_date_parse(gw_slice_t v, int64_t *out)
{
    cursor_t c = {v.base, v.base + v.len};
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t')) c.p++;
    while (c.end > c.p && (c.end[-1] == ' ' || c.end[-1] == '\t')) c.end--;
    const char *name = c.p;
    while (c.p < c.end && ((*c.p | 0x20) >= 'a' && (*c.p | 0x20) <= 'z')) c.p++;
    if (c.p - name < 3) return false;
    if (take_char(&c, ',')) return take_char(&c, ' ') && parse_after_comma(&c, out);
    return take_char(&c, ' ') && parse_asctime(&c, out);
}

/* ---- entity tags (RFC 9110 §8.8.3, §13.1) ---- */

static const char *const encoding_suffixes[] = {"-br", "-gzip"};

/* Whether tag (quotes included) equals etag, or etag with an encoding suffix before the quote. */
static bool same_resource_tag(const char *tag, size_t tlen, const char *etag, size_t elen)
{
    if (tlen == elen) return memcmp(tag, etag, elen) == 0;
    if (elen < 2 || tlen < elen || memcmp(tag, etag, elen - 1) != 0 || tag[tlen - 1] != '"') return false;
    for (size_t i = 0; i < sizeof(encoding_suffixes) / sizeof(encoding_suffixes[0]); i++) {
        size_t sl = strlen(encoding_suffixes[i]);
        if (tlen == elen + sl && memcmp(tag + elen - 1, encoding_suffixes[i], sl) == 0) return true;
    }
    return false;
}

bool gw_etag_match(gw_slice_t list, const char *etag, bool weak)
{
    const char *p = list.base, *end = list.base + list.len;
    size_t elen = etag ? strlen(etag) : 0;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        if (p == end) break;
        if (*p == '*') return true; /* the representation exists */
        bool is_weak = end - p > 2 && p[0] == 'W' && p[1] == '/';
        if (is_weak) p += 2;
        if (p == end || *p != '"') return false; /* not an entity-tag list: nothing matches */
        const char *start = p++;
        while (p < end && *p != '"') p++;
        if (p == end) return false;
        p++;
        if (etag && (weak || !is_weak) && same_resource_tag(start, (size_t)(p - start), etag, elen)) return true;
    }
    return false;
}

/* ---- evaluation order (RFC 9110 §13.2.2) ---- */

static bool date_header(const gw_req_t *req, const char *name, int64_t *t)
{
    const gw_header_t *h = gw_req_header(req, name);
    return h && gw_http_date_parse(h->value, t);
}

/* Every precondition header is named If-...: most requests have none, and one look at the names
 * spares the four lookups below. */
static bool has_precondition(const gw_req_t *req)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        gw_slice_t n = req->headers[i].name;
        if (n.len > 3 && (n.base[0] | 0x20) == 'i' && (n.base[1] | 0x20) == 'f' && n.base[2] == '-') return true;
    }
    return false;
}

gw_cond_t gw_cond_evaluate(const gw_req_t *req, const char *etag, int64_t mtime)
{
    if (!has_precondition(req)) return GW_COND_PASS;
    bool get_or_head = req->method_id == GW_M_GET || req->method_id == GW_M_HEAD;
    const gw_header_t *im = gw_req_header(req, "if-match");
    int64_t t;
    if (im) {
        if (!gw_etag_match(im->value, etag, false)) return GW_COND_FAILED;
    } else if (date_header(req, "if-unmodified-since", &t) && mtime > t) {
        return GW_COND_FAILED;
    }
    const gw_header_t *inm = gw_req_header(req, "if-none-match");
    if (inm) {
        if (gw_etag_match(inm->value, etag, true)) return get_or_head ? GW_COND_NOT_MODIFIED : GW_COND_FAILED;
    } else if (get_or_head && date_header(req, "if-modified-since", &t) && mtime <= t) {
        return GW_COND_NOT_MODIFIED;
    }
    return GW_COND_PASS;
}

bool gw_if_range_ok(const gw_req_t *req, const char *etag, int64_t mtime)
{
    const gw_header_t *ir = gw_req_header(req, "if-range");
    if (!ir) return true;
    const char *p = ir->value.base;
    size_t n = ir->value.len;
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    if (n && (*p == '"' || *p == 'W')) {
        if (!etag || *p == 'W') return false; /* weak tags never validate a range */
        size_t elen = strlen(etag);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        return n == elen && memcmp(p, etag, elen) == 0; /* strong, and exactly this representation */
    }
    int64_t t;
    return gw_http_date_parse(ir->value, &t) && t == mtime;
}
