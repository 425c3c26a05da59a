/*
 * The running process: config snapshots, listeners, workers and logs, and reload on SIGHUP.
 *
 * A reload parses and validates the file on the main thread. A bad file is logged with
 * file:line:column and changes nothing. A good one becomes a new snapshot (config + TLS contexts,
 * certificates read again) with the next generation number; listeners are diffed by address (new
 * ones opened, removed ones closed, the others untouched) and each worker gets a message with the
 * snapshot and its own new sockets. A worker adopts it between two events of its loop: requests
 * that start afterwards use the new config, requests in flight keep theirs. Each worker counts the
 * requests still using an older snapshot (its own count, no atomic per request) and gives the
 * snapshot back when that count reaches zero; the main thread frees a snapshot every worker gave
 * back. TLS connections keep their contexts alive by reference (tls.c), not the whole snapshot.
 *
 * State that must survive lives outside the snapshot and is found by stable identity: backend
 * pools, health and balancer state (config_ids.h), the DNS cache (per worker, kept), rate-limit
 * buckets (policy/state.c, keyed by zone: a name, or the level writing the rule and its settings),
 * TLS session-ticket keys (process-wide, tls.c) and the response cache (process-wide). Pools of
 * targets the new config no longer has are retired as a worker adopts it (idle connections closed
 * at once, the others after their exchange) and freed once no request of an older config is left.
 * CGI programs get the environmentVariables of their request's config.
 *
 * Needs a restart (logged when a reload changes it): `workers`, `maxRequestHeaderBytes`,
 * `maxRequestHeaders`, the resolver settings, `http2Settings`, `proxyCaFile`, the process's own
 * environment (environmentVariables are set with setenv only at start), and listening on a
 * privileged port after the privilege drop.
 */
#ifndef GW_RELOAD_H
#define GW_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct gw_tls;
struct gw_worker;

/** An immutable config and its TLS contexts, shared by the workers. */
typedef struct gw_snapshot {
    gw_config_t *cfg;
    struct gw_tls *tls;      /**< NULL without HTTPS listeners */
    uint64_t generation;     /**< 1 for the config the process started with */
    atomic_uint refs;        /**< workers that have not given it back yet */
    struct gw_snapshot *next; /**< the main thread's list of retired snapshots */
} gw_snapshot_t;

typedef struct gw_process gw_process_t;

/**
 * Opens the logs and listeners of `cfg`, starts its workers and returns, or NULL after logging
 * why. Takes cfg and tls (the first snapshot) in both cases.
 */
gw_process_t *gw_process_start(gw_config_t *cfg, struct gw_tls *tls);

/** SIGHUP: loads the config file again and, when it is valid, hands it to every worker. */
void gw_process_reload(gw_process_t *p);

/** SIGUSR1: reopens the log files of the current config. */
void gw_process_reopen_logs(gw_process_t *p);

/** Frees the retired snapshots every worker gave back. True while some are still in use. */
bool gw_process_collect(gw_process_t *p);

/** SIGUSR2: starts the binary again with the listening sockets (upgrade.h). True: the new process
 *  serves and this one should stop (its Unix socket files are left to the new one). */
bool gw_process_upgrade(gw_process_t *p);

/** Worker 0: it also runs the process's own clients (health probes, requests to the ACME CA). */
struct gw_worker *gw_process_first_worker(gw_process_t *p);

/** Stops accepting, drains, joins the workers and frees everything. */
void gw_process_stop(gw_process_t *p);

/** Frees a worker's bookkeeping of older snapshots (worker exit; the snapshots are the process's). */
void gw_worker_forget_snapshots(struct gw_worker *w);

#endif
