/* Password hash verification. See password.h. */
#include "password.h"

#include <argon2.h>
#include <crypt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#define MAX_BIN 128 /* longest salt or hash we decode */

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* Equal strings, in time that depends only on the lengths. */
static bool ct_streq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- base64 without padding; '.' is read as '+' (passlib's variant) ---- */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '.') return 62;
    if (c == '/') return 63;
    return -1;
}

static long b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    while (len && s[len - 1] == '=')
        len--;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap) return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return bits >= 6 ? -1 : (long)n;
}

/* ---- PHC strings: $alg[$v=..]$params$salt$hash ---- */

typedef struct phc {
    char alg[24];
    const char *params;
    size_t params_len;
    const char *salt_text;
    size_t salt_text_len;
    uint8_t salt[MAX_BIN];
    size_t salt_len;
    uint8_t hash[MAX_BIN];
    size_t hash_len;
} phc_t;

static bool phc_parse(const char *s, phc_t *p)
{
    const char *f[6];
    size_t n = 0;
    for (const char *c = s; *c && n < 6; c++)
        if (*c == '$') f[n++] = c + 1;
    if (n < 4 || s[0] != '$') return false;
    if (strchr(f[n - 1], '$')) return false;
    size_t alen = (size_t)(f[1] - f[0] - 1);
    if (alen >= sizeof(p->alg)) return false;
    memcpy(p->alg, f[0], alen);
    p->alg[alen] = '\0';
    size_t pi = n - 3; /* params, salt, hash are the last three fields */
    p->params = f[pi];
    p->params_len = (size_t)(f[pi + 1] - f[pi] - 1);
    p->salt_text = f[pi + 1];
    p->salt_text_len = (size_t)(f[pi + 2] - f[pi + 1] - 1);
    long sl = b64_decode(p->salt_text, p->salt_text_len, p->salt, sizeof(p->salt));
    long hl = b64_decode(f[pi + 2], strlen(f[pi + 2]), p->hash, sizeof(p->hash));
    if (sl < 0 || hl <= 0) return false;
    p->salt_len = (size_t)sl;
    p->hash_len = (size_t)hl;
    return true;
}

/* Value of "key=N" in a comma-separated parameter list; a bare number counts as key "" (passlib). */
static bool phc_param(const phc_t *p, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    const char *s = p->params, *end = p->params + p->params_len;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *v = NULL;
        if (klen && (size_t)(e - s) > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') v = s + klen + 1;
        if (!klen && s < e && s[0] >= '0' && s[0] <= '9') v = s;
        if (v) {
            uint64_t x = 0;
            for (; v < e; v++) {
                if (*v < '0' || *v > '9' || x > UINT64_MAX / 10 - 10) return false;
                x = x * 10 + (uint64_t)(*v - '0');
            }
            *out = x;
            return true;
        }
        s = e + 1;
    }
    return false;
}

typedef bool (*derive_fn)(const phc_t *p, const uint8_t *salt, size_t salt_len, const char *pw, size_t len,
                          uint8_t *out);

/*
 * Derives with the decoded salt, then (on mismatch) with the salt's text itself: implementations
 * of these PHC formats differ on which of the two they feed to the KDF.
 */
static gw_pw_result_t phc_check(const phc_t *p, derive_fn derive, const char *pw, size_t len)
{
    uint8_t out[MAX_BIN];
    if (!derive(p, p->salt, p->salt_len, pw, len, out)) return GW_PW_BAD_HASH;
    if (CRYPTO_memcmp(out, p->hash, p->hash_len) == 0) return GW_PW_OK;
    if (!derive(p, (const uint8_t *)p->salt_text, p->salt_text_len, pw, len, out)) return GW_PW_BAD_HASH;
    return CRYPTO_memcmp(out, p->hash, p->hash_len) == 0 ? GW_PW_OK : GW_PW_MISMATCH;
}

static const EVP_MD *pbkdf2_md(const char *alg)
{
    if (!strcmp(alg, "pbkdf2-sha256")) return EVP_sha256();
    if (!strcmp(alg, "pbkdf2-sha512")) return EVP_sha512();
    if (!strcmp(alg, "pbkdf2") || !strcmp(alg, "pbkdf2-sha1")) return EVP_sha1();
    return NULL;
}

