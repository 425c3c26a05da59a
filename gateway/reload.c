/* Process state, config snapshots and reload. See reload.h. */
#include "reload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acme.h"
#include "config_ids.h"
#include "file_cache.h"
#include "health.h"
#include "listeners.h"
#include "log.h"
#include "metrics.h"
#include "metrics_hosts.h"
#include "config_props.h"
#include "module_loader.h"
#include "pool.h"
#include "privileges.h"
#include "tls.h"
#include "upgrade.h"
#include "worker.h"

/* A worker's count of its requests still using an older snapshot. */
typedef struct gw_cfg_hold {
    gw_snapshot_t *snap;
    uint32_t users;
    struct gw_cfg_hold *next;
} gw_cfg_hold_t;

struct gw_process {
    gw_snapshot_t *current;
    gw_snapshot_t *retired;  /* given to the workers' care; freed once refs is 0 */
    uint64_t generation;
    gw_worker_t **workers;
    unsigned nw;
    gw_listen_t *listens;    /* what is open now (copies) */
    size_t num_listens;
    int access_fd;           /* -1 until an access log was configured; kept open until exit */
    bool access_on;
    char *access_path, *error_path; /* the paths open now */
    int old_error_fds[8];    /* error logs replaced by a reload (workers may still write) */
    size_t num_old_error_fds;
    bool handed_over; /* a binary upgrade took the listeners: their socket files are its now */
};

/* ---- worker side ---- */

void gw_worker_attach_cfg(gw_worker_t *w, gw_req_t *req)
{
    req->cfg = w->cfg;
    if (!w->snap) return; /* unit tests: no reload, nothing to count */
    w->cfg_users++;
    req->cfg_held = true;
}

static void snapshot_give_back(gw_snapshot_t *s)
{
    atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release);
}

void gw_worker_detach_cfg(gw_worker_t *w, gw_req_t *req)
{
    req->cfg_held = false;
    if (req->cfg == w->cfg) {
        w->cfg_users--;
        return;
    }
    for (gw_cfg_hold_t **ph = &w->held; *ph; ph = &(*ph)->next) {
        gw_cfg_hold_t *h = *ph;
        if (h->snap->cfg != req->cfg) continue;
        if (--h->users == 0) {
            *ph = h->next;
            snapshot_give_back(h->snap);
            free(h);
            if (!w->held) gw_pools_free_retired(w); /* no request can reach a retired pool now */
        }
        return;
    }
}

void gw_worker_forget_snapshots(gw_worker_t *w)
{
    while (w->held) {
        gw_cfg_hold_t *h = w->held;
        w->held = h->next;
        free(h);
    }
}

typedef struct reload_msg {
    gw_msg_t msg;
    gw_snapshot_t *snap;
    int access_fd;
    uint32_t max_conns;
    gw_listen_t *add;  /* new listeners ... */
    int *add_fds;      /* ... and this worker's socket for each */
    size_t num_add;
    gw_listen_t *del;  /* listeners to close */
    size_t num_del;
} reload_msg_t;

static void msg_free(reload_msg_t *m)
{
    free(m->add);
    free(m->add_fds);
    free(m->del);
    free(m);
}

/* The old snapshot: given back at once when no request uses it, else counted down by requests. */
static void retire_current(gw_worker_t *w)
{
    gw_snapshot_t *old = w->snap;
    if (!old) return;
    if (w->cfg_users == 0) {
        snapshot_give_back(old);
        return;
    }
    gw_cfg_hold_t *h = malloc(sizeof(*h));
    if (!h) { /* cannot count: keep the old config for the rest of the process's life */
        gw_log_error("warn", "worker %u: out of memory: an old configuration is kept", w->id);
        return;
    }
    *h = (gw_cfg_hold_t){old, w->cfg_users, w->held};
    w->held = h;
}

static void adopt_listeners(gw_worker_t *w, reload_msg_t *m)
{
    for (size_t i = 0; i < m->num_del; i++) gw_worker_remove_listener(w, &m->del[i]);
    for (size_t i = 0; i < m->num_add; i++) {
        int rc = gw_worker_add_listener(w, m->add_fds[i], &m->add[i]);
        if (rc != 0) {
            gw_log_error("error", "worker %u: cannot accept on %s: %s", w->id, m->add[i].text, strerror(-rc));
            close(m->add_fds[i]);
        }
    }
}

