/* ACME cryptography on BoringSSL. See acme_crypto.h. */
#include "acme_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

size_t gw_b64url(const void *in, size_t n, char *out, size_t cap)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *s = in;
    size_t need = (n * 4 + 2) / 3;
    if (need + 1 > cap) return 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v =
            (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        if (i + 1 < n) out[o++] = abc[v >> 6 & 63];
        if (i + 2 < n) out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return o;
}

EVP_PKEY *gw_acme_new_key(void)
{
    EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EVP_PKEY *pkey = EVP_PKEY_new();
    if (!ec || !pkey || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
        EC_KEY_free(ec);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

EVP_PKEY *gw_acme_read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int gw_acme_write_private(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return -1;
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    int err = off == len && fsync(fd) == 0 ? 0 : errno ? errno : EIO;
    close(fd);
    if (!err && rename(tmp, path) == 0) return 0;
    err = err ? err : errno;
    unlink(tmp);
    errno = err;
    return -1;
}

int gw_acme_write_key(const char *path, EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const uint8_t *data;
    size_t len;
    int rc = -1;
    if (bio && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) &&
        BIO_mem_contents(bio, &data, &len))
        rc = gw_acme_write_private(path, data, len);
    BIO_free(bio);
    return rc;
}

/* The 32-byte big-endian coordinates of the public point. */
static bool ec_coords(EVP_PKEY *key, uint8_t x[32], uint8_t y[32])
{
    const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
    if (!ec) return false;
    BIGNUM *bx = BN_new(), *by = BN_new();
    bool ok = bx && by &&
              EC_POINT_get_affine_coordinates_GFp(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec), bx, by,
                                                  NULL) &&
              BN_bn2bin_padded(x, 32, bx) && BN_bn2bin_padded(y, 32, by);
    BN_free(bx);
    BN_free(by);
    return ok;
}

bool gw_acme_jwk(EVP_PKEY *key, char *out, size_t cap)
{
    uint8_t x[32], y[32];
    char bx[48], by[48];
    if (!ec_coords(key, x, y) || !gw_b64url(x, 32, bx, sizeof(bx)) || !gw_b64url(y, 32, by, sizeof(by)))
        return false;
    int n = snprintf(out, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", bx, by);
    return n > 0 && (size_t)n < cap;
}

bool gw_acme_thumbprint(EVP_PKEY *key, char *out, size_t cap)
{
    char jwk[256];
    uint8_t digest[SHA256_DIGEST_LENGTH];
    if (!gw_acme_jwk(key, jwk, sizeof(jwk))) return false;
    SHA256((const uint8_t *)jwk, strlen(jwk), digest);
    return gw_b64url(digest, sizeof(digest), out, cap) > 0;
}

/* ES256: the raw r||s form JWS wants, not the DER that ECDSA_sign makes. */
static bool sign_es256(EVP_PKEY *key, const char *input, size_t len, uint8_t sig[64])
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)input, len, digest);
    ECDSA_SIG *s = ECDSA_do_sign(digest, sizeof(digest), EVP_PKEY_get0_EC_KEY(key));
    if (!s) return false;
    const BIGNUM *r, *sv;
    ECDSA_SIG_get0(s, &r, &sv);
    bool ok = BN_bn2bin_padded(sig, 32, r) && BN_bn2bin_padded(sig + 32, 32, sv);
    ECDSA_SIG_free(s);
    return ok;
}

/* The protected header: alg, kid (or the jwk for a new account), nonce and url. */
static bool jws_header(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, char *out,
                       size_t cap)
{
    char who[1200];
    if (kid) {
        if (snprintf(who, sizeof(who), "\"kid\":\"%s\"", kid) >= (int)sizeof(who)) return false;
    } else {
        char jwk[256];
        if (!gw_acme_jwk(key, jwk, sizeof(jwk))) return false;
        snprintf(who, sizeof(who), "\"jwk\":%s", jwk);
    }
    int n = snprintf(out, cap, "{\"alg\":\"ES256\",%s,\"nonce\":\"%s\",\"url\":\"%s\"}", who, nonce, url);
    return n > 0 && (size_t)n < cap;
}

