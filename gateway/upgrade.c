/* Binary upgrade by descriptor inheritance. See upgrade.h. */
#include "upgrade.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define ENV_FDS "GATEWAY_UPGRADE_FDS"
#define ENV_READY "GATEWAY_UPGRADE_READY_FD"
#define MAX_FDS 4096

extern char **environ;

static char self_path[PATH_MAX];
static char **self_argv;

/* New process: the sockets handed over, -1 once taken or closed. */
static int inherited[MAX_FDS];
static size_t num_inherited;
static int ready_fd = -1;

void gw_upgrade_remember_self(char **argv)
{
    /* now, while the path still names this binary's file: an upgrade replaces it */
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    self_path[n > 0 ? n : 0] = '\0';
    self_argv = argv;
}

/* ---- the new process ---- */

static bool is_listening(int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

void gw_upgrade_inherit(void)
{
    const char *fds = getenv(ENV_FDS), *ready = getenv(ENV_READY);
    for (const char *p = fds; p && *p && num_inherited < MAX_FDS;) {
        char *end;
        long fd = strtol(p, &end, 10);
        if (end == p) break;
        /* a descriptor that is not a listening socket was never ours to take */
        if (fd > 2 && fd < INT_MAX && is_listening((int)fd)) {
            fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* not for CGI programs */
            inherited[num_inherited++] = (int)fd;
        }
        p = *end == ',' ? end + 1 : end;
    }
    struct stat st;
    if (ready && atoi(ready) > 2 && fstat(atoi(ready), &st) == 0 && S_ISFIFO(st.st_mode)) {
        ready_fd = atoi(ready); /* only ever the pipe an upgrading gateway made */
        fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
    }
    unsetenv(ENV_FDS);
    unsetenv(ENV_READY);
    if (num_inherited) gw_log_error("notice", "upgrade: %zu listening sockets handed over", num_inherited);
}

static bool bound_to(int fd, const gw_listen_t *l)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return false;
    if (l->unix_path[0])
        return ss.ss_family == AF_UNIX && !strcmp(((struct sockaddr_un *)&ss)->sun_path, l->unix_path);
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    return ss.ss_family == AF_INET6 && a->sin6_port == l->addr.sin6_port &&
           !memcmp(&a->sin6_addr, &l->addr.sin6_addr, sizeof(a->sin6_addr));
}

int gw_upgrade_take(const gw_listen_t *l)
{
    for (size_t i = 0; i < num_inherited; i++) {
        int fd = inherited[i];
        if (fd >= 0 && bound_to(fd, l)) {
            inherited[i] = -1;
            return fd;
        }
    }
    return -1;
}

void gw_upgrade_serving(void)
{
    for (size_t i = 0; i < num_inherited; i++)
        if (inherited[i] >= 0) close(inherited[i]);
    num_inherited = 0;
    if (ready_fd < 0) return;
    ssize_t w = write(ready_fd, "1", 1);
    (void)w; /* the old process sees EOF instead and keeps serving */
    close(ready_fd);
    ready_fd = -1;
}

/* ---- the old process ---- */

/* The process's listening sockets (only the workers' listeners listen); their count, 0 if none. */
static size_t listening_fds(int *fds, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d) && is_listening(fd)) fds[n++] = fd;
    }
    closedir(d);
    return n;
}

/* environ without our two variables, plus their new values; NULL without memory. */
static char **child_env(char *fds_var, char *ready_var)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof(*env));
    if (!env) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ENV_FDS "=", sizeof(ENV_FDS)) &&
            strncmp(environ[i], ENV_READY "=", sizeof(ENV_READY)))
            env[k++] = environ[i];
    env[k++] = fds_var;
    env[k++] = ready_var;
    return env;
}

/* Forks and execs the binary with `fds` and the pipe's write end kept open; the child's pid or -1. */
static pid_t spawn(const int *fds, size_t n, int ready_w, char **env)
{
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* the child of a threaded process: only async-signal-safe calls until exec */
    for (size_t i = 0; i < n; i++)
        fcntl(fds[i], F_SETFD, 0);
    fcntl(ready_w, F_SETFD, 0);
    execve(self_path, self_argv, env);
    _exit(127);
}

typedef enum { NEW_SERVES, NEW_EXITED, NEW_SILENT } new_state_t;

/* Waits for the new process's byte; EOF first means it is exiting (its descriptors are closed). */
static new_state_t wait_ready(int ready_r, uint32_t timeout_ms)
{
    struct pollfd pfd = {ready_r, POLLIN, 0};
    int rc;
    do
        rc = poll(&pfd, 1, (int)timeout_ms);
    while (rc < 0 && errno == EINTR);
    if (rc <= 0) return NEW_SILENT;
    char b;
    return read(ready_r, &b, 1) == 1 ? NEW_SERVES : NEW_EXITED;
}

/* A new process that failed or stayed silent: gone, and reaped. */
static void reap_failed(pid_t pid, new_state_t state)
{
    int status = 0;
    if (state == NEW_SILENT) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        gw_log_error("error",
                     "upgrade: the new process did not serve within upgradeTimeout: killed; still serving");
        return;
    }
    waitpid(pid, &status, 0); /* it closed its end of the pipe on its way out */
    gw_log_error("error", "upgrade: the new process exited (%s %d) before serving; still serving",
                 WIFEXITED(status) ? "status" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

static bool launch(const int *fds, size_t n, uint32_t timeout_ms)
{
    static char fds_var[sizeof(ENV_FDS) + MAX_FDS * 12], ready_var[sizeof(ENV_READY) + 16];
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return false;
    size_t used = (size_t)snprintf(fds_var, sizeof(fds_var), ENV_FDS "=");
    for (size_t i = 0; i < n && used < sizeof(fds_var); i++)
        used += (size_t)snprintf(fds_var + used, sizeof(fds_var) - used, "%s%d", i ? "," : "", fds[i]);
    snprintf(ready_var, sizeof(ready_var), ENV_READY "=%d", pipefd[1]);
    char **env = child_env(fds_var, ready_var);
    pid_t pid = env ? spawn(fds, n, pipefd[1], env) : -1;
    free(env);
    close(pipefd[1]); /* from now on, EOF means the new process is gone */
    if (pid < 0) {
        close(pipefd[0]);
        gw_log_error("error", "upgrade: cannot start %s: %s", self_path, strerror(errno));
        return false;
    }
    gw_log_error("notice", "upgrade: started %s as process %d with %zu listening sockets", self_path,
                 (int)pid, n);
    new_state_t state = wait_ready(pipefd[0], timeout_ms);
    close(pipefd[0]);
    if (state != NEW_SERVES) {
        reap_failed(pid, state);
        return false;
    }
    gw_log_error("notice", "upgrade: process %d serves; this one stops gracefully", (int)pid);
    return true;
}

bool gw_upgrade_start(uint32_t timeout_ms)
{
    static int fds[MAX_FDS];
    if (!self_path[0] || !self_argv) {
        gw_log_error("error", "upgrade: the binary's path is unknown; still serving");
        return false;
    }
    size_t n = listening_fds(fds, MAX_FDS);
    if (!n) {
        gw_log_error("error", "upgrade: no listening socket to hand over; still serving");
        return false;
    }
    return launch(fds, n, timeout_ms);
}
