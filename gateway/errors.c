/* The error table and status texts. See errors.h. */
#include "errors.h"

#include <stddef.h>

const char gw_err_connect_refused[] = "connection refused by backend";
const char gw_err_unreachable[] = "backend unreachable";
const char gw_err_dns[] = "backend name did not resolve";
const char gw_err_connect_timeout[] = "timed out connecting to backend";
const char gw_err_io_timeout[] = "backend timed out";
const char gw_err_backend_closed[] = "backend closed the connection prematurely";
const char gw_err_bad_response[] = "backend sent an invalid response";
const char gw_err_tls[] = "TLS handshake with backend failed";
const char gw_err_client_closed[] = "client closed the connection";
const char gw_err_body_too_large[] = "request body too large";
const char gw_err_bad_request_body[] = "malformed request body framing";
const char gw_err_no_memory[] = "out of memory";
const char gw_err_internal[] = "internal error";

static const struct {
    const char *err;
    int status;
    const char *label;
} error_table[] = {
    /* refused/unreachable -> 503 as Ferron does; timeout -> 504; a broken backend -> 502 */
    {gw_err_connect_refused, 503, "connect_refused"},
    {gw_err_unreachable, 503, "unreachable"},
    {gw_err_dns, 503, "dns"},
    {gw_err_connect_timeout, 504, "connect_timeout"},
    {gw_err_io_timeout, 504, "timeout"},
    {gw_err_backend_closed, 502, "backend_closed"},
    {gw_err_bad_response, 502, "bad_response"},
    {gw_err_tls, 502, "tls"},
    {gw_err_client_closed, 499, "client_closed"},
    {gw_err_body_too_large, 413, "body_too_large"},
    {gw_err_bad_request_body, 400, "bad_request_body"},
    {gw_err_no_memory, 500, "no_memory"},
    {gw_err_internal, 500, "internal"},
};

int gw_error_status(const char *err)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].err == err) return error_table[i].status;
    return 502;
}

const char *gw_error_label(const char *err)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].err == err) return error_table[i].label;
    return "unknown";
}

static const struct {
    int status;
    const char *reason;
    const char *description;
} status_table[] = {
    {100, "Continue", NULL},
    {101, "Switching Protocols", NULL},
    {103, "Early Hints", NULL},
    {200, "OK", NULL},
    {201, "Created", NULL},
    {202, "Accepted", NULL},
    {204, "No Content", NULL},
    {206, "Partial Content", NULL},
    {301, "Moved Permanently", NULL},
    {302, "Found", NULL},
    {303, "See Other", NULL},
    {304, "Not Modified", NULL},
    {307, "Temporary Redirect", NULL},
    {308, "Permanent Redirect", NULL},
    {400, "Bad Request", "The request you made is invalid."},
    {401, "Unauthorized", "You need to authenticate yourself in order to access the requested file."},
    {403, "Forbidden", "You don't have access to the requested resource."},
    {404, "Not Found", "The requested resource wasn't found. Double-check the URL if entered manually."},
    {405, "Method Not Allowed", "The request method is not allowed for this resource."},
    {406, "Not Acceptable", "The server couldn't find a response matching the acceptable formats."},
    {407, "Proxy Authentication Required", "You need to authenticate yourself to use this proxy."},
    {408, "Request Timeout", "The server timed out waiting for the request."},
    {409, "Conflict", "The request conflicts with the current state of the server."},
    {410, "Gone", "The requested resource is no longer available."},
    {411, "Length Required", "The request needs a Content-Length header."},
    {412, "Precondition Failed", "A precondition of the request wasn't met."},
    {413, "Content Too Large", "The request body is larger than the server accepts."},
    {414, "URI Too Long", "The requested URL is too long."},
    {415, "Unsupported Media Type", "The request body's media type is not supported."},
    {416, "Range Not Satisfiable", "The requested range can't be satisfied."},
    {417, "Expectation Failed", "The expectation given in the Expect header can't be met."},
    {421, "Misdirected Request", "The request was sent to a server that can't answer it."},
    {429, "Too Many Requests", "You made too many requests. Try again later."},
    {431, "Request Header Fields Too Large", "The request's header fields are too large."},
    {499, "Client Closed Request", NULL},
    {500, "Internal Server Error", "The server encountered an unexpected error."},
    {501, "Not Implemented", "The server doesn't support the functionality required by the request."},
    {502, "Bad Gateway", "The server, acting as a gateway, received an invalid response from the backend."},
    {503, "Service Unavailable", "The service is temporarily unavailable. Try again later."},
    {504, "Gateway Timeout", "The server, acting as a gateway, timed out waiting for the backend."},
    {505, "HTTP Version Not Supported", "The server doesn't support the HTTP version used in the request."},
};

static int status_index(int status)
{
    for (size_t i = 0; i < sizeof(status_table) / sizeof(status_table[0]); i++)
        if (status_table[i].status == status) return (int)i;
    return -1;
}

const char *gw_status_reason(int status)
{
    int i = status_index(status);
    return i >= 0 ? status_table[i].reason : "Unknown";
}

const char *gw_status_description(int status)
{
    int i = status_index(status);
    return i >= 0 && status_table[i].description ? status_table[i].description
                                                 : "No description found for the status code.";
}
