/* Generated directory index pages (enableDirectoryListing). See response.h. */
#include "response.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "static.h"

#define MAX_ENTRIES 10000 /* a bigger directory is listed in part: the page stays bounded */

typedef struct entry {
    char *name;
    bool dir;
    int64_t size;
    int64_t mtime;
} entry_t;

typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

static void put_html(buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : s[i] == '&' ? "&amp;"
                        : s[i] == '"' ? "&quot;" : s[i] == '\'' ? "&#39;" : NULL;
        if (e) puts_(b, e);
        else put(b, s + i, 1);
    }
}

/* Percent-encodes everything but unreserved characters and '/' (RFC 3986 §2.3). */
static void put_url(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c)) {
            put(b, s + i, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(b, e, 3);
        }
    }
}

static int by_name(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->dir != y->dir) return x->dir ? -1 : 1;
    return strcmp(x->name, y->name);
}

static size_t read_entries(int dfd, entry_t **out)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return (size_t)-1;
    }
    entry_t *es = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < MAX_ENTRIES) {
        if (de->d_name[0] == '.') continue; /* ".", ".." and hidden files */
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (n == cap) {
            entry_t *ne = realloc(es, (cap = cap ? cap * 2 : 64) * sizeof(*es));
            if (!ne) break;
            es = ne;
        }
        char *name = strdup(de->d_name);
        if (!name) break;
        es[n++] = (entry_t){name, S_ISDIR(st.st_mode), (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec};
    }
    closedir(d);
    qsort(es, n, sizeof(*es), by_name);
    *out = es;
    return n;
}

static void put_size(buf_t *b, const entry_t *e)
{
    char s[32];
    if (e->dir) snprintf(s, sizeof(s), "-");
    else if (e->size < 1024) snprintf(s, sizeof(s), "%lld B", (long long)e->size);
    else if (e->size < 1024 * 1024) snprintf(s, sizeof(s), "%.1f KiB", (double)e->size / 1024);
    else if (e->size < 1024LL * 1024 * 1024) snprintf(s, sizeof(s), "%.1f MiB", (double)e->size / (1024 * 1024));
    else snprintf(s, sizeof(s), "%.1f GiB", (double)e->size / (1024.0 * 1024 * 1024));
    puts_(b, s);
}

static void render(buf_t *b, const gw_req_t *req, const entry_t *es, size_t n)
{
    gw_slice_t path = req->path;
    bool slash = path.len && path.base[path.len - 1] == '/';
    puts_(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n<title>Directory: ");
    put_html(b, path.base, path.len);
    puts_(b, "</title>\n</head>\n<body>\n<h1>Directory: ");
    put_html(b, path.base, path.len);
    puts_(b, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>\n");
    if (path.len > 1) puts_(b, "<tr><td><a href=\"../\">../</a></td><td>-</td><td>-</td></tr>\n");
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(es[i].name);
        puts_(b, "<tr><td><a href=\"");
        /* the path is already percent-encoded where it needs to be; names are raw bytes */
        put_html(b, path.base, path.len);
        if (!slash) puts_(b, "/");
        put_url(b, es[i].name, nl);
        if (es[i].dir) puts_(b, "/");
        puts_(b, "\">");
        put_html(b, es[i].name, nl);
        if (es[i].dir) puts_(b, "/");
        puts_(b, "</a></td><td>");
        put_size(b, &es[i]);
        char date[32];
        gw_http_date(es[i].mtime, date);
        puts_(b, "</td><td>");
        puts_(b, date);
        puts_(b, "</td></tr>\n");
    }
    puts_(b, "</table>\n</body>\n</html>\n");
}

gw_handler_result_t gw_listing_send(gw_req_t *req, int dfd)
{
    entry_t *es = NULL;
    size_t n = read_entries(dfd, &es);
    if (n == (size_t)-1) {
        req->res.status = 500;
        return GW_ERROR;
    }
    buf_t b = {0};
    render(&b, req, es, n);
    for (size_t i = 0; i < n; i++) free(es[i].name);
    free(es);
    if (b.failed) {
        free(b.p);
        req->res.status = 500;
        return GW_ERROR;
    }
    gw_send_inline(req, 200, "text/html; charset=utf-8", b.p, b.len);
    free(b.p);
    return GW_DONE;
}
