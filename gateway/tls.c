/* TLS transport and server contexts on BoringSSL. See tls.h. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/base.h>
#if !defined(OPENSSL_IS_BORINGSSL)
#error "the gateway is built against BoringSSL only (OpenSSL must never enter the process)"
#endif
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "config_props.h"
#include "log.h"
#include "acme.h"
#include "acme_crypto.h"
#include "acme_store.h"
#include "metrics.h"
#include "tls_rbio.h"
#include "tls_session_cache.h"
#include "tls_tickets.h"
#include "worker.h"

#define TICKET_ROTATE_S 3600     /* default: a new ticket key every hour; the previous one still decrypts */
#define SESSION_CACHE_SIZE 20480 /* default tlsSessionCacheSize, BoringSSL's own default */
#define STAGE_BYTES 16384        /* small writes are gathered into one full TLS record */

typedef struct sni_entry {
    char *pattern; /* lower-cased, as in the config ("*.example.com" or "www.example.com") */
    SSL_CTX *ctx;
} sni_entry_t;

struct gw_tls {
    SSL_CTX *def;
    sni_entry_t *sni;
    size_t num_sni;
    bool h2;
    gw_ticket_keys_t *ticket_keys; /* from sessionTicketKeyFiles; NULL: the in-process keys */
    time_t ticket_period;          /* sessionTicketKeyRotation of the in-process keys */
    atomic_uint refs;        /* the snapshot's, plus one per connection (a reload frees it late) */
};

static int ssl_sni_idx = -1, ctx_tls_idx = -1, ssl_hs_out_idx = -1, ssl_hs_failed_idx = -1, ssl_acme_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void make_indexes(void)
{
    ssl_sni_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ssl_hs_out_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ssl_hs_failed_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ssl_acme_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ctx_tls_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- transport ---- */

static ssize_t ssl_failure(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return errno && errno != EAGAIN ? -errno : -EPIPE;
    default:
        return -EPROTO;
    }
}

/*
 * The handshake runs inside SSL_read. When our flight does not fit into the socket buffer,
 * BoringSSL wants to write while the codec waits for input and the client for our flight: the
 * connection waits for EPOLLOUT as well until the handshake has moved on (the codec reads again on
 * that event, which resumes the handshake). Only while nothing but the handshake uses the socket.
 */
static void handshake_write_wait(gw_conn_t *c, SSL *ssl, bool wants_write)
{
    bool armed = SSL_get_ex_data(ssl, ssl_hs_out_idx) != NULL;
    if (wants_write == armed || !c->io.loop) return;
    SSL_set_ex_data(ssl, ssl_hs_out_idx, wants_write ? (void *)1 : NULL);
    gw_io_modify(&c->io, wants_write ? c->io.events | EPOLLOUT : c->io.events & ~(uint32_t)EPOLLOUT);
}

/* A read that was part of the handshake: counts it once it completed, or failed with a protocol
 * error or an alert from the client (once: the codec may read the sticky error again). A peer that
 * leaves without sending a byte (a TCP probe) is no failure. */
static void count_handshake_end(SSL *ssl, ssize_t r)
{
    if (!SSL_in_init(ssl)) {
        gw_metrics_count_tls_handshake(SSL_session_reused(ssl) ? GW_TLS_HS_RESUMED : GW_TLS_HS_FULL);
    } else if (r == -EPROTO && BIO_number_read(SSL_get_rbio(ssl)) &&
               !SSL_get_ex_data(ssl, ssl_hs_failed_idx)) {
        SSL_set_ex_data(ssl, ssl_hs_failed_idx, (void *)1);
        gw_metrics_count_tls_handshake(GW_TLS_HS_FAILED);
    }
}

/* Reads until `len` bytes or until BoringSSL has nothing more buffered and the socket is dry, so
 * no decrypted data is left inside the SSL object while the codec waits for epoll. */
static ssize_t tls_read(gw_conn_t *c, void *buf, size_t len)
{
    SSL *ssl = c->xprt_ctx;
    size_t got = 0;
    bool in_handshake = SSL_in_init(ssl);
    /* no ERR_clear_error() here or before SSL_write: BoringSSL clears the queue on entry */
    gw_tls_rbio_rearm(SSL_get_rbio(ssl));
    while (got < len) {
        size_t want = len - got > INT_MAX ? INT_MAX : len - got;
        int n = SSL_read(ssl, (char *)buf + got, (int)want);
        if (n > 0) {
            got += (size_t)n;
            /* all the socket had is decrypted and taken: another SSL_read could only fail */
            if (gw_tls_rbio_drained(SSL_get_rbio(ssl)) && !SSL_has_pending(ssl)) break;
            continue;
        }
        if (got) break; /* a sticky error or EOF shows up on the next call */
        ssize_t r = ssl_failure(ssl, n);
        if (in_handshake || SSL_get_ex_data(ssl, ssl_hs_out_idx))
            handshake_write_wait(c, ssl, r == -EAGAIN && SSL_get_error(ssl, n) == SSL_ERROR_WANT_WRITE);
        if (in_handshake) count_handshake_end(ssl, r);
        return r;
    }
    if (SSL_get_ex_data(ssl, ssl_hs_out_idx)) handshake_write_wait(c, ssl, false);
    if (in_handshake) count_handshake_end(ssl, (ssize_t)got);
    return (ssize_t)got;
}

