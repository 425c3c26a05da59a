/*
 * Binary upgrade without dropping a connection (SIGUSR2), as nginx does it: the running process
 * starts the binary at the path it was started from (a new version may have been put there) with
 * the same arguments, handing it every listening socket by descriptor inheritance, and names them in
 * GATEWAY_UPGRADE_FDS. The new process uses those sockets instead of binding (so a privileged port
 * needs no privilege again, a Unix socket file is not replaced, and connections waiting in an accept
 * queue stay there for whichever process accepts first), and once its workers serve it writes one
 * byte to the pipe named by GATEWAY_UPGRADE_READY_FD. Only then does the old process stop
 * gracefully; if the new one exits first, or stays silent for `upgradeTimeout` ms (then it is
 * killed), the old one keeps serving as if nothing happened.
 *
 * Inheritance was chosen over passing descriptors with SCM_RIGHTS (HAProxy's way): the new process
 * is the old one's child anyway, exec keeps descriptors whose close-on-exec flag is cleared, and
 * nothing has to listen on a control socket. Everything here runs on the main thread.
 */
#ifndef GW_UPGRADE_H
#define GW_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/** Remembers the binary's path and the arguments, for the new process (main, at start). */
void gw_upgrade_remember_self(char **argv);

/** New process: takes the sockets named by GATEWAY_UPGRADE_FDS (none: a normal start) and removes
 *  the variables from the environment, so that CGI programs and later upgrades never see them. */
void gw_upgrade_inherit(void);

/** New process: an inherited listening socket bound to `l`'s address, or -1 (none left). */
int gw_upgrade_take(const gw_listen_t *l);

/** New process, once its workers serve: closes the inherited sockets no listener took (addresses
 *  the configuration no longer has) and tells the old process it may stop. */
void gw_upgrade_serving(void);

/**
 * Old process (SIGUSR2): starts the new binary with every listening socket and waits up to
 * `timeout_ms` for it to serve. True: it does, and this process should stop gracefully; false
 * (logged): this process keeps serving.
 */
bool gw_upgrade_start(uint32_t timeout_ms);

#endif
