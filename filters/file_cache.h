/*
 * A per-worker cache of opened static files (nginx's open_file_cache, on by default here): the
 * resolved fd, its stat, validators, and the bytes of small files. A cached file costs no open,
 * fstat or close per request, and a small one goes out in the same writev as the head. Entries
 * are re-validated (opened and compared) at most once per `openFileCacheValidity` ms, so a
 * changed file is seen within that time.
 */
#ifndef GW_FILE_CACHE_H
#define GW_FILE_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct gw_file_cache gw_file_cache_t;

/** One cached file; shared by the requests holding a reference. */
typedef struct gw_file_entry {
    int fd;
    struct stat st;
    const char *mime;
    char etag[64];
    char last_modified[32];
    char *data;       /**< whole content when small, else NULL (use sendfile) */
    uint8_t siblings;     /**< static.c: GW_ENC_BIT mask of fresh precompressed siblings (.br, .gz) */
    bool siblings_known;  /**< static.c: `siblings` was looked up at siblings_ms */
    uint64_t siblings_ms;
    /* private */
    struct gw_file_entry *hnext, *lprev, *lnext;
    uint32_t hash;
    uint32_t refs;
    bool dead;
    int root_fd;
    uint64_t validated_ms;
    char *key;
} gw_file_entry_t;

/** Opens `rel` below directory `dirfd` without ever leaving it (openat2 RESOLVE_BENEATH; without
 *  openat2, symlinks are refused). Returns the fd or -1 with errno. */
int gw_open_beneath(int dirfd, const char *rel);

/** Creates a cache of at most `max_entries` files (0 disables it), keeping files up to
 *  `max_inline` bytes in memory, re-validated every `validity_ms`. */
gw_file_cache_t *gw_file_cache_new(uint32_t max_entries, uint32_t max_inline, uint32_t validity_ms);
void gw_file_cache_free(gw_file_cache_t *c);

/** Takes a reference on an opened regular file, or NULL (disabled, or not cached); the caller
 *  then opens it itself and may offer it with gw_file_cache_put. */
gw_file_entry_t *gw_file_cache_get(gw_file_cache_t *c, int root_fd, const char *rel, uint64_t now_ms);

/** Adds an opened regular file (the cache takes the fd) and returns a referenced entry, or NULL
 *  when the cache is disabled (the fd is then left to the caller). */
gw_file_entry_t *gw_file_cache_put(gw_file_cache_t *c, int root_fd, const char *rel, int fd,
                                   const struct stat *st, const char *mime, uint64_t now_ms);

/** How long (ms) a look-up may be trusted before it is made again. */
uint32_t gw_file_cache_validity_ms(const gw_file_cache_t *c);

/** Drops a reference taken by get/put. */
void gw_file_cache_release(gw_file_cache_t *c, gw_file_entry_t *e);

/** Fills etag (strong, from inode, size and mtime) and last_modified of an entry. */
void gw_file_entry_validators(gw_file_entry_t *e);

#endif
