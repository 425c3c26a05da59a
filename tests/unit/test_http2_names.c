/* Response header names for HTTP/2: well-known names in any case map to the table's lower-case
 * string, connection-specific names are flagged, anything else is left to the codec. */
#include <string.h>

#include "check.h"
#include "http2_names.h"

static gw_h2_name_kind_t lookup(const char *name, const char **lower)
{
    *lower = NULL;
    return gw_h2_name_lookup((gw_slice_t){name, strlen(name)}, lower);
}

static void test_known(void)
{
    /* every entry of the table: one at the wrong length would never be found */
    /* clang-format off */
    static const char *const names[] = {
        "age", "etag", "link", "vary", "allow", "server", "alt-svc", "expires", "location", "set-cookie",
        "grpc-status", "retry-after", "content-type", "cache-status", "grpc-message", "x-request-id",
        "accept-ranges", "cache-control", "content-range", "last-modified", "x-gateway-cache",
        "x-frame-options", "referrer-policy", "content-encoding", "content-language", "content-location",
        "www-authenticate", "proxy-authenticate", "content-disposition", "x-content-type-options",
        "content-security-policy", "strict-transport-security", "access-control-allow-origin"};
    /* clang-format on */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *low;
        CHECK_EQ_INT(lookup(names[i], &low), GW_H2_NAME_KNOWN);
        CHECK_STR(low, names[i]);
    }
    const char *low;
    CHECK_EQ_INT(lookup("Content-Type", &low), GW_H2_NAME_KNOWN);
    CHECK_STR(low, "content-type");
    CHECK_EQ_INT(lookup("LAST-MODIFIED", &low), GW_H2_NAME_KNOWN);
    CHECK_STR(low, "last-modified");
    CHECK_EQ_INT(lookup("x-request-iD", &low), GW_H2_NAME_KNOWN); /* upper case in the last word only */
    CHECK_STR(low, "x-request-id");
    CHECK_EQ_INT(lookup("agE", &low), GW_H2_NAME_KNOWN);
    CHECK_STR(low, "age");
    CHECK_EQ_INT(lookup("Date", &low), GW_H2_NAME_DATE);
    CHECK_STR(low, "date");
    CHECK_EQ_INT(lookup("content-length", &low), GW_H2_NAME_LENGTH);
}

static void test_hop_by_hop(void)
{
    static const char *const names[] = {"connection", "Keep-Alive", "transfer-encoding", "Upgrade",
                                        "proxy-connection"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *low;
        CHECK_EQ_INT(lookup(names[i], &low), GW_H2_NAME_HOP);
    }
}

static void test_other(void)
{
    static const char *const names[] = {"",
                                        "x",
                                        "agf",
                                        "vara",
                                        "etag-",
                                        "content-typx",
                                        "contenT-typx",
                                        "x-custom",
                                        "dpop",
                                        "etags",
                                        "content-typ",
                                        "content\rtype",
                                        "cache-contro1",
                                        "a-very-long-header-name-beyond-the-table"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *low;
        CHECK_EQ_INT(lookup(names[i], &low), GW_H2_NAME_OTHER);
        CHECK(low == NULL);
    }
    const char *low;
    /* CR OR-ed with 0x20 is '-': the comparison lower-cases letters only */
    CHECK_EQ_INT(lookup("set\rcookie", &low), GW_H2_NAME_OTHER);
}

int main(void)
{
    test_known();
    test_hop_by_hop();
    test_other();
    return check_report("http2_names");
}
