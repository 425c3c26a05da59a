/* The CGI/1.1 environment builder. See cgi_env.h. */
#include "cgi_env.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "acl.h"
#include "config.h"
#include "conn.h"
#include "file_cache.h"
#include "loop.h"
#include "static.h"
#include "worker.h"
#include "uri.h"

#define SERVER_SOFTWARE "gateway/" GW_VERSION

bool gw_cgi_env_add(gw_arena_t *arena, gw_cgi_env_t *env, const char *name, const char *value)
{
    if (!name || !value) return false;
    if (env->count == env->cap) {
        size_t cap = env->cap ? env->cap * 2 : 48;
        gw_header_t *grown = gw_arena_alloc(arena, cap * sizeof(*grown));
        if (!grown) return false;
        if (env->count) memcpy(grown, env->items, env->count * sizeof(*grown));
        env->items = grown;
        env->cap = cap;
    }
    size_t nl = strlen(name), vl = strlen(value);
    env->items[env->count++] = (gw_header_t){{name, nl}, {value, vl}};
    env->bytes += nl + vl;
    return true;
}

static const char *addr_text(gw_arena_t *a, const struct sockaddr_in6 *sa)
{
    char buf[INET6_ADDRSTRLEN];
    gw_ip_text(&sa->sin6_addr, buf, sizeof(buf));
    return gw_arena_strndup(a, buf, strlen(buf));
}

/* "HTTP_" + the header name upper-cased, other characters than letters and digits as '_'. */
static char *http_name(gw_arena_t *a, gw_slice_t name)
{
    char *n = gw_arena_alloc(a, name.len + 6);
    if (!n) return NULL;
    memcpy(n, "HTTP_", 5);
    for (size_t i = 0; i < name.len; i++) {
        char c = name.base[i];
        n[5 + i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
    }
    n[5 + name.len] = '\0';
    return n;
}

static bool same_name(gw_slice_t a, gw_slice_t b)
{
    return a.len == b.len && strncasecmp(a.base, b.base, a.len) == 0;
}

/* The value of header i joined with its later repeats (first occurrence only; NULL otherwise). */
static const char *joined_value(gw_req_t *req, size_t i)
{
    gw_slice_t name = req->headers[i].name;
    for (size_t j = 0; j < i; j++)
        if (same_name(req->headers[j].name, name)) return NULL;
    const char *sep = gw_slice_ieq(name, "cookie") ? "; " : ", ";
    size_t len = 0;
    for (size_t j = i; j < req->num_headers; j++)
        if (same_name(req->headers[j].name, name)) len += req->headers[j].value.len + 2;
    char *v = gw_arena_alloc(&req->arena, len + 1), *p = v;
    if (!v) return NULL;
    for (size_t j = i; j < req->num_headers; j++) {
        if (!same_name(req->headers[j].name, name)) continue;
        if (p != v) {
            memcpy(p, sep, 2);
            p += 2;
        }
        memcpy(p, req->headers[j].value.base, req->headers[j].value.len);
        p += req->headers[j].value.len;
    }
    *p = '\0';
    return v;
}

/* Whether a header name maps to its HTTP_ variable without ambiguity: only letters, digits and '-'.
 * "X_A" (or "X.A") would become HTTP_X_A like "X-A" and let a client override what a proxy in
 * front set; such headers are left out, as Apache httpd and nginx do by default. */
static bool unambiguous_name(gw_slice_t name)
{
    for (size_t i = 0; i < name.len; i++) {
        char c = name.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return true;
}

static bool add_headers(gw_req_t *req, gw_cgi_env_t *env)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        gw_slice_t n = req->headers[i].name;
        if (gw_slice_ieq(n, "proxy") || gw_slice_ieq(n, "content-length") || gw_slice_ieq(n, "content-type") ||
            !unambiguous_name(n))
            continue; /* Proxy: never HTTP_PROXY (httpoxy) */
        const char *v = joined_value(req, i);
        if (v && !gw_cgi_env_add(&req->arena, env, http_name(&req->arena, n), v)) return false;
    }
    return true;
}

static const char *dup_slice(gw_req_t *req, gw_slice_t s)
{
    return gw_arena_strndup(&req->arena, s.base ? s.base : "", s.len);
}

