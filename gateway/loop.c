/* Per-worker epoll loop, timer wheel and message queue. See loop.h. */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 8u
#define WHEEL_SLOTS 4096u /* one revolution: about 33 s; longer timers go round again */
#define WHEEL_MASK (WHEEL_SLOTS - 1)
#define MAX_EVENTS 256

struct gw_loop {
    int epfd;
    bool stopping;
    unsigned max_fds;
    uint32_t next_gen;
    gw_io_t **ios; /* fd -> watcher; NULL when unwatched */
    uint64_t now_ms;
    int64_t wall_s;
    uint64_t cur_tick; /* last processed tick */
    gw_timer_t *slots[WHEEL_SLOTS];
    gw_timer_t *due; /* timers being fired; linked so that a callback can cancel or re-arm them */
    uint64_t nonempty[WHEEL_SLOTS / 64];
    void (*idle_hook)(gw_loop_t *, void *);
    void *idle_arg;
    int (*timeout_hook)(gw_loop_t *, void *);
    void *timeout_arg;
    void *data;
    /* message queue: the only state other threads touch */
    pthread_mutex_t mq_lock;
    gw_msg_t *mq_head, **mq_tail;
    gw_io_t mq_io;
};

static void update_clock(gw_loop_t *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    clock_gettime(CLOCK_REALTIME, &ts);
    loop->wall_s = ts.tv_sec;
}

static void on_mq_readable(gw_io_t *io, uint32_t events);

gw_loop_t *gw_loop_new(unsigned max_fds)
{
    gw_loop_t *loop = calloc(1, sizeof(*loop));
    if (!loop) return NULL;
    loop->max_fds = max_fds;
    loop->ios = calloc(max_fds, sizeof(*loop->ios));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!loop->ios || loop->epfd < 0 || efd < 0) goto fail;
    pthread_mutex_init(&loop->mq_lock, NULL);
    loop->mq_tail = &loop->mq_head;
    update_clock(loop);
    loop->cur_tick = loop->now_ms / TICK_MS;
    if (gw_io_start(loop, &loop->mq_io, efd, EPOLLIN, on_mq_readable) != 0) goto fail;
    return loop;
fail:
    if (efd >= 0) close(efd);
    if (loop->epfd >= 0) close(loop->epfd);
    free(loop->ios);
    free(loop);
    return NULL;
}

void gw_loop_free(gw_loop_t *loop)
{
    if (!loop) return;
    int efd = loop->mq_io.fd;
    gw_io_stop(&loop->mq_io);
    close(efd);
    close(loop->epfd);
    pthread_mutex_destroy(&loop->mq_lock);
    free(loop->ios);
    free(loop);
}

uint64_t gw_loop_now(const gw_loop_t *loop)
{
    return loop->now_ms;
}

int64_t gw_loop_wall(const gw_loop_t *loop)
{
    return loop->wall_s;
}

void gw_loop_set_data(gw_loop_t *loop, void *data)
{
    loop->data = data;
}

void *gw_loop_data(const gw_loop_t *loop)
{
    return loop->data;
}

void gw_loop_set_idle_hook(gw_loop_t *loop, void (*hook)(gw_loop_t *, void *), void *arg)
{
    loop->idle_hook = hook;
    loop->idle_arg = arg;
}

void gw_loop_set_timeout_hook(gw_loop_t *loop, int (*hook)(gw_loop_t *, void *), void *arg)
{
    loop->timeout_hook = hook;
    loop->timeout_arg = arg;
}

/* ---- fd watchers ---- */

static uint64_t io_key(const gw_io_t *io)
{
    return ((uint64_t)io->gen << 32) | (uint32_t)io->fd;
}

int gw_io_start_lazy(gw_loop_t *loop, gw_io_t *io, int fd, uint32_t events, gw_io_cb cb)
{
    if (fd < 0 || (unsigned)fd >= loop->max_fds) return -EMFILE;
    io->fd = fd;
    io->gen = ++loop->next_gen;
    io->events = events;
    io->registered = false;
    io->cb = cb;
    io->loop = loop;
    loop->ios[fd] = io;
    return 0;
}