static bool pbkdf2_derive(const phc_t *p, const uint8_t *salt, size_t salt_len, const char *pw, size_t len,
                          uint8_t *out)
{
    uint64_t rounds;
    if (!phc_param(p, "i", &rounds) && !phc_param(p, "", &rounds)) return false;
    if (rounds == 0 || rounds > 100000000) return false;
    return PKCS5_PBKDF2_HMAC(pw, len, salt, salt_len, (unsigned)rounds, pbkdf2_md(p->alg), p->hash_len,
                             out) == 1;
}

static bool scrypt_derive(const phc_t *p, const uint8_t *salt, size_t salt_len, const char *pw, size_t len,
                          uint8_t *out)
{
    uint64_t ln, r, par;
    if (!phc_param(p, "ln", &ln) || !phc_param(p, "r", &r) || !phc_param(p, "p", &par)) return false;
    if (ln == 0 || ln > 24 || r == 0 || r > 64 || par == 0 || par > 16) return false;
    uint64_t n = (uint64_t)1 << ln;
    size_t mem = (size_t)(128 * r * (n + par + 2)) + 65536;
    return EVP_PBE_scrypt(pw, len, salt, salt_len, n, r, par, mem, out, p->hash_len) == 1;
}

static gw_pw_result_t verify_argon2(const char *hash, const char *pw, size_t len)
{
    argon2_type t = has_prefix(hash, "$argon2id$")  ? Argon2_id
                    : has_prefix(hash, "$argon2i$") ? Argon2_i
                                                    : Argon2_d;
    int rc = argon2_verify(hash, pw ? pw : "", len, t);
    if (rc == ARGON2_OK) return GW_PW_OK;
    return rc == ARGON2_VERIFY_MISMATCH ? GW_PW_MISMATCH : GW_PW_BAD_HASH;
}

/* ---- Apache: $apr1$ (MD5-crypt with another magic) and {SHA} ---- */

