/* The word-wide ASCII case folding (ascii.h) against a byte-by-byte reference, for every byte value
 * in every position of a word. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "check.h"

static unsigned char reference_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static void test_lower8_every_byte(void)
{
    for (unsigned v = 0; v < 256; v++) {
        for (int lane = 0; lane < 8; lane++) {
            unsigned char in[8] = {'Z', '@', '[', 'a', 0x80, 0xC1, 'A', '-'}, want[8], got[8];
            in[lane] = (unsigned char)v;
            for (int k = 0; k < 8; k++)
                want[k] = reference_lower(in[k]);
            uint64_t w;
            memcpy(&w, in, 8);
            w = gw_ascii_lower8(w);
            memcpy(got, &w, 8);
            CHECK(memcmp(got, want, 8) == 0);
        }
    }
}

static void test_lower_copy(void)
{
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ-Q@[";
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz-q@[";
    for (size_t n = 0; n < sizeof(upper); n++) { /* every length: byte loop, words, overlapping word */
        char out[40];
        memset(out, '#', sizeof(out));
        gw_ascii_lower_copy(out, upper, n);
        CHECK(memcmp(out, lower, n) == 0);
        CHECK(out[n] == '#'); /* nothing written past n */
    }
    const char *in = "X-Forwarded-PROTO\x80\xDA";
    char got[32] = {0};
    gw_ascii_lower_copy(got, in, strlen(in)); /* two words and a tail */
    CHECK_STR(got, "x-forwarded-proto\x80\xDA");
}

static void test_ieq(void)
{
    CHECK(gw_ascii_ieq(GW_SLICE_LIT("Transfer-Encoding"), "transfer-encoding"));
    CHECK(gw_ascii_ieq(GW_SLICE_LIT("TE"), "te"));
    CHECK(gw_ascii_ieq(GW_SLICE_LIT("CONNECTION"), "connection"));
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("connectio"), "connection"));   /* shorter */
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("connections"), "connection")); /* longer */
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("transfer-encodinG\x01"), "transfer-encoding\x21"));
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("Content\rLength"), "content-length")); /* CR is not '-' */
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("content-lengtH"), "content-lengtx"));
    CHECK(!gw_ascii_ieq(GW_SLICE_LIT("\305e"), "\345e")); /* not ASCII: not folded */
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz-0123";
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123";
    char name[32];
    for (size_t n = 1; n < sizeof(lower); n++) { /* every length (each way of splitting into words) */
        char lit[32];
        memcpy(lit, lower, n);
        lit[n] = '\0';
        CHECK(gw_ascii_ieq((gw_slice_t){upper, n}, lit));
        for (size_t k = 0; k < n; k++) { /* one byte off anywhere */
            memcpy(name, upper, n);
            name[k] = (char)(name[k] ^ 0x01);
            CHECK(!gw_ascii_ieq((gw_slice_t){name, n}, lit));
        }
    }
}

int main(void)
{
    test_lower8_every_byte();
    test_lower_copy();
    test_ieq();
    return check_report("ascii");
}
