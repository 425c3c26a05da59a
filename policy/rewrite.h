/*
 * rewriteMap (Ferron 1.x): regex rewrites of the request URL (normalised path and query) before
 * nonStandardCodes and the handlers. Rules run in order, each on the output of the previous one;
 * `last` stops after a rule that matched; `isNotFile`/`isNotDirectory` skip a rule when the current
 * path names an existing file/directory under wwwroot. The result is normalised again (with
 * `allowDoubleSlashes` of the last rule applied). The route is not chosen again: a rewrite changes
 * what the handlers of this route see, as in Ferron.
 */
#ifndef GW_POLICY_REWRITE_H
#define GW_POLICY_REWRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "handler.h"
#include "regex.h"

typedef struct gw_rewrite_rule {
    gw_regex_t *re;
    const char *replacement;
    bool is_not_file;
    bool is_not_dir;
    bool allow_double_slashes;
    bool last;
} gw_rewrite_rule_t;

typedef struct gw_rewrite {
    gw_rewrite_rule_t *rules;
    size_t count;
    bool log; /**< enableRewriteLogging */
} gw_rewrite_t;

/**
 * Runs the rules on url[0..len) ("path" or "path?query"). `root_fd` (-1: none) is the wwwroot the
 * file tests look in. Returns 0 when nothing matched, 1 with the new URL in *out (arena) and the
 * double-slash choice in *double_slashes, or 500 when memory ran out.
 */
int gw_rewrite_apply(const gw_rewrite_t *rw, int root_fd, gw_arena_t *arena, const char *url, size_t len,
                     gw_slice_t *out, bool *double_slashes);

/** The rewrite stage: rewrites req->path/query in place (400 when the result is not a valid path). */
gw_handler_result_t gw_rewrite_run(const gw_rewrite_t *rw, gw_req_t *req);

#endif
