/*
 * Client addresses and access lists: IP/CIDR parsing and matching (IPv4 kept in v4-mapped IPv6
 * form, so "10.0.0.0/8" and "::ffff:10.0.0.0/104" are the same rule), the client address taken from
 * X-Forwarded-For when the peer is a trusted proxy (or blindly, with Ferron's enableIPSpoofing),
 * and the blocklist/allowlist decision.
 */
#ifndef GW_POLICY_ACL_H
#define GW_POLICY_ACL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "slice.h"

/** An address prefix; `addr` has its host bits cleared, `bits` counts in the 128-bit space. */
typedef struct gw_cidr {
    struct in6_addr addr;
    uint8_t bits;
} gw_cidr_t;

/**
 * A set of prefixes. Single addresses (/32, /128) are kept sorted apart and found by binary search,
 * so a blocklist of thousands of addresses costs a few comparisons; real prefixes are scanned.
 */
typedef struct gw_cidr_list {
    struct in6_addr *hosts;
    size_t num_hosts;
    gw_cidr_t *nets;
    size_t num_nets;
} gw_cidr_list_t;

/** Parses an IPv4 or IPv6 address (no brackets, no port) of `len` bytes; IPv4 becomes v4-mapped. */
bool gw_ip_parse(const char *s, size_t len, struct in6_addr *out);

/** Parses "addr" or "addr/bits" (IPv4 bits 0-32, IPv6 0-128). */
bool gw_cidr_parse(const char *s, gw_cidr_t *out);

/** True when `ip` (v4-mapped for IPv4) lies inside `c`. */
bool gw_cidr_match(const gw_cidr_t *c, const struct in6_addr *ip);

/**
 * Builds a list from `n` strings in `arena`. On a bad entry returns false and sets *bad to its
 * index (the list is then unusable).
 */
bool gw_cidr_list_build(gw_cidr_list_t *l, gw_arena_t *arena, const char *const *items, size_t n,
                        size_t *bad);

struct gw_node;

/**
 * Checks a YAML sequence of addresses and CIDR prefixes (adminAllow, proxyProtocolTrusted) at
 * load: NULL when every item parses, else the first bad item with a message in `why`.
 */
const struct gw_node *gw_cidr_seq_check(const struct gw_node *seq, char *why, size_t whylen);

/** Builds a list from a sequence gw_cidr_seq_check accepted. False without memory. */
bool gw_cidr_list_from_seq(gw_cidr_list_t *l, gw_arena_t *arena, const struct gw_node *seq);

/** True when `ip` matches any entry. */
bool gw_cidr_list_match(const gw_cidr_list_t *l, const struct in6_addr *ip);

/** True when the list has no entries. */
static inline bool gw_cidr_list_empty(const gw_cidr_list_t *l)
{
    return l->num_hosts + l->num_nets == 0;
}

/** Prints an address, v4-mapped shown as plain IPv4, and returns its length (0, with buf empty,
 *  when it does not fit in len bytes; INET6_ADDRSTRLEN always does). */
size_t gw_ip_text(const struct in6_addr *ip, char *buf, size_t len);

/**
 * Parses one X-Forwarded-For element: optional spaces, an IPv4 or IPv6 address, optionally
 * "[v6]" or with a ":port" on IPv4 (as some proxies write). False when it is not an address.
 */
bool gw_xff_element_parse(gw_slice_t s, struct in6_addr *out);

/**
 * Picks the client address from X-Forwarded-For values `xff[0..n)` (in header order) sent by a
 * trusted peer: walks the elements from the right, skipping addresses that are themselves trusted
 * proxies, and returns the first one that is not (or the leftmost valid one when all are
 * trusted). Stops at an element that is not an address. Returns false when no element is usable.
 */
bool gw_xff_pick(const gw_slice_t *xff, size_t n, const gw_cidr_list_t *trusted, struct in6_addr *out);

#endif
