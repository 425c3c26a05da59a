/* libFuzzer target: the bounded JSON reader that parses the ACME CA's answers (peer input). Values
 * it returns must lie within the input; a member found must be a value the array walker and the
 * string decoder handle without reading past it; the walk over an array always advances. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme_json.h"

static void within(gw_slice_t in, gw_slice_t v)
{
    if (v.base && (v.base < in.base || v.base + v.len > in.base + in.len || !v.len)) abort();
}

static void walk(gw_slice_t in, gw_slice_t arr)
{
    gw_slice_t e;
    size_t pos = 0, last = 0;
    char out[256];
    while (gw_json_array_next(arr, &pos, &e)) {
        if (pos <= last || pos > arr.len) abort();
        last = pos;
        within(in, e);
        gw_json_string(e, out, sizeof(out));
        within(in, gw_json_get(e, "type"));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1); /* exact size: ASan sees any read past the end */
    if (!copy) return 0;
    memcpy(copy, data, size);
    gw_slice_t in = {copy, size};
    static const char *const keys[] = {"status", "challenges", "authorizations", "error", "detail", "url"};
    char out[512];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        gw_slice_t v = gw_json_get(in, keys[i]);
        within(in, v);
        if (gw_json_string(v, out, sizeof(out)) && strlen(out) >= sizeof(out)) abort();
        walk(in, v);
    }
    walk(in, in);
    free(copy);
    return 0;
}
