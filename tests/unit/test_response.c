/* Response rules without a connection: HTTP-dates, entity tags, preconditions (RFC 9110 §13.2.2),
 * the Range parser (§14), Accept-Encoding negotiation and what is worth compressing. */
#include <string.h>

#include "check.h"
#include "compress.h"
#include "http_cond.h"

static gw_slice_t S(const char *s)
{
    return (gw_slice_t){s, strlen(s)};
}

static const int64_t T1994 = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */

static void test_dates(void)
{
    int64_t t = 0;
    CHECK(gw_http_date_parse(S("Sun, 06 Nov 1994 08:49:37 GMT"), &t));
    CHECK_EQ_INT(t, T1994);
    t = 0;
    CHECK(gw_http_date_parse(S("Sunday, 06-Nov-94 08:49:37 GMT"), &t));
    CHECK_EQ_INT(t, T1994);
    t = 0;
    CHECK(gw_http_date_parse(S("Sun Nov  6 08:49:37 1994"), &t));
    CHECK_EQ_INT(t, T1994);
    CHECK(gw_http_date_parse(S("  Thu, 01 Jan 1970 00:00:00 GMT "), &t));
    CHECK_EQ_INT(t, 0);
    CHECK(gw_http_date_parse(S("Tue, 29 Feb 2000 23:59:59 GMT"), &t));
    CHECK_EQ_INT(t, 951868799);
    CHECK(gw_http_date_parse(S("Fri, 01 Jan 2100 00:00:00 GMT"), &t));
    CHECK_EQ_INT(t, 4102444800LL);
    const char *bad[] = {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMTx", "06 Nov 1994 08:49:37 GMT", "Sun Nov  6 08:49:37",
                         "Sun, 32 Nov 1994 08:49:37 GMT", "Sun,06 Nov 1994 08:49:37 GMT", "1994-11-06T08:49:37Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) CHECK(!gw_http_date_parse(S(bad[i]), &t));
}

static void test_etags(void)
{
    const char *e = "\"abc\"";
    CHECK(gw_etag_match(S("\"abc\""), e, false));
    CHECK(gw_etag_match(S("\"x\", \"abc\""), e, false));
    CHECK(gw_etag_match(S("\"x\",\"abc\" , \"y\""), e, true));
    CHECK(gw_etag_match(S("*"), e, false));
    CHECK(gw_etag_match(S("*"), NULL, true)); /* the representation exists, even without a tag */
    CHECK(!gw_etag_match(S("W/\"abc\""), e, false)); /* strong comparison: weak tags never match */
    CHECK(gw_etag_match(S("W/\"abc\""), e, true));
    CHECK(!gw_etag_match(S("\"abcd\""), e, true));
    CHECK(!gw_etag_match(S("\"ab\""), e, true));
    CHECK(!gw_etag_match(S("abc"), e, true)); /* unquoted: not an entity-tag */
    CHECK(!gw_etag_match(S("\"abc"), e, true));
    CHECK(!gw_etag_match(S(""), e, true));
    CHECK(!gw_etag_match(S("\"abc\""), NULL, true));
    /* the encoded representations of the same file */
    CHECK(gw_etag_match(S("\"abc-br\""), e, true));
    CHECK(gw_etag_match(S("W/\"abc-gzip\""), e, true));
    CHECK(!gw_etag_match(S("\"abc-zz\""), e, true));
    CHECK(!gw_etag_match(S("\"abc-br-br\""), e, true));
}

static gw_header_t hdrs[8];

static gw_req_t make_req(gw_method_t m, const char *const *kv)
{
    gw_req_t r;
    memset(&r, 0, sizeof(r));
    r.method_id = m;
    size_t n = 0;
    for (; kv[2 * n]; n++) hdrs[n] = (gw_header_t){S(kv[2 * n]), S(kv[2 * n + 1])};
    r.headers = hdrs;
    r.num_headers = n;
    return r;
}

#define COND(method, etag, mtime, ...)                                                                        \
    ({                                                                                                        \
        const char *kv_[] = {__VA_ARGS__, NULL};                                                              \
        gw_req_t r_ = make_req(method, kv_);                                                                  \
        gw_cond_evaluate(&r_, etag, mtime);                                                                   \
    })

static void test_preconditions(void)
{
    const char *e = "\"v1\"";
    const char *d = "Sun, 06 Nov 1994 08:49:37 GMT";
    const char *before = "Sun, 06 Nov 1994 08:49:36 GMT";
    /* If-None-Match */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-none-match", "\"v1\""), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_HEAD, e, T1994, "if-none-match", "W/\"v1\""), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-none-match", "\"v2\""), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_POST, e, T1994, "if-none-match", "*"), GW_COND_FAILED); /* not GET/HEAD: 412 */
    /* If-Modified-Since compares dates (not strings) */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-modified-since", d), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT"), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-modified-since", "Mon, 07 Nov 1994 00:00:00 GMT"), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-modified-since", before), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-modified-since", "garbage"), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_POST, e, T1994, "if-modified-since", d), GW_COND_PASS);
    /* If-None-Match wins over If-Modified-Since */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-none-match", "\"v2\"", "if-modified-since", d), GW_COND_PASS);
    /* If-Match: strong comparison */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"v1\""), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"v2\", \"v1\""), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "W/\"v1\""), GW_COND_FAILED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"v2\""), GW_COND_FAILED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "*"), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, NULL, T1994, "if-match", "\"v1\""), GW_COND_FAILED);
    /* If-Unmodified-Since, ignored when If-Match is there */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-unmodified-since", before), GW_COND_FAILED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-unmodified-since", d), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-unmodified-since", "not a date"), GW_COND_PASS);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"v1\"", "if-unmodified-since", before), GW_COND_PASS);
    /* a failed If-Match beats a matching If-None-Match (step 1 before step 3) */
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"zz\"", "if-none-match", "\"v1\""), GW_COND_FAILED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "if-match", "\"v1\"", "if-none-match", "\"v1\""), GW_COND_NOT_MODIFIED);
    CHECK_EQ_INT(COND(GW_M_GET, e, T1994, "x-other", "1"), GW_COND_PASS);
}