int gw_io_start(gw_loop_t *loop, gw_io_t *io, int fd, uint32_t events, gw_io_cb cb)
{
    int rc = gw_io_start_lazy(loop, io, fd, events, cb);
    if (rc == 0) rc = gw_io_arm(io);
    if (rc != 0 && io->loop) {
        loop->ios[fd] = NULL;
        io->loop = NULL;
    }
    return rc;
}

int gw_io_arm(gw_io_t *io)
{
    if (io->registered) return 0;
    struct epoll_event ev = {.events = io->events, .data.u64 = io_key(io)};
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) != 0) return -errno;
    io->registered = true;
    return 0;
}

int gw_io_modify(gw_io_t *io, uint32_t events)
{
    if (!io->registered) {
        io->events = events;
        return gw_io_arm(io);
    }
    if (io->events == events) return 0;
    struct epoll_event ev = {.events = events, .data.u64 = io_key(io)};
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) != 0) return -errno;
    io->events = events;
    return 0;
}

void gw_io_stop(gw_io_t *io)
{
    gw_loop_t *loop = io->loop;
    if (!loop || io->fd < 0) return;
    if (io->registered) epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->registered = false;
    if (loop->ios[io->fd] == io) loop->ios[io->fd] = NULL;
    io->loop = NULL;
}

void gw_io_close(gw_io_t *io)
{
    gw_loop_t *loop = io->loop;
    if (loop && io->fd >= 0 && loop->ios[io->fd] == io) loop->ios[io->fd] = NULL;
    io->loop = NULL;
    if (io->fd >= 0) close(io->fd);
}

