/* Process-wide health cells and their gauges. See health.h. */
#include "health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_ids.h"
#include "metrics.h"

/* Cells indexed by identity id, in segments that never move: workers keep pointers to cells while
 * the main thread adds cells for a new config, and a cell outlives every config that named it. */
#define SEG_BITS 8
#define SEG_CELLS (1u << SEG_BITS)
#define MAX_SEGS 4096 /* ids up to 2^20; identities are a few per backend, never reused */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static gw_health_cell_t *segments[MAX_SEGS];

/* Config loads only (main thread), hence the plain mutex. */
static gw_health_cell_t *cell_of(uint32_t id)
{
    if ((id >> SEG_BITS) >= MAX_SEGS) return NULL;
    pthread_mutex_lock(&lock);
    gw_health_cell_t **seg = &segments[id >> SEG_BITS];
    if (!*seg) *seg = calloc(SEG_CELLS, sizeof(**seg));
    gw_health_cell_t *c = *seg ? &(*seg)[id & (SEG_CELLS - 1)] : NULL;
    pthread_mutex_unlock(&lock);
    return c;
}

bool gw_health_attach(gw_target_list_t *g, gw_arena_t *arena)
{
    g->health = gw_arena_alloc(arena, (g->count ? g->count : 1) * sizeof(*g->health));
    if (!g->health) return false;
    for (size_t i = 0; i < g->count; i++) {
        /* the server's state in this group: another group may probe another path of it */
        const gw_target_t *t = g->items[i];
        char *key = gw_arena_printf(arena, "h%s\n%c%s", g->name, t->insecure ? '!' : ' ', t->url);
        g->health[i] = key ? cell_of(gw_identity_of(key, strlen(key))) : NULL;
        if (!g->health[i]) return false;
    }
    return true;
}

void gw_health_cells_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_SEGS; i++) {
        free(segments[i]);
        segments[i] = NULL;
    }
    pthread_mutex_unlock(&lock);
}

/* ---- gauges ---- */

/* A group name as a label value: backslash, double quote and newline escaped. */
static void put_label(gw_metrics_out_t *o, const char *name)
{
    for (const char *s = name; *s; s++) {
        if (*s == '\\' || *s == '"')
            gw_metrics_put(o, "\\%c", *s);
        else if (*s == '\n')
            gw_metrics_put(o, "\\n");
        else
            gw_metrics_put(o, "%c", *s);
    }
}

static size_t healthy_count(const gw_target_list_t *g)
{
    size_t up = 0;
    for (size_t i = 0; i < g->count; i++)
        up += !gw_health_down(g->health[i]);
    return up;
}

static void put_family(gw_metrics_out_t *o, const gw_config_t *cfg, const char *name, const char *help,
                       bool healthy)
{
    gw_metrics_put(o, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
    for (size_t i = 0; i < cfg->num_groups; i++) {
        const gw_target_list_t *g = &cfg->groups[i];
        if (!g->health_check || !g->health) continue;
        gw_metrics_put(o, "%s{group=\"", name);
        put_label(o, g->name);
        gw_metrics_put(o, "\"} %zu\n", healthy ? healthy_count(g) : g->count);
    }
}

bool gw_health_render_metrics(const gw_config_t *cfg, char *buf, size_t len, size_t *used)
{
    bool any = false;
    for (size_t i = 0; i < cfg->num_groups; i++)
        any |= cfg->groups[i].health_check != NULL;
    if (!any) return true;
    gw_metrics_out_t o = {buf, len, *used, false};
    put_family(&o, cfg, "gateway_upstream_servers", "Servers of each upstream group with a healthCheck.",
               false);
    put_family(&o, cfg, "gateway_upstream_healthy_servers",
               "Servers of each upstream group with a healthCheck that pass their probes.", true);
    *used = o.used;
    return !o.full;
}