static ssize_t tls_writev(gw_conn_t *c, const struct iovec *iov, int n, bool more)
{
    (void)more;
    SSL *ssl = c->xprt_ctx;
    char stage[STAGE_BYTES];
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len;
    if (n > 1 && len < STAGE_BYTES) { /* gather small pieces: one record, not one per iovec */
        len = 0;
        for (int i = 0; i < n && len < STAGE_BYTES; i++) {
            size_t take = iov[i].iov_len < STAGE_BYTES - len ? iov[i].iov_len : STAGE_BYTES - len;
            memcpy(stage + len, iov[i].iov_base, take);
            len += take;
        }
        p = stage;
    }
    if (len == 0) return 0;
    if (len > (1u << 30)) len = 1u << 30;
    int w = SSL_write(ssl, p, (int)len);
    if (w > 0) return w;
    ssize_t r = ssl_failure(ssl, w);
    return r == 0 ? -EPIPE : r;
}

static void tls_unref(gw_tls_t *t);

static void tls_dispose(gw_conn_t *c)
{
    SSL *ssl = c->xprt_ctx;
    if (!ssl) return;
    gw_tls_t *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_tls_idx); /* an SNI context has it too */
    ERR_clear_error();
    if (SSL_is_init_finished(ssl)) SSL_shutdown(ssl); /* close_notify, best effort */
    SSL_free(ssl);
    ERR_clear_error();
    c->xprt_ctx = NULL;
    tls_unref(t);
}

static bool tls_pending(gw_conn_t *c)
{
    SSL *ssl = c->xprt_ctx;
    return ssl && (SSL_pending(ssl) > 0 || SSL_has_pending(ssl) || gw_tls_rbio_has_input(SSL_get_rbio(ssl)));
}

const gw_transport_ops_t gw_tls_transport = {tls_read, tls_writev, NULL, tls_dispose, tls_pending};

