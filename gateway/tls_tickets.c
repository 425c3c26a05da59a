/* TLS session-ticket keys: in-process rotation or key files. See tls_tickets.h. */
#include "tls_tickets.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/cipher.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#define KEY_NAME_LEN 16
#define LONG_KEY_FILE 80  /* name, HMAC secret (32), AES-256 key (32) */
#define SHORT_KEY_FILE 48 /* name, AES-128 key (16), HMAC secret (16) */

typedef struct ticket_key {
    uint8_t name[KEY_NAME_LEN];
    uint8_t hmac[32], aes[32];
    size_t secret_len; /* 32: AES-256-CBC and a 32-byte HMAC key; 16: AES-128-CBC */
} ticket_key_t;

struct gw_ticket_keys {
    size_t n;
    ticket_key_t keys[]; /* [0] encrypts new tickets; all decrypt */
};

/* The in-process keys are the process's, not a config's: tickets stay valid across a reload. */
static struct {
    pthread_mutex_t lock; /* taken once per full handshake or resumption, never per request */
    ticket_key_t keys[2]; /* [0] current (encrypts), [1] previous (still decrypts) */
    bool have_prev;
    time_t rotated_at;
} rotating = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- key files ---- */

static void key_from_bytes(ticket_key_t *k, const uint8_t *buf, size_t len)
{
    memcpy(k->name, buf, KEY_NAME_LEN);
    if (len == LONG_KEY_FILE) {
        k->secret_len = 32;
        memcpy(k->hmac, buf + 16, 32);
        memcpy(k->aes, buf + 48, 32);
    } else {
        k->secret_len = 16;
        memcpy(k->aes, buf + 16, 16);
        memcpy(k->hmac, buf + 32, 16);
    }
}

/* Reads the whole key file into buf (LONG_KEY_FILE bytes of room); its length or -1 with why. */
static ssize_t read_key_file(const char *path, uint8_t *buf, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    ssize_t got = -1;
    if (!S_ISREG(st.st_mode))
        snprintf(why, whylen, "'%s' is not a regular file", path);
    else if (st.st_size != LONG_KEY_FILE && st.st_size != SHORT_KEY_FILE)
        snprintf(why, whylen, "'%s' is %lld bytes; a ticket key file holds 80 (or 48) bytes", path,
                 (long long)st.st_size);
    else if ((got = pread(fd, buf, (size_t)st.st_size, 0)) != st.st_size) {
        snprintf(why, whylen, "cannot read '%s': %s", path, got < 0 ? strerror(errno) : "short read");
        got = -1;
    }
    close(fd);
    return got;
}

gw_ticket_keys_t *gw_ticket_keys_load(const char *const *paths, size_t n, size_t *bad, char *why,
                                      size_t whylen)
{
    gw_ticket_keys_t *set = calloc(1, sizeof(*set) + n * sizeof(ticket_key_t));
    if (!set) {
        snprintf(why, whylen, "out of memory");
        *bad = 0;
        return NULL;
    }
    uint8_t buf[LONG_KEY_FILE];
    for (size_t i = 0; i < n; i++) {
        ssize_t len = read_key_file(paths[i], buf, why, whylen);
        if (len < 0) {
            *bad = i;
            OPENSSL_cleanse(buf, sizeof(buf));
            gw_ticket_keys_free(set);
            return NULL;
        }
        key_from_bytes(&set->keys[set->n++], buf, (size_t)len);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return set;
}

void gw_ticket_keys_free(gw_ticket_keys_t *keys)
{
    if (!keys) return;
    OPENSSL_cleanse(keys->keys, keys->n * sizeof(ticket_key_t));
    free(keys);
}

/* ---- in-process keys ---- */

static void rotate(time_t now)
{
    rotating.keys[1] = rotating.keys[0];
    rotating.have_prev = rotating.rotated_at != 0;
    RAND_bytes((uint8_t *)&rotating.keys[0], sizeof(rotating.keys[0]));
    rotating.keys[0].secret_len = 32;
    rotating.rotated_at = now;
}

/* Copies the in-process keys (rotated first when due) to out; returns how many are valid. */
static size_t current_keys(ticket_key_t out[2], time_t period)
{
    pthread_mutex_lock(&rotating.lock);
    time_t now = time(NULL);
    if (now - rotating.rotated_at >= period) rotate(now);
    memcpy(out, rotating.keys, sizeof(rotating.keys));
    size_t n = rotating.have_prev ? 2 : 1;
    pthread_mutex_unlock(&rotating.lock);
    return n;
}

/* ---- the callback ---- */

static const ticket_key_t *find_key(const ticket_key_t *keys, size_t n, const uint8_t *name)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i].name, name, KEY_NAME_LEN) == 0) return &keys[i];
    return NULL;
}

static int init_crypto(const ticket_key_t *k, const uint8_t *iv, EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx,
                       int enc)
{
    const EVP_CIPHER *cipher = k->secret_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
    if (!HMAC_Init_ex(hctx, k->hmac, k->secret_len, EVP_sha256(), NULL)) return -1;
    int ok = enc ? EVP_EncryptInit_ex(ectx, cipher, NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(ectx, cipher, NULL, k->aes, iv);
    return ok ? 1 : -1;
}

int gw_ticket_key_crypt(const gw_ticket_keys_t *file_keys, time_t period, uint8_t *name, uint8_t *iv,
                        EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx, int enc)
{
    ticket_key_t local[2];
    const ticket_key_t *keys = local;
    size_t n;
    if (file_keys) {
        keys = file_keys->keys;
        n = file_keys->n;
    } else {
        n = current_keys(local, period);
    }
    const ticket_key_t *k = enc ? &keys[0] : find_key(keys, n, name);
    int rc = 0; /* a key we do not know: a full handshake */
    if (k && enc) {
        memcpy(name, k->name, KEY_NAME_LEN);
        rc = RAND_bytes(iv, EVP_MAX_IV_LENGTH) ? init_crypto(k, iv, ectx, hctx, enc) : -1;
    } else if (k) {
        rc = init_crypto(k, iv, ectx, hctx, enc);
        if (rc == 1 && k != &keys[0]) rc = 2; /* an older key decrypted it: issue a fresh ticket */
    }
    OPENSSL_cleanse(local, sizeof(local));
    return rc;
}