static bool add_request(gw_req_t *req, const gw_cgi_script_t *s, gw_cgi_env_t *env)
{
    gw_arena_t *a = &req->arena;
    const gw_header_t *ct = gw_req_header(req, "content-type");
    bool ok = gw_cgi_env_add(a, env, "CONTENT_LENGTH",
                             gw_arena_u64(a, req->body_kind == GW_BODY_LENGTH ? (uint64_t)req->content_length : 0));
    if (ct) ok = ok && gw_cgi_env_add(a, env, "CONTENT_TYPE", dup_slice(req, ct->value));
    ok = ok && gw_cgi_env_add(a, env, "GATEWAY_INTERFACE", "CGI/1.1");
    if (s->scgi) ok = ok && gw_cgi_env_add(a, env, "SCGI", "1");
    ok = ok && gw_cgi_env_add(a, env, "REQUEST_METHOD", dup_slice(req, req->method));
    ok = ok && gw_cgi_env_add(a, env, "QUERY_STRING", dup_slice(req, req->query));
    ok = ok && gw_cgi_env_add(a, env, "REQUEST_URI", dup_slice(req, req->target));
    ok = ok && gw_cgi_env_add(a, env, "SCRIPT_NAME", s->script_name);
    ok = ok && gw_cgi_env_add(a, env, "SCRIPT_FILENAME", s->script_filename);
    ok = ok && gw_cgi_env_add(a, env, "PATH_INFO", s->path_info);
    if (s->path_info[0])
        ok = ok && gw_cgi_env_add(a, env, "PATH_TRANSLATED", gw_arena_concat3(a, s->document_root, s->path_info, ""));
    ok = ok && gw_cgi_env_add(a, env, "DOCUMENT_ROOT", s->document_root);
    if (s->redirect_status) ok = ok && gw_cgi_env_add(a, env, "REDIRECT_STATUS", "200");
    return ok;
}

static bool add_server(gw_req_t *req, gw_cgi_env_t *env)
{
    gw_arena_t *a = &req->arena;
    char peer[64];
    gw_conn_info_t client = *req->conn;
    if (!IN6_IS_ADDR_UNSPECIFIED(&req->client_ip)) client.peer.sin6_addr = req->client_ip;
    gw_conn_peer_text(&client, peer, sizeof(peer));
    bool ok = gw_cgi_env_add(a, env, "SERVER_SOFTWARE", SERVER_SOFTWARE);
    ok = ok && gw_cgi_env_add(a, env, "SERVER_PROTOCOL", req->codec->protocol);
    ok = ok && gw_cgi_env_add(a, env, "SERVER_NAME", dup_slice(req, req->authority));
    ok = ok && gw_cgi_env_add(a, env, "SERVER_ADDR", addr_text(a, gw_conn_local(req->conn)));
    ok = ok && gw_cgi_env_add(a, env, "SERVER_PORT", gw_arena_u64(a, ntohs(gw_conn_local(req->conn)->sin6_port)));
    if (req->route->server_admin) ok = ok && gw_cgi_env_add(a, env, "SERVER_ADMIN", req->route->server_admin);
    ok = ok && gw_cgi_env_add(a, env, "REMOTE_ADDR", gw_arena_strndup(a, peer, strlen(peer)));
    ok = ok && gw_cgi_env_add(a, env, "REMOTE_PORT", gw_arena_u64(a, ntohs(req->conn->peer.sin6_port)));
    if (req->conn->tls) ok = ok && gw_cgi_env_add(a, env, "HTTPS", "on");
    if (req->remote_user) {
        ok = ok && gw_cgi_env_add(a, env, "AUTH_TYPE", "Basic");
        ok = ok && gw_cgi_env_add(a, env, "REMOTE_USER", req->remote_user);
    }
    return ok;
}

bool gw_cgi_env_build(gw_req_t *req, const gw_cgi_script_t *s, gw_cgi_env_t *env)
{
    memset(env, 0, sizeof(*env));
    return add_request(req, s, env) && add_server(req, env) && add_headers(req, env);
}

bool gw_cgi_prefix_match(gw_slice_t path, const char *prefix)
{
    size_t n = strlen(prefix);
    return path.len >= n && memcmp(path.base, prefix, n) == 0 && (path.len == n || path.base[n] == '/');
}

/* Stats rel below the root: 1 regular file, 2 directory, 0 missing, -1 other. Regular files go
 * through the worker's open-file cache, so a script found once costs no open/fstat/close until the
 * cache re-validates it (openFileCacheValidity), as for static files. */
