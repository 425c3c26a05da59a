/*
 * Stable identities across reloads. Per-worker state that must survive a reload (backend pools and
 * their health, balancer state) is indexed by small integers; this registry gives the same integer
 * to the same identity in every config the process loads: a backend target is its URL and its
 * certificate-verification mode, a target list is its name, policy and members with their weights.
 * Ids are never reused, so state of an identity a reload removed is simply no longer reached.
 */
#ifndef GW_CONFIG_IDS_H
#define GW_CONFIG_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "target.h"

/** The id of a target (url + insecure); the same for equal targets of any config. */
uint32_t gw_identity_target(const gw_target_t *t);

/** The id of a target list (name, balance, hash key, members, weights). */
uint32_t gw_identity_list(const gw_target_list_t *l);

/** The id of any byte string (the two above are built on it). Thread-safe (config loads only). */
uint32_t gw_identity_of(const void *key, size_t len);

/** Frees the registry (process exit). Ids handed out before are forgotten. */
void gw_identity_clear(void);

#endif
