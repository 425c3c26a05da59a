/*
 * Logs. The access log is Combined Log Format, buffered per worker and written in large pieces
 * (never a write per request); the error log is written at once (it is rare) with a timestamp.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "request.h"

typedef struct gw_log_buf gw_log_buf_t;

/** Opens (append, create 0644) a log file. Returns the fd or -errno. */
int gw_log_open(const char *path);

/** Reopens `path` onto the existing `fd` (SIGUSR1, log rotation); workers keep writing to fd. */
int gw_log_reopen(int fd, const char *path);

/** A per-worker buffer for access-log lines written to `fd` (fd < 0: logging off). */
gw_log_buf_t *gw_log_buf_new(int fd);
void gw_log_buf_free(gw_log_buf_t *b);

/** Appends the Combined Log Format line of a finished request. */
void gw_log_access(gw_log_buf_t *b, const gw_req_t *req, int64_t wall_now);

/** True when lines wait in the buffer. */
bool gw_log_pending(const gw_log_buf_t *b);

/** Writes buffered lines out (called once per loop iteration when a second passed, and at exit). */
void gw_log_flush(gw_log_buf_t *b);

/** Sets the error log fd (default 2). */
void gw_log_set_error_fd(int fd);
int gw_log_error_fd(void);

/** Writes "[time] [level] message" to the error log. */
void gw_log_error(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
