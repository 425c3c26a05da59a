/*
 * CGI/1.1 programs (`loadModules: [cgi]`): anything under /cgi-bin/ or with an extension in
 * `cgiScriptExtensions`, found below wwwroot (never outside it), PATH_INFO by walking up the path,
 * index.php / index.cgi for directories. A file with an exec bit runs itself, otherwise the
 * interpreter of its extension (spec §3.0); the working directory is the script's. Its environment:
 * the CGI/1.1 variables, the environmentVariables of the request's config (so a reload changes them
 * for the next program; never overriding a CGI variable) and PATH.
 * The program is started with posix_spawn in its own process group with stdin/stdout/stderr as
 * non-blocking pipes in the worker's loop: the request body is streamed to stdin, stdout is parsed
 * by the shared CGI response parser as it arrives and streamed to the client with back-pressure,
 * stderr goes to the error log. Silence longer than proxyReadTimeout answers 504 (or aborts);
 * when the request ends early the process group is killed; every child is reaped through a pidfd
 * watched in the loop. At most cgiMaxProcesses programs run at once (503 above).
 */
#ifndef GW_CGI_H
#define GW_CGI_H

#include "handler.h"

/** The `cgi` module's handler. */
extern const gw_handler_t gw_cgi_handler;

#endif
