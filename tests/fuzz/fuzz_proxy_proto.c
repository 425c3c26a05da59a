/* libFuzzer target: the PROXY protocol header parser. A header it accepts must lie within the
 * input, and its addresses, written again as v1 and as v2 by gw_pp_write, must parse back to the
 * same addresses; gw_pp_detect must agree with the parser on what is a header at all. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

static void round_trip(int version, const gw_pp_header_t *h)
{
    uint8_t buf[GW_PP_WRITE_MAX];
    size_t n = gw_pp_write(version, &h->src, &h->dst, buf);
    gw_pp_header_t back;
    if (gw_pp_parse(buf, n, sizeof(buf), &back) != (int)n) abort();
    if (IN6_IS_ADDR_UNSPECIFIED(&h->src.sin6_addr)) return; /* written as UNKNOWN / AF_UNSPEC */
    if (!back.has_addr || memcmp(&back.src, &h->src, sizeof(back.src)) != 0 ||
        memcmp(&back.dst, &h->dst, sizeof(back.dst)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_pp_header_t h;
    size_t max = size > 16 ? 16 + (data[0] % 200) * 20 : 512; /* limits from 16 to 4000 */
    int n = gw_pp_parse(data, size, max, &h);
    if (n > (int)size || (n > 0 && (size_t)n > max)) abort();
    int kind = gw_pp_detect(data, size);
    if ((n > 0 && kind != 1) || (kind == 0 && n != -1)) abort();
    if (n <= 0 || !h.has_addr) return 0;
    round_trip(1, &h);
    round_trip(2, &h);
    return 0;
}
