/* The error table: async errors map to the status a client sees and a label; reasons and pages. */
#include "check.h"
#include "errors.h"

int main(void)
{
    CHECK_EQ_INT(gw_error_status(gw_err_connect_refused), 503);
    CHECK_EQ_INT(gw_error_status(gw_err_unreachable), 503);
    CHECK_EQ_INT(gw_error_status(gw_err_dns), 503);
    CHECK_EQ_INT(gw_error_status(gw_err_connect_timeout), 504);
    CHECK_EQ_INT(gw_error_status(gw_err_io_timeout), 504);
    CHECK_EQ_INT(gw_error_status(gw_err_backend_closed), 502);
    CHECK_EQ_INT(gw_error_status(gw_err_bad_response), 502);
    CHECK_EQ_INT(gw_error_status(gw_err_tls), 502);
    CHECK_EQ_INT(gw_error_status(gw_err_body_too_large), 413);
    CHECK_EQ_INT(gw_error_status(gw_err_bad_request_body), 400);
    /* compared by pointer: an equal string elsewhere is not the same error */
    static const char lookalike[] = "connection refused by backend";
    CHECK_EQ_INT(gw_error_status(lookalike), 502);
    CHECK_STR(gw_error_label(gw_err_connect_timeout), "connect_timeout");
    CHECK_STR(gw_error_label(lookalike), "unknown");
    CHECK_STR(gw_status_reason(404), "Not Found");
    CHECK_STR(gw_status_reason(599), "Unknown");
    CHECK_STR(gw_status_description(599), "No description found for the status code.");
    return check_report("errors");
}