bool gw_tls_alpn_h2(const gw_conn_t *c)
{
    if (c->xprt != &gw_tls_transport || !c->xprt_ctx) return false;
    const uint8_t *p;
    unsigned len;
    SSL_get0_alpn_selected(c->xprt_ctx, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

const char *gw_tls_sni_entry(const gw_conn_t *c)
{
    if (c->xprt != &gw_tls_transport || !c->xprt_ctx) return NULL;
    const sni_entry_t *e = SSL_get_ex_data(c->xprt_ctx, ssl_sni_idx);
    return e ? e->pattern : NULL;
}

bool gw_tls_host_matches(const char *pattern, gw_slice_t host)
{
    const char *colon = host.len && host.base[0] != '[' ? memchr(host.base, ':', host.len) : NULL;
    if (colon) host.len = (size_t)(colon - host.base);
    if (host.len && host.base[host.len - 1] == '.') host.len--; /* "example.com." */
    size_t pl = strlen(pattern);
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* one label only, as certificates match (RFC 6125 §6.4.3) */
        const char *dot = memchr(host.base, '.', host.len);
        if (!dot || dot == host.base) return false;
        size_t rest = host.len - (size_t)(dot - host.base);
        return rest == pl - 1 && strncasecmp(dot, pattern + 1, rest) == 0;
    }
    return host.len == pl && strncasecmp(host.base, pattern, pl) == 0;
}

void gw_tls_accept(gw_worker_t *w, gw_tls_t *tls, int fd, const struct sockaddr_in6 *peer,
                   const struct sockaddr_in6 *local)
{
    SSL *ssl = SSL_new(tls->def);
    BIO *rbio = ssl ? gw_tls_rbio_new(fd, &w->io_pool) : NULL;
    if (rbio) SSL_set0_rbio(ssl, rbio); /* owned by ssl from here on */
    if (!rbio || !SSL_set_wfd(ssl, fd)) {
        SSL_free(ssl);
        ERR_clear_error();
        close(fd);
        gw_worker_conn_closed(w);
        return;
    }
    SSL_set_accept_state(ssl);
    atomic_fetch_add_explicit(&tls->refs, 1, memory_order_relaxed); /* dropped by tls_dispose */
    gw_h1_start(w, fd, peer, local, &gw_tls_transport, ssl);
}

/* ---- callbacks ---- */

static const uint8_t acme_alpn[] = "acme-tls/1";

/* Notes whether the client offered acme-tls/1 (a TLS-ALPN-01 validator, RFC 8737): the SNI
 * callback picks the certificate before ALPN is negotiated, so it must know from the ClientHello. */
static enum ssl_select_cert_result_t on_client_hello(const SSL_CLIENT_HELLO *hello)
{
    const uint8_t *p;
    size_t len;
    const uint16_t alpn_ext = TLSEXT_TYPE_application_layer_protocol_negotiation;
    if (!gw_acme_store_active() || !SSL_early_callback_ctx_extension_get(hello, alpn_ext, &p, &len))
        return ssl_select_cert_success;
    for (size_t i = 2; i < len;) { /* a 2-byte list length, then length-prefixed names */
        size_t l = p[i];
        if (i + 1 + l > len) break;
        if (l == sizeof(acme_alpn) - 1 && !memcmp(p + i + 1, acme_alpn, l))
            SSL_set_ex_data(hello->ssl, ssl_acme_idx, (void *)acme_alpn);
        i += 1 + l;
    }
    return ssl_select_cert_success;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    gw_tls_t *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name && SSL_get_ex_data(ssl, ssl_acme_idx)) { /* a validator: the challenge certificate or nothing */
        if (!gw_acme_store_apply(ssl, name, true)) SSL_set_ex_data(ssl, ssl_acme_idx, NULL);
        return SSL_TLSEXT_ERR_OK;
    }
    if (!name) return SSL_TLSEXT_ERR_OK;
    gw_slice_t host = {name, strlen(name)};
    const sni_entry_t *hit = NULL;
    for (size_t i = 0; i < t->num_sni && !hit; i++) /* exact names first */
        if (t->sni[i].pattern[0] != '*' && gw_tls_host_matches(t->sni[i].pattern, host)) hit = &t->sni[i];
    for (size_t i = 0; i < t->num_sni && !hit; i++)
        if (t->sni[i].pattern[0] == '*' && gw_tls_host_matches(t->sni[i].pattern, host)) hit = &t->sni[i];
    if (hit) {
        SSL_set_SSL_CTX(ssl, hit->ctx);
        SSL_set_ex_data(ssl, ssl_sni_idx, (void *)hit);
    } else if (gw_acme_store_active()) {
        gw_acme_store_apply(ssl, name, false); /* an issued certificate for this name, if any */
    }
    return SSL_TLSEXT_ERR_OK; /* an unknown name gets the default certificate */
}

static int on_alpn(SSL *ssl, const uint8_t **out, uint8_t *outlen, const uint8_t *in, unsigned inlen, void *arg)
{
    gw_tls_t *t = arg;
    const uint8_t *h2 = NULL, *h11 = NULL;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen) break;
        bool acme = l == sizeof(acme_alpn) - 1 && !memcmp(in + i + 1, acme_alpn, l);
        if (acme && SSL_get_ex_data(ssl, ssl_acme_idx)) {
            *out = in + i + 1; /* the challenge certificate was sent: the validator's protocol */
            *outlen = (uint8_t)l;
            return SSL_TLSEXT_ERR_OK;
        }
        if (l == 2 && !memcmp(in + i + 1, "h2", 2)) h2 = in + i + 1;
        if (l == 8 && !memcmp(in + i + 1, "http/1.1", 8)) h11 = in + i + 1;
        i += 1 + l;
    }
    if (t->h2 && h2) {
        *out = h2;
        *outlen = 2;
    } else if (h11) {
        *out = h11;
        *outlen = 8;
    } else {
        return SSL_TLSEXT_ERR_NOACK; /* no protocol we know: no ALPN, HTTP/1.1 */
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Every context of one gw_tls_t carries it, so the SNI context a handshake switched to does too. */
static int on_ticket_key(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx, int enc)
{
    const gw_tls_t *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_tls_idx);
    return gw_ticket_key_crypt(t->ticket_keys, t->ticket_period, name, iv, ectx, hctx, enc);
}

/* ---- configuration ---- */

typedef struct builder {
    const gw_node_t *g;
    char *err;
    size_t errlen;
    bool failed;
    uint8_t policy[SHA256_DIGEST_LENGTH]; /* digest of the settings a resumed session must share */
} builder_t;

