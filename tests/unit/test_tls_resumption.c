/* TLS resumption state: the bounded session-ID store (keys, expiry, eviction, resize) and the
 * session-ticket keys read from files (sizes, errors, which key encrypts, which decrypts). */
#include <stdlib.h>
#include <unistd.h>

#include <openssl/cipher.h>
#include <openssl/hmac.h>

#include "check.h"
#include "tls_session_cache.h"
#include "tls_tickets.h"

static const uint8_t CTX_A[32] = {1}, CTX_B[32] = {2};

static gw_sess_key_t key(const uint8_t *ctx, uint8_t id_byte, uint8_t id[32])
{
    memset(id, id_byte, 32);
    return (gw_sess_key_t){ctx, id, 32, 32};
}

static bool holds(gw_sess_store_t *s, const uint8_t *ctx, uint8_t id_byte, uint64_t now, const char *want)
{
    uint8_t id[32];
    gw_sess_key_t k = key(ctx, id_byte, id);
    size_t len = 0;
    uint8_t *got = gw_sess_store_get(s, &k, now, &len);
    if (!got) return !want;
    bool ok = want && len == strlen(want) && memcmp(got, want, len) == 0;
    free(got);
    return ok;
}

static void put(gw_sess_store_t *s, const uint8_t *ctx, uint8_t id_byte, const char *data, uint64_t expires)
{
    uint8_t id[32];
    gw_sess_key_t k = key(ctx, id_byte, id);
    CHECK(gw_sess_store_put(s, &k, (const uint8_t *)data, strlen(data), expires, 100));
}

static void test_store_keys_and_expiry(void)
{
    gw_sess_store_t *s = gw_sess_store_new(8);
    put(s, CTX_A, 1, "one", 200);
    CHECK(holds(s, CTX_A, 1, 150, "one"));
    CHECK(holds(s, CTX_B, 1, 150, NULL)); /* the same session ID under another host's context */
    CHECK(holds(s, CTX_A, 2, 150, NULL));
    put(s, CTX_A, 1, "uno", 300); /* the same key replaces */
    CHECK_EQ_INT(gw_sess_store_count(s), 1);
    CHECK(holds(s, CTX_A, 1, 250, "uno"));
    CHECK(holds(s, CTX_A, 1, 300, NULL)); /* expired: gone, and dropped */
    CHECK_EQ_INT(gw_sess_store_count(s), 0);
    uint8_t id[33] = {0};
    gw_sess_key_t too_long = {CTX_A, id, 32, 33};
    CHECK(!gw_sess_store_put(s, &too_long, (const uint8_t *)"x", 1, 200, 100));
    gw_sess_key_t no_id = {CTX_A, id, 32, 0};
    CHECK(!gw_sess_store_put(s, &no_id, (const uint8_t *)"x", 1, 200, 100));
    CHECK(!gw_sess_store_put(s, &(gw_sess_key_t){CTX_A, id, 32, 32}, (const uint8_t *)"x", 1, 100, 100));
    gw_sess_store_free(s);
}

static void test_store_bound_and_resize(void)
{
    gw_sess_store_t *s = gw_sess_store_new(3);
    put(s, CTX_A, 1, "1", 1000);
    put(s, CTX_A, 2, "2", 1000);
    put(s, CTX_B, 3, "3", 1000);
    put(s, CTX_B, 4, "4", 1000); /* full: the oldest goes */
    CHECK_EQ_INT(gw_sess_store_count(s), 3);
    CHECK(holds(s, CTX_A, 1, 150, NULL));
    CHECK(holds(s, CTX_A, 2, 150, "2") && holds(s, CTX_B, 3, 150, "3") && holds(s, CTX_B, 4, 150, "4"));
    put(s, CTX_A, 5, "5", 120); /* full again: the next oldest goes */
    CHECK(holds(s, CTX_A, 2, 150, NULL));
    CHECK(gw_sess_store_resize(s, 2)); /* smaller: the oldest beyond the bound go, the order stays */
    CHECK_EQ_INT(gw_sess_store_count(s), 2);
    CHECK(holds(s, CTX_B, 3, 110, NULL) && holds(s, CTX_B, 4, 110, "4") && holds(s, CTX_A, 5, 110, "5"));
    CHECK(gw_sess_store_resize(s, 100));
    put(s, CTX_A, 6, "6", 1000);
    CHECK(holds(s, CTX_B, 4, 110, "4") && holds(s, CTX_A, 6, 110, "6"));
    CHECK(holds(s, CTX_A, 5, 500, NULL)); /* expired: dropped when looked up */
    CHECK_EQ_INT(gw_sess_store_count(s), 2);
    CHECK(gw_sess_store_resize(s, 0)); /* off: nothing kept, nothing stored */
    CHECK_EQ_INT(gw_sess_store_count(s), 0);
    uint8_t id[32];
    CHECK(!gw_sess_store_put(s, &(gw_sess_key_t){CTX_A, id, 32, 32}, (const uint8_t *)"x", 1, 1000, 100));
    gw_sess_store_free(s);
}

