/* libFuzzer target: the CGI response-head parser must never read outside its input or crash,
 * and what it accepts must lie inside the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cgi_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_header_t headers[GW_CGI_MAX_HEADERS];
    gw_h1_response_head_t h = {.headers = headers};
    const char *buf = (const char *)data;
    int n = gw_cgi_parse_head(buf, size, &h, GW_CGI_MAX_HEADERS);
    if (n > 0) {
        if ((size_t)n > size || h.status < 200 || h.status > 999) __builtin_trap();
        for (size_t i = 0; i < h.num_headers; i++)
            if (h.headers[i].name.base < buf || h.headers[i].value.base + h.headers[i].value.len > buf + n)
                __builtin_trap();
    }
    return 0;
}
