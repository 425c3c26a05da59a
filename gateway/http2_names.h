/*
 * Response header names as HTTP/2 needs them (lower-case, RFC 9113 8.2.1), without a copy per
 * response for the names handlers use: a fixed table of well-known names whose strings live for
 * the whole process, so nghttp2 may keep pointers to them (NGHTTP2_NV_FLAG_NO_COPY_NAME) instead
 * of copying and lower-casing each name of each response.
 */
#ifndef GW_HTTP2_NAMES_H
#define GW_HTTP2_NAMES_H

#include "slice.h"

typedef enum gw_h2_name_kind {
    GW_H2_NAME_OTHER,  /**< not in the table */
    GW_H2_NAME_KNOWN,  /**< a well-known name: use the table's string */
    GW_H2_NAME_DATE,   /**< date: known too, and the codec adds its own when it is missing */
    GW_H2_NAME_HOP,    /**< connection-specific (RFC 9113 8.2.2): never sent over HTTP/2 */
    GW_H2_NAME_LENGTH, /**< content-length */
} gw_h2_name_kind_t;

/** Looks `name` up case-insensitively; for a known name, *lower is the table's lower-case string. */
gw_h2_name_kind_t gw_h2_name_lookup(gw_slice_t name, const char **lower);

#endif