static void fail(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(builder_t *b, const gw_node_t *at, const char *prop, const char *fmt, ...)
{
    if (b->failed) return; /* the first error is the useful one */
    b->failed = true;
    int n = at ? snprintf(b->err, b->errlen, "%s:%d:%d: %s: ", at->file ? at->file : "config", at->line, at->column,
                          prop)
               : snprintf(b->err, b->errlen, "%s: ", prop);
    if (n < 0 || (size_t)n >= b->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    size_t l = strlen(b->err);
    unsigned long e = ERR_get_error();
    if (e && l + 8 < b->errlen) {
        snprintf(b->err + l, b->errlen - l, " (");
        ERR_error_string_n(e, b->err + l + 2, b->errlen - l - 4);
        l = strlen(b->err);
        snprintf(b->err + l, b->errlen - l, ")");
    }
    ERR_clear_error();
}

static bool gbool(const builder_t *b, const char *name, bool def)
{
    bool v = def;
    const gw_node_t *n = gw_yaml_map_get(b->g, name);
    if (n) gw_node_as_bool(n, &v);
    return v;
}

static int parse_version(const char *s)
{
    static const struct {
        const char *name;
        int v;
    } names[] = {{"TLSv1.2", TLS1_2_VERSION}, {"TLSv1.3", TLS1_3_VERSION}, {"TLS1.2", TLS1_2_VERSION},
                 {"TLS1.3", TLS1_3_VERSION},  {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1", TLS1_VERSION},
                 {"TLSv1.0", TLS1_VERSION}};
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcasecmp(s, names[i].name)) return names[i].v;
    return 0;
}

/* Ferron 1.x (rustls, IANA) cipher suite names -> BoringSSL names. TLS 1.3 suites cannot be
 * chosen in BoringSSL (all three are always on); they are accepted and need no mapping. */
static const struct {
    const char *iana, *boring;
} cipher_names[] = {
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
};

static bool is_tls13_suite(const char *s)
{
    return !strcmp(s, "TLS_AES_128_GCM_SHA256") || !strcmp(s, "TLS_AES_256_GCM_SHA384") ||
           !strcmp(s, "TLS_CHACHA20_POLY1305_SHA256") || !strcmp(s, "TLS13_AES_128_GCM_SHA256") ||
           !strcmp(s, "TLS13_AES_256_GCM_SHA384") || !strcmp(s, "TLS13_CHACHA20_POLY1305_SHA256");
}

/* Builds the TLS 1.2 cipher list; *only13 when every listed suite is a TLS 1.3 one. */
static bool cipher_list(builder_t *b, const gw_node_t *n, char *out, size_t cap, bool *only13)
{
    *only13 = false;
    out[0] = '\0';
    if (!n) {
        snprintf(out, cap, "ECDHE+AESGCM:ECDHE+CHACHA20"); /* forward secret AEAD suites only */
        return true;
    }
    size_t count = n->kind == GW_NODE_SEQ ? n->seq.count : 1, len = 0, n13 = 0;
    for (size_t i = 0; i < count; i++) {
        const gw_node_t *item = n->kind == GW_NODE_SEQ ? n->seq.items[i] : n;
        const char *s = gw_node_as_string(item);
        if (!s) continue;
        if (is_tls13_suite(s)) {
            n13++;
            continue;
        }
        const char *name = s;
        for (size_t j = 0; j < sizeof(cipher_names) / sizeof(cipher_names[0]); j++)
            if (!strcasecmp(s, cipher_names[j].iana)) name = cipher_names[j].boring;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ":" : "", name);
        if (w < 0 || (size_t)w >= cap - len) {
            fail(b, item, "cipherSuite", "too many cipher suites");
            return false;
        }
        len += (size_t)w;
    }
    *only13 = n13 && !len;
    return true;
}

/* Ferron / rustls curve names -> BoringSSL group names. */
static bool curve_list(builder_t *b, const gw_node_t *n, char *out, size_t cap)
{
    static const struct {
        const char *from, *to;
    } map[] = {{"x25519", "X25519"}, {"secp256r1", "P-256"}, {"prime256v1", "P-256"}, {"secp384r1", "P-384"},
               {"secp521r1", "P-521"}, {"p-256", "P-256"}, {"p-384", "P-384"}, {"p-521", "P-521"}};
    size_t len = 0;
    size_t count = n->kind == GW_NODE_SEQ ? n->seq.count : 1;
    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const gw_node_t *item = n->kind == GW_NODE_SEQ ? n->seq.items[i] : n;
        const char *s = gw_node_as_string(item);
        if (!s) continue;
        const char *name = s;
        for (size_t j = 0; j < sizeof(map) / sizeof(map[0]); j++)
            if (!strcasecmp(s, map[j].from)) name = map[j].to;
        int w = snprintf(out + len, cap - len, "%s%s", len ? ":" : "", name);
        if (w < 0 || (size_t)w >= cap - len) {
            fail(b, item, "ecdhCurve", "too many curves");
            return false;
        }
        len += (size_t)w;
    }
    return true;
}