/* ---- ticket keys ---- */

static char dir[] = "/tmp/gw_tickets_test_XXXXXX";

static const char *key_file(const char *name, uint8_t fill, size_t size)
{
    static char paths[4][128];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 128, "%s/%s", dir, name);
    uint8_t buf[96];
    memset(buf, fill, sizeof(buf));
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(buf, 1, size, f) == size);
    if (f) fclose(f);
    return p;
}

/* Encrypts a ticket header with `enc`'s first key and returns what `dec` answers for it. */
static int decrypt_result(const gw_ticket_keys_t *enc, const gw_ticket_keys_t *dec)
{
    uint8_t name[16], iv[EVP_MAX_IV_LENGTH];
    EVP_CIPHER_CTX c;
    HMAC_CTX h;
    EVP_CIPHER_CTX_init(&c);
    HMAC_CTX_init(&h);
    CHECK_EQ_INT(gw_ticket_key_crypt(enc, 3600, name, iv, &c, &h, 1), 1);
    EVP_CIPHER_CTX_cleanup(&c);
    HMAC_CTX_cleanup(&h);
    EVP_CIPHER_CTX_init(&c);
    HMAC_CTX_init(&h);
    int rc = gw_ticket_key_crypt(dec, 3600, name, iv, &c, &h, 0);
    EVP_CIPHER_CTX_cleanup(&c);
    HMAC_CTX_cleanup(&h);
    return rc;
}

static void test_ticket_key_files(void)
{
    CHECK(mkdtemp(dir) != NULL);
    const char *a = key_file("a.key", 0xaa, 80), *b = key_file("b.key", 0xbb, 48);
    const char *bad = key_file("bad.key", 0xcc, 64);
    size_t at = 99;
    char why[512];
    gw_ticket_keys_t *ka = gw_ticket_keys_load(&a, 1, &at, why, sizeof(why));
    gw_ticket_keys_t *kb = gw_ticket_keys_load(&b, 1, &at, why, sizeof(why));
    const char *ba[] = {b, a};
    gw_ticket_keys_t *kba = gw_ticket_keys_load(ba, 2, &at, why, sizeof(why));
    CHECK(ka && kb && kba);
    CHECK_EQ_INT(decrypt_result(ka, ka), 1);   /* the first key */
    CHECK_EQ_INT(decrypt_result(ka, kba), 2);  /* an older key: decrypted, renew the ticket */
    CHECK_EQ_INT(decrypt_result(kba, kb), 1);  /* the 48-byte key encrypts for [b, a] */
    CHECK_EQ_INT(decrypt_result(ka, kb), 0);   /* unknown: a full handshake */
    CHECK_EQ_INT(decrypt_result(NULL, ka), 0); /* the in-process keys are not the files' */
    CHECK_EQ_INT(decrypt_result(NULL, NULL), 1);

    const char *with_bad[] = {a, bad};
    CHECK(!gw_ticket_keys_load(with_bad, 2, &at, why, sizeof(why)));
    CHECK_EQ_INT(at, 1);
    CHECK(strstr(why, "bad.key' is 64 bytes; a ticket key file holds 80 (or 48) bytes") != NULL);
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.key", dir);
    const char *m = missing;
    CHECK(!gw_ticket_keys_load(&m, 1, &at, why, sizeof(why)));
    CHECK(at == 0 && strstr(why, "cannot read") && strstr(why, "No such file"));
    CHECK(!gw_ticket_keys_load((const char *[]){dir}, 1, &at, why, sizeof(why)));
    CHECK(strstr(why, "is not a regular file") != NULL);
    gw_ticket_keys_free(ka);
    gw_ticket_keys_free(kb);
    gw_ticket_keys_free(kba);
    unlink(a);
    unlink(b);
    unlink(bad);
    rmdir(dir);
}

int main(void)
{
    test_store_keys_and_expiry();
    test_store_bound_and_resize();
    test_ticket_key_files();
    return check_report("tls_resumption");
}
