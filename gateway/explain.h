/*
 * `gateway --explain -c FILE METHOD URL [--ip A] [--header "Name: value"]...`: what a request would
 * meet, printed as plain text: the normalised path, the host and location it is routed to (with
 * their place in the file), each policy stage with its verdict where it can be decided offline, and
 * the handler that would answer. Everything goes through the real code: the config loader, the
 * request's path normalisation and routing (gw_req_route), the route's own handler chain, and the
 * policy stages themselves where they only look at the request (client address, access lists,
 * rewrites, nonStandardCodes matching). Nothing listens, connects or changes state.
 */
#ifndef GW_EXPLAIN_H
#define GW_EXPLAIN_H

#include <stdio.h>

/** Runs the command on the arguments after `--explain`; returns the exit code (2: bad arguments,
 *  usage on stderr; 1: bad configuration; 0: explained). */
int gw_explain_main(int argc, char **argv);

/** One line for `--help`. */
void gw_explain_usage(FILE *f);

#endif
