/* The registry of stable identities. See config_ids.h. */
#include "config_ids.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ident {
    char *key;
    size_t len;
    uint64_t hash;
    uint32_t id;
} ident_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ident_t *slots; /* open addressing, power-of-two size, at most half full */
static size_t slot_cap, used;
static uint32_t next_id;

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static bool grow(void)
{
    size_t ncap = slot_cap ? slot_cap * 2 : 64;
    ident_t *ns = calloc(ncap, sizeof(*ns));
    if (!ns) return false;
    for (size_t i = 0; i < slot_cap; i++) {
        if (!slots[i].key) continue;
        size_t j = slots[i].hash & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = slots[i];
    }
    free(slots);
    slots = ns;
    slot_cap = ncap;
    return true;
}

uint32_t gw_identity_of(const void *key, size_t len)
{
    uint64_t h = hash_bytes(key, len);
    pthread_mutex_lock(&lock);
    uint32_t id = UINT32_MAX;
    if ((used + 1) * 2 > slot_cap && !grow()) goto out;
    size_t i = h & (slot_cap - 1);
    for (; slots[i].key; i = (i + 1) & (slot_cap - 1))
        if (slots[i].hash == h && slots[i].len == len && memcmp(slots[i].key, key, len) == 0) {
            id = slots[i].id;
            goto out;
        }
    char *copy = malloc(len ? len : 1);
    if (!copy) goto out;
    memcpy(copy, key, len);
    slots[i] = (ident_t){copy, len, h, next_id};
    id = next_id++;
    used++;
out:
    if (id == UINT32_MAX) id = next_id++; /* without memory: a fresh id (state not shared) */
    pthread_mutex_unlock(&lock);
    return id;
}

uint32_t gw_identity_target(const gw_target_t *t)
{
    char buf[2048];
    static const char proto_tag[] = {[GW_PROTO_HTTP1] = ' ', [GW_PROTO_H2] = '2', [GW_PROTO_H2C] = 'c',
                                     [GW_PROTO_AUTO] = 'a'};
    /* HTTP/1.1 targets keep the key they always had; HTTP/2 ones never share a pool with them */
    int n = t->proto == GW_PROTO_HTTP1
                ? snprintf(buf, sizeof(buf), "t%c%s", t->insecure ? '!' : ' ', t->url)
                : snprintf(buf, sizeof(buf), "t%c%c%s", t->insecure ? '!' : ' ', proto_tag[t->proto], t->url);
    return gw_identity_of(buf, n < 0 ? 0 : (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

uint32_t gw_identity_list(const gw_target_list_t *l)
{
    size_t cap = 64 + (l->name ? strlen(l->name) : 0) + (l->hash_name ? strlen(l->hash_name) : 0);
    for (size_t i = 0; i < l->count; i++) cap += strlen(l->items[i]->url) + 16;
    char *buf = malloc(cap);
    if (!buf) return gw_identity_of("", 0);
    size_t n = (size_t)snprintf(buf, cap, "l%s\n%d %d %s\n", l->name ? l->name : "", (int)l->balance,
                                (int)l->hash_key, l->hash_name ? l->hash_name : "");
    for (size_t i = 0; i < l->count && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%c%s %u\n", l->items[i]->insecure ? '!' : ' ', l->items[i]->url,
                              l->weights[i]);
    uint32_t id = gw_identity_of(buf, n < cap ? n : cap - 1);
    free(buf);
    return id;
}

void gw_identity_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < slot_cap; i++) free(slots[i].key);
    free(slots);
    slots = NULL;
    slot_cap = used = 0;
    pthread_mutex_unlock(&lock);
}