static bool set_policy(builder_t *b, SSL_CTX *ctx)
{
    const gw_node_t *minn = gw_yaml_map_get(b->g, "tlsMinVersion"), *maxn = gw_yaml_map_get(b->g, "tlsMaxVersion");
    int minv = minn ? parse_version(gw_node_as_string(minn)) : TLS1_2_VERSION;
    int maxv = maxn ? parse_version(gw_node_as_string(maxn)) : TLS1_3_VERSION;
    if (!minv) fail(b, minn, "tlsMinVersion", "expected TLSv1.2 or TLSv1.3");
    if (!maxv) fail(b, maxn, "tlsMaxVersion", "expected TLSv1.2 or TLSv1.3");
    if (b->failed) return false;
    if (minv > maxv) {
        fail(b, minn, "tlsMinVersion", "higher than tlsMaxVersion");
        return false;
    }
    char list[2048];
    bool only13;
    const gw_node_t *cn = gw_yaml_map_get(b->g, "cipherSuite");
    if (!cipher_list(b, cn, list, sizeof(list), &only13)) return false;
    if (only13) {
        minv = TLS1_3_VERSION; /* only TLS 1.3 suites listed: nothing is left for TLS 1.2 */
        if (maxv < minv) {
            fail(b, cn, "cipherSuite", "only TLS 1.3 suites listed but tlsMaxVersion is below TLSv1.3");
            return false;
        }
    } else if (list[0] && !SSL_CTX_set_strict_cipher_list(ctx, list)) {
        fail(b, cn, "cipherSuite", "unknown cipher suite in '%s'", list);
        return false;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, (uint16_t)minv) || !SSL_CTX_set_max_proto_version(ctx, (uint16_t)maxv)) {
        fail(b, minn ? minn : maxn, "tlsMinVersion", "unsupported TLS version range");
        return false;
    }
    const gw_node_t *curves = gw_yaml_map_get(b->g, "ecdhCurve");
    if (curves) {
        if (!curve_list(b, curves, list, sizeof(list))) return false;
        if (!SSL_CTX_set1_curves_list(ctx, list)) {
            fail(b, curves, "ecdhCurve", "unknown curve in '%s' (known: X25519, P-256, P-384, P-521)", list);
            return false;
        }
    }
    return true;
}

static bool load_ocsp(builder_t *b, SSL_CTX *ctx, const gw_node_t *n)
{
    const char *path = gw_node_as_string(n);
    if (!n) return true;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        fail(b, n, "ocspResponseFile", "cannot open '%s': %s", path ? path : "", strerror(errno));
        return false;
    }
    static uint8_t buf[65536];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (!len || !SSL_CTX_set_ocsp_response(ctx, buf, len)) {
        fail(b, n, "ocspResponseFile", "'%s' is empty or not usable", path);
        return false;
    }
    return true;
}

static bool load_cert(builder_t *b, SSL_CTX *ctx, const gw_node_t *certn, const gw_node_t *keyn)
{
    const char *cert = gw_node_as_string(certn), *key = gw_node_as_string(keyn);
    if (!cert || !key) {
        fail(b, certn ? certn : keyn, cert ? "key" : "cert", "both cert and key are needed for secure: true");
        return false;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        fail(b, certn, "cert", "cannot load certificate '%s'", cert);
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fail(b, keyn, "key", "cannot load private key '%s'", key);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(b, keyn, "key", "'%s' does not match the certificate '%s'", key, cert);
        return false;
    }
    return true;
}

/* Client certificates are required and verified against clientCertificateCaFile when set (its
 * names are also sent in the CertificateRequest), else against the system trust store. */