static const char itoa64[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static char *to64(char *p, uint32_t v, int n)
{
    while (n-- > 0) {
        *p++ = itoa64[v & 0x3f];
        v >>= 6;
    }
    return p;
}

static void apr1_rounds(uint8_t f[16], const char *pw, size_t len, const char *salt, size_t slen)
{
    for (int i = 0; i < 1000; i++) {
        MD5_CTX c;
        MD5_Init(&c);
        if (i & 1)
            MD5_Update(&c, pw, len);
        else
            MD5_Update(&c, f, 16);
        if (i % 3) MD5_Update(&c, salt, slen);
        if (i % 7) MD5_Update(&c, pw, len);
        if (i & 1)
            MD5_Update(&c, f, 16);
        else
            MD5_Update(&c, pw, len);
        MD5_Final(f, &c);
    }
}

static gw_pw_result_t verify_apr1(const char *hash, const char *pw, size_t len)
{
    const char *salt = hash + 6;
    const char *end = strchr(salt, '$');
    if (!end || end - salt > 8) return GW_PW_BAD_HASH;
    size_t slen = (size_t)(end - salt);
    uint8_t f[16];
    MD5_CTX c;
    MD5_Init(&c);
    MD5_Update(&c, pw, len);
    MD5_Update(&c, salt, slen);
    MD5_Update(&c, pw, len);
    MD5_Final(f, &c);
    MD5_Init(&c);
    MD5_Update(&c, pw, len);
    MD5_Update(&c, "$apr1$", 6);
    MD5_Update(&c, salt, slen);
    for (size_t n = len; n > 0; n -= n > 16 ? 16 : n)
        MD5_Update(&c, f, n > 16 ? 16 : n);
    for (size_t i = len; i; i >>= 1)
        MD5_Update(&c, (i & 1) ? "" : pw, 1);
    MD5_Final(f, &c);
    apr1_rounds(f, pw, len, salt, slen);
    char out[64], *p = out;
    memcpy(p, hash, 6 + slen + 1);
    p += 6 + slen + 1;
    static const uint8_t order[5][3] = {{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}};
    for (int i = 0; i < 5; i++)
        p = to64(p, (uint32_t)f[order[i][0]] << 16 | (uint32_t)f[order[i][1]] << 8 | f[order[i][2]], 4);
    p = to64(p, f[11], 2);
    return ct_streq(out, (size_t)(p - out), hash, strlen(hash)) ? GW_PW_OK : GW_PW_MISMATCH;
}

static gw_pw_result_t verify_sha1(const char *hash, const char *pw, size_t len)
{
    uint8_t want[32], got[SHA_DIGEST_LENGTH];
    long n = b64_decode(hash + 5, strlen(hash + 5), want, sizeof(want));
    if (n != SHA_DIGEST_LENGTH) return GW_PW_BAD_HASH;
    SHA1((const uint8_t *)pw, len, got);
    return CRYPTO_memcmp(want, got, sizeof(got)) == 0 ? GW_PW_OK : GW_PW_MISMATCH;
}

/* ---- crypt(3) through libxcrypt ---- */

static gw_pw_result_t verify_crypt(const char *hash, const char *pw, size_t len)
{
    if (memchr(pw, '\0', len) || len > 4096) return GW_PW_MISMATCH; /* crypt takes C strings */
    struct crypt_data *cd = calloc(1, sizeof(*cd));                 /* ~32 KiB: not on a worker's stack */
    char *phrase = malloc(len + 1);
    gw_pw_result_t res = GW_PW_BAD_HASH;
    if (cd && phrase) {
        memcpy(phrase, pw, len);
        phrase[len] = '\0';
        const char *out = crypt_rn(phrase, hash, cd, (int)sizeof(*cd));
        if (out && out[0] != '*')
            res = ct_streq(out, strlen(out), hash, strlen(hash)) ? GW_PW_OK : GW_PW_MISMATCH;
        OPENSSL_cleanse(phrase, len);
    }
    free(phrase);
    free(cd);
    return res;
}

gw_pw_result_t gw_password_verify(const char *hash, const char *pw, size_t len)
{
    if (!hash || hash[0] == '\0') return GW_PW_BAD_HASH;
    if (has_prefix(hash, "$argon2")) return verify_argon2(hash, pw, len);
    if (has_prefix(hash, "$apr1$")) return verify_apr1(hash, pw, len);
    if (has_prefix(hash, "{SHA}")) return verify_sha1(hash, pw, len);
    if (has_prefix(hash, "$pbkdf2") || has_prefix(hash, "$scrypt$")) {
        phc_t p;
        if (!phc_parse(hash, &p)) return GW_PW_BAD_HASH;
        if (!strcmp(p.alg, "scrypt")) return phc_check(&p, scrypt_derive, pw, len);
        if (!pbkdf2_md(p.alg)) return GW_PW_BAD_HASH;
        return phc_check(&p, pbkdf2_derive, pw, len);
    }
    if (hash[0] == '$') return verify_crypt(hash, pw, len);
    return GW_PW_BAD_HASH;
}

const char *gw_password_scheme(const char *hash)
{
    static const struct {
        const char *prefix, *name;
    } schemes[] = {
        {"$argon2id$", "argon2id"},
        {"$argon2i$", "argon2i"},
        {"$argon2d$", "argon2d"},
        {"$pbkdf2-sha256$", "pbkdf2-sha256"},
        {"$pbkdf2-sha512$", "pbkdf2-sha512"},
        {"$pbkdf2", "pbkdf2-sha1"},
        {"$scrypt$", "scrypt"},
        {"$apr1$", "apr1-md5"},
        {"{SHA}", "sha1"},
        {"$2", "bcrypt"},
        {"$6$", "sha512-crypt"},
        {"$5$", "sha256-crypt"},
        {"$y$", "yescrypt"},
        {"$gy$", "gost-yescrypt"},
        {"$7$", "scrypt-crypt"},
        {"$1$", "md5-crypt"},
    };
    for (size_t i = 0; hash && i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (has_prefix(hash, schemes[i].prefix)) return schemes[i].name;
    return "unknown";
}

const char *gw_password_check_format(const char *hash)
{
    if (!hash || !hash[0]) return "empty password hash";
    if (has_prefix(hash, "$argon2") || has_prefix(hash, "$apr1$") || has_prefix(hash, "{SHA}")) return NULL;
    if (has_prefix(hash, "$pbkdf2") || has_prefix(hash, "$scrypt$")) {
        phc_t p;
        if (!phc_parse(hash, &p) || (strcmp(p.alg, "scrypt") != 0 && !pbkdf2_md(p.alg)))
            return "malformed PHC hash";
        return NULL;
    }
    if (hash[0] == '$')
        return crypt_checksalt(hash) == CRYPT_SALT_INVALID ? "unknown or malformed crypt hash" : NULL;
    return "not a password hash (plain text is not accepted; make one with htpasswd -B, mkpasswd or argon2)";
}