static int probe(gw_req_t *req, const char *rel, struct stat *st)
{
    int root_fd = req->route->root_fd;
    gw_file_cache_t *fc = req->worker->file_cache;
    uint64_t now = gw_loop_now(req->worker->loop);
    gw_file_entry_t *e = *rel ? gw_file_cache_get(fc, root_fd, rel, now) : NULL;
    if (e) {
        *st = e->st;
        gw_file_cache_release(fc, e);
        return 1;
    }
    int fd = gw_open_beneath(root_fd, *rel ? rel : ".");
    if (fd < 0) return 0;
    int r = fstat(fd, st) != 0 ? -1 : S_ISREG(st->st_mode) ? 1 : S_ISDIR(st->st_mode) ? 2 : -1;
    if (r == 1 && *rel && (e = gw_file_cache_put(fc, root_fd, rel, fd, st, gw_mime_type(rel, strlen(rel)), now))) {
        gw_file_cache_release(fc, e); /* the cache took the fd */
        return 1;
    }
    close(fd);
    return r;
}

/* The script is rel[0..cut) of a decoded path; what follows is PATH_INFO. */
static int found(gw_req_t *req, gw_cgi_script_t *s, const char **out, char *rel, size_t cut, const char *info)
{
    const char *root = req->route->wwwroot;
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/') rl--;
    s->document_root = gw_arena_strndup(&req->arena, root, rl);
    s->path_info = gw_arena_strndup(&req->arena, info, strlen(info));
    rel[cut] = '\0';
    s->script_name = gw_arena_concat3(&req->arena, "/", rel, "");
    s->script_filename = gw_arena_concat3(&req->arena, s->document_root, "/", rel);
    *out = rel;
    return s->document_root && s->path_info && s->script_name && s->script_filename ? 1 : -500;
}

/* The whole path names a directory: its first index file that is a script. */
static int find_index(gw_req_t *req, gw_cgi_accept_fn accept, const char *const *index, gw_cgi_script_t *s,
                      const char **out, const char *dir)
{
    for (size_t i = 0; index && index[i]; i++) {
        char *rel = gw_arena_printf(&req->arena, "%s%s%s", dir, *dir && dir[strlen(dir) - 1] != '/' ? "/" : "", index[i]);
        struct stat st;
        if (!rel) return -500;
        if (probe(req, rel, &st) == 1 && accept(req, rel, &st))
            return found(req, s, out, rel, strlen(rel), "");
    }
    return 0;
}

int gw_cgi_find_script(gw_req_t *req, gw_cgi_accept_fn accept, const char *const *index, gw_cgi_script_t *s,
                       const char **out)
{
    if (req->route->root_fd < 0 || !req->route->wwwroot) return 0;
    char *dec = gw_arena_alloc(&req->arena, req->path.len + 1);
    long n = dec ? gw_uri_decode(req->path.base, req->path.len, dec, req->path.len + 1) : -1;
    if (n < 0) return dec ? -400 : -500;
    dec[n] = '\0';
    char *rel = dec;
    while (*rel == '/') rel++;
    size_t len = strlen(rel);
    if (len != (size_t)n - (size_t)(rel - dec)) return -400; /* a decoded NUL */
    char *info = gw_arena_strndup(&req->arena, rel, len); /* the path after the script, cut below */
    if (!info) return -500;
    for (size_t cut = len;; ) {
        struct stat st;
        char save = rel[cut];
        rel[cut] = '\0';
        int kind = probe(req, rel, &st);
        bool ok = kind == 1 && accept(req, rel, &st);
        rel[cut] = save;
        if (kind == 1) return ok ? found(req, s, out, rel, cut, info + cut) : 0;
        if (kind == 2) return cut == len ? find_index(req, accept, index, s, out, rel) : 0;
        if (kind < 0 || cut == 0) return 0;
        while (cut > 0 && rel[cut - 1] != '/') cut--; /* up one segment */
        if (cut > 0) cut--;
    }
}

int gw_cgi_locate_by_prefix(gw_req_t *req, const char *prefix, gw_cgi_script_t *s)
{
    char *dec = gw_arena_alloc(&req->arena, req->path.len + 1);
    long n = dec ? gw_uri_decode(req->path.base, req->path.len, dec, req->path.len + 1) : -1;
    if (n < 0) return dec ? -400 : -500;
    dec[n] = '\0';
    const char *root = req->route->wwwroot ? req->route->wwwroot : "/nonexistent";
    size_t pl = strlen(prefix);
    s->document_root = root;
    s->script_name = prefix;
    s->path_info = strlen(dec) >= pl ? dec + pl : "";
    s->script_filename = gw_arena_concat3(&req->arena, root, dec, "");
    return s->script_filename ? 1 : -500;
}