#define IFRANGE(etag, mtime, value)                                                                          \
    ({                                                                                                        \
        const char *kv_[] = {"if-range", value, NULL};                                                        \
        gw_req_t r_ = make_req(GW_M_GET, kv_);                                                                \
        gw_if_range_ok(&r_, etag, mtime);                                                                     \
    })

static void test_if_range(void)
{
    const char *none[] = {NULL};
    gw_req_t r = make_req(GW_M_GET, none);
    CHECK(gw_if_range_ok(&r, "\"v1\"", T1994));
    CHECK(IFRANGE("\"v1\"", T1994, "\"v1\""));
    CHECK(!IFRANGE("\"v1\"", T1994, "\"v2\""));
    CHECK(!IFRANGE("\"v1\"", T1994, "W/\"v1\""));
    CHECK(!IFRANGE("\"v1\"", T1994, "\"v1-br\"")); /* the encoded body is another representation */
    CHECK(IFRANGE("\"v1\"", T1994, "Sun, 06 Nov 1994 08:49:37 GMT"));
    CHECK(!IFRANGE("\"v1\"", T1994, "Mon, 07 Nov 1994 08:49:37 GMT")); /* a date must match exactly */
    CHECK(!IFRANGE("\"v1\"", T1994, "garbage"));
    CHECK(!IFRANGE(NULL, T1994, "\"v1\""));
}

static size_t nr;
static gw_range_t rr[GW_MAX_RANGES];

static gw_range_result_t R(const char *v, uint64_t size)
{
    return gw_range_parse(S(v), size, rr, GW_MAX_RANGES, &nr);
}

