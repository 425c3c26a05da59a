/*
 * The per-worker event loop: level-triggered epoll, a timer wheel with lazy re-arm, a clock read
 * once per iteration, fd generation counters, and a message queue other threads can post to.
 * One loop per worker thread; nothing here is shared between threads except gw_loop_post().
 */
#ifndef GW_LOOP_H
#define GW_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_loop gw_loop_t;
typedef struct gw_io gw_io_t;
typedef struct gw_timer gw_timer_t;

/** Called with the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP). */
typedef void (*gw_io_cb)(gw_io_t *io, uint32_t events);

/** A watched file descriptor. Embed it in the owner's struct and use container_of. */
struct gw_io {
    int fd;
    uint32_t gen;    /**< generation at registration: stale events for a reused fd are dropped */
    uint32_t events; /**< currently armed epoll events */
    bool registered; /**< in the epoll set (gw_io_start_lazy leaves it out until needed) */
    gw_io_cb cb;
    gw_loop_t *loop;
};

typedef void (*gw_timer_cb)(gw_timer_t *t);

/**
 * A timer node, embedded in its owner. Moving the deadline later is a field write (gw_timer_set
 * on a scheduled timer): the wheel notices when it reaches the old slot and re-files the node.
 */
struct gw_timer {
    gw_timer_t *next, **pprev;
    uint64_t expire_ms; /**< wanted deadline */
    uint64_t slot_ms;   /**< deadline of the slot the node sits in */
    gw_timer_cb cb;
};

/** A message for another worker; the receiver's `fn` runs on the receiving loop's thread. */
typedef struct gw_msg {
    struct gw_msg *next;
    void (*fn)(gw_loop_t *loop, struct gw_msg *msg);
} gw_msg_t;

/** Creates a loop able to watch fds below `max_fds`. Returns NULL on failure (errno set). */
gw_loop_t *gw_loop_new(unsigned max_fds);

/** Frees the loop; watched fds are not closed. */
void gw_loop_free(gw_loop_t *loop);

/** Runs until gw_loop_stop(); each iteration: clock, epoll events, timers, messages. */
void gw_loop_run(gw_loop_t *loop);

/** Runs one iteration, waiting at most `max_wait_ms` for events (tests, and embedding). */
void gw_loop_run_once(gw_loop_t *loop, int max_wait_ms);

/** Makes gw_loop_run return after the current iteration (loop thread only). */
void gw_loop_stop(gw_loop_t *loop);

/** Milliseconds of CLOCK_MONOTONIC, read once per loop iteration. */
uint64_t gw_loop_now(const gw_loop_t *loop);

/** Wall-clock seconds read at the same moment as gw_loop_now (for logs and Date). */
int64_t gw_loop_wall(const gw_loop_t *loop);

/**
 * Starts watching io->fd (set by the caller) for `events` and calls `cb`. Returns 0 or -errno.
 */
int gw_io_start(gw_loop_t *loop, gw_io_t *io, int fd, uint32_t events, gw_io_cb cb);

/**
 * Like gw_io_start, but the fd joins the epoll set only when it must be waited on (gw_io_arm, or
 * gw_io_modify): a connection served by the reads and writes that follow its accept (a request
 * answered at once, then closed) never costs an epoll_ctl, nor the epoll removal at close.
 * Returns 0 or -EMFILE (fd beyond the loop's table).
 */
int gw_io_start_lazy(gw_loop_t *loop, gw_io_t *io, int fd, uint32_t events, gw_io_cb cb);

/** Adds a lazily started fd to the epoll set with its events; no syscall once it is in. */
int gw_io_arm(gw_io_t *io);

/** Changes the armed events (adding a lazy fd to the set); no syscall when nothing changes. */
int gw_io_modify(gw_io_t *io, uint32_t events);

/** Stops watching (before the fd is closed); pending events for it in this batch are dropped. */
void gw_io_stop(gw_io_t *io);

/** Forgets the watcher and closes its fd: the kernel drops the epoll registration with the last
 *  reference to the file, so no EPOLL_CTL_DEL is spent (the fd must not be duplicated). */
void gw_io_close(gw_io_t *io);

/** Initialises a timer (not scheduled). */
void gw_timer_init(gw_timer_t *t, gw_timer_cb cb);

/** Schedules (or reschedules) the timer to fire `after_ms` from the loop's current time. */
void gw_timer_set(gw_loop_t *loop, gw_timer_t *t, uint64_t after_ms);

/** Cancels the timer if it is scheduled. */
void gw_timer_cancel(gw_timer_t *t);

/** True while the timer is scheduled. */
static inline bool gw_timer_active(const gw_timer_t *t)
{
    return t->pprev != 0;
}

/** Posts a message to `loop` from any thread; it runs on the loop's thread. */
void gw_loop_post(gw_loop_t *loop, gw_msg_t *msg);

/** A hook run once per loop iteration after events (used to flush batched output, e.g. logs). */
void gw_loop_set_idle_hook(gw_loop_t *loop, void (*hook)(gw_loop_t *, void *), void *arg);

/** Extra poll timeout provider (c-ares): returns ms until it needs a call, or -1. */
void gw_loop_set_timeout_hook(gw_loop_t *loop, int (*hook)(gw_loop_t *, void *), void *arg);

/** User pointer for the worker owning the loop. */
void gw_loop_set_data(gw_loop_t *loop, void *data);
void *gw_loop_data(const gw_loop_t *loop);

#define gw_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
