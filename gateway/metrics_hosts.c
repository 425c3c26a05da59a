/* Host labels for the requests-by-host counters. See metrics_hosts.h. */
#include "metrics_hosts.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_props.h"

/* Written by the main thread only; read by scrapes on any worker (a name is published before any
 * route carrying its index reaches a worker, and is never changed afterwards). */
static const char *_Atomic *names;
static _Atomic size_t capacity;
static size_t next_free = 1; /* main thread only */

#define DEFAULT_MAX_HOSTS 100

void gw_metrics_hosts_init(const gw_config_t *cfg)
{
    if (names) return; /* sized once per process: the slots' counters are allocated to fit */
    int64_t max_hosts = DEFAULT_MAX_HOSTS;
    gw_node_as_int(gw_route_prop(&cfg->global_route, "metricsMaxHosts"), &max_hosts);
    size_t cap = (size_t)max_hosts + 2; /* "default" and "other" */
    const char *_Atomic *t = calloc(cap, sizeof(*t));
    if (!t) return; /* no host counters: requests are still counted by class */
    atomic_store_explicit(&t[0], "default", memory_order_relaxed);
    atomic_store_explicit(&t[cap - 1], "other", memory_order_relaxed);
    names = t;
    atomic_store_explicit(&capacity, cap, memory_order_release);
}

size_t gw_metrics_hosts_capacity(void)
{
    return atomic_load_explicit(&capacity, memory_order_acquire);
}

const char *gw_metrics_host_name(size_t i)
{
    return i < gw_metrics_hosts_capacity() ? atomic_load_explicit(&names[i], memory_order_acquire) : NULL;
}

/* The label's index: an existing one, a new one, or "other" once the table is full. */
static uint16_t intern(const char *label)
{
    size_t cap = gw_metrics_hosts_capacity();
    if (!cap) return 0;
    for (size_t i = 1; i < next_free; i++)
        if (!strcmp(atomic_load_explicit(&names[i], memory_order_relaxed), label)) return (uint16_t)i;
    char *copy = next_free < cap - 1 ? strdup(label) : NULL;
    if (!copy) return (uint16_t)(cap - 1);
    atomic_store_explicit(&names[next_free], copy, memory_order_release);
    return (uint16_t)next_free++;
}

/* The host's domain as written: "example.com", "*.example.com", or "*" (any, or an ip-only host). */
static uint16_t host_label(const gw_host_t *h)
{
    char buf[512];
    if (!h->domain) return intern("*");
    snprintf(buf, sizeof(buf), "%s%s", h->wildcard ? "*." : "", h->domain);
    return intern(buf);
}

/* A route and its errorConfig re-runs count under the same host. */
static void label_route(gw_route_t *r, uint16_t label)
{
    r->metrics_host = label;
    for (size_t i = 0; i < r->num_error_routes; i++)
        ((gw_route_t *)&r->error_routes[i].route)->metrics_host = label;
}

void gw_metrics_hosts_assign(gw_config_t *cfg)
{
    for (size_t i = 0; i < cfg->num_hosts; i++) {
        gw_host_t *h = &cfg->hosts[i];
        uint16_t label = host_label(h);
        label_route(&h->route, label);
        for (size_t j = 0; j < h->num_locations; j++)
            label_route(&h->locations[j].route, label);
    }
}