static void adopt_access_log(gw_worker_t *w, int fd)
{
    if (fd == w->access_fd) return;
    gw_log_flush(w->access_log);
    gw_log_buf_free(w->access_log);
    w->access_log = gw_log_buf_new(fd);
    w->access_fd = w->access_log ? fd : -1;
}

static void on_reload_msg(gw_loop_t *loop, gw_msg_t *msg)
{
    (void)loop;
    reload_msg_t *m = gw_container_of(msg, reload_msg_t, msg);
    gw_worker_t *w = gw_loop_data(loop);
    gw_health_probes_stop(w); /* probes point into the old config, which may be freed once given back */
    retire_current(w);
    w->snap = m->snap;
    w->cfg = m->snap->cfg;
    w->tls = m->snap->tls;
    w->cfg_users = 0;
    w->max_conns = m->max_conns;
    adopt_listeners(w, m);
    adopt_access_log(w, m->access_fd);
    gw_health_probes_start(w); /* the new groups; their servers' states were kept (health.h) */
    gw_pools_retain(w, w->cfg); /* idle connections to removed backends close now */
    if (!w->held) gw_pools_free_retired(w);
    /* cached files are keyed by the directory fds of the old routes: start afresh */
    const gw_limits_t *l = &w->cfg->limits;
    gw_file_cache_t *fc = gw_file_cache_new(l->file_cache_entries, l->file_cache_inline_bytes, l->file_cache_validity_ms);
    if (fc) {
        gw_file_cache_set_encoded_limit(fc, l->file_cache_encoded_bytes);
        gw_file_cache_free(w->file_cache);
        w->file_cache = fc;
    }
    for (size_t i = 0; i < w->cfg->num_modules; i++) {
        const gw_loaded_module_t *mod = &w->cfg->modules[i];
        if (mod->def->worker_init && mod->def->worker_init(mod->state, w->id) != 0)
            gw_log_error("error", "module %s failed to initialise worker %u after the reload", mod->name, w->id);
    }
    msg_free(m);
}

/* ---- process side (main thread) ---- */

static void snapshot_free(gw_snapshot_t *s)
{
    gw_tls_free(s->tls); /* drops the snapshot's reference; open connections keep theirs */
    gw_config_free(s->cfg);
    free(s);
}

static gw_snapshot_t *snapshot_new(gw_process_t *p, gw_config_t *cfg, gw_tls_t *tls)
{
    gw_snapshot_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->cfg = cfg;
    s->tls = tls;
    s->generation = ++p->generation;
    atomic_init(&s->refs, p->nw);
    return s;
}

