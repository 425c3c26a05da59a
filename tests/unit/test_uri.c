/* Request-target normalisation: the spirit of Ferron's (and SVR.JS's) URL sanitiser tests, plus the
 * stricter encoding of bytes that can never appear raw in a target. */
#include "check.h"
#include "uri.h"

#include <stdbool.h>
#include <stdlib.h>

/* Normalises `len` bytes of `in`; returns the result, or "ERR-1" / "ERR-2". */
static const char *norm_n(const char *in, size_t len, bool dbl)
{
    static char out[4096];
    long n = gw_uri_normalize(in, len, out, sizeof out - 1, dbl);
    if (n < 0) return n == -1 ? "ERR-1" : "ERR-2";
    out[n] = '\0';
    return out;
}

static const char *norm(const char *in)
{
    return norm_n(in, strlen(in), false);
}

static const char *norm2(const char *in)
{
    return norm_n(in, strlen(in), true);
}

static const char *decode(const char *in)
{
    static char out[256];
    long n = gw_uri_decode(in, strlen(in), out, sizeof out - 1);
    if (n < 0) return n == -1 ? "ERR-1" : "ERR-2";
    out[n] = '\0';
    return out;
}

static void test_unchanged(void)
{
    CHECK_STR(norm("/"), "/");
    CHECK_STR(norm("*"), "*");
    CHECK_STR(norm(""), "");
    CHECK_STR(norm("/api/v1/users/123"), "/api/v1/users/123");
    CHECK_STR(norm("/static/css/main.css"), "/static/css/main.css");
    CHECK_STR(norm("/TeSt/PaTh"), "/TeSt/PaTh");
    CHECK_STR(norm("/file.backup.txt"), "/file.backup.txt");
    CHECK_STR(norm("/hidden/.config"), "/hidden/.config");
    CHECK_STR(norm("/.htaccess"), "/.htaccess");
    CHECK_STR(norm("/test!$&'()*+,;=:@-_~path"), "/test!$&'()*+,;=:@-_~path");
}

static void test_nul_removed(void)
{
    CHECK_STR(norm("/test%00"), "/test");
    CHECK_STR(norm_n("/test\0", 6, false), "/test");
    CHECK_STR(norm_n("/te\0st", 6, false), "/test");
    CHECK_STR(norm("%00"), "/");
    CHECK_STR(norm("/test%00/../path%3C%3E%7C"), "/path%3C%3E%7C");
}

static void test_bad_escapes(void)
{
    CHECK_STR(norm("/%zz"), "ERR-1");
    CHECK_STR(norm("/%as"), "ERR-1");
    CHECK_STR(norm("/%u002f"), "ERR-1");
    CHECK_STR(norm("/test%4"), "ERR-1");
    CHECK_STR(norm("/test%"), "ERR-1");
    CHECK_STR(norm("/test%G"), "ERR-1");
    CHECK_STR(norm("/test%2G"), "ERR-1");
    CHECK_STR(norm("%c0%af"), "ERR-1");
    CHECK_STR(norm("/test%C0%80"), "ERR-1");
    CHECK_STR(norm("/test%C1%BF"), "ERR-1");
    CHECK_STR(norm("/test%FE%FF"), "ERR-1");
    CHECK_STR(norm("/test%FF"), "ERR-1");
    /* the same bytes raw: they would come out as escapes the sanitiser itself rejects */
    CHECK_STR(norm("/\xc0\xaf"), "ERR-1");
    CHECK_STR(norm("/a\xff"), "ERR-1");
    /* the error wins over anything that came before it */
    CHECK_STR(norm("/a/../%zz"), "ERR-1");
}

