/* One ACME issuance, step by step. See acme_client.h. */
#include "acme_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme_crypto.h"
#include "acme_json.h"
#include "acme_store.h"
#include "log.h"

#define BAD_NONCE_RETRIES 5
#define URL_MAX 1024
#define MAX_AUTHZ 100

/* Takes the problem document of a failed answer into err: "step: HTTP 400 type: detail". */
static void problem(const char *step, const gw_acme_response_t *r, char *err, size_t errlen)
{
    char type[256] = "", detail[512] = "";
    gw_slice_t body = {r->body, r->body_len};
    gw_json_get_string(body, "type", type, sizeof(type));
    gw_json_get_string(body, "detail", detail, sizeof(detail));
    snprintf(err, errlen, "%s: HTTP %d %s%s%s", step, r->status, type, detail[0] ? ": " : "", detail);
}

static bool is_bad_nonce(const gw_acme_response_t *r)
{
    char type[128] = "";
    gw_json_get_string((gw_slice_t){r->body, r->body_len}, "type", type, sizeof(type));
    return r->status == 400 && !strcmp(type, "urn:ietf:params:acme:error:badNonce");
}

static bool fetch_nonce(gw_acme_session_t *s, char *err, size_t errlen)
{
    gw_acme_response_t r;
    if (!gw_acme_http_request(s->http, "HEAD", s->new_nonce, NULL, &r, err, errlen)) return false;
    bool ok = r.nonce[0] != '\0';
    if (ok)
        memcpy(s->nonce, r.nonce, sizeof(s->nonce));
    else
        snprintf(err, errlen, "newNonce: HTTP %d without Replay-Nonce", r.status);
    gw_acme_response_free(&r);
    return ok;
}

/*
 * A signed POST (payload "" for POST-as-GET). Returns true for a 2xx answer in *r (the caller frees
 * it); otherwise false with the problem in err and s->retry_after from the answer.
 */
static bool post(gw_acme_session_t *s, const char *step, const char *url, const char *payload, bool use_jwk,
                 gw_acme_response_t *r, char *err, size_t errlen)
{
    size_t cap = strlen(payload) * 4 / 3 + 4096;
    char *jws = malloc(cap);
    if (!jws) return false;
    bool ok = false;
    for (int attempt = 0; attempt <= BAD_NONCE_RETRIES; attempt++) {
        if (!s->nonce[0] && !fetch_nonce(s, err, errlen)) break;
        if (!gw_acme_jws(s->account_key, use_jwk ? NULL : s->kid, s->nonce, url, payload, jws, cap)) {
            snprintf(err, errlen, "%s: cannot sign the request", step);
            break;
        }
        s->nonce[0] = '\0';
        if (!gw_acme_http_request(s->http, "POST", url, jws, r, err, errlen)) break;
        memcpy(s->nonce, r->nonce, sizeof(s->nonce)); /* every answer carries the next nonce */
        if (r->status >= 200 && r->status < 300) {
            ok = true;
            break;
        }
        s->retry_after = r->retry_after;
        problem(step, r, err, errlen);
        bool retry = is_bad_nonce(r);
        gw_acme_response_free(r);
        if (retry) gw_log_error("notice", "acme: %s: badNonce, retrying with the nonce of that answer", step);
        if (!retry) break;
    }
    free(jws);
    return ok;
}

static bool get_directory(gw_acme_session_t *s, char *err, size_t errlen)
{
    gw_acme_response_t r;
    if (!gw_acme_http_request(s->http, "GET", s->directory_url, NULL, &r, err, errlen)) return false;
    gw_slice_t b = {r.body, r.body_len};
    bool ok = r.status == 200 && gw_json_get_string(b, "newNonce", s->new_nonce, sizeof(s->new_nonce)) &&
              gw_json_get_string(b, "newAccount", s->new_account, sizeof(s->new_account)) &&
              gw_json_get_string(b, "newOrder", s->new_order, sizeof(s->new_order));
    if (!ok) problem("directory", &r, err, errlen);
    gw_acme_response_free(&r);
    return ok;
}

