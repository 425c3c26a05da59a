/* libFuzzer target: the FastCGI record decoder, fed the input in pieces whose size comes from the
 * first byte, must agree with a one-shot decode and never run outside its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi.h"

static void ignore(void *ctx, const char *d, size_t n)
{
    (void)ctx;
    (void)d;
    (void)n;
}

/* Decodes all of data with reads of `step` bytes; returns the STDOUT bytes (caller frees). */
static char *decode_all(const uint8_t *data, size_t size, size_t step, size_t *out_len, long *status)
{
    gw_fcgi_decoder_t d = {.id = 1, .on_stderr = ignore};
    char *work = malloc(size + 1), *out = malloc(size + 1);
    size_t have = 0, pos = 0, olen = 0;
    *status = 0;
    while (pos < size && !(d.done && !d.in_record)) {
        size_t take = size - pos < step ? size - pos : step;
        memcpy(work + have, data + pos, take);
        have += take;
        pos += take;
        size_t len = have;
        long used = gw_fcgi_decode(&d, work, &len);
        if (used < 0) {
            *status = -1;
            break;
        }
        if ((size_t)used > have || len > (size_t)used) __builtin_trap();
        memcpy(out + olen, work, len);
        olen += len;
        memmove(work, work + used, have - (size_t)used);
        have -= (size_t)used;
    }
    free(work);
    *out_len = olen;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    size_t a_len, b_len;
    long a_st, b_st;
    char *a = decode_all(data + 1, size - 1, size, &a_len, &a_st);
    char *b = decode_all(data + 1, size - 1, step, &b_len, &b_st);
    if (a_st == 0 && b_st == 0 && (a_len != b_len || memcmp(a, b, a_len) != 0)) __builtin_trap();
    free(a);
    free(b);
    return 0;
}
