/*
 * libFuzzer target for the cache's header rules (filters/cache_policy.c): the Cache-Control parser,
 * the field-name list matcher used for Vary, and the freshness, storage and reuse decisions fed with
 * what was parsed. Besides memory errors it checks that values stay in their documented ranges,
 * that quoted field lists point inside the input, that a list repeated (one line twice, or "v, v")
 * means the same as once, and that the Vary matcher agrees with a plain reference.
 *
 * Input: byte 0 is the length of a field name to look up (taken from the end of the input), the
 * rest a Cache-Control / Vary value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_policy.h"

#define CC_MAX ((int64_t)1 << 31)

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "property violated: %s\n", what);
        abort();
    }
}

static int inside(gw_slice_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.base >= buf && s.base + s.len <= buf + len);
}

static void check_ranges(const gw_cc_t *cc, const char *buf, size_t len)
{
    const int64_t v[] = {
        cc->max_age,       cc->s_maxage, cc->max_stale, cc->min_fresh, cc->stale_while_revalidate,
        cc->stale_if_error};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        require(v[i] >= -1 && v[i] <= CC_MAX, "delta range");
    require(cc->flags < (GW_CC_INVALID << 1), "known flags only");
    require(inside(cc->fields_no_cache, buf, len) && inside(cc->fields_private, buf, len), "fields inside");
}

static int same_directives(const gw_cc_t *a, const gw_cc_t *b)
{
    return a->flags == b->flags && a->max_age == b->max_age && a->s_maxage == b->s_maxage &&
           a->max_stale == b->max_stale && a->min_fresh == b->min_fresh &&
           a->stale_while_revalidate == b->stale_while_revalidate && a->stale_if_error == b->stale_if_error;
}

/* A value without quotes read twice (two lines, or one "v, v" line) must mean what it means once. */
static void check_repetition(const gw_cc_t *once, gw_slice_t v)
{
    if (memchr(v.base, '"', v.len)) return; /* an open quote would swallow the repetition */
    gw_cc_t twice, joined;
    gw_cc_init(&twice);
    gw_cc_parse(&twice, v);
    gw_cc_parse(&twice, v);
    require(same_directives(once, &twice), "two identical lines mean one");
    char *buf = malloc(v.len * 2 + 2);
    memcpy(buf, v.base, v.len);
    memcpy(buf + v.len, ", ", 2);
    memcpy(buf + v.len + 2, v.base, v.len);
    gw_cc_init(&joined);
    gw_cc_parse(&joined, (gw_slice_t){buf, v.len * 2 + 2});
    require(same_directives(once, &joined), "\"v, v\" means v");
    free(buf);
}

/* Reference for gw_cc_list_has: comma-separated elements, optional whitespace, case-insensitive. */
static int list_has_reference(gw_slice_t list, gw_slice_t name)
{
    size_t i = 0;
    while (i <= list.len) {
        size_t j = i;
        while (j < list.len && list.base[j] != ',')
            j++;
        size_t s = i, e = j;
        while (s < e && (list.base[s] == ' ' || list.base[s] == '\t'))
            s++;
        while (e > s && (list.base[e - 1] == ' ' || list.base[e - 1] == '\t'))
            e--;
        if (name.len && e - s == name.len && strncasecmp(list.base + s, name.base, name.len) == 0) return 1;
        i = j + 1;
    }
    return 0;
}

static void check_decisions(const gw_cc_t *res, const uint8_t *data, size_t size)
{
    int64_t seed = size ? data[size - 1] : 0;
    gw_cache_times_t t = {.date = 1000 + seed,
                          .expires = seed * 7 - 100,
                          .last_modified = seed * 3,
                          .age = seed % 5 ? seed : -1,
                          .request_time = 1000,
                          .response_time = 1001};
    int status = 100 + (int)(seed * 4 % 500);
    bool heuristic;
    int64_t life = gw_cache_lifetime(res, &t, status, &heuristic);
    require(life >= 0, "lifetime not negative");
    require(gw_cache_initial_age(&t) >= 0, "age not negative");
    gw_cc_t req;
    gw_cc_init(&req);
    gw_cc_parse(&req, (gw_slice_t){(const char *)data, size / 2}); /* the same bytes as a request's */
    gw_cache_store_in_t in = {.get = seed & 1,
                              .status = status,
                              .authorization = seed & 2,
                              .vary_star = seed & 4,
                              .has_expires = seed & 8,
                              .has_last_modified = seed & 16,
                              .has_validator = seed & 32};
    require(gw_cache_storable(&req, res, &in) <= GW_STORE_NO_FRESHNESS, "storage verdict in range");
    gw_cache_stored_t st = {.lifetime = life, .age = seed * 11, .res_flags = res->flags};
    require(gw_cache_use(&req, &st) <= GW_USE_VALIDATE, "use verdict in range");
    (void)gw_cache_stale_allowed(res->stale_while_revalidate, seed, res->flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t name_len = data[0] < size - 1 ? data[0] : size - 1;
    gw_slice_t value = {(const char *)data + 1, size - 1};
    gw_slice_t name = {(const char *)data + size - name_len, name_len};

    gw_cc_t cc;
    gw_cc_init(&cc);
    gw_cc_parse(&cc, value);
    check_ranges(&cc, value.base, value.len);
    check_repetition(&cc, value);
    require(gw_cc_list_has(value, name) == list_has_reference(value, name), "Vary list matcher");
    check_decisions(&cc, data, size);
    return 0;
}