static bool new_account(gw_acme_session_t *s, char *err, size_t errlen)
{
    char payload[600];
    if (s->contact_email)
        snprintf(payload, sizeof(payload), "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:%s\"]}",
                 s->contact_email);
    else
        snprintf(payload, sizeof(payload), "{\"termsOfServiceAgreed\":true}");
    gw_acme_response_t r;
    if (!post(s, "newAccount", s->new_account, payload, true, &r, err, errlen)) return false;
    bool ok = r.location[0] != '\0';
    if (ok)
        snprintf(s->kid, sizeof(s->kid), "%s", r.location);
    else
        snprintf(err, errlen, "newAccount: no account URL (Location)");
    gw_acme_response_free(&r);
    return ok;
}

/* The order's JSON payload: {"identifiers":[{"type":"dns","value":NAME},...]}. */
static char *order_payload(const char *const *names, size_t n)
{
    size_t cap = 32;
    for (size_t i = 0; i < n; i++)
        cap += strlen(names[i]) + 40;
    char *p = malloc(cap);
    if (!p) return NULL;
    size_t o = (size_t)sprintf(p, "{\"identifiers\":[");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(p + o, "%s{\"type\":\"dns\",\"value\":\"%s\"}", i ? "," : "", names[i]);
    sprintf(p + o, "]}");
    return p;
}

/* Why an order or authorization failed: its own error, else the first failed challenge's. */
static void failure_detail(gw_slice_t obj, char *out, size_t cap)
{
    if (gw_json_get_string(gw_json_get(obj, "error"), "detail", out, cap)) return;
    gw_slice_t chal, list = gw_json_get(obj, "challenges");
    for (size_t pos = 0; gw_json_array_next(list, &pos, &chal);)
        if (gw_json_get_string(gw_json_get(chal, "error"), "detail", out, cap)) return;
}

/* POST-as-GET of `url` until its status is no longer pending/processing; copies the final body. */
static bool poll_status(gw_acme_session_t *s, const char *step, const char *url, gw_acme_response_t *out,
                        char *err, size_t errlen)
{
    for (int i = 0; i < s->poll_attempts; i++) {
        if (!post(s, step, url, "", false, out, err, errlen)) return false;
        char status[32] = "";
        gw_json_get_string((gw_slice_t){out->body, out->body_len}, "status", status, sizeof(status));
        if (strcmp(status, "pending") && strcmp(status, "processing")) {
            if (!strcmp(status, "valid") || !strcmp(status, "ready")) return true;
            char detail[600] = "";
            failure_detail((gw_slice_t){out->body, out->body_len}, detail, sizeof(detail));
            snprintf(err, errlen, "%s: status %s %.400s", step, status[0] ? status : "(none)", detail);
            gw_acme_response_free(out);
            return false;
        }
        gw_acme_response_free(out);
        if (!s->wait(s->wait_ctx, s->poll_interval_ms)) break;
    }
    snprintf(err, errlen, "%s: still pending after %d polls", step, s->poll_attempts);
    return false;
}

/* A challenge token is base64url (RFC 8555 §8.1): safe in a URL path and a file name. */
static bool is_token(const char *t)
{
    return t[0] && strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(t);
}

/* Picks our challenge type in an authorization, publishes its answer and tells the CA to check. */
static bool start_challenge(gw_acme_session_t *s, gw_slice_t authz, char *err, size_t errlen)
{
    const char *want = s->http01 ? "http-01" : "tls-alpn-01";
    char ident[300] = "", type[32], url[URL_MAX], token[256], thumb[64], key_auth[400];
    gw_json_get_string(gw_json_get(authz, "identifier"), "value", ident, sizeof(ident));
    gw_slice_t chal, list = gw_json_get(authz, "challenges");
    for (size_t pos = 0; gw_json_array_next(list, &pos, &chal);) {
        if (!gw_json_get_string(chal, "type", type, sizeof(type)) || strcmp(type, want)) continue;
        if (!gw_json_get_string(chal, "url", url, sizeof(url)) ||
            !gw_json_get_string(chal, "token", token, sizeof(token)) || !is_token(token) ||
            !gw_acme_thumbprint(s->account_key, thumb, sizeof(thumb)))
            break;
        snprintf(key_auth, sizeof(key_auth), "%s.%s", token, thumb);
        bool published = s->http01 ? gw_acme_store_set_token(token, key_auth)
                                   : gw_acme_store_set_alpn_cert(ident, key_auth);
        gw_acme_response_t r;
        if (!published || !post(s, "challenge", url, "{}", false, &r, err, errlen)) return false;
        gw_acme_response_free(&r);
        return true;
    }
    snprintf(err, errlen, "authorization for %s: no usable %s challenge", ident, want);
    return false;
}