size_t gw_acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url, const char *payload,
                   char *out, size_t cap)
{
    char header[2048], h64[2800], s64[100];
    size_t plen = strlen(payload), p64cap = plen * 4 / 3 + 4;
    char *p64 = malloc(p64cap), *input = malloc(sizeof(h64) + p64cap + 1);
    size_t n = 0;
    uint8_t sig[64];
    if (!p64 || !input || !jws_header(key, kid, nonce, url, header, sizeof(header)) ||
        !gw_b64url(header, strlen(header), h64, sizeof(h64)))
        goto done;
    gw_b64url(payload, plen, p64, p64cap); /* "" for POST-as-GET */
    int in_len = sprintf(input, "%s.%s", h64, p64);
    if (!sign_es256(key, input, (size_t)in_len, sig) || !gw_b64url(sig, sizeof(sig), s64, sizeof(s64)))
        goto done;
    int w =
        snprintf(out, cap, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", h64, p64, s64);
    if (w > 0 && (size_t)w < cap) n = (size_t)w;
done:
    free(p64);
    free(input);
    return n;
}

static bool add_sans(X509_REQ *req, const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    bool ok = gens != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        ok = g && s && ASN1_STRING_set(s, names[i], (int)strlen(names[i]));
        if (ok) {
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
            ok = sk_GENERAL_NAME_push(gens, g);
            if (!ok) GENERAL_NAME_free(g);
        } else {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
        }
    }
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *ext = ok ? X509V3_EXT_i2d(NID_subject_alt_name, 0, gens) : NULL;
    ok = ok && exts && ext && sk_X509_EXTENSION_push(exts, ext) && X509_REQ_add_extensions(req, exts);
    if (!ok) X509_EXTENSION_free(ext);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    GENERAL_NAMES_free(gens);
    return ok;
}

bool gw_acme_csr(EVP_PKEY *key, const char *const *names, size_t n, char *out, size_t cap)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subject = X509_NAME_new();
    uint8_t *der = NULL;
    bool ok = req && subject && n > 0 &&
              X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const uint8_t *)names[0], -1, -1, 0) &&
              X509_REQ_set_subject_name(req, subject) && X509_REQ_set_pubkey(req, key) &&
              add_sans(req, names, n) && X509_REQ_sign(req, key, EVP_sha256());
    int len = ok ? i2d_X509_REQ(req, &der) : -1;
    ok = len > 0 && gw_b64url(der, (size_t)len, out, cap) > 0;
    OPENSSL_free(der);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    return ok;
}

/* id-pe-acmeIdentifier (RFC 8737 §6.1) holding the DER OCTET STRING of the digest. */
static bool add_acme_identifier(X509 *x, const char *key_auth)
{
    uint8_t der[2 + SHA256_DIGEST_LENGTH] = {0x04, SHA256_DIGEST_LENGTH};
    SHA256((const uint8_t *)key_auth, strlen(key_auth), der + 2);
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    bool ok = oid && val && ASN1_OCTET_STRING_set(val, der, sizeof(der)) &&
              (ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, val)) && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(val);
    ASN1_OBJECT_free(oid);
    return ok;
}

static bool add_san_ext(X509 *x, const char *name)
{
    GENERAL_NAMES *gens = GENERAL_NAMES_new();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    bool ok = gens && g && s && ASN1_STRING_set(s, name, (int)strlen(name));
    if (ok) {
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        s = NULL;
        ok = sk_GENERAL_NAME_push(gens, g);
        if (ok) g = NULL;
    }
    ok = ok && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE);
    ASN1_IA5STRING_free(s);
    GENERAL_NAME_free(g);
    GENERAL_NAMES_free(gens);
    return ok;
}

bool gw_acme_alpn_cert(const char *name, const char *key_auth, X509 **cert, EVP_PKEY **key)
{
    EVP_PKEY *k = gw_acme_new_key();
    X509 *x = X509_new();
    X509_NAME *subject = X509_NAME_new();
    bool ok = k && x && subject && X509_set_version(x, X509_VERSION_3) &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
              X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const uint8_t *)name, -1, -1, 0) &&
              X509_set_subject_name(x, subject) && X509_set_issuer_name(x, subject) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400) && X509_set_pubkey(x, k) &&
              add_san_ext(x, name) && add_acme_identifier(x, key_auth) && X509_sign(x, k, EVP_sha256());
    X509_NAME_free(subject);
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(k);
        return false;
    }
    *cert = x;
    *key = k;
    return true;
}
