/* Backend TLS contexts. See tls_client.h. */
#include "tls_client.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base.h>
#if !defined(OPENSSL_IS_BORINGSSL)
#error "the gateway is built against BoringSSL only"
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct gw_tls_client {
    SSL_CTX *verify;
    SSL_CTX *insecure;
};

/* Debian keeps its bundle here; BoringSSL's compiled-in default file does not exist there. */
static const char system_bundle[] = "/etc/ssl/certs/ca-certificates.crt";

static SSL_CTX *new_ctx(const char *ca_file, bool verify)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : (SSL_CTX_load_verify_locations(ctx, system_bundle, NULL) ||
                        SSL_CTX_set_default_verify_paths(ctx));
    if (ok != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

gw_tls_client_t *gw_tls_client_new(const char *ca_file, char *err, size_t errlen)
{
    gw_tls_client_t *tc = calloc(1, sizeof(*tc));
    if (!tc) return NULL;
    tc->verify = new_ctx(ca_file, true);
    tc->insecure = new_ctx(NULL, false);
    if (!tc->verify || !tc->insecure) {
        snprintf(err, errlen, "cannot load CA certificates from %s", ca_file ? ca_file : system_bundle);
        gw_tls_client_free(tc);
        return NULL;
    }
    return tc;
}

void gw_tls_client_free(gw_tls_client_t *tc)
{
    if (!tc) return;
    SSL_CTX_free(tc->verify);
    SSL_CTX_free(tc->insecure);
    free(tc);
}

const char *gw_tls_client_check_ca(const char *ca_file)
{
    SSL_CTX *ctx = new_ctx(ca_file, true);
    if (!ctx) return "cannot load CA certificates from this file";
    SSL_CTX_free(ctx);
    return NULL;
}

/* The name checked against the certificate: a host name, or an IP address. */
static bool set_identity(SSL *ssl, const gw_target_t *t)
{
    struct in6_addr a6;
    struct in_addr a4;
    bool literal = inet_pton(AF_INET, t->host, &a4) == 1 || inet_pton(AF_INET6, t->host, &a6) == 1;
    if (literal) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host) == 1;
    return SSL_set_tlsext_host_name(ssl, t->host) == 1 && SSL_set1_host(ssl, t->host) == 1;
}

SSL *gw_tls_client_ssl(gw_tls_client_t *tc, const gw_target_t *t, int fd, SSL_SESSION *session)
{
    SSL *ssl = SSL_new(t->insecure ? tc->insecure : tc->verify);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1 || (!t->insecure && !set_identity(ssl, t))) {
        SSL_free(ssl);
        return NULL;
    }
    if (t->insecure) SSL_set_tlsext_host_name(ssl, t->host);
    static const uint8_t alpn_h2[] = {2, 'h', '2'};
    static const uint8_t alpn_auto[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    int alpn_rc = t->proto == GW_PROTO_H2     ? SSL_set_alpn_protos(ssl, alpn_h2, sizeof(alpn_h2))
                  : t->proto == GW_PROTO_AUTO ? SSL_set_alpn_protos(ssl, alpn_auto, sizeof(alpn_auto))
                                              : 0;
    if (alpn_rc != 0) {
        SSL_free(ssl);
        return NULL;
    }
    if (session) SSL_set_session(ssl, session);
    SSL_set_connect_state(ssl);
    return ssl;
}
