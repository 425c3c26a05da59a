/*
 * gateway: command line, config check and signals. The process (listeners, workers, config
 * snapshots and reload) is in reload.c; once the workers run, the main thread only handles signals.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acme.h"
#include "acme_store.h"
#include "admin.h"
#include "config.h"
#include "config_props.h"
#include "explain.h"
#include "log.h"
#include "reload.h"
#include "tls.h"
#include "upgrade.h"
#include "worker.h"

#ifndef GW_DATADIR
#define GW_DATADIR "/usr/local/share/gateway"
#endif

/* Used when neither -c, ./gateway.yaml nor /etc/gateway/gateway.yaml exists. */
static const char default_config[] = "global:\n"
                                     "  port: 8080\n"
                                     "  wwwroot: \"" GW_DATADIR "/www\"\n"
                                     "  loadModules: [example]\n";

typedef struct options {
    const char *config;
    bool test;
} options_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: gateway [-c FILE] [-t] [-v] [--help]\n"
               "  -c FILE   configuration file (default: ./gateway.yaml, then /etc/gateway/gateway.yaml,\n"
               "            then a built-in demo site on port 8080)\n"
               "  -t        check the configuration and exit (non-zero with located errors)\n"
               "  -v        print the version and the library versions and exit (also --version)\n"
               "  --help    this text and the list of configuration properties\n"
               "signals: HUP reloads the configuration (a bad file keeps the running one), USR1 reopens\n"
               "  the log files, USR2 upgrades: starts the binary again with the listening sockets and\n"
               "  stops gracefully once it serves, TERM/INT/QUIT stop gracefully\n"
               "environment: FERRON_* and GATEWAY_* overrides of global properties (GATEWAY_ wins), e.g.\n"
               "  GATEWAY_PORT, GATEWAY_LOG_FILE_PATH, GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS\n");
    gw_explain_usage(f);
}

/* One line per property: name, scope, the module it needs in loadModules ("-": none), type with its
 * range, help, default. scripts/config-reference.py builds the configuration reference from it. */
static void print_property(const gw_prop_def_t *d)
{
    char scope = d->scopes == GW_SCOPE_GLOBAL     ? 'G'
                 : d->scopes == GW_SCOPE_ANY      ? 'A'
                 : d->scopes == GW_SCOPE_HOST     ? 'H'
                 : d->scopes == GW_SCOPE_LOCATION ? 'L'
                 : d->scopes == GW_SCOPE_UPSTREAM ? 'U'
                                                  : 'E';
    char type[64];
    bool ranged = (d->type == GW_PT_INT || d->type == GW_PT_INT_OR_NULL) && (d->min || d->max);
    if (ranged)
        snprintf(type, sizeof(type), "%s:%lld..%lld", gw_prop_type_name(d->type), (long long)d->min,
                 (long long)d->max);
    else
        snprintf(type, sizeof(type), "%s", gw_prop_type_name(d->type));
    printf("  %-36s %c  %-7s %-22s %s%s%s%s%s\n", d->name, scope, d->module ? d->module : "-", type, d->help,
           d->implemented ? "" : " (not supported yet)", d->def ? " (default " : "", d->def ? d->def : "",
           d->def ? ")" : "");
}

static void print_properties(void)
{
    printf("\nconfiguration properties: name, scope (G global only, A any level, H host, L location,\n"
           "E errorConfig entry, U in a group of upstreams), module that must be in loadModules (-: none),\n"
           "type, meaning (default):\n");
    for (size_t i = 0; i < gw_prop_count; i++)
        print_property(&gw_props_registry[i]);
}

static int parse_args(int argc, char **argv, options_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            o->config = argv[++i];
        } else if (!strcmp(argv[i], "-t")) {
            o->test = true;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--version")) {
            gw_admin_print_version(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--explain")) {
            return gw_explain_main(argc - i - 1, argv + i + 1);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            print_properties();
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

static void warn_to_stderr(void *ctx, const char *msg)
{
    (void)ctx;
    gw_log_error("warn", "%s", msg);
}

static gw_config_t *load_config(const options_t *o, char *err, size_t errlen)
{
    const char *path = o->config;
    if (!path && access("gateway.yaml", F_OK) == 0) path = "gateway.yaml";
    if (!path && access("/etc/gateway/gateway.yaml", F_OK) == 0) path = "/etc/gateway/gateway.yaml";
    if (path) return gw_config_load(path, err, errlen, warn_to_stderr, NULL);
    return gw_config_load_string("(built-in default)", default_config, err, errlen, warn_to_stderr, NULL);
}

/* Blocks until a stop signal, or an upgrade whose new process serves; reloads, reopens logs and
 * frees retired configs meanwhile. */
static void wait_for_signals(gw_process_t *p)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&set, sigs[i]);
    bool retired = false;
    for (;;) {
        /* while an old config is still in use, look every 100 ms whether the workers gave it back */
        struct timespec tick = {0, 100 * 1000 * 1000};
        int sig = retired ? sigtimedwait(&set, NULL, &tick) : sigwaitinfo(&set, NULL);
        if (sig == SIGUSR1)
            gw_process_reopen_logs(p);
        else if (sig == SIGHUP)
            gw_process_reload(p);
        else if (sig == SIGUSR2 && gw_process_upgrade(p))
            return;
        else if (sig > 0 && sig != SIGUSR2)
            return;
        retired = gw_process_collect(p);
    }
}

static int run(gw_config_t *cfg, gw_tls_t *tls)
{
    gw_upgrade_inherit(); /* started by an upgrade: the listening sockets come from the old process */
    gw_process_t *p = gw_process_start(cfg, tls);
    if (!p) return 1;
    gw_upgrade_serving();
    /* after the listeners and the privilege drop: the ACME cache is written as the serving user */
    gw_acme_t *acme = gw_acme_start(cfg, gw_process_first_worker(p));
    wait_for_signals(p);
    gw_acme_stop(acme); /* interrupts a request to the CA in progress */
    gw_process_stop(p); /* logs when the drain begins */
    gw_acme_store_free(); /* after the workers: their handshakes held the certificates */
    gw_log_error("notice", "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    gw_upgrade_remember_self(argv);
    /* workers inherit this mask; only the main thread takes signals, synchronously */
    sigset_t set;
    sigfillset(&set);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    static char err[8192];
    gw_config_t *cfg = load_config(&o, err, sizeof(err));
    if (!cfg) {
        size_t elen = strlen(err);
        fprintf(stderr, "%s%s", err, elen && err[elen - 1] != '\n' ? "\n" : ""); /* one error per line */
        if (o.test) fprintf(stderr, "configuration test failed\n");
        return 1;
    }
    gw_tls_t *tls = NULL;
    if (gw_tls_enabled(cfg) && !(tls = gw_tls_new(cfg, err, sizeof(err)))) {
        fprintf(stderr, "%s\n", err);
        if (o.test) fprintf(stderr, "configuration test failed\n");
        gw_config_free(cfg);
        return 1;
    }
    if (o.test) {
        printf("configuration %s test is successful\n", cfg->file);
        gw_tls_free(tls);
        gw_config_free(cfg);
        return 0;
    }
    return run(cfg, tls); /* the process owns cfg and tls from here */
}
