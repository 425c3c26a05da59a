/*
 * Errors that happen asynchronously (connect refused, timeouts, a backend that breaks) are pointers
 * to these exported constant strings, compared by pointer (h2o's errstr idea). One table maps each
 * to the status code the client sees and the text the error log prints.
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

extern const char gw_err_connect_refused[];
extern const char gw_err_unreachable[];
extern const char gw_err_dns[];
extern const char gw_err_connect_timeout[];
extern const char gw_err_io_timeout[];
extern const char gw_err_backend_closed[];
extern const char gw_err_bad_response[];
extern const char gw_err_tls[];
extern const char gw_err_client_closed[];
extern const char gw_err_body_too_large[];
extern const char gw_err_bad_request_body[];
extern const char gw_err_no_memory[];
extern const char gw_err_internal[];

/** Status code for an async error (502 for an unknown pointer). */
int gw_error_status(const char *err);

/** Short label for metrics and logs ("connect_refused", ...). */
const char *gw_error_label(const char *err);

/** Reason phrase of a status code ("Not Found"); "Unknown" for codes without one. */
const char *gw_status_reason(int status);

/** Fixed description shown on the built-in error page of `status`. */
const char *gw_status_description(int status);

#endif