static bool client_ca(builder_t *b, SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    const gw_node_t *n = gw_yaml_map_get(b->g, "clientCertificateCaFile");
    const char *file = gw_node_as_string(n);
    if (!n) {
        SSL_CTX_set_default_verify_paths(ctx);
        ERR_clear_error(); /* a missing system store only means no client is accepted */
        return true;
    }
    if (!file || SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        fail(b, n, "clientCertificateCaFile", "cannot load CA certificates from '%s'", file ? file : "");
        return false;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(file);
    if (names) SSL_CTX_set_client_CA_list(ctx, names); /* takes ownership */
    ERR_clear_error();
    return true;
}

/* ---- session resumption ---- */

static void hash_node(SHA256_CTX *h, const gw_node_t *n)
{
    if (!n) {
        SHA256_Update(h, "~", 2);
    } else if (n->kind == GW_NODE_SCALAR) {
        SHA256_Update(h, n->scalar.text, strlen(n->scalar.text) + 1);
    } else if (n->kind == GW_NODE_SEQ) {
        SHA256_Update(h, "[", 1);
        for (size_t i = 0; i < n->seq.count; i++)
            hash_node(h, n->seq.items[i]);
        SHA256_Update(h, "]", 1);
    } else {
        SHA256_Update(h, "{", 1);
        for (size_t i = 0; i < n->map.count; i++) {
            hash_node(h, n->map.entries[i].key);
            hash_node(h, n->map.entries[i].value);
        }
        SHA256_Update(h, "}", 1);
    }
}

/* The content, not the path: replicas may keep the same CA file in different places. */
static void hash_file(SHA256_CTX *h, const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return; /* client_ca reports it */
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        SHA256_Update(h, buf, n);
    fclose(f);
}

/* The settings a session was authenticated and negotiated under, for every context alike. */
static void digest_policy(builder_t *b)
{
    static const char *const props[] = {"tlsMinVersion", "tlsMaxVersion", "cipherSuite",
                                        "useClientCertificate", "clientCertificateCaFile"};
    SHA256_CTX h;
    SHA256_Init(&h);
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        hash_node(&h, gw_yaml_map_get(b->g, props[i]));
    if (gbool(b, "useClientCertificate", false))
        hash_file(&h, gw_node_as_string(gw_yaml_map_get(b->g, "clientCertificateCaFile")));
    SHA256_Final(b->policy, &h);
}

/*
 * The session-ID context of a context with its certificate loaded: a digest of the SNI entry
 * (NULL: the default certificate), the leaf certificate and the policy. BoringSSL resumes a
 * session (from the cache or a ticket) only under the same context, so resumption never crosses
 * hosts, survives a reload (and moves between replicas) when that host's settings are the same,
 * and stops when its certificate or policy changed.
 */
static bool set_session_context(builder_t *b, SSL_CTX *ctx, const char *sni_entry)
{
    uint8_t *der = NULL, sid[SHA256_DIGEST_LENGTH];
    int len = i2d_X509(SSL_CTX_get0_certificate(ctx), &der);
    if (len <= 0) {
        fail(b, NULL, "tls", "cannot encode the certificate");
        return false;
    }
    SHA256_CTX h;
    SHA256_Init(&h);
    SHA256_Update(&h, b->policy, sizeof(b->policy));
    SHA256_Update(&h, sni_entry ? "sni" : "default", sni_entry ? 4 : 8);
    if (sni_entry) SHA256_Update(&h, sni_entry, strlen(sni_entry) + 1);
    SHA256_Update(&h, der, (size_t)len);
    SHA256_Final(sid, &h);
    OPENSSL_free(der);
    return SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) == 1;
}

/* sessionTicketKeyFiles: keys shared by replicas; without it the in-process keys rotate. */
static bool load_ticket_keys(builder_t *b, gw_tls_t *t)
{
    const gw_node_t *n = gw_yaml_map_get(b->g, "sessionTicketKeyFiles");
    if (!n || gw_yaml_is_null(n)) return true;
    size_t count = n->kind == GW_NODE_SEQ ? n->seq.count : 1, bad = 0;
    if (!count) {
        fail(b, n, "sessionTicketKeyFiles", "no key file listed (the first one encrypts new tickets)");
        return false;
    }
    const char **paths = calloc(count, sizeof(*paths));
    if (!paths) return false;
    for (size_t i = 0; i < count; i++) {
        const char *p = gw_node_as_string(n->kind == GW_NODE_SEQ ? n->seq.items[i] : n);
        paths[i] = p ? p : "";
    }
    char why[PATH_MAX + 128];
    t->ticket_keys = gw_ticket_keys_load(paths, count, &bad, why, sizeof(why));
    free(paths);
    if (!t->ticket_keys)
        fail(b, n->kind == GW_NODE_SEQ ? n->seq.items[bad] : n, "sessionTicketKeyFiles", "%s", why);
    return t->ticket_keys != NULL;
}

