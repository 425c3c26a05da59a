/* Per-worker (thread-local) policy state. See state.h. */
#include "state.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t (*gw_policy_clock)(void) = monotonic_ms;

typedef struct thread_state {
    void *obj[GW_SLOT_COUNT];
    void (*dtor[GW_SLOT_COUNT])(void *);
    int registered;
} thread_state_t;

static _Thread_local thread_state_t tls;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void release(thread_state_t *st)
{
    for (unsigned i = 0; i < GW_SLOT_COUNT; i++) {
        if (st->obj[i]) (st->dtor[i] ? st->dtor[i] : free)(st->obj[i]);
        st->obj[i] = NULL;
    }
}

static void on_thread_exit(void *p)
{
    release(p);
}

static void make_key(void)
{
    pthread_key_create(&exit_key, on_thread_exit);
}

void *gw_policy_slot(unsigned slot, size_t size, void *(*make)(size_t), void (*dtor)(void *))
{
    if (tls.obj[slot]) return tls.obj[slot];
    if (!tls.registered) {
        pthread_once(&exit_once, make_key);
        pthread_setspecific(exit_key, &tls);
        tls.registered = 1;
    }
    tls.obj[slot] = make ? make(size) : calloc(1, size);
    tls.dtor[slot] = dtor;
    return tls.obj[slot];
}

void gw_policy_thread_release(void)
{
    release(&tls);
}