static void test_ranges(void)
{
    CHECK_EQ_INT(R("bytes=0-99", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(nr, 1);
    CHECK_EQ_INT(rr[0].first, 0);
    CHECK_EQ_INT(rr[0].len, 100);
    CHECK_EQ_INT(R("bytes=900-", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(rr[0].first, 900);
    CHECK_EQ_INT(rr[0].len, 100);
    CHECK_EQ_INT(R("bytes=-100", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(rr[0].first, 900);
    CHECK_EQ_INT(rr[0].len, 100);
    CHECK_EQ_INT(R("bytes=-5000", 1000), GW_RANGE_OK); /* suffix longer than the body: all of it */
    CHECK_EQ_INT(rr[0].first, 0);
    CHECK_EQ_INT(rr[0].len, 1000);
    CHECK_EQ_INT(R("bytes=500-99999999999999999999999", 1000), GW_RANGE_OK); /* clamped, no overflow */
    CHECK_EQ_INT(rr[0].len, 500);
    CHECK_EQ_INT(R("BYTES=0-0", 1000), GW_RANGE_OK); /* the unit is case-insensitive */
    CHECK_EQ_INT(rr[0].len, 1);
    CHECK_EQ_INT(R(" bytes=0-1 , 5-6 ", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(nr, 2);
    CHECK_EQ_INT(rr[1].first, 5);
    /* sorted, overlapping and adjacent ranges merged */
    CHECK_EQ_INT(R("bytes=500-599,0-99,50-149,150-199", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(nr, 2);
    CHECK_EQ_INT(rr[0].first, 0);
    CHECK_EQ_INT(rr[0].len, 200);
    CHECK_EQ_INT(rr[1].first, 500);
    CHECK_EQ_INT(R("bytes=0-,0-,0-", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(nr, 1);
    CHECK_EQ_INT(rr[0].len, 1000);
    /* some unsatisfiable ranges are dropped, all of them: 416 */
    CHECK_EQ_INT(R("bytes=0-9,2000-3000", 1000), GW_RANGE_OK);
    CHECK_EQ_INT(nr, 1);
    CHECK_EQ_INT(R("bytes=1000-", 1000), GW_RANGE_UNSATISFIABLE);
    CHECK_EQ_INT(R("bytes=1000-2000,5000-", 1000), GW_RANGE_UNSATISFIABLE);
    CHECK_EQ_INT(R("bytes=-0", 1000), GW_RANGE_UNSATISFIABLE);
    CHECK_EQ_INT(R("bytes=0-", 0), GW_RANGE_UNSATISFIABLE);
    CHECK_EQ_INT(R("bytes=-1", 0), GW_RANGE_UNSATISFIABLE);
    /* malformed or other units: ignored */
    const char *bad[] = {"", "bytes", "bytes=", "bytes=,", "bytes=abc", "bytes=5-4", "bytes=--5", "bytes=1-2-3",
                         "bytes=0-1;x", "items=0-1", "bytes 0-1", "bytes=0-1,x", "bytes= - ", "bytes=-", "bytes=1",
                         "bytes=0x1-2", "bytes=+1-2", "bytes=1 -2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(R(bad[i], 1000), GW_RANGE_NONE);
        CHECK_EQ_INT(nr, 0);
    }
    /* too many ranges: ignored rather than amplified */
    char many[1024] = "bytes=";
    for (int i = 0; i < GW_MAX_RANGES + 1; i++) snprintf(many + strlen(many), sizeof(many) - strlen(many), "%d-%d,", i * 10, i * 10 + 1);
    CHECK_EQ_INT(R(many, 100000), GW_RANGE_NONE);
    CHECK_EQ_INT(R("bytes=0-1,,,4-5", 1000), GW_RANGE_OK); /* empty list elements */
    CHECK_EQ_INT(nr, 2);
}

static gw_encoding_t AE(const char *v)
{
    return gw_accept_encoding_pick(S(v), GW_ENC_BIT(GW_ENC_GZIP) | GW_ENC_BIT(GW_ENC_BR));
}

static void test_accept_encoding(void)
{
    CHECK_EQ_INT(AE("gzip"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("br"), GW_ENC_BR);
    CHECK_EQ_INT(AE("gzip, deflate, br"), GW_ENC_BR); /* equal q: br preferred */
    CHECK_EQ_INT(AE("br;q=0.5, gzip"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("br;q=0.8, gzip;q=0.9"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("br;q=1.0, gzip;q=1"), GW_ENC_BR);
    CHECK_EQ_INT(AE("br;q=0, gzip;q=0"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("gzip;q=0"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("GZIP"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("x-gzip"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("*"), GW_ENC_BR);
    CHECK_EQ_INT(AE("*;q=0.5, br;q=0.1"), GW_ENC_GZIP); /* * covers gzip, not the listed br */
    CHECK_EQ_INT(AE("*;q=0"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("identity"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE(""), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("deflate, compress"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("gzip;q=2"), GW_ENC_IDENTITY);   /* invalid q: element ignored */
    CHECK_EQ_INT(AE("gzip;q=abc"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(AE("br ; q=0.001 , gzip ; q=0.0005"), GW_ENC_BR);
    CHECK_EQ_INT(AE("gzip;level=1;q=0.3, br;q=0.2"), GW_ENC_GZIP);
    CHECK_EQ_INT(AE("brotli, gzipx"), GW_ENC_IDENTITY);
    CHECK_EQ_INT(gw_accept_encoding_pick(S("br, gzip"), GW_ENC_BIT(GW_ENC_GZIP)), GW_ENC_GZIP);
    CHECK_EQ_INT(gw_accept_encoding_pick(S("br"), GW_ENC_BIT(GW_ENC_GZIP)), GW_ENC_IDENTITY);
    CHECK_STR(gw_encoding_token(GW_ENC_BR), "br");
    CHECK_STR(gw_encoding_token(GW_ENC_GZIP), "gzip");
    CHECK(gw_encoding_token(GW_ENC_IDENTITY) == NULL);
}

static void test_types(void)
{
    CHECK(gw_compressible_type(S("text/html; charset=utf-8")));
    CHECK(gw_compressible_type(S("text/css")));
    CHECK(gw_compressible_type(S("application/json")));
    CHECK(gw_compressible_type(S("application/vnd.api+json")));
    CHECK(gw_compressible_type(S("application/atom+xml; charset=utf-8")));
    CHECK(gw_compressible_type(S("image/svg+xml")));
    CHECK(gw_compressible_type(S("TEXT/PLAIN")));
    CHECK(!gw_compressible_type(S("image/png")));
    CHECK(!gw_compressible_type(S("image/jpeg")));
    CHECK(!gw_compressible_type(S("video/mp4")));
    CHECK(!gw_compressible_type(S("application/zip")));
    CHECK(!gw_compressible_type(S("application/gzip")));
    CHECK(!gw_compressible_type(S("application/octet-stream")));
    CHECK(!gw_compressible_type(S("font/woff2")));
    CHECK(!gw_compressible_type(S("")));
    CHECK(gw_no_transform(S("no-transform")));
    CHECK(gw_no_transform(S("public, max-age=60, No-Transform")));
    CHECK(!gw_no_transform(S("public, max-age=60")));
    CHECK(!gw_no_transform(S("no-transformx")));
    CHECK(!gw_no_transform(S("private=\"no-transform\"")));
}

int main(void)
{
    test_dates();
    test_etags();
    test_preconditions();
    test_if_range();
    test_ranges();
    test_accept_encoding();
    test_types();
    return check_report("test_response");
}
