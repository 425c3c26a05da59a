/*
 * X-Request-ID (`requestId: true`): a request keeps the id its client sent when it is sane (1 to
 * 128 characters of letters, digits and "-._:+/="), else gets a new one (32 hex digits, unique in
 * the process and not guessable from earlier ones). The id is put on the request (so backends
 * receive it), on the response, and in the access log.
 */
#ifndef GW_REQUEST_ID_H
#define GW_REQUEST_ID_H

#include "request.h"

/** Sets req->request_id and the request/response headers (called once, at dispatch). */
void gw_request_id_assign(gw_req_t *req);

#endif
