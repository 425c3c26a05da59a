/*
 * HTTP Basic authentication (RFC 7617) against a set of users with password hashes, with
 * Ferron's brute-force protection (10 failures within 300 s from one client address -> 429).
 *
 * Cost: a bcrypt/yescrypt/argon2/scrypt verification takes milliseconds to tens of milliseconds of
 * CPU on the worker. Successful verifications are cached per worker (512 entries, 60 s), keyed by
 * SHA-256 of the user set's identity and the Authorization value, so a keep-alive client (or a
 * browser resending its credentials) pays the hash once per minute, not per request. Failures are
 * not cached, and are bounded by the brute-force lockout. Lockout counters are per worker: a client
 * whose connections land on W workers gets up to 10 x W tries per 300 s.
 */
#ifndef GW_POLICY_BASIC_AUTH_H
#define GW_POLICY_BASIC_AUTH_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slice.h"

typedef struct gw_user {
    const char *name;
    const char *hash;
} gw_user_t;

/** The users of a route (`users` and `htpasswdFile`), with a digest naming this exact set. */
typedef struct gw_userdb {
    const gw_user_t *users;
    size_t count;
    uint8_t id[32];
} gw_userdb_t;

/** Computes db->id from the names and hashes (call once the users are in place). */
void gw_userdb_seal(gw_userdb_t *db);

typedef enum gw_auth_result {
    GW_AUTH_OK,      /**< valid credentials of a user allowed here */
    GW_AUTH_MISSING, /**< no (or no Basic) Authorization header: not a failed attempt */
    GW_AUTH_FAILED,  /**< wrong user, password or a user not in the allowed list */
} gw_auth_result_t;

/**
 * Checks Authorization value `authz` (NULL base: absent). When `allowed` is non-empty the user must
 * also be one of allowed[0..nallowed). On success *user points at the user's name (owned by db).
 */
gw_auth_result_t gw_basic_auth_check(const gw_userdb_t *db, gw_slice_t authz, const char *const *allowed,
                                     size_t nallowed, const char **user, int64_t now_ms);

/** Brute-force window and limit (Ferron's values). */
#define GW_BRUTE_MAX_FAILURES 10
#define GW_BRUTE_WINDOW_MS 300000

/** True when `ip` is locked out; *retry_s is the number of seconds left. */
bool gw_brute_locked(const struct in6_addr *ip, int64_t now_ms, uint32_t *retry_s);

/** Counts a failed attempt from `ip`. */
void gw_brute_fail(const struct in6_addr *ip, int64_t now_ms);

/**
 * Reads an htpasswd file ("name:hash" lines; '#' comments and blank lines skipped) and calls
 * add(ctx, name, hash) for each user (the strings live until the call returns). Returns the number
 * of users, or -1 with a reason ("line 3: no ':'", "cannot open: ...") in err.
 */
long gw_htpasswd_read(const char *path, void (*add)(void *ctx, const char *name, const char *hash), void *ctx,
                      char *err, size_t errlen);

#endif
