/* PCRE2 wrapper. See regex.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

struct gw_regex {
    pcre2_code *code;
};

static void *make_match_data(size_t size)
{
    (void)size;
    return pcre2_match_data_create(32, NULL);
}

static void free_match_data(void *p)
{
    pcre2_match_data_free(p);
}

/* The worker's match buffer (32 groups: more are matched but not reported). */
static pcre2_match_data *match_data(void)
{
    return gw_policy_slot(GW_SLOT_MATCH_DATA, 0, make_match_data, free_match_data);
}

gw_regex_t *gw_regex_compile(const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!c) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "bad regex at offset %zu: %s", (size_t)off, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* without JIT (an unsupported CPU) it is interpreted */
    gw_regex_t *re = malloc(sizeof(*re));
    if (!re) {
        pcre2_code_free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    re->code = c;
    return re;
}

void gw_regex_free(gw_regex_t *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

bool gw_regex_match(const gw_regex_t *re, const char *s, size_t len)
{
    pcre2_match_data *md = match_data();
    if (!md) return false;
    return pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0;
}

int gw_regex_replace(const gw_regex_t *re, const char *s, size_t len, const char *repl, char *out,
                     size_t *outlen)
{
    pcre2_match_data *md = match_data();
    if (!md) return -2;
    if (pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, NULL) < 0) return 0;
    PCRE2_SIZE n = *outlen;
    int rc = pcre2_substitute(re->code, (PCRE2_SPTR)s, len, 0,
                              PCRE2_SUBSTITUTE_MATCHED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                                  PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_UNKNOWN_UNSET,
                              md, NULL, (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out, &n);
    if (rc == PCRE2_ERROR_NOMEMORY) {
        *outlen = n;
        return -1;
    }
    if (rc < 0) return -2;
    *outlen = n;
    return rc > 0 ? 1 : 0;
}
