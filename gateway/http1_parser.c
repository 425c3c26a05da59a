/*
 * Strict HTTP/1.1 message-head parser, framing rules and chunked decoder (RFC 9110, RFC 9112).
 *
 * The head parsers are stateless: the caller offers the whole buffer again each time bytes arrive.
 * To keep that cheap, an incomplete request head is only searched for its terminating empty line
 * and checked against the limits (request line, header line count, size); the full validation runs
 * once, when the head is complete. A response head, which arrives with its body, is validated in the
 * pass that finds its end. Nothing here allocates or depends on the locale.
 */
#include "http1_parser.h"

#include <limits.h>

#include "ascii.h"

/* Returned by the internal parsers when the buffer ends before the construct does. */
#define NEED_MORE 1

/* ---- character classes ------------------------------------------------------------------------ */

enum {
    C_TCHAR = 0x01,    /* token (RFC 9110 5.6.2): method, field name, coding and option names */
    C_FVAL = 0x02,     /* field-value and reason-phrase bytes: HTAB, SP, VCHAR, obs-text */
    C_TARGET = 0x04,   /* request-target bytes: VCHAR (printable ASCII without SP) */
    C_HEX = 0x08,      /* HEXDIG */
    C_DIGIT = 0x10,    /* DIGIT */
    C_REGNAME = 0x20,  /* reg-name bytes of RFC 3986 (unreserved / sub-delims; '%' handled apart) */
    C_SCHEME = 0x40,   /* scheme bytes after the first: ALPHA / DIGIT / "+" / "-" / "." */
    C_OWS = 0x80,      /* SP / HTAB */
    C_LOWNAME = 0x100, /* reg-name bytes other than A-Z: a host that needs no lower-casing */
};

