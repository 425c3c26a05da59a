/*
 * Brute-force protection for basic auth (Ferron's values: 10 failures within 300 s from one client
 * address -> 429 until the window that began with the first failure ends).
 *
 * The counters are shared by all workers, so a client spreading its attempts over connections that
 * land on different workers gets 10 tries, not 10 per worker. The table is process-wide and
 * bounded (`bruteForceMaxClients` addresses, 4-way sets, 32 bytes each; allocated on first use,
 * sized once per process), lives outside the config snapshot and so survives a reload.
 *
 * Locking: sets are spread over 64 mutexes, taken only to record a failure or to look at a set
 * that holds a failing client. Each set keeps an atomic count of its entries, so checking a client
 * whose set is empty (every client while nobody fails, and nearly every one otherwise) reads one
 * integer and takes no lock. Expired entries are dropped when their set is next locked.
 *
 * Exactness: a check and the failure it leads to are two steps with a password verification
 * between them. A worker runs them in one go (the verification is synchronous), so at most one
 * attempt per worker is between the two at any moment: concurrent attempts of one client can have
 * at most 10 + workers - 1 failures counted before the lockout. Sequential attempts (the shape of a
 * password-guessing loop) are locked out after exactly 10, whatever worker each lands on. Closing
 * the gap would mean counting attempts before their verification, which would lock out a browser
 * sending its (right) credentials on many streams at once.
 */
#ifndef GW_POLICY_BRUTE_FORCE_H
#define GW_POLICY_BRUTE_FORCE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_BRUTE_MAX_FAILURES 10
#define GW_BRUTE_WINDOW_MS 300000
#define GW_BRUTE_DEFAULT_CLIENTS 65536 /* default bruteForceMaxClients: 2 MiB */

/**
 * Sets how many client addresses the table tracks (`bruteForceMaxClients`). The table is sized
 * once per process, when the first failure is counted: a later call changes nothing.
 */
void gw_brute_configure(size_t max_clients);

/** True when `ip` is locked out; *retry_s is the number of seconds left. */
bool gw_brute_locked(const struct in6_addr *ip, int64_t now_ms, uint32_t *retry_s);

/** Counts a failed attempt from `ip`. */
void gw_brute_fail(const struct in6_addr *ip, int64_t now_ms);

#endif
