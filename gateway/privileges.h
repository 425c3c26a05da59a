/*
 * Process limits and privileges, applied by the main thread once the listeners are bound and
 * before any worker starts: the open-file limit raised to fit `maxConnections`, then `user` and
 * `group` taken on (nginx's model: bind as root, serve as an unprivileged user).
 */
#ifndef GW_PRIVILEGES_H
#define GW_PRIVILEGES_H

#include <stddef.h>
#include <stdint.h>

/**
 * Raises RLIMIT_NOFILE (soft, and hard when permitted) to hold `max_connections` client
 * connections plus as many backend connections and some spare. Logs when the limit it reaches
 * cannot even hold the client connections.
 */
void gw_raise_nofile(uint32_t max_connections);

/**
 * Switches to `user` (its primary group unless `group` is given) and `group`; either may be
 * NULL. Does nothing (with a warning) when not running as root. Returns 0, or -1 with err.
 */
int gw_drop_privileges(const char *user, const char *group, char *err, size_t errlen);

#endif