static void dispatch(gw_loop_t *loop, const struct epoll_event *ev)
{
    uint32_t fd = (uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if (fd >= loop->max_fds) return;
    gw_io_t *io = loop->ios[fd];
    /* the fd may have been closed and reused earlier in this batch: generation tells */
    if (!io || io->gen != gen) return;
    io->cb(io, ev->events);
}

/* ---- timer wheel ---- */

static void slot_mark(gw_loop_t *loop, unsigned s, bool on)
{
    uint64_t bit = 1ull << (s & 63);
    if (on)
        loop->nonempty[s >> 6] |= bit;
    else
        loop->nonempty[s >> 6] &= ~bit;
}

static void timer_file(gw_loop_t *loop, gw_timer_t *t)
{
    uint64_t tick = (t->expire_ms + TICK_MS - 1) / TICK_MS;
    if (tick <= loop->cur_tick) tick = loop->cur_tick + 1;
    unsigned s = (unsigned)(tick & WHEEL_MASK);
    t->slot_ms = tick * TICK_MS;
    t->next = loop->slots[s];
    if (t->next) t->next->pprev = &t->next;
    t->pprev = &loop->slots[s];
    loop->slots[s] = t;
    slot_mark(loop, s, true);
}

static void timer_unlink(gw_timer_t *t)
{
    if (t->next) t->next->pprev = t->pprev;
    *t->pprev = t->next;
    t->next = NULL;
    t->pprev = NULL;
}

void gw_timer_init(gw_timer_t *t, gw_timer_cb cb)
{
    t->next = NULL;
    t->pprev = NULL;
    t->expire_ms = 0;
    t->slot_ms = 0;
    t->cb = cb;
}

void gw_timer_set(gw_loop_t *loop, gw_timer_t *t, uint64_t after_ms)
{
    uint64_t expire = loop->now_ms + after_ms;
    if (t->pprev) {
        /* later deadline: just record it, the wheel re-files the node when it reaches it */
        if (expire >= t->slot_ms) {
            t->expire_ms = expire;
            return;
        }
        timer_unlink(t);
    }
    t->expire_ms = expire;
    timer_file(loop, t);
}

void gw_timer_cancel(gw_timer_t *t)
{
    if (!t->pprev) return;
    timer_unlink(t); /* an emptied slot's bit is cleared when the wheel next sweeps it */
}

/* Moves a timer to the due list; slot_ms = UINT64_MAX marks it so that gw_timer_set re-files it. */
static void move_to_due(gw_loop_t *loop, gw_timer_t *t)
{
    timer_unlink(t);
    t->slot_ms = UINT64_MAX;
    t->next = loop->due;
    if (t->next) t->next->pprev = &t->next;
    t->pprev = &loop->due;
    loop->due = t;
}

static void sweep_slot(gw_loop_t *loop, unsigned s, uint64_t now_tick)
{
    gw_timer_t *t = loop->slots[s];
    while (t) {
        gw_timer_t *next = t->next;
        if (t->slot_ms / TICK_MS <= now_tick) {
            if (t->expire_ms > loop->now_ms) {
                timer_unlink(t);
                timer_file(loop, t); /* moved later meanwhile: lazy re-arm */
            } else {
                move_to_due(loop, t);
            }
        }
        t = next;
    }
    if (!loop->slots[s]) slot_mark(loop, s, false);
    /* each due timer is unlinked before its callback: callbacks may cancel or set any timer */
    while (loop->due) {
        gw_timer_t *fire = loop->due;
        timer_unlink(fire);
        fire->cb(fire);
    }
}

static void run_timers(gw_loop_t *loop)
{
    uint64_t now_tick = loop->now_ms / TICK_MS;
    uint64_t steps = now_tick - loop->cur_tick;
    if (steps > WHEEL_SLOTS) steps = WHEEL_SLOTS;
    uint64_t first = now_tick - steps + 1;
    loop->cur_tick = now_tick;
    for (uint64_t tick = first; tick <= now_tick; tick++) {
        unsigned s = (unsigned)(tick & WHEEL_MASK);
        if (loop->nonempty[s >> 6] & (1ull << (s & 63))) sweep_slot(loop, s, now_tick);
    }
}

/* Milliseconds until the next non-empty slot, or -1 when the wheel is empty. */
static int next_timer_timeout(const gw_loop_t *loop)
{
    for (unsigned i = 1; i <= WHEEL_SLOTS; i++) {
        unsigned s = (unsigned)((loop->cur_tick + i) & WHEEL_MASK);
        uint64_t word = loop->nonempty[s >> 6];
        if (!word) { /* skip the rest of an empty 64-slot word quickly */
            unsigned skip = 63 - (s & 63);
            i += skip;
            continue;
        }
        if (word & (1ull << (s & 63))) {
            uint64_t at = (loop->cur_tick + i) * TICK_MS;
            return at > loop->now_ms ? (int)(at - loop->now_ms) : 0;
        }
    }
    return -1;
}

/* ---- messages ---- */

void gw_loop_post(gw_loop_t *loop, gw_msg_t *msg)
{
    msg->next = NULL;
    pthread_mutex_lock(&loop->mq_lock);
    bool was_empty = loop->mq_head == NULL;
    *loop->mq_tail = msg;
    loop->mq_tail = &msg->next;
    pthread_mutex_unlock(&loop->mq_lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t r = write(loop->mq_io.fd, &one, sizeof(one));
        (void)r; /* a full eventfd counter still wakes the reader */
    }
}

static void on_mq_readable(gw_io_t *io, uint32_t events)
{
    gw_loop_t *loop = io->loop;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&loop->mq_lock);
    gw_msg_t *m = loop->mq_head;
    loop->mq_head = NULL;
    loop->mq_tail = &loop->mq_head;
    pthread_mutex_unlock(&loop->mq_lock);
    while (m) {
        gw_msg_t *next = m->next;
        m->fn(loop, m);
        m = next;
    }
}

/* ---- the loop ---- */

static int poll_timeout(gw_loop_t *loop)
{
    int t = next_timer_timeout(loop);
    if (loop->timeout_hook) {
        int h = loop->timeout_hook(loop, loop->timeout_arg);
        if (h >= 0 && (t < 0 || h < t)) t = h;
    }
    return t;
}

static void iterate(gw_loop_t *loop, int timeout)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(loop->epfd, events, MAX_EVENTS, timeout);
    update_clock(loop);
    for (int i = 0; i < n; i++)
        dispatch(loop, &events[i]);
    run_timers(loop);
    if (loop->idle_hook) loop->idle_hook(loop, loop->idle_arg);
}

void gw_loop_run(gw_loop_t *loop)
{
    loop->stopping = false;
    while (!loop->stopping)
        iterate(loop, poll_timeout(loop));
}

void gw_loop_run_once(gw_loop_t *loop, int max_wait_ms)
{
    int t = poll_timeout(loop);
    iterate(loop, t < 0 || t > max_wait_ms ? max_wait_ms : t);
}

void gw_loop_stop(gw_loop_t *loop)
{
    loop->stopping = true;
}
