/*
 * gateway: command line, config loading, listening sockets, worker threads and signals.
 * The main thread owns the listeners and only handles signals once the workers run.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "config_props.h"
#include "log.h"
#include "tls.h"
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
               "  -v        print the version and exit\n"
               "  --help    this text and the list of configuration properties\n");
}

static void print_properties(void)
{
    printf("\nconfiguration properties (scope: G global only, A any level, H host, L location):\n");
    for (size_t i = 0; i < gw_prop_count; i++) {
        const gw_prop_def_t *d = &gw_props_registry[i];
        char scope = d->scopes == GW_SCOPE_GLOBAL ? 'G' : d->scopes == GW_SCOPE_ANY ? 'A'
                     : d->scopes == GW_SCOPE_HOST ? 'H' : d->scopes == GW_SCOPE_LOCATION ? 'L' : 'E';
        printf("  %-36s %c  %s%s%s%s\n", d->name, scope, d->help, d->def ? " (default " : "", d->def ? d->def : "",
               d->def ? ")" : "");
    }
}

static int parse_args(int argc, char **argv, options_t *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            o->config = argv[++i];
        } else if (!strcmp(argv[i], "-t")) {
            o->test = true;
        } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--version")) {
            printf("gateway %s (nghttp2, BoringSSL, libyaml, c-ares)\n", GW_VERSION);
            return 0;
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

static int open_listener(const gw_listen_t *l)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1, zero = 0, defer = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)); /* [::] takes IPv4 too */
    if (bind(fd, (const struct sockaddr *)&l->addr, sizeof(l->addr)) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* accepted sockets inherit it */
    /* wake us only when the request bytes are there, so accept is followed by a useful read */
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
    return fd;
}

/* Listening sockets: one SO_REUSEPORT socket per listen address per worker. */
static int *open_listeners(const gw_config_t *cfg, unsigned workers)
{
    size_t n = cfg->num_listens * workers;
    int *fds = calloc(n ? n : 1, sizeof(int));
    for (size_t i = 0; fds && i < n; i++) {
        const gw_listen_t *l = &cfg->listens[i % cfg->num_listens];
        fds[i] = open_listener(l);
        if (fds[i] < 0) {
            gw_log_error("error", "cannot listen on %s: %s", l->text, strerror(-fds[i]));
            while (i-- > 0) close(fds[i]);
            free(fds);
            return NULL;
        }
    }
    return fds;
}

static unsigned worker_count(const gw_config_t *cfg)
{
    if (cfg->workers) return cfg->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static int open_logs(const gw_config_t *cfg, int *access_fd)
{
    *access_fd = -1;
    if (cfg->error_log_file) {
        int fd = gw_log_open(cfg->error_log_file);
        if (fd < 0) {
            gw_log_error("error", "cannot open error log %s: %s", cfg->error_log_file, strerror(-fd));
            return -1;
        }
        gw_log_set_error_fd(fd);
    }
    if (cfg->log_file) {
        *access_fd = gw_log_open(cfg->log_file);
        if (*access_fd < 0) {
            gw_log_error("error", "cannot open access log %s: %s", cfg->log_file, strerror(-*access_fd));
            return -1;
        }
    }
    return 0;
}

static void reopen_logs(const gw_config_t *cfg, int access_fd)
{
    if (cfg->log_file && access_fd >= 0 && gw_log_reopen(access_fd, cfg->log_file) != 0)
        gw_log_error("error", "cannot reopen %s", cfg->log_file);
    if (cfg->error_log_file && gw_log_reopen(gw_log_error_fd(), cfg->error_log_file) != 0)
        gw_log_error("error", "cannot reopen %s", cfg->error_log_file);
    gw_log_error("notice", "log files reopened");
}

/* Blocks until a stop signal; handles log reopening meanwhile. */
static void wait_for_signals(const gw_config_t *cfg, int access_fd)
{
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&set, sigs[i]);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGUSR1)
            reopen_logs(cfg, access_fd);
        else if (sig == SIGHUP)
            gw_log_error("warn", "SIGHUP: configuration reload is not supported by this build yet");
        else if (sig > 0)
            return;
    }
}

static int run(gw_config_t *cfg, gw_tls_t *tls)
{
    int access_fd;
    if (open_logs(cfg, &access_fd) != 0) return 1;
    unsigned nw = worker_count(cfg);
    int *fds = open_listeners(cfg, nw);
    if (!fds) return 1;
    gw_worker_t **workers = calloc(nw, sizeof(*workers));
    for (unsigned i = 0; workers && i < nw; i++) {
        workers[i] = gw_worker_new(i, cfg, fds + i * cfg->num_listens, cfg->num_listens, access_fd);
        if (!workers[i]) {
            gw_log_error("error", "cannot create worker %u", i);
            return 1;
        }
        workers[i]->max_conns = cfg->limits.max_connections / nw ? cfg->limits.max_connections / nw : 1;
        workers[i]->tls = tls;
        gw_worker_start(workers[i]);
    }
    for (size_t i = 0; i < cfg->num_listens; i++)
        gw_log_error("notice", "listening on %s (%u workers)", cfg->listens[i].text, nw);
    wait_for_signals(cfg, access_fd);
    gw_log_error("notice", "stopping: draining connections");
    for (unsigned i = 0; i < nw; i++) gw_worker_stop(workers[i]);
    for (unsigned i = 0; i < nw; i++) gw_worker_join(workers[i]);
    for (size_t i = 0; i < cfg->num_listens * nw; i++) close(fds[i]);
    free(fds);
    free(workers);
    if (access_fd >= 0) close(access_fd);
    gw_log_error("notice", "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    options_t o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
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
    rc = run(cfg, tls);
    gw_tls_free(tls);
    gw_config_free(cfg);
    return rc;
}