static unsigned worker_count(const gw_config_t *cfg)
{
    if (cfg->workers) return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static uint32_t per_worker_conns(const gw_config_t *cfg, unsigned nw)
{
    uint32_t n = cfg->limits.max_connections / nw;
    return n ? n : 1;
}

static const char *global_str(const gw_config_t *cfg, const char *name)
{
    const gw_node_t *g = cfg->doc.root ? gw_yaml_map_get(cfg->doc.root, "global") : NULL;
    return gw_node_as_string(gw_yaml_map_get(g, name));
}

static bool same_str(const char *a, const char *b);

/* environmentVariables: set once, before the workers start (setenv is not safe beside them). */
static void set_environment(const gw_config_t *cfg)
{
    const gw_node_t *g = cfg->doc.root ? gw_yaml_map_get(cfg->doc.root, "global") : NULL;
    const gw_node_t *m = gw_yaml_map_get(g, "environmentVariables");
    for (size_t i = 0; m && m->kind == GW_NODE_MAP && i < m->map.count; i++) {
        const char *k = gw_node_as_string(m->map.entries[i].key), *v = gw_node_as_string(m->map.entries[i].value);
        if (k && setenv(k, v ? v : "", 1) != 0)
            gw_log_error("warn", "environmentVariables: cannot set %s: %s", k, strerror(errno));
    }
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The error log of `cfg`: opened (or reopened onto the descriptor in use), or stderr. */
static int switch_error_log(gw_process_t *p, const char *path)
{
    if (same_str(path, p->error_path)) return 0;
    int cur = gw_log_error_fd();
    if (path && cur != 2) {
        int rc = gw_log_reopen(cur, path);
        if (rc < 0) return rc;
    } else if (path) {
        int fd = gw_log_open(path);
        if (fd < 0) return fd;
        gw_log_set_error_fd(fd);
    } else {
        gw_log_set_error_fd(2);
        if (p->num_old_error_fds < sizeof(p->old_error_fds) / sizeof(p->old_error_fds[0]))
            p->old_error_fds[p->num_old_error_fds++] = cur; /* a worker may be writing: closed at exit */
    }
    free(p->error_path);
    p->error_path = dup_or_null(path);
    return 0;
}

/* The access log: opened once, then reopened onto the same descriptor, so workers never see a
 * descriptor closed under them. Returns the descriptor workers write to (-1: none) or -errno. */
static int switch_access_log(gw_process_t *p, const char *path)
{
    if (!path) {
        p->access_on = false;
        return -1;
    }
    if (p->access_fd < 0) {
        p->access_fd = gw_log_open(path);
        if (p->access_fd < 0) {
            int e = p->access_fd;
            p->access_fd = -1;
            return e;
        }
    } else if (!same_str(path, p->access_path)) {
        int rc = gw_log_reopen(p->access_fd, path);
        if (rc < 0) return rc;
    }
    free(p->access_path);
    p->access_path = strdup(path);
    p->access_on = true;
    return p->access_fd;
}

static void close_all(int **fds, size_t n, unsigned nw)
{
    for (size_t i = 0; i < n; i++) {
        for (unsigned k = 0; fds[i] && k < nw; k++)
            if (fds[i][k] >= 0) close(fds[i][k]);
        free(fds[i]);
    }
    free(fds);
}

/* Opens every listener of `cfg`; fds[i][k] is worker k's socket of cfg->listens[i]. */
static int **open_listeners(gw_process_t *p, const gw_config_t *cfg, const bool *skip)
{
    int **fds = calloc(cfg->num_listens ? cfg->num_listens : 1, sizeof(*fds));
    for (size_t i = 0; fds && i < cfg->num_listens; i++) {
        if (skip && skip[i]) continue;
        const gw_listen_t *l = &cfg->listens[i];
        fds[i] = malloc(p->nw * sizeof(int));
        int rc = fds[i] ? gw_listen_open_all(l, p->nw, fds[i]) : -ENOMEM;
        if (rc == 0) continue;
        gw_log_error("error", "cannot listen on %s: %s%s", l->text, strerror(-rc),
                     rc == -EACCES && geteuid() != 0 ? " (a privileged port needs a restart)" : "");
        free(fds[i]);
        fds[i] = NULL;
        close_all(fds, i, p->nw);
        return NULL;
    }
    return fds;
}

static bool keep_listens(gw_process_t *p, const gw_config_t *cfg)
{
    gw_listen_t *copy = malloc((cfg->num_listens ? cfg->num_listens : 1) * sizeof(*copy));
    if (!copy) return false;
    memcpy(copy, cfg->listens, cfg->num_listens * sizeof(*copy));
    free(p->listens);
    p->listens = copy;
    p->num_listens = cfg->num_listens;
    return true;
}

/* Creates and starts the workers, each taking its column of fds (freed here). */
static bool start_workers(gw_process_t *p, gw_config_t *cfg, int **fds, int afd)
{
    int *mine = malloc((cfg->num_listens ? cfg->num_listens : 1) * sizeof(int));
    bool ok = mine != NULL;
    for (unsigned k = 0; ok && k < p->nw; k++) {
        for (size_t i = 0; i < cfg->num_listens; i++) {
            mine[i] = fds[i][k];
            fds[i][k] = -1; /* the worker's now, even if it fails */
        }
        gw_worker_t *w = p->workers[k] = gw_worker_new(k, cfg, mine, cfg->num_listens, afd);
        if (!w) {
            gw_log_error("error", "cannot create worker %u", k);
            ok = false;
            break;
        }
        w->max_conns = per_worker_conns(cfg, p->nw);
        w->tls = p->current->tls;
        w->snap = p->current;
        gw_worker_start(w);
    }
    free(mine);
    close_all(fds, cfg->num_listens, p->nw); /* what no worker took */
    return ok;
}

gw_process_t *gw_process_start(gw_config_t *cfg, gw_tls_t *tls)
{
    gw_process_t *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->access_fd = -1;
    p->nw = worker_count(cfg);
    p->current = snapshot_new(p, cfg, tls);
    p->workers = calloc(p->nw, sizeof(*p->workers));
    gw_metrics_hosts_init(cfg);
    gw_metrics_hosts_assign(cfg);
    gw_metrics_set_generation(p->generation);
    int **fds = NULL;
    if (!p->current || !p->workers || !keep_listens(p, cfg)) goto fail;
    int erc = switch_error_log(p, cfg->error_log_file);
    if (erc < 0) {
        gw_log_error("error", "cannot open error log %s: %s", cfg->error_log_file, strerror(-erc));
        goto fail;
    }
    int afd = switch_access_log(p, cfg->log_file);
    if (cfg->log_file && afd < 0) {
        gw_log_error("error", "cannot open access log %s: %s", cfg->log_file, strerror(-afd));
        goto fail;
    }
    /* before the listeners: a client that connects once they listen finds the limit raised (a
     * test read it between the two), and before the workers size their loops */
    gw_raise_nofile(cfg->limits.max_connections);
    if (!(fds = open_listeners(p, cfg, NULL))) goto fail;
    set_environment(cfg);
    char perr[256];
    if (gw_drop_privileges(global_str(cfg, "user"), global_str(cfg, "group"), perr, sizeof(perr)) != 0) {
        gw_log_error("error", "%s", perr);
        close_all(fds, cfg->num_listens, p->nw);
        goto fail;
    }
    if (!start_workers(p, cfg, fds, afd)) {
        gw_process_stop(p);
        return NULL;
    }
    for (size_t i = 0; i < cfg->num_listens; i++)
        gw_log_error("notice", "listening on %s (%u workers)", cfg->listens[i].text, p->nw);
    return p;
fail:
    if (p->current) {
        snapshot_free(p->current);
    } else {
        gw_tls_free(tls);
        gw_config_free(cfg);
    }
    free(p->workers);
    free(p->listens);
    free(p->access_path);
    free(p->error_path);
    if (p->access_fd >= 0) close(p->access_fd);
    free(p);
    return NULL;
}

static void log_warning(void *ctx, const char *msg)
{
    (void)ctx;
    gw_log_error("warn", "%s", msg);
}

/* Logs each located error of a failed load on its own line. */
static void log_errors(const char *err)
{
    for (const char *line = err; *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        if (len) gw_log_error("error", "reload: %.*s", len, line);
        line += len + (nl ? 1 : 0);
    }
}

/* Two YAML values with the same content (location aside). */
static bool same_node(const gw_node_t *a, const gw_node_t *b)
{
    if (!a || !b) return a == b;
    if (a->kind != b->kind) return false;
    if (a->kind == GW_NODE_SCALAR) return a->scalar.quoted == b->scalar.quoted && !strcmp(a->scalar.text, b->scalar.text);
    if (a->kind == GW_NODE_SEQ) {
        if (a->seq.count != b->seq.count) return false;
        for (size_t i = 0; i < a->seq.count; i++)
            if (!same_node(a->seq.items[i], b->seq.items[i])) return false;
        return true;
    }
    if (a->map.count != b->map.count) return false;
    for (size_t i = 0; i < a->map.count; i++)
        if (!same_node(a->map.entries[i].value, gw_yaml_map_get(b, a->map.entries[i].key->scalar.text))) return false;
    return true;
}

static bool same_global(const gw_config_t *a, const gw_config_t *b, const char *name)
{
    const gw_node_t *ga = a->doc.root ? gw_yaml_map_get(a->doc.root, "global") : NULL;
    const gw_node_t *gb = b->doc.root ? gw_yaml_map_get(b->doc.root, "global") : NULL;
    return same_node(gw_yaml_map_get(ga, name), gw_yaml_map_get(gb, name));
}

/* Settings read once when a worker starts: a reload keeps the running values and says so. */
static void keep_restart_only(const gw_config_t *old, gw_config_t *cfg, unsigned nw)
{
    if (worker_count(cfg) != nw)
        gw_log_error("warn", "reload: workers changed (%u running): takes effect after a restart", nw);
    cfg->workers = old->workers;
    if (cfg->limits.max_head_bytes != old->limits.max_head_bytes || cfg->limits.max_headers != old->limits.max_headers)
        gw_log_error("warn", "reload: maxRequestHeaderBytes/maxRequestHeaders take effect after a restart");
    cfg->limits.max_head_bytes = old->limits.max_head_bytes;
    cfg->limits.max_headers = old->limits.max_headers;
    const gw_dns_config_t *a = &old->dns, *b = &cfg->dns;
    if (!same_str(a->servers, b->servers) || a->min_ttl_ms != b->min_ttl_ms || a->max_ttl_ms != b->max_ttl_ms ||
        a->negative_ttl_ms != b->negative_ttl_ms || a->stale_ms != b->stale_ms || a->timeout_ms != b->timeout_ms ||
        a->tries != b->tries || a->max_entries != b->max_entries)
        gw_log_error("warn", "reload: resolver settings take effect after a restart (the DNS cache is kept)");
    if (!same_str(global_str(old, "user"), global_str(cfg, "user")) ||
        !same_str(global_str(old, "group"), global_str(cfg, "group")))
        gw_log_error("warn", "reload: user/group take effect after a restart");
    if (!same_global(old, cfg, "environmentVariables"))
        gw_log_error("notice", "reload: environmentVariables changed: CGI programs get the new values; the "
                               "gateway's own process environment keeps its start-up values until a restart");
    if (!same_global(old, cfg, "http2Settings") || !same_global(old, cfg, "enableHTTP2"))
        gw_log_error("warn", "reload: http2Settings/enableHTTP2 take effect after a restart for HTTP/2 sessions");
    if (!same_str(old->proxy_ca_file, cfg->proxy_ca_file))
        gw_log_error("warn", "reload: proxyCaFile takes effect after a restart");
    if (!same_global(old, cfg, "metricsMaxHosts"))
        gw_log_error("warn", "reload: metricsMaxHosts takes effect after a restart");
    if (!same_global(old, cfg, "bruteForceMaxClients"))
        gw_log_error("warn", "reload: bruteForceMaxClients takes effect after a restart");
    if (!gw_acme_same_settings(old, cfg))
        gw_log_error("warn", "reload: automatic TLS settings and the host domains it orders for take effect after a "
                             "restart");
}

/* The listener changes of a reload: which new ones to open, which old ones to close. */
typedef struct listen_diff {
    bool *kept;      /* per new listener: already open */
    int **fds;       /* per new listener not kept: one socket per worker */
    gw_listen_t *del;
    size_t num_del, num_add;
} listen_diff_t;

static void diff_free(listen_diff_t *d, size_t n, unsigned nw)
{
    if (d->fds) close_all(d->fds, n, nw);
    free(d->kept);
    free(d->del);
}

static bool diff_listeners(gw_process_t *p, const gw_config_t *cfg, listen_diff_t *d)
{
    memset(d, 0, sizeof(*d));
    d->kept = calloc(cfg->num_listens + 1, sizeof(bool));
    d->del = calloc(p->num_listens + 1, sizeof(gw_listen_t));
    if (!d->kept || !d->del) return false;
    for (size_t i = 0; i < cfg->num_listens; i++) {
        for (size_t j = 0; j < p->num_listens && !d->kept[i]; j++)
            d->kept[i] = gw_listen_same(&cfg->listens[i], &p->listens[j]);
        if (!d->kept[i]) d->num_add++;
    }
    for (size_t j = 0; j < p->num_listens; j++) {
        bool stays = false;
        for (size_t i = 0; i < cfg->num_listens && !stays; i++) stays = gw_listen_same(&cfg->listens[i], &p->listens[j]);
        if (!stays) d->del[d->num_del++] = p->listens[j];
    }
    d->fds = open_listeners(p, cfg, d->kept);
    return d->fds != NULL;
}

static reload_msg_t *make_msg(gw_process_t *p, gw_snapshot_t *s, listen_diff_t *d, unsigned k, int afd)
{
    const gw_config_t *cfg = s->cfg;
    reload_msg_t *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->msg.fn = on_reload_msg;
    m->snap = s;
    m->access_fd = afd;
    m->max_conns = per_worker_conns(cfg, p->nw);
    m->add = calloc(d->num_add + 1, sizeof(gw_listen_t));
    m->add_fds = calloc(d->num_add + 1, sizeof(int));
    m->del = calloc(d->num_del + 1, sizeof(gw_listen_t));
    if (!m->add || !m->add_fds || !m->del) {
        msg_free(m);
        return NULL;
    }
    for (size_t i = 0; i < cfg->num_listens; i++) {
        if (d->kept[i]) continue;
        m->add[m->num_add] = cfg->listens[i];
        m->add_fds[m->num_add++] = d->fds[i][k];
    }
    memcpy(m->del, d->del, d->num_del * sizeof(gw_listen_t));
    m->num_del = d->num_del;
    return m;
}

/* Everything that can fail is done before any worker hears of the new config. */
static gw_config_t *load_checked(gw_process_t *p, gw_tls_t **tls)
{
    static char err[16384];
    const gw_config_t *old = p->current->cfg;
    gw_config_t *cfg = gw_config_load(old->file, err, sizeof(err), log_warning, NULL);
    if (!cfg) {
        log_errors(err);
        return NULL;
    }
    *tls = NULL;
    if (gw_tls_enabled(cfg) && !(*tls = gw_tls_new(cfg, err, sizeof(err)))) {
        log_errors(err);
        gw_config_free(cfg);
        return NULL;
    }
    keep_restart_only(old, cfg, p->nw);
    gw_metrics_hosts_assign(cfg);
    return cfg;
}

/* Sends the new snapshot to every worker and makes it the process's current one. */
static void publish(gw_process_t *p, gw_snapshot_t *s, listen_diff_t *d, reload_msg_t **msgs)
{
    const gw_config_t *cfg = s->cfg;
    for (unsigned k = 0; k < p->nw; k++) gw_loop_post(p->workers[k]->loop, &msgs[k]->msg);
    for (size_t j = 0; j < d->num_del; j++) {
        gw_log_error("notice", "reload: stopped listening on %s", d->del[j].text);
        gw_listen_unlink(&d->del[j]); /* the workers close their descriptors as they adopt */
    }
    for (size_t i = 0; i < cfg->num_listens; i++) {
        if (!d->kept[i]) gw_log_error("notice", "reload: listening on %s", cfg->listens[i].text);
        free(d->fds[i]); /* the descriptors now travel in the messages */
        d->fds[i] = NULL;
    }
    keep_listens(p, cfg);
    p->current->next = p->retired;
    p->retired = p->current;
    p->current = s;
    gw_metrics_set_generation(s->generation);
    gw_metrics_count_reload(true);
    gw_log_error("notice", "reload: configuration generation %llu is in use", (unsigned long long)s->generation);
}

/* The logs of the new config; false (logged) when one cannot be opened. */
static bool switch_logs(gw_process_t *p, const gw_config_t *cfg, int *afd)
{
    int erc = switch_error_log(p, cfg->error_log_file);
    *afd = erc == 0 ? switch_access_log(p, cfg->log_file) : -1;
    if (erc == 0 && (!cfg->log_file || *afd >= 0)) return true;
    gw_log_error("error", "reload: cannot open %s: %s", erc < 0 ? cfg->error_log_file : cfg->log_file,
                 strerror(erc < 0 ? -erc : -*afd));
    return false;
}

void gw_process_reload(gw_process_t *p)
{
    if (strcmp(p->current->cfg->file, "(built-in default)") == 0) {
        gw_log_error("warn", "reload: running the built-in default configuration: nothing to reload");
        return;
    }
    gw_log_error("notice", "reload: loading %s", p->current->cfg->file);
    gw_tls_t *tls = NULL;
    gw_config_t *cfg = load_checked(p, &tls);
    if (!cfg) {
        gw_metrics_count_reload(false);
        gw_log_error("error", "reload: the configuration is not valid: still serving generation %llu",
                     (unsigned long long)p->current->generation);
        return;
    }
    listen_diff_t d;
    size_t num_listens = cfg->num_listens;
    int afd = -1;
    reload_msg_t **msgs = calloc(p->nw, sizeof(*msgs));
    bool have_diff = msgs && diff_listeners(p, cfg, &d);
    gw_snapshot_t *s = have_diff && switch_logs(p, cfg, &afd) ? snapshot_new(p, cfg, tls) : NULL;
    bool ok = s != NULL;
    for (unsigned k = 0; ok && k < p->nw; k++) ok = (msgs[k] = make_msg(p, s, &d, k, afd)) != NULL;
    if (ok) {
        publish(p, s, &d, msgs);
    } else {
        for (unsigned k = 0; msgs && k < p->nw; k++)
            if (msgs[k]) msg_free(msgs[k]);
        if (s) p->generation--;
        free(s); /* cfg and tls are freed below, not through it */
        gw_tls_free(tls);
        gw_config_free(cfg);
        gw_metrics_count_reload(false);
        gw_log_error("error", "reload: failed, still serving generation %llu", (unsigned long long)p->current->generation);
    }
    if (msgs) diff_free(&d, ok ? 0 : num_listens, p->nw); /* d is set up whenever msgs is */
    free(msgs);
}

bool gw_process_collect(gw_process_t *p)
{
    for (gw_snapshot_t **ps = &p->retired; *ps;) {
        gw_snapshot_t *s = *ps;
        if (atomic_load_explicit(&s->refs, memory_order_acquire) != 0) {
            ps = &s->next;
            continue;
        }
        *ps = s->next;
        gw_log_error("info", "configuration generation %llu is no longer used: freed", (unsigned long long)s->generation);
        snapshot_free(s);
    }
    return p->retired != NULL;
}

void gw_process_reopen_logs(gw_process_t *p)
{
    if (p->access_on && p->access_path && gw_log_reopen(p->access_fd, p->access_path) != 0)
        gw_log_error("error", "cannot reopen %s", p->access_path);
    if (p->error_path && gw_log_reopen(gw_log_error_fd(), p->error_path) != 0)
        gw_log_error("error", "cannot reopen %s", p->error_path);
    gw_log_error("notice", "log files reopened");
}

bool gw_process_upgrade(gw_process_t *p)
{
    int64_t ms = 30000;
    gw_node_as_int(gw_route_prop(&p->current->cfg->global_route, "upgradeTimeout"), &ms);
    if (!gw_upgrade_start((uint32_t)ms)) return false;
    p->handed_over = true;
    return true;
}

/*
 * The first step of a stop: every worker closes its listening sockets before any starts draining.
 * A drained connection's client is told to reconnect (Connection: close, GOAWAY); were another
 * worker's socket still open, it would land there and be reset as that socket closes. Bounded: a
 * worker that does not answer within a second drains anyway.
 */
static void stop_listening(gw_process_t *p)
{
    for (unsigned i = 0; i < p->nw; i++)
        if (p->workers[i]) gw_worker_stop_listening(p->workers[i]);
    struct timespec tick = {0, 1000 * 1000};
    for (int waited = 0; waited < 1000; waited++) {
        bool all = true;
        for (unsigned i = 0; i < p->nw && all; i++)
            all = !p->workers[i] || gw_worker_unlistened(p->workers[i]);
        if (all) return;
        nanosleep(&tick, NULL);
    }
}

gw_worker_t *gw_process_first_worker(gw_process_t *p)
{
    return p->workers[0];
}

void gw_process_stop(gw_process_t *p)
{
    stop_listening(p);
    for (unsigned i = 0; i < p->nw; i++)
        if (p->workers[i]) gw_worker_stop(p->workers[i]);
    gw_log_error("notice", "stopping: draining connections");
    for (unsigned i = 0; i < p->nw; i++)
        if (p->workers[i]) gw_worker_join(p->workers[i]);
    for (size_t i = 0; i < p->num_listens && !p->handed_over; i++)
        gw_listen_unlink(&p->listens[i]);
    while (p->retired) {
        gw_snapshot_t *s = p->retired;
        p->retired = s->next;
        snapshot_free(s);
    }
    snapshot_free(p->current);
    for (size_t i = 0; i < p->num_old_error_fds; i++) close(p->old_error_fds[i]);
    if (p->access_fd >= 0) close(p->access_fd);
    free(p->access_path);
    free(p->error_path);
    free(p->listens);
    free(p->workers);
    free(p);
    gw_identity_clear();
    gw_health_cells_clear();
}
