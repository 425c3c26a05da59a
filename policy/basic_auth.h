/*
 * HTTP Basic authentication (RFC 7617) against a set of users with password hashes, with
 * Ferron's brute-force protection (10 failures within 300 s from one client address -> 429).
 *
 * Cost: a bcrypt/yescrypt/argon2/scrypt verification takes milliseconds to tens of milliseconds of
 * CPU on the worker. Successful verifications are cached per worker (512 entries, 60 s), keyed by
 * SHA-256 of the user set's identity and the Authorization value, so a keep-alive client (or a
 * browser resending its credentials) pays the hash once per minute, not per request. Failures are
 * not cached, and are bounded by the brute-force lockout (brute_force.h, shared by all workers)
 * that the request stages apply around this check.
 */
#ifndef GW_POLICY_BASIC_AUTH_H
#define GW_POLICY_BASIC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "brute_force.h"
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
    const char *decoy_hash; /**< verified for unknown user names (gw_userdb_seal) */
} gw_userdb_t;

/**
 * Computes db->id from the names and hashes and picks db->decoy_hash (call once the users are in
 * place): a name that is not a user costs one verification against it, as a wrong password of a
 * user does, so that which names exist cannot be told from the time a 401 takes.
 */
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

/**
 * Reads an htpasswd file ("name:hash" lines; '#' comments and blank lines skipped) and calls
 * add(ctx, name, hash) for each user (the strings live until the call returns). Returns the number
 * of users, or -1 with a reason ("line 3: no ':'", "cannot open: ...") in err.
 */
long gw_htpasswd_read(const char *path, void (*add)(void *ctx, const char *name, const char *hash), void *ctx,
                      char *err, size_t errlen);

#endif