static void test_safe_escapes_decoded(void)
{
    CHECK_STR(norm("/test%21path"), "/test!path");
    CHECK_STR(norm("/test%24path"), "/test$path");
    CHECK_STR(norm("/test%26path"), "/test&path");
    CHECK_STR(norm("/test%2Dpath"), "/test-path");
    CHECK_STR(norm("/test%3Dpath"), "/test=path");
    CHECK_STR(norm("/test%40path"), "/test@path");
    CHECK_STR(norm("/test%5Fpath"), "/test_path");
    CHECK_STR(norm("/test%7Epath"), "/test~path");
    CHECK_STR(norm("/conf%69g.json"), "/config.json");
    CHECK_STR(norm("/CONF%49G.JSON"), "/CONFIG.JSON");
    CHECK_STR(norm("/%73%76%72%32%2E%6A%73"), "/svr2.js");
    CHECK_STR(norm("/%5f"), "/_");
    CHECK_STR(norm("/%5F"), "/_");
    CHECK_STR(norm("/%5B%5D"), "/[]");
}

static void test_other_escapes_kept(void)
{
    CHECK_STR(norm("/test%20path"), "/test%20path");
    CHECK_STR(norm("/test%22path"), "/test%22path");
    CHECK_STR(norm("/test%25path"), "/test%25path");
    CHECK_STR(norm("/test%3Cpath"), "/test%3Cpath");
    CHECK_STR(norm("/test%3Epath"), "/test%3Epath");
    CHECK_STR(norm("/test%7Dpath"), "/test%7Dpath");
    CHECK_STR(norm("/a%3fb"), "/a%3fb"); /* hex case kept as given */
    CHECK_STR(norm("/a%3Fb"), "/a%3Fb");
    CHECK_STR(norm("/test%09path"), "/test%09path");
    CHECK_STR(norm("/test%0Apath"), "/test%0Apath");
    CHECK_STR(norm("/test%01"), "/test%01");
    CHECK_STR(norm("/test%7F"), "/test%7F");
    CHECK_STR(norm("/test%80"), "/test%80");
    CHECK_STR(norm("/a%5Cb"), "/a%5Cb"); /* an encoded backslash is not a separator */
}

static void test_raw_bytes_encoded(void)
{
    CHECK_STR(norm("/test<path>"), "/test%3Cpath%3E");
    CHECK_STR(norm("/test<script>"), "/test%3Cscript%3E");
    CHECK_STR(norm("/test^path"), "/test%5Epath");
    CHECK_STR(norm("/test`path"), "/test%60path");
    CHECK_STR(norm("/test{path}"), "/test%7Bpath%7D");
    CHECK_STR(norm("/test|path"), "/test%7Cpath");
    /* stricter than Ferron, which passes these through raw */
    CHECK_STR(norm("/test path"), "/test%20path");
    CHECK_STR(norm("/test\tpath"), "/test%09path");
    CHECK_STR(norm("/test\r\npath"), "/test%0D%0Apath");
    CHECK_STR(norm("/a\"b"), "/a%22b");
    CHECK_STR(norm("/a\x7f"), "/a%7F");
    CHECK_STR(norm("/caf\xc3\xa9"), "/caf%C3%A9");
}

static void test_encoded_separators_and_dots(void)
{
    CHECK_STR(norm("/a%2Fb"), "/a/b");
    CHECK_STR(norm("/a%2fb"), "/a/b");
    CHECK_STR(norm("/%2e%2e/%2e%2e/etc/passwd"), "/etc/passwd");
    CHECK_STR(norm("/a/%2E%2E/b"), "/b");
    CHECK_STR(norm("/a/%2e/b"), "/a/b");
    CHECK_STR(norm("/admin%2F..%2Fsecret"), "/secret");
    CHECK_STR(norm("/static/%2e%2e%2fadmin"), "/admin");
}

static void test_backslashes(void)
{
    CHECK_STR(norm("test\\path"), "/test/path");
    CHECK_STR(norm("/test\\"), "/test/");
    CHECK_STR(norm("/test\\path/to\\file"), "/test/path/to/file");
    CHECK_STR(norm("\\test/path\\to/file\\"), "/test/path/to/file/");
    CHECK_STR(norm("test\\..\\path%21\\file.txt"), "/path!/file.txt");
    CHECK_STR(norm("/a\\..\\..\\etc"), "/etc");
}