#define IN_(c, lo, hi) ((c) >= (lo) && (c) <= (hi))
#define ALPHA_(c) (IN_(c, 'A', 'Z') || IN_(c, 'a', 'z'))
#define DIGIT_(c) IN_(c, '0', '9')
#define HEX_(c) (DIGIT_(c) || IN_(c, 'A', 'F') || IN_(c, 'a', 'f'))
#define TCHAR_(c)                                                                                            \
    (ALPHA_(c) || DIGIT_(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' ||         \
     (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||      \
     (c) == '`' || (c) == '|' || (c) == '~')
#define SUBDELIM_(c)                                                                                         \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' ||      \
     (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define REGNAME_(c)                                                                                          \
    (ALPHA_(c) || DIGIT_(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || SUBDELIM_(c))
#define SCHEME_(c) (ALPHA_(c) || DIGIT_(c) || (c) == '+' || (c) == '-' || (c) == '.')
#define FVAL_(c) ((c) == '\t' || IN_(c, 0x20, 0x7E) || (c) >= 0x80)

#define CLASS_OF(c)                                                                                          \
    ((TCHAR_(c) ? C_TCHAR : 0) | (FVAL_(c) ? C_FVAL : 0) | (IN_(c, 0x21, 0x7E) ? C_TARGET : 0) |             \
     (HEX_(c) ? C_HEX : 0) | (DIGIT_(c) ? C_DIGIT : 0) | (REGNAME_(c) ? C_REGNAME : 0) |                     \
     (SCHEME_(c) ? C_SCHEME : 0) | ((c) == ' ' || (c) == '\t' ? C_OWS : 0) |                                 \
     (REGNAME_(c) && !IN_(c, 'A', 'Z') ? C_LOWNAME : 0))
#define ROW_(b)                                                                                              \
    CLASS_OF((b) + 0), CLASS_OF((b) + 1), CLASS_OF((b) + 2), CLASS_OF((b) + 3), CLASS_OF((b) + 4),           \
        CLASS_OF((b) + 5), CLASS_OF((b) + 6), CLASS_OF((b) + 7), CLASS_OF((b) + 8), CLASS_OF((b) + 9),       \
        CLASS_OF((b) + 10), CLASS_OF((b) + 11), CLASS_OF((b) + 12), CLASS_OF((b) + 13), CLASS_OF((b) + 14),  \
        CLASS_OF((b) + 15)

/* One table load per byte in every scanning loop; built at compile time from the grammar above. */
static const uint16_t char_class[256] = {
    ROW_(0x00), ROW_(0x10), ROW_(0x20), ROW_(0x30), ROW_(0x40), ROW_(0x50), ROW_(0x60), ROW_(0x70),
    ROW_(0x80), ROW_(0x90), ROW_(0xA0), ROW_(0xB0), ROW_(0xC0), ROW_(0xD0), ROW_(0xE0), ROW_(0xF0),
};

static inline bool is_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

/* First index in [pos, end) whose byte is not in `cls`, or end. */
static size_t scan_class(const char *buf, size_t pos, size_t end, unsigned cls)
{
    while (pos < end && is_class(buf[pos], cls))
        pos++;
    return pos;
}

static unsigned hex_value(char c)
{
    return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

static bool is_token(gw_slice_t s)
{
    return s.len > 0 && scan_class(s.base, 0, s.len, C_TCHAR) == s.len;
}

static gw_slice_t trim_ows(gw_slice_t s)
{
    while (s.len && is_class(s.base[0], C_OWS)) {
        s.base++;
        s.len--;
    }
    while (s.len && is_class(s.base[s.len - 1], C_OWS))
        s.len--;
    return s;
}

/* ---- eight bytes at a time ---------------------------------------------------------------------- */

#define ONES_ 0x0101010101010101u
#define HIGHS_ 0x8080808080808080u

/*
 * Index (0..7) in memory order of the first byte of a loaded word whose bit 7 is set in `flags`
 * (flags != 0, only bits 7 of bytes set).
 */
static inline size_t first_flagged_byte(uint64_t flags)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(flags) / 8;
#else
    return (size_t)__builtin_clzll(flags) / 8;
#endif
}

/*
 * Bit 7 set in each byte of `w` that is a letter or '-', the bytes of nearly every field name.
 * Setting bit 0x20 maps exactly A-Z and a-z (of the bytes below 0x80) into a-z; no sum below
 * leaves its byte, so every byte's answer is exact, and ~w leaves out the bytes from 0x80 on.
 */
static inline uint64_t letters_or_dash(uint64_t w)
{
    uint64_t low7 = w & ~HIGHS_, folded = low7 | ONES_ * 0x20;
    uint64_t letters = (folded + ONES_ * (0x80 - 'a')) & ~(folded + ONES_ * (0x7F - 'z'));
    uint64_t not_dash = (low7 ^ ONES_ * '-') + ONES_ * 0x7F; /* bit 7 set unless the byte is '-' */
    return (letters | ~not_dash) & ~w & HIGHS_;
}

/*
 * The field-name scan: letters and '-' pass eight at a time; from the first other byte (the ':'
 * after a short name, a digit, a rarer token byte or a bad one) the byte loop decides.
 */
static size_t scan_field_name(const char *buf, size_t pos, size_t end)
{
    while (end - pos >= 8) {
        uint64_t w;
        memcpy(&w, buf + pos, 8);
        uint64_t others = ~letters_or_dash(w) & HIGHS_;
        if (others) {
            pos += first_flagged_byte(others);
            break;
        }
        pos += 8;
    }
    return scan_class(buf, pos, end, C_TCHAR);
}

/*
 * The field-value scan, eight bytes at a time while they are plainly valid: a word passes when none
 * of its bytes is below 0x20 or is DEL (the classic "has a byte less than n" and "has a zero byte"
 * tests). A byte that stops the value is always flagged; a borrow may flag a valid byte too, but
 * only one more significant than a stopping byte. So the byte loop can take over at the first
 * flagged byte (exact on little-endian; never past a stop on big-endian) and decide there: the
 * line's CR, an HTAB, a bad byte. Values are most of a browser's head.
 */
static size_t scan_field_value(const char *buf, size_t pos, size_t end)
{
    while (end - pos >= 8) {
        uint64_t w, del;
        memcpy(&w, buf + pos, 8);
        del = w ^ (ONES_ * 0x7F);
        uint64_t stops = ((w - ONES_ * 0x20) & ~w & HIGHS_) | ((del - ONES_) & ~del & HIGHS_);
        if (stops) {
            pos += first_flagged_byte(stops);
            break;
        }
        pos += 8;
    }
    return scan_class(buf, pos, end, C_FVAL);
}

/* ---- start lines -------------------------------------------------------------------------------- */

/* Matches buf[pos..) against `shape`, where '0' stands for any DIGIT; partial input is accepted. */
static int match_shape(const char *buf, size_t *pos, size_t end, const char *shape)
{
    size_t n = strlen(shape), avail = end - *pos;
    for (size_t i = 0; i < n && i < avail; i++) {
        char c = buf[*pos + i];
        if (shape[i] == '0' ? !is_class(c, C_DIGIT) : c != shape[i]) return -400;
    }
    if (avail < n) return NEED_MORE;
    *pos += n;
    return 0;
}

/* Inline: every line of every head ends here, and the call cost more than the test. */
static inline int expect_crlf(const char *buf, size_t *pos, size_t end)
{
    if (end - *pos >= 2 && buf[*pos] == '\r' && buf[*pos + 1] == '\n') { /* every line ends so */
        *pos += 2;
        return 0;
    }
    return match_shape(buf, pos, end, "\r\n"); /* partial input or an error */
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT; well-formed but not 1.0/1.1 is -505, anything else -400. */
static int parse_version(const char *buf, size_t *pos, size_t end, int *minor)
{
    size_t p = *pos;
    if (end - p >= 8 && memcmp(buf + p, "HTTP/1.", 7) == 0 && (buf[p + 7] == '1' || buf[p + 7] == '0')) {
        *minor = buf[p + 7] - '0'; /* what nearly every message says: spared the shape match */
        *pos = p + 8;
        return 0;
    }
    int rc = match_shape(buf, &p, end, "HTTP/0.0");
    if (rc) return rc;
    if (buf[p - 3] != '1' || (buf[p - 1] != '0' && buf[p - 1] != '1')) return -505;
    *minor = buf[p - 1] - '0';
    *pos = p;
    return 0;
}

/* request-target: 1*VCHAR followed by SP; -414 as soon as more than max_target bytes were seen. */
static int scan_target(const char *buf, size_t *pos, size_t end, size_t max_target)
{
    size_t t = *pos;
    size_t cap = end - t > max_target ? t + max_target + 1 : end;
    size_t e = scan_class(buf, t, cap, C_TARGET);
    if (e - t > max_target) return -414;
    if (e == end) return NEED_MORE;
    if (e == t || buf[e] != ' ') return -400;
    *pos = e;
    return 0;
}

/*
 * request-line = method SP request-target SP HTTP-version CRLF. Works on partial input (returns
 * NEED_MORE) so that the target limit and garbage are caught before the head is complete.
 */
static int parse_request_line(const char *buf, size_t *pos, size_t end, gw_h1_request_head_t *out,
                              size_t max_target)
{
    size_t m = scan_class(buf, *pos, end, C_TCHAR);
    if (m == end) return NEED_MORE;
    if (m == *pos || buf[m] != ' ') return -400;
    size_t t = m + 1, te = t;
    int rc = scan_target(buf, &te, end, max_target);
    size_t v = te + 1;
    if (rc == 0) rc = parse_version(buf, &v, end, &out->minor_version);
    if (rc == 0) rc = expect_crlf(buf, &v, end);
    if (rc) return rc;
    out->method = (gw_slice_t){buf + *pos, m - *pos};
    out->target = (gw_slice_t){buf + t, te - t};
    *pos = v;
    return 0;
}

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF; a missing "SP reason" is tolerated. */
static int parse_status_line(const char *buf, size_t *pos, size_t end, gw_h1_response_head_t *out)
{
    size_t p = *pos;
    int rc = parse_version(buf, &p, end, &out->minor_version);
    if (rc) return rc;
    if (end - p >= 4 && buf[p] == ' ' && is_class(buf[p + 1], C_DIGIT) && is_class(buf[p + 2], C_DIGIT) &&
        is_class(buf[p + 3], C_DIGIT))
        p += 4; /* the whole code is there: spared the shape match */
    else if ((rc = match_shape(buf, &p, end, " 000")) != 0)
        return rc;
    out->status = (buf[p - 3] - '0') * 100 + (buf[p - 2] - '0') * 10 + (buf[p - 1] - '0');
    if (out->status < 100) return -400;
    size_t r = p, re = p;
    if (p < end && buf[p] == ' ') re = scan_class(buf, ++r, end, C_FVAL);
    out->reason = (gw_slice_t){buf + r, re - r};
    rc = expect_crlf(buf, &re, end);
    if (rc) return rc;
    *pos = re;
    return 0;
}

/* ---- header fields ------------------------------------------------------------------------------ */

/*
 * field-line = field-name ":" OWS field-value OWS CRLF. A line starting with SP/HTAB (obs-fold),
 * whitespace before ':' and any CTL, DEL or bare CR/LF in the value all end up as -400. NEED_MORE
 * when buf[..end) stops inside the line: every scan is bounded, so a response head is parsed in
 * the same pass that finds its end.
 */
static int parse_field_line(const char *buf, size_t *pos, size_t end, gw_header_t *h)
{
    size_t n = scan_field_name(buf, *pos, end);
    if (n == end) return NEED_MORE;
    if (n == *pos || buf[n] != ':') return -400;
    size_t v = scan_class(buf, n + 1, end, C_OWS);
    size_t ve = scan_field_value(buf, v, end);
    size_t next = ve;
    int rc = expect_crlf(buf, &next, end);
    if (rc) return rc;
    while (ve > v && is_class(buf[ve - 1], C_OWS))
        ve--;
    h->name = (gw_slice_t){buf + *pos, n - *pos};
    h->value = (gw_slice_t){buf + v, ve - v};
    *pos = next;
    return 0;
}

/* Parses field lines from *pos up to and including the empty line, and moves *pos past it;
 * NEED_MORE when buf[..end) stops before the empty line does. */
static int parse_fields(const char *buf, size_t *pos, size_t end, gw_header_t *hdrs, size_t max,
                        size_t *count)
{
    size_t n = 0, p = *pos; /* a local: the stores into hdrs could alias *pos */
    while (p < end && buf[p] != '\r') {
        if (n == max) return -431;
        int rc = parse_field_line(buf, &p, end, &hdrs[n]);
        if (rc) return rc;
        n++;
    }
    int rc = expect_crlf(buf, &p, end);
    if (rc) return rc;
    *count = n;
    *pos = p;
    return 0;
}

/* ---- head framing and limits -------------------------------------------------------------------- */

/* Skips the empty lines RFC 9112 2.2 lets a server ignore before a request-line. */
static int skip_empty_lines(const char *buf, size_t *pos, size_t end)
{
    while (*pos < end && buf[*pos] == '\r') {
        int rc = expect_crlf(buf, pos, end);
        if (rc) return rc;
    }
    return *pos == end ? NEED_MORE : 0;
}

/* Offset just past the first CRLF CRLF in buf[pos..end), or 0 when there is none yet. */
static size_t find_head_end(const char *buf, size_t pos, size_t end)
{
    /* line by line with memchr: glibc's memmem costs more than the head is long */
    const char *p = buf + pos, *stop = buf + end;
    while ((p = memchr(p, '\n', (size_t)(stop - p))) != NULL) {
        if (p - (buf + pos) >= 3 && p[-1] == '\r' && p[-2] == '\n' && p[-3] == '\r')
            return (size_t)(p - buf) + 1;
        p++;
    }
    return 0;
}

/* Complete lines in buf[pos..end), counting no further than `stop`. */
static size_t count_lines(const char *buf, size_t pos, size_t end, size_t stop)
{
    size_t n = 0;
    const char *lf;
    while (n <= stop && pos < end && (lf = memchr(buf + pos, '\n', end - pos)) != NULL) {
        n++;
        pos = (size_t)(lf - buf) + 1;
    }
    return n;
}

/*
 * Result for a head without its CRLF CRLF yet (0 or -431), once its start line parsed to `line_rc`
 * and ended at `fields`. Only buf[0..avail) is looked at, avail <= max_head_bytes; with no empty
 * line present, every complete line after the start line is a field line.
 */
static int incomplete_head(int line_rc, const char *buf, size_t fields, size_t avail, size_t len,
                           const gw_h1_limits_t *lim)
{
    if (line_rc == 0 && count_lines(buf, fields, avail, lim->max_headers) > lim->max_headers) return -431;
    return len > lim->max_head_bytes ? -431 : 0;
}

static int finish_head(size_t end, int rc)
{
    if (rc == NEED_MORE) /* cannot happen: the region ends in CRLF CRLF */
        rc = -400;
    if (rc) return rc;
    return end > INT_MAX ? -431 : (int)end;
}

/* origin-form, absolute-form, authority-form (CONNECT only) or asterisk-form (OPTIONS only). */
static bool valid_authority(gw_slice_t s, bool need_port, bool *lower);

static bool is_absolute_form(gw_slice_t t)
{
    if (!ALPHA_(t.base[0])) return false;
    size_t e = scan_class(t.base, 1, t.len, C_SCHEME);
    return e < t.len && t.base[e] == ':';
}

static int check_target_form(gw_slice_t method, gw_slice_t target)
{
    bool lower;
    if (gw_slice_eq(method, "CONNECT")) return valid_authority(target, true, &lower) ? 0 : -400;
    if (target.base[0] == '/') return 0;
    if (target.len == 1 && target.base[0] == '*') return gw_slice_eq(method, "OPTIONS") ? 0 : -400;
    return is_absolute_form(target) ? 0 : -400;
}

/* The request head buf[pos..end), which ends with its empty line: request line, target form, fields. */
static int parse_complete_request(const char *buf, size_t pos, size_t end, gw_h1_request_head_t *out,
                                  const gw_h1_limits_t *lim)
{
    int rc = parse_request_line(buf, &pos, end, out, lim->max_target_bytes);
    if (rc == 0) rc = check_target_form(out->method, out->target);
    if (rc == 0) rc = parse_fields(buf, &pos, end, out->headers, lim->max_headers, &out->num_headers);
    if (rc == 0 && pos != end) rc = -400; /* an empty line before `end`: not this head's end */
    return finish_head(end, rc);
}

int gw_h1_parse_request(const char *buf, size_t len, gw_h1_request_head_t *out, const gw_h1_limits_t *lim)
{
    /* Nothing past max_head_bytes can belong to an acceptable head, so it is never scanned. */
    size_t avail = len < lim->max_head_bytes ? len : lim->max_head_bytes;
    size_t pos = 0;
    int rc = skip_empty_lines(buf, &pos, avail);
    if (rc < 0) return rc;
    if (rc == NEED_MORE) return len > lim->max_head_bytes ? -431 : 0;
    /* A request read on its own, the usual case, ends the buffer with its empty line: parsed as such
     * first, which spares the search for the end. The parse succeeds only when that empty line is
     * the first one; anything else (a head ending earlier, pipelining, a body, an error) is decided
     * by the general path below. */
    if (len == avail && avail - pos >= 4 && memcmp(buf + avail - 4, "\r\n\r\n", 4) == 0) {
        int n = parse_complete_request(buf, pos, avail, out, lim);
        if (n > 0) return n;
    }
    size_t end = find_head_end(buf, pos, avail);
    if (end) return parse_complete_request(buf, pos, end, out, lim);
    gw_h1_request_head_t scratch = {0};
    rc = parse_request_line(buf, &pos, avail, &scratch, lim->max_target_bytes);
    if (rc < 0) return rc;
    return incomplete_head(rc, buf, pos, avail, len, lim);
}

/* Unlike a request's, a response head is parsed in one pass that finds its end: it is read into a
 * buffer together with its body, so no terminating empty line at the buffer's end tells that the
 * head is complete, and a search for the end would cost a second pass. */
int gw_h1_parse_response(const char *buf, size_t len, gw_h1_response_head_t *out, const gw_h1_limits_t *lim)
{
    size_t avail = len < lim->max_head_bytes ? len : lim->max_head_bytes;
    size_t pos = 0;
    int rc = parse_status_line(buf, &pos, avail, out);
    if (rc == 0) rc = parse_fields(buf, &pos, avail, out->headers, lim->max_headers, &out->num_headers);
    if (rc == NEED_MORE) return len > lim->max_head_bytes ? -502 : 0;
    if (rc) return -502;
    return pos > INT_MAX ? -502 : (int)pos;
}

/* ---- framing ------------------------------------------------------------------------------------ */

/* What the framing-relevant header fields of one message say, gathered in a single pass. */
typedef struct msg_facts {
    gw_slice_t content_length; /* the first Content-Length value */
    unsigned cl_count;
    unsigned te_count;    /* Transfer-Encoding fields */
    unsigned chunked;     /* "chunked" codings over all of them */
    bool te_other;        /* a coding other than chunked */
    bool te_last_chunked; /* the final coding so far is chunked */
    bool te_bad;          /* malformed coding list */
    bool conn_close, conn_keep_alive, conn_upgrade, conn_bad;
    bool upgrade_field;
    unsigned host_count;
    gw_slice_t host;
    bool expect_seen, expect_bad;
} msg_facts_t;

/*
 * Next element of a comma-separated list (RFC 9110 5.6.1), OWS-trimmed; empty elements are
 * skipped as the RFC requires. Returns false at the end of the list.
 */
static bool list_next(gw_slice_t *rest, gw_slice_t *elem)
{
    while (rest->len) {
        const char *comma = memchr(rest->base, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->base) : rest->len;
        *elem = trim_ows((gw_slice_t){rest->base, n});
        rest->base += comma ? n + 1 : n;
        rest->len -= comma ? n + 1 : n;
        if (elem->len) return true;
    }
    return false;
}

/* transfer-coding = token *( OWS ";" OWS transfer-parameter ); parameters are only looked at for
 * "chunked", which has none. A quoted ',' inside a parameter may mis-split, but only codings we
 * reject anyway can carry parameters. */
static void note_codings(gw_slice_t value, msg_facts_t *f)
{
    gw_slice_t rest = value, el;
    bool any = false;
    f->te_count++;
    while (list_next(&rest, &el)) {
        const char *semi = memchr(el.base, ';', el.len);
        gw_slice_t name = trim_ows((gw_slice_t){el.base, semi ? (size_t)(semi - el.base) : el.len});
        any = true;
        f->te_last_chunked = false;
        if (!is_token(name))
            f->te_bad = true;
        else if (!gw_ascii_ieq(name, "chunked"))
            f->te_other = true;
        else {
            f->chunked++;
            f->te_last_chunked = true;
            f->te_bad |= semi != NULL;
        }
    }
    f->te_bad |= !any;
}

static void note_connection(gw_slice_t value, msg_facts_t *f)
{
    gw_slice_t rest = value, el;
    while (list_next(&rest, &el)) {
        f->conn_bad |= !is_token(el);
        f->conn_close |= gw_ascii_ieq(el, "close");
        f->conn_keep_alive |= gw_ascii_ieq(el, "keep-alive");
        f->conn_upgrade |= gw_ascii_ieq(el, "upgrade");
    }
}

/* 100-continue is the only expectation defined; an empty or any other one is refused with 417. */
static void note_expect(gw_slice_t value, msg_facts_t *f)
{
    gw_slice_t rest = value, el;
    bool any = false;
    f->expect_seen = true;
    while (list_next(&rest, &el)) {
        any = true;
        f->expect_bad |= !gw_ascii_ieq(el, "100-continue");
    }
    f->expect_bad |= !any;
}

/* The names differ in length, so the length picks the one name a field can be. */
static void note_field(const gw_header_t *h, msg_facts_t *f)
{
    switch (h->name.len) {
    case sizeof("content-length") - 1:
        if (gw_ascii_ieq(h->name, "content-length") && f->cl_count++ == 0) f->content_length = h->value;
        break;
    case sizeof("transfer-encoding") - 1:
        if (gw_ascii_ieq(h->name, "transfer-encoding")) note_codings(h->value, f);
        break;
    case sizeof("host") - 1:
        if (gw_ascii_ieq(h->name, "host") && f->host_count++ == 0) f->host = h->value;
        break;
    case sizeof("connection") - 1:
        if (gw_ascii_ieq(h->name, "connection")) note_connection(h->value, f);
        break;
    case sizeof("expect") - 1:
        if (gw_ascii_ieq(h->name, "expect")) note_expect(h->value, f);
        break;
    case sizeof("upgrade") - 1:
        if (gw_ascii_ieq(h->name, "upgrade")) f->upgrade_field |= h->value.len > 0;
        break;
    default:
        break;
    }
}

static void collect_facts(const gw_header_t *hdrs, size_t n, msg_facts_t *f)
{
    *f = (msg_facts_t){0};
    for (size_t i = 0; i < n; i++)
        note_field(&hdrs[i], f);
}

/* Content-Length = 1*DIGIT; no sign, no list, no whitespace, at most 2^62. */
static bool parse_content_length(gw_slice_t v, uint64_t *out)
{
    const uint64_t max = (uint64_t)1 << 62;
    uint64_t n = 0;
    if (v.len == 0) return false;
    for (size_t i = 0; i < v.len; i++) {
        /* n <= max / 10 before a step keeps n * 10 + 9 < 2^63; once n passed max it passes max / 10,
         * so the next step or the final test refuses it */
        if (!is_class(v.base[i], C_DIGIT) || n > max / 10) return false;
        n = n * 10 + (unsigned)(v.base[i] - '0');
    }
    if (n > max) return false;
    *out = n;
    return true;
}

/* 1*5DIGIT not above 65535; an empty port (allowed by RFC 3986) is refused. */
static bool valid_port(const char *p, size_t n)
{
    unsigned v = 0;
    if (n == 0 || n > 5) return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_class(p[i], C_DIGIT)) return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* Length of an IP-literal "[...]" (IPv6 digits, ':' and '.'; no IPvFuture, no zone), or 0. */
static size_t ip_literal_len(gw_slice_t s)
{
    size_t i = 1;
    bool colon = false;
    while (i < s.len && (is_class(s.base[i], C_HEX) || s.base[i] == ':' || s.base[i] == '.')) {
        colon |= s.base[i] == ':';
        i++;
    }
    return i < s.len && s.base[i] == ']' && colon ? i + 1 : 0;
}

/*
 * Length of the uri-host at the start of s (reg-name or IPv4address, or an IP-literal). *lower is
 * set when the host certainly holds no A-Z (a reg-name without capitals or escapes, the usual
 * case), which the same scan tells at no cost.
 */
static size_t host_len(gw_slice_t s, bool *lower)
{
    *lower = false;
    if (s.len && s.base[0] == '[') return ip_literal_len(s);
    size_t i = scan_class(s.base, 0, s.len, C_LOWNAME);
    *lower = i == s.len || (!is_class(s.base[i], C_REGNAME) && s.base[i] != '%');
    if (*lower) return i; /* no capital or escape follows: the host ends where the scan stopped */
    i = scan_class(s.base, i, s.len, C_REGNAME);
    while (i + 2 < s.len && s.base[i] == '%' && is_class(s.base[i + 1], C_HEX) &&
           is_class(s.base[i + 2], C_HEX))
        i = scan_class(s.base, i + 3, s.len, C_REGNAME);
    return i;
}

/* authority = uri-host [ ":" port ] without userinfo; an empty host is refused (nothing to route).
 * *lower: see host_len (a port is digits only). */
static bool valid_authority(gw_slice_t s, bool need_port, bool *lower)
{
    size_t h = host_len(s, lower);
    if (h == 0) return false;
    if (h == s.len) return !need_port;
    return s.base[h] == ':' && valid_port(s.base + h + 1, s.len - h - 1);
}

static bool keep_alive(const msg_facts_t *f, int minor)
{
    if (f->conn_close) return false;
    return minor >= 1 || f->conn_keep_alive;
}

/*
 * Body framing of a request. The smuggling shapes (CL+TE, TE in 1.0, a bad or duplicate CL) and a
 * malformed or repeated-chunked coding list are 400; a well-formed list we cannot decode is 501.
 */
static int request_body(const msg_facts_t *f, int minor, gw_h1_framing_t *out)
{
    if (f->te_count) {
        if (f->cl_count || minor == 0 || f->te_bad || f->chunked > 1) return -400;
        /* RFC 9112 §6.3: chunked not last means the length cannot be known: 400 and close;
         * chunked last after a coding we do not implement: 501 */
        if (!f->te_last_chunked) return -400;
        if (f->te_other) return -501;
        out->body = GW_BODY_CHUNKED;
        return 0;
    }
    if (f->cl_count == 0) {
        out->body = GW_BODY_NONE;
        return 0;
    }
    if (f->cl_count > 1 || !parse_content_length(f->content_length, &out->content_length)) return -400;
    out->body = GW_BODY_LENGTH;
    return 0;
}

static int request_host(const msg_facts_t *f, int minor, gw_h1_framing_t *out)
{
    if (f->host_count > 1 || (f->host_count == 0 && minor >= 1)) return -400;
    if (f->host_count == 1 && !valid_authority(f->host, false, &out->host_lower)) return -400;
    out->host = f->host;
    return 0;
}

int gw_h1_request_framing(const gw_h1_request_head_t *req, gw_h1_framing_t *out)
{
    msg_facts_t f;
    collect_facts(req->headers, req->num_headers, &f);
    *out = (gw_h1_framing_t){.body = GW_BODY_NONE};
    int rc = request_body(&f, req->minor_version, out);
    if (rc == 0) rc = request_host(&f, req->minor_version, out);
    if (rc == 0 && f.conn_bad) rc = -400;
    if (rc == 0 && f.expect_bad) rc = -417;
    if (rc) return rc;
    /* RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request must be ignored. */
    out->expect_continue = f.expect_seen && req->minor_version >= 1;
    out->keep_alive = keep_alive(&f, req->minor_version);
    out->upgrade = f.conn_upgrade && f.upgrade_field;
    return 0;
}

/* RFC 9112 6.3 items 1-2: responses that never have a body, whatever their header fields say. */
static bool response_has_no_body(int status, gw_slice_t method)
{
    if (status < 200 || status == 204 || status == 304 || gw_slice_eq(method, "HEAD")) return true;
    return status < 300 && gw_slice_eq(method, "CONNECT"); /* the connection becomes a tunnel */
}

/*
 * Response body framing. Unlike RFC 9112 6.3, which lets Transfer-Encoding override Content-Length
 * and reads a non-chunked coding until close, both shapes are refused: transfer codings are
 * hop-by-hop and we only implement chunked, and CL+TE from a backend is a smuggling signal.
 */
static int response_body(const msg_facts_t *f, int minor, bool no_body, gw_h1_framing_t *out)
{
    if (f->cl_count > 1 || (f->cl_count && !parse_content_length(f->content_length, &out->content_length)))
        return -502;
    if (f->cl_count && f->te_count) return -502;
    if (no_body) {
        out->content_length = 0;
        out->body = GW_BODY_NONE;
    } else if (f->te_count) {
        if (minor == 0 || f->te_bad || f->te_other || f->chunked != 1) return -502;
        out->body = GW_BODY_CHUNKED;
    } else {
        out->body = f->cl_count ? GW_BODY_LENGTH : GW_BODY_CLOSE;
    }
    return 0;
}

int gw_h1_response_framing(const gw_h1_response_head_t *res, gw_slice_t method, gw_h1_framing_t *out)
{
    msg_facts_t f;
    collect_facts(res->headers, res->num_headers, &f);
    *out = (gw_h1_framing_t){.body = GW_BODY_NONE};
    if (f.conn_bad) return -502;
    int rc = response_body(&f, res->minor_version, response_has_no_body(res->status, method), out);
    if (rc) return rc;
    out->keep_alive = out->body != GW_BODY_CLOSE && keep_alive(&f, res->minor_version);
    out->upgrade = f.conn_upgrade && f.upgrade_field;
    return 0;
}

/* ---- chunked decoder ---------------------------------------------------------------------------- */

/* Decoder states; CH_SIZE is 0 so that a zero-initialised decoder starts at a chunk-size line, and
 * the size-line states come before CH_DATA, the trailer states after it. */
enum {
    CH_SIZE,      /* first HEXDIG of chunk-size */
    CH_SIZE_MORE, /* further HEXDIGs, or what follows them */
    CH_SIZE_BWS,  /* BWS between chunk-size and ";" */
    CH_EXT,       /* chunk-ext, skipped up to CR */
    CH_SIZE_LF,   /* LF ending the size line */
    CH_DATA,      /* chunk-data */
    CH_DATA_CR,   /* CRLF after chunk-data */
    CH_DATA_LF,
    CH_TR_START, /* start of a trailer field line, or of the final empty line */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,       /* LF of the final empty line */
    CH_ERROR = 0xFF, /* sticky: the stream is broken, every later call fails */
};

/* At most 15 HEXDIGs, so the size stays below 2^60 and cannot overflow. */
#define CH_MAX_SIZE_DIGITS 15

/* A size line is complete: enter its data, or the trailer section after the last chunk. */
static int ch_size_done(gw_chunked_decoder_t *d, uint64_t max_body)
{
    if (d->chunk_remaining == 0) {
        d->state = CH_TR_START;
        d->line_bytes = 0;
        return 0;
    }
    if (d->total > max_body || d->chunk_remaining > max_body - d->total) return -413;
    d->state = CH_DATA;
    return 0;
}

/* chunk-size [ chunk-ext ] CRLF, where chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ). */
static int ch_size_line(gw_chunked_decoder_t *d, char c, uint64_t max_body)
{
    switch (d->state) {
    case CH_SIZE:
    case CH_SIZE_MORE:
        if (is_class(c, C_HEX)) {
            if (d->line_bytes > CH_MAX_SIZE_DIGITS) return -400;
            d->chunk_remaining = (d->chunk_remaining << 4) | hex_value(c);
            d->state = CH_SIZE_MORE;
            return 0;
        }
        if (d->state == CH_SIZE) return -400;
        d->state = c == '\r' ? CH_SIZE_LF : c == ';' ? CH_EXT : is_class(c, C_OWS) ? CH_SIZE_BWS : CH_ERROR;
        break;
    case CH_SIZE_BWS:
        d->state = c == ';' ? CH_EXT : is_class(c, C_OWS) ? CH_SIZE_BWS : CH_ERROR;
        break;
    case CH_EXT:
        d->state = c == '\r' ? CH_SIZE_LF : is_class(c, C_FVAL) ? CH_EXT : CH_ERROR;
        break;
    default: /* CH_SIZE_LF */
        return c == '\n' ? ch_size_done(d, max_body) : -400;
    }
    return d->state == CH_ERROR ? -400 : 0;
}

/* The trailer section: field lines (name ":" value) up to an empty line, all discarded. */
static int ch_trailer(gw_chunked_decoder_t *d, char c)
{
    switch (d->state) {
    case CH_TR_START:
        d->state = c == '\r' ? CH_END_LF : is_class(c, C_TCHAR) ? CH_TR_NAME : CH_ERROR;
        break;
    case CH_TR_NAME:
        d->state = c == ':' ? CH_TR_VALUE : is_class(c, C_TCHAR) ? CH_TR_NAME : CH_ERROR;
        break;
    case CH_TR_VALUE:
        d->state = c == '\r' ? CH_TR_LF : is_class(c, C_FVAL) ? CH_TR_VALUE : CH_ERROR;
        break;
    case CH_TR_LF:
        d->state = c == '\n' ? CH_TR_START : CH_ERROR;
        break;
    default: /* CH_END_LF */
        if (c != '\n') return -400;
        d->done = true;
        return 0;
    }
    return d->state == CH_ERROR ? -400 : 0;
}

/* One framing byte (anything but chunk-data). Size lines and the whole trailer section are bounded
 * by max_line, CRLF included, so a peer cannot keep us busy with an endless line. */
static int ch_step(gw_chunked_decoder_t *d, char c, size_t max_line, uint64_t max_body)
{
    if (d->state == CH_DATA_CR || d->state == CH_DATA_LF) {
        if (c != (d->state == CH_DATA_CR ? '\r' : '\n')) return -400;
        d->state = d->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
        d->line_bytes = 0;
        d->chunk_remaining = 0;
        return 0;
    }
    if (d->line_bytes == UINT32_MAX || ++d->line_bytes > max_line) return -400;
    return d->state < CH_DATA ? ch_size_line(d, c, max_body) : ch_trailer(d, c);
}

/* Moves as much of the current chunk's data as there is from buf[*r..n) down to buf[*w..). */
static void ch_copy_data(gw_chunked_decoder_t *d, char *buf, size_t *r, size_t *w, size_t n)
{
    size_t take = d->chunk_remaining < n - *r ? (size_t)d->chunk_remaining : n - *r;
    memmove(buf + *w, buf + *r, take);
    *r += take;
    *w += take;
    d->total += take;
    d->chunk_remaining -= take;
    if (d->chunk_remaining == 0) d->state = CH_DATA_CR;
}

long gw_chunked_decode(gw_chunked_decoder_t *d, char *buf, size_t *len, size_t max_line, uint64_t max_body)
{
    size_t r = 0, w = 0, n = *len;
    if (d->state == CH_ERROR) {
        *len = 0;
        return -400;
    }
    while (r < n && !d->done) {
        if (d->state == CH_DATA) {
            ch_copy_data(d, buf, &r, &w, n);
            continue;
        }
        int rc = ch_step(d, buf[r], max_line, max_body);
        if (rc) {
            d->state = CH_ERROR;
            *len = w;
            return rc;
        }
        r++;
    }
    *len = w;
    return (long)r;
}
