/*
 * Password hash verification for basic auth. Formats, chosen by the hash's prefix:
 *  - crypt(3) strings through libxcrypt: bcrypt ($2y$, $2b$, $2a$: `htpasswd -B`), sha512-crypt ($6$),
 *    sha256-crypt ($5$), yescrypt ($y$: `mkpasswd`), scrypt ($7$) and the others libxcrypt knows;
 *  - Apache's $apr1$ MD5 (the `htpasswd` default) and {SHA} (`htpasswd -s`), for compatibility only;
 *  - the PHC strings Ferron's `ferron-passwd` writes: $argon2id$/$argon2i$/$argon2d$ (libargon2),
 *    $pbkdf2-sha256$/$pbkdf2-sha512$/$pbkdf2$ (i=rounds,l=length) and $scrypt$ (ln,r,p), both
 *    through BoringSSL.
 * Every comparison of a computed hash with the stored one is constant-time. Verification is CPU
 * work, and deliberately slow for bcrypt/yescrypt/argon2/scrypt (milliseconds to tens of ms): the
 * caller caches successes (basic_auth.c).
 */
#ifndef GW_POLICY_PASSWORD_H
#define GW_POLICY_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

typedef enum gw_pw_result {
    GW_PW_OK = 0,
    GW_PW_MISMATCH = 1,
    GW_PW_BAD_HASH = 2, /**< the stored string is not a hash this build can verify */
} gw_pw_result_t;

/** Checks `pw[0..len)` against the stored hash string. */
gw_pw_result_t gw_password_verify(const char *hash, const char *pw, size_t len);

/**
 * Load-time check of a stored hash: returns NULL when it is a format we verify, else a short
 * reason ("plain text is not accepted", "unknown hash format").
 */
const char *gw_password_check_format(const char *hash);

/** A short name of the hash's scheme ("bcrypt", "argon2id", ...) for logs and --explain. */
const char *gw_password_scheme(const char *hash);

#endif