static void test_double_slashes(void)
{
    CHECK_STR(norm("test//path"), "/test/path");
    CHECK_STR(norm("/a//b"), "/a/b");
    CHECK_STR(norm("/a///b"), "/a/b");
    CHECK_STR(norm("///a///b///"), "/a/b/");
    CHECK_STR(norm("//"), "/");
    CHECK_STR(norm("///"), "/");
    CHECK_STR(norm2("test//path"), "/test//path");
    CHECK_STR(norm2("//server/share"), "//server/share");
    CHECK_STR(norm2("/path//to///file"), "/path//to///file");
    CHECK_STR(norm2("test///path"), "/test///path");
    CHECK_STR(norm2("/a/b/"), "/a/b/");
    CHECK_STR(norm2("/a//../b"), "/a/b");
    CHECK_STR(norm2("/a/../../b"), "/b");
}

static void test_dot_segments(void)
{
    CHECK_STR(norm("/./test"), "/test");
    CHECK_STR(norm("/../test"), "/test");
    CHECK_STR(norm("../test"), "/test");
    CHECK_STR(norm("./test"), "/test");
    CHECK_STR(norm("/test/../path"), "/path");
    CHECK_STR(norm("/a/b/c/../../d"), "/a/d");
    CHECK_STR(norm("/a/./b/../c/./d/.."), "/a/c");
    CHECK_STR(norm("/a/b/c/../../../.."), "/");
    CHECK_STR(norm("./../../a/b/c"), "/a/b/c");
    CHECK_STR(norm("/../.."), "/");
    CHECK_STR(norm("/../../etc/passwd"), "/etc/passwd");
    CHECK_STR(norm("/../../../etc/passwd"), "/etc/passwd");
    CHECK_STR(norm("/app/../../../etc/passwd"), "/etc/passwd");
    CHECK_STR(norm("/safe/path/../../../../../../etc/passwd"), "/etc/passwd");
}

static void test_trailing_dots(void)
{
    CHECK_STR(norm("/file.php."), "/file.php");
    CHECK_STR(norm("/test..."), "/test");
    CHECK_STR(norm("/test.../"), "/test/");
    CHECK_STR(norm("/a/.../b"), "/a/b");
    CHECK_STR(norm("/..."), "/");
    CHECK_STR(norm("/a/..../b/"), "/a/b/");
    CHECK_STR(norm("/dir./x"), "/dir/x");
}

static void test_leading_and_trailing_slash(void)
{
    CHECK_STR(norm("test"), "/test");
    CHECK_STR(norm("a/b"), "/a/b");
    CHECK_STR(norm("/test/"), "/test/");
    CHECK_STR(norm("/test/path/"), "/test/path/");
    CHECK_STR(norm("/a/b/"), "/a/b/");
    CHECK_STR(norm("/test/./"), "/test/");
    CHECK_STR(norm("/a/./"), "/a/");
    CHECK_STR(norm("/a/.."), "/");
    CHECK_STR(norm("/test/../"), "/");
    CHECK_STR(norm("/a/."), "/a");
}

static void test_long_path_and_capacity(void)
{
    char in[1002], out[4000];
    in[0] = '/';
    memset(in + 1, 'a', 1000);
    in[1001] = '\0';
    CHECK_STR(norm(in), in);

    /* the documented capacity always suffices, even when every byte is encoded */
    const char *worst = "<<<<";
    CHECK_EQ_INT(gw_uri_normalize(worst, 4, out, 4 * 3 + 2, false), 13);
    CHECK(memcmp(out, "/%3C%3C%3C%3C", 13) == 0);
    CHECK_EQ_INT(gw_uri_normalize(worst, 4, out, 12, false), -2);
    CHECK_EQ_INT(gw_uri_normalize("/abc", 4, out, 5, false), 4);
    CHECK_EQ_INT(gw_uri_normalize("/abc", 4, out, 3, false), -2);
    CHECK_EQ_INT(gw_uri_normalize("*", 1, out, 0, false), -2);
}

