/* ACME building blocks: the bounded JSON reader, base64url, JWS (verified with the key), the CSR,
 * the TLS-ALPN-01 certificate and the process-wide store. */
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme_crypto.h"
#include "acme_json.h"
#include "acme_store.h"
#include "check.h"

static gw_slice_t S(const char *s)
{
    return (gw_slice_t){s, strlen(s)};
}

static void test_json(void)
{
    const char *doc = " {\"a\": 1, \"newOrder\" : \"https://ca/o\", \"x\":{\"status\":\"valid\"},"
                      " \"list\": [\"u1\", {\"k\": [1,2]}, \"u\\u00e9\\n\"], \"t\": true, \"n\": null} ";
    char out[64];
    CHECK(gw_json_get_string(S(doc), "newOrder", out, sizeof(out)));
    CHECK_STR(out, "https://ca/o");
    CHECK(gw_json_get_string(gw_json_get(S(doc), "x"), "status", out, sizeof(out)));
    CHECK_STR(out, "valid");
    CHECK(gw_json_get(S(doc), "missing").base == NULL);
    CHECK(!gw_json_get_string(S(doc), "a", out, sizeof(out))); /* a number is not a string */
    gw_slice_t list = gw_json_get(S(doc), "list"), e;
    size_t pos = 0, n = 0;
    while (gw_json_array_next(list, &pos, &e))
        n++;
    CHECK_EQ_INT(n, 3);
    pos = 0;
    gw_json_array_next(list, &pos, &e);
    gw_json_array_next(list, &pos, &e);
    gw_json_array_next(list, &pos, &e);
    CHECK(gw_json_string(e, out, sizeof(out)));
    CHECK_STR(out, "u\xc3\xa9\n");
    /* malformed, truncated, too deep, too long: refused, never read past the end */
    CHECK(gw_json_get(S("{\"a\" \"b\"}"), "a").base == NULL);
    CHECK(gw_json_get(S("{\"a\":tru}"), "a").base == NULL);
    CHECK(!gw_json_string(S("\"abc"), out, sizeof(out)));
    CHECK(!gw_json_string(S("\"\\ud800\""), out, sizeof(out)));
    CHECK(!gw_json_string(S("\"0123456789\""), out, 8));
    char deep[200] = "{\"a\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    CHECK(gw_json_get(S(deep), "a").base == NULL);
    CHECK(gw_json_get(S("[1]"), "a").base == NULL);
    pos = 0;
    CHECK(!gw_json_array_next(S("[1,"), &pos, &e) || !gw_json_array_next(S("[1,"), &pos, &e));
}

static void test_b64url(void)
{
    char out[16];
    CHECK_EQ_INT(gw_b64url("", 0, out, sizeof(out)), 0);
    CHECK(gw_b64url("f", 1, out, sizeof(out)) == 2 && !strcmp(out, "Zg"));
    CHECK(gw_b64url("fo", 2, out, sizeof(out)) == 3 && !strcmp(out, "Zm8"));
    CHECK(gw_b64url("foo", 3, out, sizeof(out)) == 4 && !strcmp(out, "Zm9v"));
    CHECK(gw_b64url("\xfb\xff", 2, out, sizeof(out)) == 3 && !strcmp(out, "-_8"));
    CHECK_EQ_INT(gw_b64url("0123456789abcdef", 16, out, sizeof(out)), 0); /* does not fit */
}

