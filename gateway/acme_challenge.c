/* HTTP-01 answers from the published key authorizations. See acme_challenge.h. */
#include "acme_challenge.h"

#include "acme_store.h"
#include "config_props.h"

#define PREFIX "/.well-known/acme-challenge/"

static gw_handler_result_t on_request(const gw_handler_t *self, gw_req_t *req)
{
    (void)self;
    size_t pl = sizeof(PREFIX) - 1;
    if (req->path.len <= pl || memcmp(req->path.base, PREFIX, pl) != 0) return GW_CONTINUE;
    if (req->method_id != GW_M_GET && req->method_id != GW_M_HEAD) return GW_CONTINUE;
    char key_auth[512];
    if (!gw_acme_store_token(req->path.base + pl, req->path.len - pl, key_auth, sizeof(key_auth)))
        return GW_CONTINUE;
    gw_send_inline(req, 200, "application/octet-stream", key_auth, strlen(key_auth));
    return GW_DONE;
}

static const gw_handler_t handler = {"acme-challenge", on_request};

const gw_handler_t *gw_acme_challenge_handler(const gw_route_t *route)
{
    bool on = false;
    gw_node_as_bool(gw_route_prop(route, "enableAutomaticTLS"), &on);
    return on ? &handler : NULL;
}
