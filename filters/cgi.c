/* CGI programs in the worker's loop. See cgi.h. */
#include "cgi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgi_env.h"
#include "cgi_response.h"
#include "config.h"
#include "errors.h"
#include "file_cache.h"
#include "log.h"
#include "spool.h"
#include "worker.h"

static atomic_uint running; /* CGI programs of the whole process not reaped yet */

typedef struct cgi_run cgi_run_t;

/* A child process; it outlives its request until it has been reaped. */
typedef struct cgi_proc {
    pid_t pid;
    gw_io_t pidfd;
    cgi_run_t *run; /* NULL once the request is gone */
    struct cgi_proc *next, **pprev; /* this worker's children not reaped yet */
} cgi_proc_t;

/* Per worker thread: children not reaped yet, so that a worker that exits first (the graceful
 * timeout ran out) still kills, reaps and frees them. */
static _Thread_local cgi_proc_t *unreaped;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void proc_unlink(cgi_proc_t *p)
{
    if (p->next) p->next->pprev = p->pprev;
    *p->pprev = p->next;
}

static void reap_all_at_exit(void *unused)
{
    (void)unused;
    while (unreaped) {
        cgi_proc_t *p = unreaped;
        proc_unlink(p);
        kill(-p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0); /* killed: returns at once */
        close(p->pidfd.fd);
        atomic_fetch_sub(&running, 1);
        free(p); /* its request was disposed of before the worker thread ended */
    }
}

static void make_exit_key(void)
{
    pthread_key_create(&exit_key, reap_all_at_exit);
}

static void track_proc(cgi_proc_t *p)
{
    pthread_once(&exit_once, make_exit_key);
    pthread_setspecific(exit_key, (void *)1); /* any non-NULL value: the destructor runs at exit */
    p->next = unreaped;
    if (unreaped) unreaped->pprev = &p->next;
    p->pprev = &unreaped;
    unreaped = p;
}

struct cgi_run {
    gw_req_t *req;
    cgi_proc_t *proc;
    gw_io_t in, out, err; /* fd -1: closed */
    gw_timer_t timer;
    gw_generator_t gen;
    char *buf; /* stdout bytes: the head, then body not yet taken by the client side */
    size_t len, cap, consumed;
    bool head_done, res_done, out_eof, waiting_proceed, sending, proceeded;
    gw_slice_t piece; /* request body piece being written to stdin */
    size_t piece_off;
    bool piece_last;
};

/* ---- the process ---- */

static void on_pidfd(gw_io_t *io, uint32_t events)
{
    cgi_proc_t *p = gw_container_of(io, cgi_proc_t, pidfd);
    int status;
    if (waitpid(p->pid, &status, WNOHANG) == 0) return;
    gw_io_stop(&p->pidfd);
    close(p->pidfd.fd);
    atomic_fetch_sub(&running, 1);
    if (p->run) p->run->proc = NULL;
    proc_unlink(p);
    free(p);
}

static void kill_group(cgi_run_t *r)
{
    if (r->proc) kill(-r->proc->pid, SIGKILL); /* the group: a shell's children too */
}

static void close_io(gw_io_t *io)
{
    if (io->fd < 0) return;
    gw_io_stop(io);
    close(io->fd);
    io->fd = -1;
}

/* The request is over (or the program failed): pipes closed, the group killed, reaping goes on. */
static void run_cleanup(void *arg)
{
    cgi_run_t *r = arg;
    close_io(&r->in);
    close_io(&r->out);
    close_io(&r->err);
    gw_timer_cancel(&r->timer);
    kill_group(r);
    if (r->proc) r->proc->run = NULL;
    r->proc = NULL;
    if (r->buf) gw_chunk_put(&r->req->worker->io_pool, r->buf);
    r->buf = NULL;
}

static void fail(cgi_run_t *r, const char *err)
{
    if (r->res_done) return;
    r->res_done = true;
    gw_log_error("error", "CGI %.*s: %s", (int)r->req->path.len, r->req->path.base, err);
    kill_group(r);
    close_io(&r->out);
    close_io(&r->in);
    gw_timer_cancel(&r->timer);
    if (!r->req->res_started)
        gw_send_error(r->req, gw_error_status(err));
    else
        gw_send(r->req, NULL, 0, GW_SEND_ERROR);
}

/* ---- stdout: the response ---- */

static void arm_out(cgi_run_t *r)
{
    if (r->out.fd >= 0) gw_io_modify(&r->out, r->waiting_proceed || r->len >= r->cap ? 0 : EPOLLIN);
}

