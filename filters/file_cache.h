/*
 * A per-worker cache of opened static files (nginx's open_file_cache, on by default here): the
 * resolved fd, its stat, validators, and the bytes of small files. A cached file costs no open,
 * fstat or close per request, and a small one goes out in the same writev as the head. Entries
 * are re-validated (opened and compared) at most once per `openFileCacheValidity` ms, so a
 * changed file is seen within that time. A response compressed on the fly can be kept on its entry
 * (up to `compressionCacheMaxBytes` per worker) and goes with it when the file changes or is evicted.
 */
#ifndef GW_FILE_CACHE_H
#define GW_FILE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct gw_file_cache gw_file_cache_t;

#define GW_FILE_ENCODINGS 3 /* slots for the content codings of compress.h (identity, gzip, br) */

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
    char *encoded[GW_FILE_ENCODINGS]; /**< static.c: variants compressed on the fly, by gw_encoding_t */
    size_t encoded_len[GW_FILE_ENCODINGS];
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

/** Bytes of compressed variants the cache may hold in all (0: none are kept). */
void gw_file_cache_set_encoded_limit(gw_file_cache_t *c, uint64_t max_bytes);

/** Room left for compressed variants; 0 when the cache is disabled or full. */
uint64_t gw_file_cache_encoded_room(const gw_file_cache_t *c);

/** Keeps `data` (malloc'd, `len` bytes) as variant `slot` of a cached entry; the cache frees it with
 *  the entry. False, and `data` left to the caller, when the entry was retired meanwhile (changed
 *  or evicted), is not cached, already has that variant, or the bytes do not fit. */
bool gw_file_cache_keep_encoded(gw_file_cache_t *c, gw_file_entry_t *e, unsigned slot, char *data,
                                size_t len);

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