/* A context with everything but the certificate and its session-ID context (set_session_context). */
static SSL_CTX *new_ctx(builder_t *b, gw_tls_t *t)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx) {
        fail(b, NULL, "tls", "out of memory");
        return NULL;
    }
    SSL_CTX_set_ex_data(ctx, ctx_tls_idx, t);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, t); /* read from the current context: set on each */
    SSL_CTX_set_tlsext_ticket_key_cb(ctx, on_ticket_key);
    gw_tls_session_cache_attach(ctx);
    if (!set_policy(b, ctx)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (gbool(b, "useClientCertificate", false) && !client_ca(b, ctx)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool add_sni(builder_t *b, gw_tls_t *t, const gw_node_t *sni)
{
    if (!sni || gw_yaml_is_null(sni)) return true;
    if (sni->kind != GW_NODE_MAP) {
        fail(b, sni, "sni", "expected a map of host name -> {cert, key}");
        return false;
    }
    t->sni = calloc(sni->map.count ? sni->map.count : 1, sizeof(*t->sni));
    if (!t->sni) return false;
    for (size_t i = 0; i < sni->map.count; i++) {
        const gw_map_entry_t *e = &sni->map.entries[i];
        const gw_node_t *v = e->value;
        if (v->kind != GW_NODE_MAP) {
            fail(b, v, "sni", "'%s': expected a map with cert and key", e->key->scalar.text);
            return false;
        }
        SSL_CTX *ctx = new_ctx(b, t);
        if (!ctx) return false;
        sni_entry_t *s = &t->sni[t->num_sni++];
        s->ctx = ctx;
        s->pattern = strdup(e->key->scalar.text);
        if (!s->pattern) return false;
        for (char *p = s->pattern; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        if (!load_cert(b, ctx, gw_yaml_map_get(v, "cert"), gw_yaml_map_get(v, "key")) ||
            !set_session_context(b, ctx, s->pattern))
            return false;
        const gw_node_t *ocsp = gw_yaml_map_get(v, "ocspResponseFile");
        if (!load_ocsp(b, ctx, ocsp ? ocsp : gw_yaml_map_get(b->g, "ocspResponseFile"))) return false;
    }
    return true;
}

/* The default certificate; with automatic TLS and no cert/key, none: names without an issued
 * certificate then fail their handshake, and sessions get a context of their own. */
static bool load_default_cert(builder_t *b, SSL_CTX *ctx, const gw_config_t *cfg)
{
    const gw_node_t *certn = gw_yaml_map_get(b->g, "cert"), *keyn = gw_yaml_map_get(b->g, "key");
    if (!certn && !keyn && gw_acme_enabled(cfg)) {
        uint8_t sid[SHA256_DIGEST_LENGTH];
        SHA256_CTX h;
        SHA256_Init(&h);
        SHA256_Update(&h, b->policy, sizeof(b->policy));
        SHA256_Update(&h, "acme", 5);
        SHA256_Final(sid, &h);
        return SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)) == 1;
    }
    return load_cert(b, ctx, certn, keyn) && set_session_context(b, ctx, NULL);
}

static bool maybe_generate(builder_t *b)
{
    const gw_node_t *certn = gw_yaml_map_get(b->g, "cert"), *keyn = gw_yaml_map_get(b->g, "key");
    const char *cert = gw_node_as_string(certn), *key = gw_node_as_string(keyn);
    if (!gbool(b, "generateDevCertificate", false) || !cert || !key) return true;
    if (access(cert, F_OK) == 0 && access(key, F_OK) == 0) return true;
    char why[256];
    if (gw_tls_generate_dev_cert(cert, key, why, sizeof(why)) != 0) {
        fail(b, certn, "generateDevCertificate", "%s", why);
        return false;
    }
    gw_log_error("notice", "generated a self-signed development certificate %s (key %s)", cert, key);
    return true;
}

bool gw_tls_enabled(const gw_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_listens; i++)
        if (cfg->listens[i].tls) return true;
    return false;
}

