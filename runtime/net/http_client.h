/*
 * http_client.h -- a small blocking HTTP/1.0 GET client, for reading a
 * notification log served by another process (lua/cairn/remote_log.lua).
 * No Lua. Only http:// URLs; one request per connection; the whole response
 * is read to EOF under one deadline and a size cap.
 */
#ifndef CAIRN_HTTP_CLIENT_H
#define CAIRN_HTTP_CLIENT_H

#include <stddef.h>

/** A response; every pointer is owned by it (cairn_http_response_free). */
typedef struct cairn_http_response {
    int status;          /**< e.g. 200 */
    char *head;          /**< the header lines, NUL-terminated, "\r\n" between them (no status line) */
    size_t head_len;
    char *body;          /**< the body (NUL-terminated, may hold NULs) */
    size_t body_len;
} cairn_http_response;

/**
 * GET url and read the whole response.
 * @param[in] url "http://HOST[:PORT][/PATH]"; HOST a name, an IPv4 address or [IPv6]
 * @param[in] timeout_s the deadline for everything after name lookup (connect, send, read)
 * @param[in] max_bytes the most response bytes (head and body) accepted
 * @param[out] out the response, on CAIRN_OK only (zeroed otherwise)
 * @param[out] err a message naming the URL on failure
 * @return CAIRN_OK whatever the status code; CAIRN_CONFIG for a URL that is not
 *   an http:// URL this client can send; ETIMEDOUT past the deadline;
 *   EMSGSIZE above max_bytes; EPROTO for a response that is not HTTP (or is
 *   truncated, or chunked); ENOMEM; a connect/lookup errno otherwise (ECONNREFUSED, ...)
 * @note On success the caller owns out and frees it with cairn_http_response_free.
 */
int cairn_http_get(const char *url, double timeout_s, size_t max_bytes, cairn_http_response *out,
                   char *err, size_t errlen) __attribute__((warn_unused_result));

/** Free what a response owns (safe on a zeroed response); it is zeroed again. */
void cairn_http_response_free(cairn_http_response *r);

/**
 * The value of a header (case-insensitive name), copied into buf.
 * @return the value's length, or -1 if there is no such header (or it does not fit)
 */
long cairn_http_header(const cairn_http_response *r, const char *name, char *buf, size_t buflen);

#endif