static bool start_response(cgi_run_t *r)
{
    gw_header_t headers[GW_CGI_MAX_HEADERS];
    gw_h1_response_head_t h = {.headers = headers};
    int n = gw_cgi_parse_head(r->buf, r->len, &h, GW_CGI_MAX_HEADERS);
    if (n == 0 && r->len < r->cap && !r->out_eof) return true;
    if (n <= 0) {
        fail(r, gw_err_bad_response);
        return false;
    }
    gw_req_t *req = r->req;
    req->res.status = h.status;
    req->res.content_length = -1;
    for (size_t i = 0; i < h.num_headers; i++) {
        gw_slice_t name = h.headers[i].name;
        if (gw_slice_ieq(name, "content-length") || gw_slice_ieq(name, "transfer-encoding") ||
            gw_slice_ieq(name, "connection"))
            continue;
        char *nm = gw_arena_strndup(&req->arena, name.base, name.len);
        char *v = gw_arena_strndup(&req->arena, h.headers[i].value.base, h.headers[i].value.len);
        if (!nm || !v) {
            fail(r, gw_err_no_memory);
            return false;
        }
        for (char *p = nm; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
        gw_res_add_header(req, (gw_slice_t){nm, name.len}, (gw_slice_t){v, h.headers[i].value.len});
    }
    memmove(r->buf, r->buf + n, r->len - (size_t)n);
    r->len -= (size_t)n;
    r->head_done = true;
    gw_start_response(req, &r->gen);
    return true;
}

/* Sends what stdout gave; returns once the client side must catch up or stdout must be read. */
static void deliver(cgi_run_t *r)
{
    while (r->head_done && !r->res_done && !r->waiting_proceed) {
        bool final = r->out_eof;
        if (!r->len && !final) break; /* read stdout again */
        gw_slice_t piece = {r->buf, r->len};
        r->consumed = r->len;
        if (final) {
            r->res_done = true;
            close_io(&r->out);
            gw_timer_cancel(&r->timer);
        }
        r->proceeded = false;
        r->sending = true;
        gw_send(r->req, &piece, piece.len ? 1 : 0, final ? GW_SEND_FINAL : GW_SEND_IN_PROGRESS);
        if (final) return; /* the request may be gone */
        r->sending = false;
        if (!r->proceeded) r->waiting_proceed = true;
    }
    arm_out(r);
}

static void cgi_proceed(gw_generator_t *g, gw_req_t *req)
{
    cgi_run_t *r = gw_container_of(g, cgi_run_t, gen);
    memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
    r->len -= r->consumed;
    r->consumed = 0;
    if (r->sending) {
        r->proceeded = true;
        return;
    }
    r->waiting_proceed = false;
    deliver(r);
}

static void cgi_stop(gw_generator_t *g, gw_req_t *req)
{
    cgi_run_t *r = gw_container_of(g, cgi_run_t, gen);
    r->res_done = true; /* the client went away: run_cleanup kills the program */
}

static void on_stdout(gw_io_t *io, uint32_t events)
{
    cgi_run_t *r = gw_container_of(io, cgi_run_t, out);
    if (r->len >= r->cap || r->waiting_proceed) return;
    ssize_t n;
    do
        n = read(io->fd, r->buf + r->len, r->cap - r->len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
        r->out_eof = true;
        gw_io_modify(io, 0);
    } else {
        r->len += (size_t)n;
        gw_timer_set(r->req->worker->loop, &r->timer, r->req->route->proxy.read_timeout_ms);
    }
    if (!r->head_done && !start_response(r)) return;
    if (!r->head_done && r->out_eof) {
        fail(r, gw_err_bad_response);
        return;
    }
    deliver(r);
}

/* ---- stderr: the error log ---- */

static void on_stderr(gw_io_t *io, uint32_t events)
{
    cgi_run_t *r = gw_container_of(io, cgi_run_t, err);
    char buf[2048];
    ssize_t n = read(io->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        close_io(io);
        return;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
    if (n) gw_log_error("error", "CGI stderr (%.*s): %.*s", (int)r->req->path.len, r->req->path.base, (int)n, buf);
}

/* ---- stdin: the request body ---- */

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st);

static void write_body(cgi_run_t *r)
{
    while (r->piece_off < r->piece.len) {
        ssize_t w = write(r->in.fd, r->piece.base + r->piece_off, r->piece.len - r->piece_off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
            gw_io_modify(&r->in, EPOLLOUT);
            return;
        }
        if (w < 0) { /* the program stopped reading (exited): the rest is not wanted */
            close_io(&r->in);
            return;
        }
        r->piece_off += (size_t)w;
    }
    gw_io_modify(&r->in, 0);
    if (r->piece_last)
        close_io(&r->in); /* end of input for the program */
    else
        gw_req_body_proceed(r->req);
}

static void on_stdin(gw_io_t *io, uint32_t events)
{
    write_body(gw_container_of(io, cgi_run_t, in));
}

static void on_body(gw_req_t *req, void *ctx, gw_slice_t data, gw_body_state_t st)
{
    cgi_run_t *r = ctx;
    if (st == GW_BODY_ABORT) {
        fail(r, req->body_error ? req->body_error : gw_err_client_closed);
        return;
    }
    if (r->in.fd < 0) return; /* the program does not read any more */
    r->piece = data;
    r->piece_off = 0;
    r->piece_last = st == GW_BODY_END;
    write_body(r);
}

static void on_timeout(gw_timer_t *t)
{
    fail(gw_container_of(t, cgi_run_t, timer), gw_err_io_timeout);
}

/* ---- starting ---- */

static bool has_ext(const gw_strlist_t *exts, const char *rel)
{
    const char *slash = strrchr(rel, '/'), *dot = strrchr(slash ? slash : rel, '.');
    for (size_t i = 0; dot && i < exts->count; i++)
        if (strcasecmp(dot, exts->items[i]) == 0) return true;
    return false;
}

static bool cgi_accept(const gw_req_t *req, const char *rel, const struct stat *st)
{
    return strncmp(rel, "cgi-bin/", 8) == 0 || has_ext(&req->route->cgi.cgi_extensions, rel);
}

/* argv: the script itself when executable, else its extension's interpreter and the script. */
static char **build_argv(gw_req_t *req, const char *file, const struct stat *st)
{
    const gw_cgi_route_t *c = &req->route->cgi;
    const char *const *interp = NULL;
    const char *slash = strrchr(file, '/'), *dot = strrchr(slash ? slash : file, '.');
    for (size_t i = 0; dot && i < c->num_interps; i++)
        if (strcasecmp(dot, c->interps[i].ext) == 0) interp = c->interps[i].argv;
    if (st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) interp = NULL; /* it runs itself */
    else if (!interp) return NULL;
    size_t n = 0;
    while (interp && interp[n]) n++;
    char **argv = gw_arena_alloc(&req->arena, (n + 2) * sizeof(*argv));
    if (!argv) return NULL;
    for (size_t i = 0; i < n; i++) argv[i] = (char *)interp[i];
    argv[n] = (char *)file;
    argv[n + 1] = NULL;
    return argv;
}

/* True when the CGI variables already name the variable of `var` ("NAME=value"). */
static bool env_names(const gw_cgi_env_t *env, const char *var)
{
    size_t len = (size_t)(strchr(var, '=') - var);
    for (size_t i = 0; i < env->count; i++)
        if (env->items[i].name.len == len && memcmp(env->items[i].name.base, var, len) == 0) return true;
    return false;
}

/* The CGI meta-variables, then environmentVariables of the request's config (a reload changes them
 * for the next program; a meta-variable of the same name wins, RFC 3875), then PATH if still unset. */
static char **build_envp(gw_req_t *req, const gw_cgi_env_t *env)
{
    const gw_config_t *cfg = req->cfg;
    char **envp = gw_arena_alloc(&req->arena, (env->count + cfg->num_env_vars + 2) * sizeof(*envp));
    if (!envp) return NULL;
    size_t n = 0;
    bool have_path = false;
    for (size_t i = 0; i < env->count; i++) {
        envp[n] =
            gw_arena_printf(&req->arena, "%.*s=%.*s", (int)env->items[i].name.len, env->items[i].name.base,
                            (int)env->items[i].value.len, env->items[i].value.base);
        if (!envp[n++]) return NULL;
    }
    for (size_t i = 0; i < cfg->num_env_vars; i++) {
        if (env_names(env, cfg->env_vars[i])) continue;
        have_path = have_path || strncmp(cfg->env_vars[i], "PATH=", 5) == 0;
        envp[n++] = (char *)cfg->env_vars[i];
    }
    if (!have_path) {
        const char *path = getenv("PATH");
        envp[n] = gw_arena_printf(&req->arena, "PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
        if (!envp[n++]) return NULL;
    }
    envp[n] = NULL;
    return envp;
}

/* posix_spawn with the three pipes; the child gets default signals and its own process group. */
static pid_t spawn(char **argv, char **envp, const char *dir, int fds[3][2])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fds[0][0], 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        gw_log_error("error", "cannot run CGI program %s: %s", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

static void close_pipes(int fds[3][2])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            if (fds[i][j] >= 0) close(fds[i][j]);
}

/* Watches the parent's ends of the pipes and the child's pidfd. */
static bool watch(cgi_run_t *r, int fds[3][2], pid_t pid)
{
    gw_loop_t *loop = r->req->worker->loop;
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    cgi_proc_t *p = pidfd >= 0 ? calloc(1, sizeof(*p)) : NULL;
    if (!p) {
        if (pidfd >= 0) close(pidfd);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    atomic_fetch_add(&running, 1);
    p->pid = pid;
    p->run = r;
    track_proc(p);
    r->proc = p;
    gw_io_start(loop, &p->pidfd, pidfd, EPOLLIN, on_pidfd);
    gw_io_start(loop, &r->in, fds[0][1], 0, on_stdin);
    gw_io_start(loop, &r->out, fds[1][0], EPOLLIN, on_stdout);
    gw_io_start(loop, &r->err, fds[2][0], EPOLLIN, on_stderr);
    fds[0][1] = fds[1][0] = fds[2][0] = -1;
    return true;
}

static gw_handler_result_t refuse(gw_req_t *req, int status)
{
    req->res.status = status;
    return GW_ERROR;
}

static gw_handler_result_t run_program(gw_req_t *req, cgi_run_t *r, const gw_cgi_script_t *s, const char *rel)
{
    struct stat st;
    int fd = gw_open_beneath(req->route->root_fd, rel);
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return refuse(req, 404);
    }
    close(fd);
    gw_cgi_env_t env;
    char **argv = build_argv(req, s->script_filename, &st);
    char **envp = gw_cgi_env_build(req, s, &env) ? build_envp(req, &env) : NULL;
    char *dir = gw_arena_strndup(&req->arena, s->script_filename, strrchr(s->script_filename, '/') - s->script_filename);
    if (!argv) return refuse(req, 403); /* neither executable nor with an interpreter */
    if (!envp || !dir) return refuse(req, 500);
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    for (int i = 0; i < 3; i++)
        if (pipe2(fds[i], O_CLOEXEC) != 0) {
            close_pipes(fds);
            return refuse(req, 500);
        }
    for (int i = 0; i < 3; i++) fcntl(fds[i][i == 0 ? 1 : 0], F_SETFL, O_NONBLOCK);
    pid_t pid = spawn(argv, envp, dir, fds);
    bool ok = pid > 0 && watch(r, fds, pid);
    close_pipes(fds);
    return ok ? GW_DONE : refuse(req, 500);
}

static gw_handler_result_t cgi_on_request(const gw_handler_t *self, gw_req_t *req)
{
    static const char *const index[] = {"index.php", "index.cgi", NULL};
    gw_cgi_script_t s = {.redirect_status = true};
    const char *rel;
    int found = gw_cgi_find_script(req, cgi_accept, index, &s, &rel);
    if (found <= 0) return found ? refuse(req, -found) : GW_CONTINUE;
    if (req->body_kind == GW_BODY_CHUNKED) return gw_spool_then_rerun(self, req); /* CONTENT_LENGTH first */
    if (atomic_load(&running) >= req->route->cgi.max_processes) return refuse(req, 503);
    cgi_run_t *r = gw_arena_alloc(&req->arena, sizeof(*r));
    if (!r) return refuse(req, 500);
    memset(r, 0, sizeof(*r));
    r->req = req;
    r->in.fd = r->out.fd = r->err.fd = -1;
    r->gen = (gw_generator_t){cgi_proceed, cgi_stop};
    gw_timer_init(&r->timer, on_timeout);
    r->buf = gw_chunk_get(&req->worker->io_pool);
    r->cap = req->worker->io_pool.chunk_size;
    if (!r->buf || !gw_req_defer(req, run_cleanup, r)) {
        if (r->buf) gw_chunk_put(&req->worker->io_pool, r->buf);
        return refuse(req, 500);
    }
    gw_handler_result_t res = run_program(req, r, &s, rel);
    if (res != GW_DONE) return res;
    gw_timer_set(req->worker->loop, &r->timer, req->route->proxy.read_timeout_ms);
    if (req->body_kind == GW_BODY_NONE)
        close_io(&r->in);
    else
        gw_req_read_body(req, on_body, r);
    return GW_DONE;
}

const gw_handler_t gw_cgi_handler = {"cgi", cgi_on_request};
