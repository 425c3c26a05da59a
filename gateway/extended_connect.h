/*
 * WebSocket over HTTP/2 (RFC 8441 extended CONNECT, with http2Settings.enableConnectProtocol): a
 * CONNECT stream with `:protocol: websocket` is served as the HTTP/1.1 Upgrade request it stands
 * for (RFC 6455 4.1), so rproxy passes it to an HTTP/1.1 backend unchanged: a GET of :path with
 * Upgrade: websocket and a fresh Sec-WebSocket-Key. The backend's 101 becomes the 200 that opens
 * the stream as the tunnel. Other :protocol values are answered 501.
 */
#ifndef GW_EXTENDED_CONNECT_H
#define GW_EXTENDED_CONNECT_H

#include "request.h"

/** Rewrites a `:protocol: websocket` CONNECT (method, upgrade, and the Upgrade and
 *  Sec-WebSocket-Key fields appended to `headers`, in the request arena). Returns 0, or the
 *  status to answer with: 501 for another protocol, 500 without memory. */
int gw_extended_connect_as_upgrade(gw_req_t *req, gw_headers_t *headers, gw_slice_t protocol);

/** Before the response head goes out on such a stream: a 101 becomes 200, and the handshake's
 *  Sec-WebSocket-Accept (meaningless to an RFC 8441 client) is dropped. */
void gw_extended_connect_response(gw_req_t *req);

#endif