/* Decodes base64url (no padding) into out; returns the length. */
static size_t unb64url(const char *in, size_t n, uint8_t *out, size_t cap)
{
    char tmp[8192];
    size_t t = 0;
    for (size_t i = 0; i < n && t < sizeof(tmp) - 4; i++)
        tmp[t++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (t % 4)
        tmp[t++] = '=';
    size_t len = 0;
    return EVP_DecodeBase64(out, &len, cap, (const uint8_t *)tmp, t) ? len : 0;
}

static void test_jws(void)
{
    EVP_PKEY *key = gw_acme_new_key();
    CHECK(key != NULL);
    char jws[4096], prot[2048], payload[256], sig64[200];
    size_t n = gw_acme_jws(key, NULL, "NONCE1", "https://ca/new-acct", "{\"a\":1}", jws, sizeof(jws));
    CHECK(n > 0);
    gw_slice_t j = {jws, n};
    CHECK(gw_json_get_string(j, "protected", prot, sizeof(prot)));
    CHECK(gw_json_get_string(j, "payload", payload, sizeof(payload)));
    CHECK(gw_json_get_string(j, "signature", sig64, sizeof(sig64)));
    uint8_t hdr[2048], sig[100];
    size_t hl = unb64url(prot, strlen(prot), hdr, sizeof(hdr));
    hdr[hl] = 0;
    char v[200];
    CHECK(gw_json_get_string((gw_slice_t){(char *)hdr, hl}, "nonce", v, sizeof(v)) && !strcmp(v, "NONCE1"));
    CHECK(gw_json_get_string((gw_slice_t){(char *)hdr, hl}, "alg", v, sizeof(v)) && !strcmp(v, "ES256"));
    CHECK(gw_json_get((gw_slice_t){(char *)hdr, hl}, "jwk").base != NULL);
    CHECK_STR(payload, "eyJhIjoxfQ");
    /* the signature verifies over protected.payload with the account key */
    CHECK_EQ_INT(unb64url(sig64, strlen(sig64), sig, sizeof(sig)), 64);
    char input[4096];
    snprintf(input, sizeof(input), "%s.%s", prot, payload);
    uint8_t digest[32];
    SHA256((const uint8_t *)input, strlen(input), digest);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    CHECK(ECDSA_SIG_set0(es, r, s));
    CHECK(ECDSA_do_verify(digest, 32, es, EVP_PKEY_get0_EC_KEY(key)) == 1);
    digest[0] ^= 1;
    CHECK(ECDSA_do_verify(digest, 32, es, EVP_PKEY_get0_EC_KEY(key)) != 1);
    ECDSA_SIG_free(es);
    /* with a kid, no jwk; POST-as-GET has an empty payload */
    n = gw_acme_jws(key, "https://ca/acct/1", "N2", "https://ca/order/1", "", jws, sizeof(jws));
    CHECK(n > 0 && strstr(jws, "\"payload\":\"\""));
    CHECK_EQ_INT(gw_acme_jws(key, NULL, "N", "u", "{}", jws, 50), 0);
    char thumb[64];
    CHECK(gw_acme_thumbprint(key, thumb, sizeof(thumb)) && strlen(thumb) == 43);
    EVP_PKEY_free(key);
}

static void test_csr(void)
{
    EVP_PKEY *key = gw_acme_new_key();
    const char *names[] = {"a.example.test", "b.example.test"};
    char csr64[4096];
    CHECK(gw_acme_csr(key, names, 2, csr64, sizeof(csr64)));
    uint8_t der[4096];
    size_t len = unb64url(csr64, strlen(csr64), der, sizeof(der));
    const uint8_t *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    CHECK(req != NULL);
    if (req) {
        CHECK(X509_REQ_verify(req, key) == 1);
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
        CHECK(gens && sk_GENERAL_NAME_num(gens) == 2);
        GENERAL_NAMES_free(gens);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        X509_REQ_free(req);
    }
    EVP_PKEY_free(key);
}

static void test_alpn_cert(void)
{
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    CHECK(gw_acme_alpn_cert("a.example.test", "tok.thumb", &x, &k));
    if (!x) return;
    CHECK(X509_check_host(x, "a.example.test", 14, 0, NULL) == 1);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int at = X509_get_ext_by_OBJ(x, oid, -1);
    CHECK(at >= 0);
    X509_EXTENSION *ext = X509_get_ext(x, at);
    CHECK(X509_EXTENSION_get_critical(ext) == 1);
    const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(ext);
    uint8_t want[34] = {0x04, 32};
    SHA256((const uint8_t *)"tok.thumb", 9, want + 2);
    CHECK(ASN1_STRING_length(data) == 34 && !memcmp(ASN1_STRING_get0_data(data), want, 34));
    ASN1_OBJECT_free(oid);
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_store(void)
{
    char out[64];
    CHECK(gw_acme_store_set_token("tok1", "tok1.thumb"));
    CHECK(gw_acme_store_token("tok1", 4, out, sizeof(out)) && !strcmp(out, "tok1.thumb"));
    CHECK(!gw_acme_store_token("tok", 3, out, sizeof(out)));
    CHECK(!gw_acme_store_token("tok1", 4, out, 5));
    gw_acme_store_clear_challenges();
    CHECK(!gw_acme_store_token("tok1", 4, out, sizeof(out)));
    /* a chain that does not match the key is refused */
    X509 *x = NULL;
    EVP_PKEY *k = NULL, *other = gw_acme_new_key();
    CHECK(gw_acme_alpn_cert("c.example.test", "x", &x, &k));
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    const uint8_t *pem;
    size_t len;
    BIO_mem_contents(bio, &pem, &len);
    const char *names[] = {"c.example.test"};
    time_t not_after = 0;
    CHECK(!gw_acme_store_install(names, 1, (const char *)pem, len, other, &not_after));
    CHECK(gw_acme_store_install(names, 1, (const char *)pem, len, k, &not_after));
    CHECK(not_after > time(NULL) + 6 * 86400);
    CHECK(gw_acme_store_active());
    CHECK(!gw_acme_store_install(names, 1, "junk", 4, k, &not_after));
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    gw_acme_store_free();
    CHECK(!gw_acme_store_active());
}

int main(void)
{
    test_json();
    test_b64url();
    test_jws();
    test_csr();
    test_alpn_cert();
    test_store();
    return check_report("acme");
}
