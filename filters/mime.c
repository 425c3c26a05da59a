/* File extension -> media type, for static responses. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "static.h"

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"xhtml", "application/xhtml+xml"},   {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},         {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},           {"svg", "image/svg+xml"},
    {"png", "image/png"},                 {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},               {"gif", "image/gif"},
    {"webp", "image/webp"},               {"avif", "image/avif"},
    {"ico", "image/x-icon"},              {"woff", "font/woff"},
    {"woff2", "font/woff2"},              {"ttf", "font/ttf"},
    {"otf", "font/otf"},                  {"pdf", "application/pdf"},
    {"zip", "application/zip"},           {"gz", "application/gzip"},
    {"br", "application/octet-stream"},   {"tar", "application/x-tar"},
    {"wasm", "application/wasm"},         {"mp4", "video/mp4"},
    {"webm", "video/webm"},               {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},                 {"wav", "audio/wav"},
    {"csv", "text/csv; charset=utf-8"},   {"md", "text/markdown; charset=utf-8"},
    {"webmanifest", "application/manifest+json"}, {"map", "application/json"},
};

const char *gw_mime_type(const char *name, size_t len)
{
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == '/') break;
        if (name[i - 1] == '.') {
            dot = name + i;
            break;
        }
    }
    if (!dot) return "application/octet-stream";
    size_t elen = len - (size_t)(dot - name);
    for (size_t i = 0; i < sizeof(mime_types) / sizeof(mime_types[0]); i++)
        if (strlen(mime_types[i].ext) == elen && strncasecmp(dot, mime_types[i].ext, elen) == 0)
            return mime_types[i].type;
    return "application/octet-stream";
}

void gw_http_date(int64_t t, char *buf)
{
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    /* the process never calls setlocale, so %a and %b are the English names HTTP requires */
    strftime(buf, 30, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}
