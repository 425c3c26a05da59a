/*
 * The PROXY protocol (HAProxy's proxy-protocol.txt), versions 1 (a text line) and 2 (binary): the
 * header an L4 load balancer writes as the first bytes of a connection to pass on the addresses of
 * the client it accepted. Parsing and writing only; no I/O (proxy_accept.c reads client headers,
 * upstreams/pool.c writes them to backends).
 */
#ifndef GW_PROXY_PROTO_H
#define GW_PROXY_PROTO_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GW_PP_V1_MAX = 107,    /**< longest v1 line, CRLF included (the spec's bound) */
    GW_PP_V2_FIXED = 16,   /**< v2 signature, version/command, family and length */
    GW_PP_WRITE_MAX = 108, /**< room for any header gw_pp_write makes */
};

/** What a header said. */
typedef struct gw_pp_header {
    bool has_addr; /**< false: v1 UNKNOWN, v2 LOCAL or an unspecified/Unix family: keep the socket's */
    struct sockaddr_in6 src, dst; /**< v4-mapped for IPv4 */
} gw_pp_header_t;

/**
 * Tells from the first `len` bytes whether a connection starts with a PROXY header: 1 it does
 * (v1 "PROXY " or the v2 signature), 0 it cannot, -1 too few bytes to tell.
 */
int gw_pp_detect(const uint8_t *buf, size_t len);

/**
 * Parses a v1 or v2 header at the start of buf[0..len). Returns its length in bytes, 0 when more
 * bytes are needed, -1 when it is malformed or longer than `max` bytes.
 */
int gw_pp_parse(const uint8_t *buf, size_t len, size_t max, gw_pp_header_t *out);

/**
 * Writes a header of `version` (1 or 2) for a connection from `src` to `dst` into buf (at least
 * GW_PP_WRITE_MAX bytes) and returns its length. Two IPv4 addresses give TCP4, any IPv6 one TCP6
 * (IPv4 written v4-mapped), an unspecified source (a Unix-socket client) UNKNOWN / AF_UNSPEC.
 */
size_t gw_pp_write(int version, const struct sockaddr_in6 *src, const struct sockaddr_in6 *dst, uint8_t *buf);

#endif
