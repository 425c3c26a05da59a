/* WebSocket over HTTP/2 as an HTTP/1.1 Upgrade. See extended_connect.h. */
#include "extended_connect.h"

#include <openssl/base64.h>
#include <openssl/rand.h>

#define WS_KEY_BYTES 16 /* RFC 6455 4.1: a random 16-byte nonce, base64-encoded */

static bool has_field(const gw_headers_t *headers, const char *name)
{
    for (uint32_t i = 0; i < headers->count; i++)
        if (gw_slice_ieq(headers->items[i].name, name)) return true;
    return false;
}

int gw_extended_connect_as_upgrade(gw_req_t *req, gw_headers_t *headers, gw_slice_t protocol)
{
    if (!gw_slice_ieq(protocol, "websocket")) return 501;
    req->method = GW_SLICE_LIT("GET");
    req->method_id = GW_M_GET;
    req->upgrade = true;
    if (!gw_headers_add(&req->arena, headers, GW_SLICE_LIT("upgrade"), GW_SLICE_LIT("websocket"))) return 500;
    if (has_field(headers, "sec-websocket-key")) return 0;
    uint8_t nonce[WS_KEY_BYTES];
    char *key = gw_arena_alloc(&req->arena, 4 * ((WS_KEY_BYTES + 2) / 3) + 1);
    if (!key || !RAND_bytes(nonce, sizeof(nonce))) return 500;
    size_t key_len = EVP_EncodeBlock((uint8_t *)key, nonce, sizeof(nonce));
    gw_slice_t value = {key, key_len};
    return gw_headers_add(&req->arena, headers, GW_SLICE_LIT("sec-websocket-key"), value) ? 0 : 500;
}

void gw_extended_connect_response(gw_req_t *req)
{
    if (req->res.status != 101) return;
    req->res.status = 200;
    gw_headers_t *h = &req->res.headers;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < h->count; i++)
        if (!gw_slice_ieq(h->items[i].name, "sec-websocket-accept")) h->items[kept++] = h->items[i];
    h->count = kept;
}
