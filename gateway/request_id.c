/* X-Request-ID. See request_id.h. */
#include "request_id.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static _Thread_local uint64_t id_prefix, id_counter;

static bool sane(gw_slice_t v)
{
    if (!v.len || v.len > 128) return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._:+/=", c);
        if (!ok || !c) return false;
    }
    return true;
}

/* A random per-thread prefix and a counter: unique, and unknown to whoever saw earlier ids. */
static gw_slice_t generate(gw_req_t *req)
{
    if (!id_prefix && getrandom(&id_prefix, sizeof(id_prefix), 0) != (ssize_t)sizeof(id_prefix))
        id_prefix = (uint64_t)(uintptr_t)&id_prefix * 0x9e3779b97f4a7c15ull;
    if (!id_counter && getrandom(&id_counter, sizeof(id_counter), 0) != (ssize_t)sizeof(id_counter))
        id_counter = id_prefix >> 7;
    char *s = gw_arena_alloc(&req->arena, 33);
    if (!s) return (gw_slice_t){NULL, 0};
    snprintf(s, 33, "%016llx%016llx", (unsigned long long)id_prefix, (unsigned long long)++id_counter);
    return (gw_slice_t){s, 32};
}

void gw_request_id_assign(gw_req_t *req)
{
    const gw_slice_t name = GW_SLICE_LIT("x-request-id");
    gw_header_t *h = (gw_header_t *)gw_req_header(req, "x-request-id");
    if (h && sane(h->value)) {
        req->request_id = h->value;
    } else {
        req->request_id = generate(req);
        if (!req->request_id.base) return;
        if (h) {
            h->value = req->request_id; /* an insane id is replaced, not forwarded */
        } else {
            gw_header_t *all = gw_arena_alloc(&req->arena, (req->num_headers + 1) * sizeof(*all));
            if (all) {
                if (req->num_headers) memcpy(all, req->headers, req->num_headers * sizeof(*all));
                all[req->num_headers++] = (gw_header_t){name, req->request_id};
                req->headers = all;
            }
        }
    }
    gw_res_add_header(req, name, req->request_id);
}