/* Every authorization of the order: answered, then polled until valid. */
static bool authorize(gw_acme_session_t *s, gw_slice_t order, char *err, size_t errlen)
{
    char urls[MAX_AUTHZ][URL_MAX];
    size_t n = 0;
    gw_slice_t e, list = gw_json_get(order, "authorizations");
    for (size_t pos = 0; n < MAX_AUTHZ && gw_json_array_next(list, &pos, &e);)
        if (gw_json_string(e, urls[n], URL_MAX)) n++;
    for (size_t i = 0; i < n; i++) {
        gw_acme_response_t r;
        if (!post(s, "authorization", urls[i], "", false, &r, err, errlen)) return false;
        char status[32] = "";
        gw_slice_t body = {r.body, r.body_len};
        gw_json_get_string(body, "status", status, sizeof(status));
        bool ok = !strcmp(status, "valid") || start_challenge(s, body, err, errlen);
        gw_acme_response_free(&r);
        if (!ok) return false;
    }
    for (size_t i = 0; i < n; i++) {
        gw_acme_response_t r;
        if (!poll_status(s, "authorization", urls[i], &r, err, errlen)) return false;
        gw_acme_response_free(&r);
    }
    return true;
}

/* Sends the CSR, waits for the order to be valid and downloads the chain. */
static char *finalize(gw_acme_session_t *s, const char *order_url, gw_slice_t order, const char *const *names,
                      size_t n, EVP_PKEY *cert_key, size_t *len, char *err, size_t errlen)
{
    char url[URL_MAX], csr[4096], payload[4200], cert_url[URL_MAX];
    if (!gw_json_get_string(order, "finalize", url, sizeof(url)) ||
        !gw_acme_csr(cert_key, names, n, csr, sizeof(csr))) {
        snprintf(err, errlen, "order: no finalize URL, or the CSR could not be made");
        return NULL;
    }
    snprintf(payload, sizeof(payload), "{\"csr\":\"%s\"}", csr);
    gw_acme_response_t r;
    if (!post(s, "finalize", url, payload, false, &r, err, errlen)) return NULL;
    gw_acme_response_free(&r);
    if (!poll_status(s, "order", order_url, &r, err, errlen)) return NULL;
    bool have =
        gw_json_get_string((gw_slice_t){r.body, r.body_len}, "certificate", cert_url, sizeof(cert_url));
    gw_acme_response_free(&r);
    if (!have) {
        snprintf(err, errlen, "order: valid without a certificate URL");
        return NULL;
    }
    if (!post(s, "certificate", cert_url, "", false, &r, err, errlen)) return NULL;
    *len = r.body_len;
    return r.body; /* the caller owns it */
}

char *gw_acme_issue(gw_acme_session_t *s, const char *const *names, size_t n, EVP_PKEY *cert_key, size_t *len,
                    char *err, size_t errlen)
{
    s->retry_after = -1;
    s->nonce[0] = '\0';
    if (!get_directory(s, err, errlen) || !new_account(s, err, errlen)) return NULL;
    char *payload = order_payload(names, n);
    gw_acme_response_t r;
    bool ordered = payload && post(s, "newOrder", s->new_order, payload, false, &r, err, errlen);
    free(payload);
    if (!ordered) return NULL;
    char order_url[URL_MAX];
    snprintf(order_url, sizeof(order_url), "%s", r.location);
    gw_slice_t order = {r.body, r.body_len};
    char *pem = NULL;
    if (!order_url[0])
        snprintf(err, errlen, "newOrder: no order URL (Location)");
    else if (authorize(s, order, err, errlen))
        pem = finalize(s, order_url, order, names, n, cert_key, len, err, errlen);
    gw_acme_response_free(&r);
    gw_acme_store_clear_challenges();
    return pem;
}
