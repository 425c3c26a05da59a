/* libFuzzer target: the SCGI request encoder round trip. The input is decoded into CGI variables
 * ("NAME=VALUE" lines) and a body (after the first empty line); the variables are built with the
 * environment builder's own gw_cgi_env_add behind CONTENT_LENGTH and SCGI=1, as cgi_env.c orders
 * them, and encoded by gw_scgi_put_netstring. An SCGI request parser written here from the
 * protocol, sharing nothing with the encoder, must read back exactly those variables, in order,
 * with CONTENT_LENGTH first and equal to the body that follows the netstring. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgi_env.h"
#include "scgi.h"

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} pair_t;

/* "<decimal length>:" then that many bytes of NUL-terminated name and value strings, then ','. */
static size_t parse_length(const char *in, size_t n, size_t *len)
{
    size_t i = 0, v = 0;
    if (!n || in[0] < '0' || in[0] > '9') return 0;
    if (in[0] == '0' && n > 1 && in[1] != ':') return 0; /* netstrings have no leading zeros */
    for (; i < n && in[i] >= '0' && in[i] <= '9'; i++) {
        if (v > (SIZE_MAX - 9) / 10) return 0;
        v = v * 10 + (size_t)(in[i] - '0');
    }
    if (i == n || in[i] != ':') return 0;
    *len = v;
    return i + 1;
}

/* Parses an SCGI request; false when it is not one. The body is what follows the netstring. */
static bool parse_scgi(const char *in, size_t n, pair_t *pairs, size_t max, size_t *count, const char **body)
{
    size_t len, start = parse_length(in, n, &len);
    if (!start || len > n - start || len == n - start || in[start + len] != ',') return false;
    const char *p = in + start, *end = p + len;
    *count = 0;
    while (p < end) {
        const char *name_end = memchr(p, '\0', (size_t)(end - p));
        if (!name_end) return false;
        const char *value = name_end + 1;
        const char *value_end = value < end ? memchr(value, '\0', (size_t)(end - value)) : NULL;
        if (!value_end || *count == max) return false;
        pairs[(*count)++] = (pair_t){p, value, (size_t)(name_end - p), (size_t)(value_end - value)};
        p = value_end + 1;
    }
    *body = end + 1;
    return true;
}

static bool pair_is(const pair_t *p, const char *name, size_t name_len, const char *value, size_t value_len)
{
    return p->name_len == name_len && p->value_len == value_len && memcmp(p->name, name, name_len) == 0 &&
           memcmp(p->value, value, value_len) == 0;
}

/* Decodes "NAME=VALUE" lines up to the first empty one into env (a NUL inside a field ends that
 * C string, as for every variable the gateway builds); returns where the body starts. */
static size_t decode_variables(gw_arena_t *a, const char *in, size_t n, gw_cgi_env_t *env)
{
    size_t pos = 0;
    while (pos < n) {
        const char *line = in + pos, *nl = memchr(line, '\n', n - pos);
        size_t line_len = nl ? (size_t)(nl - line) : n - pos;
        pos += line_len + (nl ? 1 : 0);
        if (!line_len) break;
        const char *eq = memchr(line, '=', line_len);
        size_t name_len = eq ? (size_t)(eq - line) : line_len;
        const char *value = eq ? eq + 1 : line + line_len;
        char *name_copy = gw_arena_strndup(a, line, name_len);
        char *value_copy = gw_arena_strndup(a, value, (size_t)(line + line_len - value));
        if (!gw_cgi_env_add(a, env, name_copy, value_copy)) __builtin_trap();
    }
    return pos;
}

static void check_round_trip(const gw_cgi_env_t *env, const char *body, size_t body_len)
{
    size_t room = gw_scgi_netstring_size(env) + body_len;
    char *out = malloc(room); /* exact size: ASan reports any write past what the size promised */
    pair_t *pairs = malloc((env->count + 1) * sizeof(*pairs));
    if (!out || !pairs) __builtin_trap();
    size_t n = gw_scgi_put_netstring(out, env);
    if (n > gw_scgi_netstring_size(env)) __builtin_trap();
    memcpy(out + n, body, body_len); /* the body follows the netstring as it is */
    size_t count;
    const char *parsed_body;
    if (!parse_scgi(out, n + body_len, pairs, env->count + 1, &count, &parsed_body)) __builtin_trap();
    if (count != env->count) __builtin_trap();
    for (size_t i = 0; i < count; i++) {
        const gw_header_t *v = &env->items[i];
        if (!pair_is(&pairs[i], v->name.base, v->name.len, v->value.base, v->value.len)) __builtin_trap();
    }
    char length[24];
    int length_len = snprintf(length, sizeof(length), "%zu", body_len);
    if (!pair_is(&pairs[0], "CONTENT_LENGTH", 14, length, (size_t)length_len)) __builtin_trap();
    if (!pair_is(&pairs[1], "SCGI", 4, "1", 1)) __builtin_trap();
    if ((size_t)(out + n + body_len - parsed_body) != body_len || memcmp(parsed_body, body, body_len) != 0)
        __builtin_trap();
    free(pairs);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gw_chunk_pool_t pool;
    if (!pool.chunk_size) gw_chunk_pool_init(&pool, 16384, 4);
    gw_arena_t a;
    gw_arena_init(&a, &pool);
    gw_cgi_env_t env = {0};
    const char *in = (const char *)data;
    /* the variables come first so that CONTENT_LENGTH can be added in front of them */
    gw_cgi_env_t vars = {0};
    size_t body_at = decode_variables(&a, in, size, &vars);
    size_t body_len = size - body_at;
    if (!gw_cgi_env_add(&a, &env, "CONTENT_LENGTH", gw_arena_printf(&a, "%zu", body_len)) ||
        !gw_cgi_env_add(&a, &env, "SCGI", "1"))
        __builtin_trap();
    for (size_t i = 0; i < vars.count; i++)
        if (!gw_cgi_env_add(&a, &env, vars.items[i].name.base, vars.items[i].value.base)) __builtin_trap();
    check_round_trip(&env, in + body_at, body_len);
    gw_arena_reset(&a);
    return 0;
}
