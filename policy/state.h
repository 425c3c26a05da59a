/*
 * Per-worker policy state (the basic-auth success cache, rate-limit buckets, regex match buffers).
 * Each worker is one thread, so the state is thread-local: nothing on the request path takes a lock.
 * (The brute-force counters are shared by the workers instead: brute_force.h.) Memory is allocated
 * on first use and freed when the thread exits. The state lives outside the config snapshot, so it
 * survives a reload.
 */
#ifndef GW_POLICY_STATE_H
#define GW_POLICY_STATE_H

#include <stddef.h>
#include <stdint.h>

enum {
    GW_SLOT_MATCH_DATA,
    GW_SLOT_AUTH_CACHE,
    GW_SLOT_RATE,
    GW_SLOT_COUNT,
};

/**
 * The calling thread's object for `slot`: `make(size)` on first use (NULL: zeroed malloc of
 * `size`), released with `dtor` (NULL: free) when the thread exits. NULL when memory is exhausted.
 */
void *gw_policy_slot(unsigned slot, size_t size, void *(*make)(size_t), void (*dtor)(void *));

/**
 * The clock of the policy stages (brute-force windows, rate limits): monotonic milliseconds.
 * Tests replace it to drive time by hand.
 */
extern int64_t (*gw_policy_clock)(void);

/** Frees the calling thread's policy state now (tests; threads do it at exit by themselves). */
void gw_policy_thread_release(void);

#endif
