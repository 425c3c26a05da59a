/* Per-worker open-file cache. See file_cache.h. */
#include "file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "static.h"

struct gw_file_cache {
    uint32_t max_entries, max_inline, validity_ms;
    uint32_t count;
    uint32_t mask;
    uint64_t encoded_bytes, max_encoded_bytes; /* compressed variants held by live entries */
    gw_file_entry_t **table;
    gw_file_entry_t *lru_head, *lru_tail; /* head: most recently used */
};

int gw_open_beneath(int dirfd, const char *rel)
{
    static int have_openat2 = 1;
    if (have_openat2) {
        struct open_how how = {
            .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS) return (int)fd;
        have_openat2 = 0; /* benign race: every thread learns the same answer */
    }
    /* the normalised path has no ".." left; refusing symlinks keeps us inside the root */
    if (strstr(rel, "..")) {
        errno = EACCES;
        return -1;
    }
    return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
}

gw_file_cache_t *gw_file_cache_new(uint32_t max_entries, uint32_t max_inline, uint32_t validity_ms)
{
    gw_file_cache_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->max_entries = max_entries;
    c->max_inline = max_inline;
    c->validity_ms = validity_ms;
    uint32_t size = 16;
    while (size < max_entries * 2) size *= 2;
    c->mask = size - 1;
    c->table = calloc(size, sizeof(*c->table));
    if (!c->table) {
        free(c);
        return NULL;
    }
    return c;
}

static uint32_t hash_key(int root_fd, const char *key)
{
    uint32_t h = 2166136261u ^ (uint32_t)root_fd;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 16777619u;
    return h;
}

static void destroy(gw_file_entry_t *e)
{
    close(e->fd);
    free(e->data);
    for (unsigned i = 0; i < GW_FILE_ENCODINGS; i++)
        free(e->encoded[i]);
    free(e->key);
    free(e);
}

static void lru_unlink(gw_file_cache_t *c, gw_file_entry_t *e)
{
    if (e->lprev) e->lprev->lnext = e->lnext;
    else c->lru_head = e->lnext;
    if (e->lnext) e->lnext->lprev = e->lprev;
    else c->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(gw_file_cache_t *c, gw_file_entry_t *e)
{
    e->lnext = c->lru_head;
    e->lprev = NULL;
    if (c->lru_head) c->lru_head->lprev = e;
    c->lru_head = e;
    if (!c->lru_tail) c->lru_tail = e;
}

/* Takes an entry out of the cache; it is freed now or when its last reference goes. */
static void retire(gw_file_cache_t *c, gw_file_entry_t *e)
{
    gw_file_entry_t **pp = &c->table[e->hash & c->mask];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    for (unsigned i = 0; i < GW_FILE_ENCODINGS; i++)
        c->encoded_bytes -= e->encoded_len[i];
    e->dead = true;
    if (!e->refs) destroy(e);
}

void gw_file_cache_free(gw_file_cache_t *c)
{
    if (!c) return;
    while (c->lru_head) retire(c, c->lru_head); /* entries still referenced are freed on release */
    free(c->table);
    free(c);
}

/* Same file as when cached? One open + fstat at most once per validity period. */
static bool still_valid(gw_file_cache_t *c, gw_file_entry_t *e, uint64_t now_ms)
{
    if (now_ms - e->validated_ms < c->validity_ms) return true;
    int fd = gw_open_beneath(e->root_fd, e->key);
    struct stat st;
    bool same = fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == e->st.st_ino && st.st_dev == e->st.st_dev &&
                st.st_size == e->st.st_size && st.st_mtim.tv_sec == e->st.st_mtim.tv_sec &&
                st.st_mtim.tv_nsec == e->st.st_mtim.tv_nsec;
    if (fd >= 0) close(fd);
    if (same) e->validated_ms = now_ms;
    return same;
}

gw_file_entry_t *gw_file_cache_get(gw_file_cache_t *c, int root_fd, const char *rel, uint64_t now_ms)
{
    if (!c || !c->max_entries) return NULL;
    uint32_t h = hash_key(root_fd, rel);
    gw_file_entry_t *e = c->table[h & c->mask];
    while (e && !(e->hash == h && e->root_fd == root_fd && strcmp(e->key, rel) == 0)) e = e->hnext;
    if (!e) return NULL;
    if (!still_valid(c, e, now_ms)) {
        retire(c, e);
        return NULL;
    }
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push(c, e);
    }
    e->refs++;
    return e;
}

static bool load_inline(gw_file_cache_t *c, gw_file_entry_t *e)
{
    if (e->st.st_size > (off_t)c->max_inline) return true;
    e->data = malloc((size_t)e->st.st_size + 1);
    if (!e->data) return false;
    ssize_t n = pread(e->fd, e->data, (size_t)e->st.st_size, 0);
    if (n == (ssize_t)e->st.st_size) return true;
    free(e->data); /* changed while reading: serve it with sendfile instead */
    e->data = NULL;
    return true;
}

gw_file_entry_t *gw_file_cache_put(gw_file_cache_t *c, int root_fd, const char *rel, int fd,
                                   const struct stat *st, const char *mime, uint64_t now_ms)
{
    if (!c || !c->max_entries) return NULL;
    gw_file_entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(rel))) {
        free(e);
        return NULL;
    }
    e->fd = fd;
    e->st = *st;
    e->mime = mime;
    e->root_fd = root_fd;
    e->validated_ms = now_ms;
    e->hash = hash_key(root_fd, rel);
    gw_file_entry_validators(e);
    if (!load_inline(c, e)) {
        free(e->key);
        free(e);
        return NULL;
    }
    if (c->count >= c->max_entries && c->lru_tail) retire(c, c->lru_tail);
    e->hnext = c->table[e->hash & c->mask];
    c->table[e->hash & c->mask] = e;
    lru_push(c, e);
    c->count++;
    e->refs = 1;
    return e;
}

void gw_file_cache_set_encoded_limit(gw_file_cache_t *c, uint64_t max_bytes)
{
    if (c) c->max_encoded_bytes = max_bytes;
}

uint64_t gw_file_cache_encoded_room(const gw_file_cache_t *c)
{
    if (!c || !c->max_entries || c->encoded_bytes >= c->max_encoded_bytes) return 0;
    return c->max_encoded_bytes - c->encoded_bytes;
}

bool gw_file_cache_keep_encoded(gw_file_cache_t *c, gw_file_entry_t *e, unsigned slot, char *data, size_t len)
{
    if (!c || e->dead || e->refs == UINT32_MAX || slot >= GW_FILE_ENCODINGS || e->encoded[slot] ||
        len > gw_file_cache_encoded_room(c))
        return false;
    e->encoded[slot] = data;
    e->encoded_len[slot] = len;
    c->encoded_bytes += len;
    return true;
}

uint32_t gw_file_cache_validity_ms(const gw_file_cache_t *c)
{
    return c ? c->validity_ms : 0;
}

void gw_file_cache_release(gw_file_cache_t *c, gw_file_entry_t *e)
{
    (void)c;
    if (--e->refs == 0 && e->dead) destroy(e);
}

void gw_file_entry_validators(gw_file_entry_t *e)
{
    gw_http_date(e->st.st_mtim.tv_sec, e->last_modified);
    snprintf(e->etag, sizeof(e->etag), "\"%llx-%llx-%llx\"", (unsigned long long)e->st.st_ino,
             (unsigned long long)e->st.st_size,
             (unsigned long long)e->st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)e->st.st_mtim.tv_nsec);
}