gw_tls_t *gw_tls_new(const gw_config_t *cfg, char *err, size_t errlen)
{
    pthread_once(&idx_once, make_indexes);
    static const gw_node_t empty = {.kind = GW_NODE_MAP};
    const gw_node_t *g = cfg->doc.root ? gw_yaml_map_get(cfg->doc.root, "global") : NULL;
    builder_t b = {.g = g ? g : &empty, .err = err, .errlen = errlen};
    gw_tls_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    atomic_init(&t->refs, 1);
    t->h2 = gbool(&b, "enableHTTP2", true);
    int64_t period = TICKET_ROTATE_S, cache_size = SESSION_CACHE_SIZE; /* ranges checked by the config */
    gw_node_as_int(gw_yaml_map_get(b.g, "sessionTicketKeyRotation"), &period);
    gw_node_as_int(gw_yaml_map_get(b.g, "tlsSessionCacheSize"), &cache_size);
    t->ticket_period = period > 0 ? (time_t)period : TICKET_ROTATE_S;
    digest_policy(&b);
    if (!load_ticket_keys(&b, t) || !maybe_generate(&b)) goto fail;
    t->def = new_ctx(&b, t);
    if (!t->def) goto fail;
    if (!load_default_cert(&b, t->def, cfg)) goto fail;
    if (!load_ocsp(&b, t->def, gw_yaml_map_get(b.g, "ocspResponseFile"))) goto fail;
    if (!add_sni(&b, t, gw_yaml_map_get(b.g, "sni"))) goto fail;
    SSL_CTX_set_tlsext_servername_callback(t->def, on_servername);
    SSL_CTX_set_select_certificate_cb(t->def, on_client_hello);
    SSL_CTX_set_tlsext_servername_arg(t->def, t);
    gw_tls_session_cache_configure(cache_size > 0 ? (size_t)cache_size : 0);
    return t;
fail:
    if (!b.failed) snprintf(err, errlen, "tls: out of memory\n");
    gw_tls_free(t);
    return NULL;
}

/* Drops one reference; the last frees the contexts. */
static void tls_unref(gw_tls_t *t)
{
    if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    for (size_t i = 0; i < t->num_sni; i++) {
        SSL_CTX_free(t->sni[i].ctx);
        free(t->sni[i].pattern);
    }
    free(t->sni);
    SSL_CTX_free(t->def);
    gw_ticket_keys_free(t->ticket_keys);
    free(t);
}

void gw_tls_free(gw_tls_t *t)
{
    tls_unref(t);
}

/* ---- development certificate ---- */

static int mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static bool add_san(GENERAL_NAMES *gens, int type, const void *data, int len)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_STRING *v = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    if (!gn || !v || !ASN1_STRING_set(v, data, len)) {
        GENERAL_NAME_free(gn);
        ASN1_STRING_free(v);
        return false;
    }
    GENERAL_NAME_set0_value(gn, type, v);
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return false;
    }
    return true;
}

/* subjectAltName localhost, 127.0.0.1, ::1 and basicConstraints CA:FALSE. */
static bool add_extensions(X509 *x)
{
    static const uint8_t v4[4] = {127, 0, 0, 1}, v6[16] = {[15] = 1};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    bool ok = gens && bc && add_san(gens, GEN_DNS, "localhost", 9) && add_san(gens, GEN_IPADD, v4, 4) &&
              add_san(gens, GEN_IPADD, v6, 16) && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) == 1 &&
              X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0) == 1;
    GENERAL_NAMES_free(gens);
    BASIC_CONSTRAINTS_free(bc);
    return ok;
}

static X509 *make_cert(EVP_PKEY *pkey)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint64_t serial;
    RAND_bytes((uint8_t *)&serial, sizeof(serial));
    bool ok = x && name && X509_set_version(x, X509_VERSION_3) &&
              ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
              X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)"localhost", -1, -1, 0) &&
              X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const uint8_t *)"gateway development", -1, -1,
                                         0) &&
              X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) && X509_set_pubkey(x, pkey) &&
              add_extensions(x) && X509_sign(x, pkey, EVP_sha256());
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static FILE *create_file(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return NULL;
    fchmod(fd, mode);
    FILE *f = fdopen(fd, "w");
    if (!f) close(fd);
    return f;
}

int gw_tls_generate_dev_cert(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    if (mkdirs(cert_path) != 0 || mkdirs(key_path) != 0) {
        snprintf(err, errlen, "cannot create the directory of '%s': %s", cert_path, strerror(errno));
        return -1;
    }
    EVP_PKEY *pkey = gw_acme_new_key() /* a P-256 key, as for ACME certificates */;
    X509 *x = pkey ? make_cert(pkey) : NULL;
    int rc = -1;
    FILE *kf = NULL, *cf = NULL;
    if (!x) {
        snprintf(err, errlen, "cannot generate a certificate");
        goto done;
    }
    kf = create_file(key_path, 0600);
    cf = kf ? create_file(cert_path, 0644) : NULL;
    if (!kf || !cf) {
        snprintf(err, errlen, "cannot write '%s': %s", kf ? cert_path : key_path, strerror(errno));
        goto done;
    }
    if (!PEM_write_PrivateKey(kf, pkey, NULL, NULL, 0, NULL, NULL) || !PEM_write_X509(cf, x)) {
        snprintf(err, errlen, "cannot write the certificate or key");
        goto done;
    }
    rc = 0;
done:
    if (kf && fclose(kf) != 0) rc = -1;
    if (cf && fclose(cf) != 0) rc = -1;
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}
