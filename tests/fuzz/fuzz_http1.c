/*
 * libFuzzer target for the HTTP/1.1 parser: request and response heads (plus framing on success)
 * and the chunked decoder. Besides memory errors it checks properties the callers rely on:
 * a complete head is never reported for a prefix of it, returned slices stay inside the input, and
 * the chunked decoder gives the same result whether the input arrives at once or in pieces.
 */
#include "http1_parser.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_HDRS 16

static const gw_h1_limits_t limits = {
    .max_head_bytes = 4096, .max_headers = MAX_HDRS, .max_target_bytes = 1024};

static void require(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "property violated: %s\n", what);
        abort();
    }
}

static bool inside(gw_slice_t s, const char *buf, size_t len)
{
    return s.len == 0 || (s.base >= buf && s.base + s.len <= buf + len);
}

static void check_headers(const gw_header_t *h, size_t n, const char *buf, size_t len)
{
    require(n <= MAX_HDRS, "header count within limit");
    for (size_t i = 0; i < n; i++)
        require(h[i].name.len > 0 && inside(h[i].name, buf, len) && inside(h[i].value, buf, len),
                "header slices inside the head");
}

static void fuzz_request(const char *buf, size_t len)
{
    gw_header_t hdrs[MAX_HDRS];
    gw_h1_request_head_t req = {.headers = hdrs};
    int rc = gw_h1_parse_request(buf, len, &req, &limits);
    require(rc == 0 || rc == -400 || rc == -414 || rc == -431 || rc == -505 || (rc > 0 && (size_t)rc <= len),
            "request result in range");
    if (rc <= 0) return;
    require((size_t)rc <= limits.max_head_bytes, "head within max_head_bytes");
    require(inside(req.method, buf, (size_t)rc) && inside(req.target, buf, (size_t)rc), "line slices inside");
    require(req.target.len <= limits.max_target_bytes, "target within limit");
    check_headers(hdrs, req.num_headers, buf, (size_t)rc);

    /* Any prefix of a complete head is merely incomplete. */
    gw_header_t scratch_hdrs[MAX_HDRS];
    gw_h1_request_head_t scratch = {.headers = scratch_hdrs};
    require(gw_h1_parse_request(buf, (size_t)rc - 1, &scratch, &limits) == 0, "prefix rc-1 incomplete");
    require(gw_h1_parse_request(buf, (size_t)rc / 2, &scratch, &limits) == 0, "prefix rc/2 incomplete");

    gw_h1_framing_t f;
    int frc = gw_h1_request_framing(&req, &f);
    require(frc == 0 || frc == -400 || frc == -417 || frc == -501, "framing result in range");
    if (frc == 0) require(inside(f.host, buf, len) && f.body != GW_BODY_CLOSE, "request framing sane");
    for (size_t i = 0; frc == 0 && f.host_lower && i < f.host.len; i++)
        require(f.host.base[i] < 'A' || f.host.base[i] > 'Z', "host_lower only without capitals");
}

static void fuzz_response(const char *buf, size_t len)
{
    gw_header_t hdrs[MAX_HDRS];
    gw_h1_response_head_t res = {.headers = hdrs};
    int rc = gw_h1_parse_response(buf, len, &res, &limits);
    require(rc == 0 || rc == -502 || (rc > 0 && (size_t)rc <= len), "response result in range");
    if (rc <= 0) return;
    require(res.status >= 100 && res.status <= 999, "status in range");
    require(inside(res.reason, buf, (size_t)rc), "reason inside");
    check_headers(hdrs, res.num_headers, buf, (size_t)rc);
    gw_h1_framing_t f;
    static const char *methods[] = {"GET", "HEAD", "CONNECT"};
    for (size_t i = 0; i < 3; i++) {
        int frc = gw_h1_response_framing(&res, (gw_slice_t){methods[i], strlen(methods[i])}, &f);
        require(frc == 0 || frc == -502, "response framing result in range");
    }
}

typedef struct chunk_run {
    long rc;     /* first error, or 0 */
    size_t used; /* input consumed */
    size_t out;  /* data produced */
    bool done;
} chunk_run_t;

/* Decodes `in` in pieces of `step` bytes into a heap copy; the data goes to `data`. */
static chunk_run_t run_chunked(const char *in, size_t len, size_t step, char *data)
{
    chunk_run_t run = {0};
    gw_chunked_decoder_t d = {0};
    char *copy = malloc(len ? len : 1);
    memcpy(copy, in, len);
    for (size_t pos = 0; pos < len && !d.done;) {
        size_t n = len - pos < step ? len - pos : step, out = n;
        long rc = gw_chunked_decode(&d, copy + pos, &out, 64, 1u << 16);
        if (rc < 0) {
            run.rc = rc;
            break;
        }
        require((size_t)rc <= n && out <= (size_t)rc && (d.done || (size_t)rc == n), "decode result sane");
        require(d.done || memcmp(copy + pos + rc, in + pos + rc, n - (size_t)rc) == 0, "leftover untouched");
        memcpy(data + run.out, copy + pos, out);
        run.out += out;
        run.used += (size_t)rc;
        pos += (size_t)rc;
        if ((size_t)rc < n) break;
    }
    run.done = d.done;
    free(copy);
    return run;
}

static void fuzz_chunked(const char *buf, size_t len)
{
    char *a = malloc(len + 1), *b = malloc(len + 1);
    chunk_run_t whole = run_chunked(buf, len, len ? len : 1, a);
    size_t step = len ? (unsigned char)buf[0] % 7 + 1 : 1;
    chunk_run_t parts = run_chunked(buf, len, step, b);
    require(whole.rc == parts.rc && whole.done == parts.done, "same outcome in pieces");
    if (whole.rc == 0)
        require(whole.used == parts.used && whole.out == parts.out && memcmp(a, b, whole.out) == 0,
                "same data in pieces");
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy, so that ASan catches any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    fuzz_request(buf, size);
    fuzz_response(buf, size);
    fuzz_chunked(buf, size);
    /* Many seeds are a request head followed by a chunked body; decode that body too. */
    const char *body = memmem(buf, size, "\r\n\r\n", 4);
    if (body) fuzz_chunked(body + 4, size - (size_t)(body + 4 - buf));
    free(buf);
    return 0;
}