/* A path already in normal form is copied as it is; an escape sends the same path through both full
 * passes ("/%61" decodes to "/a"), so every short path over the bytes that matter must come out the
 * same either way, with and without double slashes kept. */
static void test_normal_form_shortcut(void)
{
    static const char alphabet[] = "/.a-";
    char plain[16] = "/a/", escaped[16] = "/%61/";
    for (unsigned code = 0; code < 4 * 4 * 4 * 4 * 4 * 4; code++) {
        for (size_t len = 0; len <= 6; len++) {
            unsigned c = code;
            for (size_t i = 0; i < len; i++, c /= 4)
                plain[3 + i] = escaped[5 + i] = alphabet[c % 4];
            for (int dbl = 0; dbl < 2; dbl++) {
                char want[4096];
                strcpy(want, norm_n(escaped, 5 + len, dbl)); /* norm_n's buffer is reused below */
                CHECK_STR(norm_n(plain, 3 + len, dbl), want);
            }
        }
    }
}

static void test_decode(void)
{
    CHECK_STR(decode("/a%20b"), "/a b");
    CHECK_STR(decode("/a%3fb%3F"), "/a?b?");
    CHECK_STR(decode("/%25"), "/%");
    CHECK_STR(decode("/%C3%A9"), "/\xc3\xa9");
    CHECK_STR(decode("/plain"), "/plain");
    CHECK_STR(decode(""), "");
    CHECK_STR(decode("/%00"), "ERR-1");
    CHECK_STR(decode("/%zz"), "ERR-1");
    CHECK_STR(decode("/%4"), "ERR-1");
    CHECK_STR(decode("/%"), "ERR-1");
    char out[4];
    CHECK_EQ_INT(gw_uri_decode("a\0b", 3, out, sizeof out), -1);
    CHECK_EQ_INT(gw_uri_decode("abcd", 4, out, 4), 4);
    CHECK_EQ_INT(gw_uri_decode("abcde", 5, out, 4), -2);
    CHECK_EQ_INT(gw_uri_decode("%41%42%43%44%45", 15, out, 4), -2);

    /* normalise then decode: what a file handler does */
    char buf[64];
    long n = gw_uri_normalize("/d%69r/a%20b.txt", 16, buf, sizeof buf, false);
    CHECK_EQ_INT(n, 14);
    CHECK(memcmp(buf, "/dir/a%20b.txt", 14) == 0);
    char dec[64];
    long d = gw_uri_decode(buf, (size_t)n, dec, sizeof dec);
    CHECK_EQ_INT(d, 12);
    CHECK(memcmp(dec, "/dir/a b.txt", 12) == 0);
}

/* Normalisation is idempotent on its own output and never produces a dot segment. */
static void test_idempotent(void)
{
    static const char *inputs[] = {"/a/../b/./c/", "\\x\\..\\..\\y.", "//a//b//",  "/%2e%2e/%2f/x%20y",
                                   "a/b/../../..", "/<x>/{y}/",       "/.../....", "/%41%2F%2E/"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        for (int dbl = 0; dbl < 2; dbl++) {
            char once[256], twice[256];
            long a = gw_uri_normalize(inputs[i], strlen(inputs[i]), once, sizeof once, dbl);
            CHECK(a > 0);
            long b = gw_uri_normalize(once, (size_t)a, twice, sizeof twice, dbl);
            CHECK_EQ_INT(a, b);
            CHECK(a == b && memcmp(once, twice, (size_t)a) == 0);
            CHECK(once[0] == '/');
        }
    }
}

int main(void)
{
    test_unchanged();
    test_nul_removed();
    test_bad_escapes();
    test_safe_escapes_decoded();
    test_other_escapes_kept();
    test_raw_bytes_encoded();
    test_encoded_separators_and_dots();
    test_backslashes();
    test_double_slashes();
    test_dot_segments();
    test_trailing_dots();
    test_leading_and_trailing_slash();
    test_long_path_and_capacity();
    test_normal_form_shortcut();
    test_decode();
    test_idempotent();
    return check_report("uri");
}
