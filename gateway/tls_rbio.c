/* The buffering read BIO of server TLS connections. See tls_rbio.h. */
#include "tls_rbio.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct rbio {
    int fd;
    gw_chunk_pool_t *pool;
    char *buf; /* NULL while nothing waits */
    size_t off, len;
    bool dry; /* the last read(2) came back short: the socket is empty until rearmed */
} rbio_t;

static BIO_METHOD *rbio_method;
static pthread_once_t rbio_once = PTHREAD_ONCE_INIT;

static void release(rbio_t *r)
{
    gw_chunk_put(r->pool, r->buf);
    r->buf = NULL;
    r->off = r->len = 0;
}

/* One read(2) of as much as the chunk holds: > 0 bytes, 0 at EOF, -1 with errno. */
static ssize_t fill(rbio_t *r)
{
    if (r->dry) {
        errno = EAGAIN;
        return -1;
    }
    if (!r->buf && !(r->buf = gw_chunk_get(r->pool))) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n;
    do
        n = read(r->fd, r->buf, r->pool->chunk_size);
    while (n < 0 && errno == EINTR);
    r->dry = n < (ssize_t)r->pool->chunk_size;
    if (n <= 0) {
        int saved = errno;
        release(r);
        errno = saved;
        return n;
    }
    r->len = (size_t)n;
    return n;
}

static int rbio_read(BIO *bio, char *out, int want)
{
    rbio_t *r = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (want <= 0) return 0;
    if (r->off == r->len) {
        ssize_t n = fill(r);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN) BIO_set_retry_read(bio);
            return (int)n;
        }
    }
    size_t take = r->len - r->off < (size_t)want ? r->len - r->off : (size_t)want;
    memcpy(out, r->buf + r->off, take);
    r->off += take;
    if (r->off == r->len) release(r);
    return (int)take;
}

/* No control command applies (BoringSSL flushes only its write BIO). */
static long rbio_ctrl(BIO *bio, int cmd, long larg, void *parg)
{
    (void)bio, (void)cmd, (void)larg, (void)parg;
    return 0;
}

static int rbio_destroy(BIO *bio)
{
    rbio_t *r = BIO_get_data(bio);
    if (!r) return 1;
    release(r);
    free(r);
    BIO_set_data(bio, NULL);
    return 1;
}

static void make_method(void)
{
    BIO_METHOD *m = BIO_meth_new(0, "gateway tls read");
    if (!m) return;
    BIO_meth_set_read(m, rbio_read);
    BIO_meth_set_ctrl(m, rbio_ctrl);
    BIO_meth_set_destroy(m, rbio_destroy);
    rbio_method = m;
}

BIO *gw_tls_rbio_new(int fd, gw_chunk_pool_t *pool)
{
    pthread_once(&rbio_once, make_method);
    rbio_t *r = rbio_method ? calloc(1, sizeof(*r)) : NULL;
    BIO *bio = r ? BIO_new(rbio_method) : NULL;
    if (!bio) {
        free(r);
        return NULL;
    }
    r->fd = fd;
    r->pool = pool;
    BIO_set_data(bio, r);
    BIO_set_init(bio, 1);
    return bio;
}

void gw_tls_rbio_rearm(BIO *bio)
{
    rbio_t *r = BIO_get_data(bio);
    r->dry = false;
}

bool gw_tls_rbio_has_input(BIO *bio)
{
    const rbio_t *r = BIO_get_data(bio);
    return r->off < r->len;
}

bool gw_tls_rbio_drained(BIO *bio)
{
    const rbio_t *r = BIO_get_data(bio);
    return r->dry && r->off == r->len;
}
