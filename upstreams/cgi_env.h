/*
 * The one CGI/1.1 environment builder (RFC 3875 §4.1, with the variable list of Ferron's SCGI
 * module, spec §3.3), shared by cgi, fcgi and scgi: each turns the same name/value list into its
 * own form (an envp array, FastCGI PARAMS records, an SCGI netstring). CONTENT_LENGTH comes first,
 * as SCGI requires.
 */
#ifndef GW_CGI_ENV_H
#define GW_CGI_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "request.h"

/** Where the script is, as the handler resolved it. Strings must outlive the request. */
typedef struct gw_cgi_script {
    const char *script_name;     /**< URL path of the script ("/cgi-bin/x.cgi", "/scgi") */
    const char *script_filename; /**< file system path of the script */
    const char *path_info;       /**< the rest of the URL path after the script, "" when none */
    const char *document_root;   /**< wwwroot */
    bool scgi;                   /**< adds SCGI=1 */
    bool redirect_status;        /**< adds REDIRECT_STATUS=200 (php-cgi refuses to run without it) */
} gw_cgi_script_t;

/** Name/value pairs (arena strings); `bytes` is the sum of the name and value lengths. */
typedef struct gw_cgi_env {
    gw_header_t *items;
    size_t count, cap;
    size_t bytes;
} gw_cgi_env_t;

/**
 * Builds the variables for `req` (its body length must be known: CONTENT_LENGTH is 0 without a
 * body). Client headers become HTTP_* (other characters than letters and digits -> '_'; repeats
 * joined with ", ", Cookie with "; "), except Proxy (httpoxy), Content-Length and Content-Type
 * which have their own variables. Returns false without memory.
 */
bool gw_cgi_env_build(gw_req_t *req, const gw_cgi_script_t *s, gw_cgi_env_t *env);

/** Decides whether a file found for a request is a script of the caller (by name or mode). */
typedef bool (*gw_cgi_accept_fn)(const gw_req_t *req, const char *rel, const struct stat *st);

/**
 * Finds the script for req->path below the route's wwwroot, never outside it (every open is
 * RESOLVE_BENEATH): the longest leading part of the decoded path that is a regular file, the rest
 * being PATH_INFO; a directory asked for as a whole is replaced by the first of `index` (a
 * NULL-terminated list) that exists in it. Fills s (script_name, script_filename, path_info,
 * document_root) and *rel (the script relative to the root) when `accept` takes the file.
 * Returns 1 when found, 0 when there is no such script (the next handler runs), or a negative
 * HTTP status (-400 for a path that does not decode, -500 without memory).
 */
int gw_cgi_find_script(gw_req_t *req, gw_cgi_accept_fn accept, const char *const *index, gw_cgi_script_t *s,
                       const char **rel);

/** True when `path` is `prefix` or continues it after a '/' (prefix without trailing slash). */
bool gw_cgi_prefix_match(gw_slice_t path, const char *prefix);

/**
 * Prefix mode (fcgiPath, scgiPath; spec §3.0 and §3.3): SCRIPT_FILENAME = wwwroot (default
 * /nonexistent) + the decoded whole path, SCRIPT_NAME = the prefix, PATH_INFO = the rest.
 * Returns 1, or a negative status (-400 for a bad escape, -500 without memory).
 */
int gw_cgi_locate_by_prefix(gw_req_t *req, const char *prefix, gw_cgi_script_t *s);

/** Appends one variable (strings must outlive the request). */
bool gw_cgi_env_add(gw_arena_t *arena, gw_cgi_env_t *env, const char *name, const char *value);

#endif
