/*
 * http_client.c -- blocking HTTP/1.0 GET (see http_client.h). No Lua.
 * The socket and the receive buffer are the only resources; each has one
 * owner in cairn_http_get and one release path at its end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "http_client.h"

#define HOST_MAX 255
#define PATH_MAX_LEN 2048

typedef struct url_parts {
    char host[HOST_MAX + 1];
    char port[6];
    char path[PATH_MAX_LEN + 1];
} url_parts;

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int host_char(char c, int bracketed)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')
        return 1;
    return bracketed ? c == ':' : c == '_';
}

/* "http://HOST[:PORT][/PATH]" -> parts; CAIRN_CONFIG with a message otherwise */
static int parse_url(const char *url, url_parts *u, char *err, size_t errlen)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return fail(err, errlen, CAIRN_CONFIG, "'%.200s' is not an http:// URL (only http:// is supported)", url);
    const char *p = url + 7, *host = p, *host_end;
    int bracketed = *p == '[';
    if (bracketed) {
        host = ++p;
        while (*p && *p != ']') p++;
        if (*p != ']') return fail(err, errlen, CAIRN_CONFIG, "'%.200s': unclosed [ in the host", url);
        host_end = p++;
    } else {
        while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#') p++;
        host_end = p;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len > HOST_MAX) return fail(err, errlen, CAIRN_CONFIG, "'%.200s': bad host", url);
    for (const char *h = host; h < host_end; h++)
        if (!host_char(*h, bracketed)) return fail(err, errlen, CAIRN_CONFIG, "'%.200s': bad host", url);
    memcpy(u->host, host, host_len);
    u->host[host_len] = '\0';
    strcpy(u->port, "80");
    if (*p == ':') {
        const char *port = ++p;
        long n = 0;
        while (*p >= '0' && *p <= '9' && p - port < 5) n = n * 10 + (*p++ - '0');
        if (p == port || n < 1 || n > 65535 || (*p && *p != '/' && *p != '?' && *p != '#'))
            return fail(err, errlen, CAIRN_CONFIG, "'%.200s': bad port", url);
        snprintf(u->port, sizeof u->port, "%hu", (unsigned short)n);
    }
    if (*p && *p != '/' && *p != '?' && *p != '#')
        return fail(err, errlen, CAIRN_CONFIG, "'%.200s': bad host", url);
    size_t path_len = strcspn(p, "#");
    if (path_len > PATH_MAX_LEN - 1) return fail(err, errlen, CAIRN_CONFIG, "'%.200s': path too long", url);
    for (size_t i = 0; i < path_len; i++)
        if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
            return fail(err, errlen, CAIRN_CONFIG, "'%.200s': the path must be printable ASCII without spaces", url);
    size_t at = 0;
    if (*p != '/') u->path[at++] = '/';
    memcpy(u->path + at, p, path_len);
    u->path[at + path_len] = '\0';
    return CAIRN_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for events on fd until the deadline: 0, ETIMEDOUT or an errno. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return ETIMEDOUT;
        struct pollfd pfd = { .fd = fd, .events = events, .revents = 0 };
        int n = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (n > 0) return 0;
        if (n == 0) continue; /* the loop checks the deadline */
        if (errno != EINTR) return errno;
    }
}

/* Connect to the first address that answers; *fd_out is the socket on success. */
static int connect_to(const url_parts *u, double deadline, double timeout_s, int *fd_out, const char *url,
                      char *err, size_t errlen)
{
    struct addrinfo hints, *list = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(u->host, u->port, &hints, &list);
    if (gai != 0) {
        int rc = gai == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return fail(err, errlen, rc, "%.300s: cannot find host %s: %s", url, u->host,
                    gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    }
    int rc = ECONNREFUSED;
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            rc = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) rc = 0;
        else if (errno != EINPROGRESS) rc = errno;
        else if ((rc = wait_fd(fd, POLLOUT, deadline)) == 0) {
            int so = 0;
            socklen_t len = sizeof so;
            rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0 ? errno : so;
        }
        if (rc == 0) {
            *fd_out = fd;
            break;
        }
        close(fd);
        if (rc == ETIMEDOUT) break;
    }
    freeaddrinfo(list);
    if (rc == ETIMEDOUT) return fail(err, errlen, rc, "%.300s: no connection within %g s", url, timeout_s);
    if (rc) return fail(err, errlen, rc, "%.300s: cannot connect: %s", url, strerror(rc));
    return 0;
}

static int send_all(int fd, const char *buf, size_t len, double deadline)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc) return rc;
    }
    return 0;
}

/* Read to EOF into *buf (owned by the caller, also on failure). */
static int read_all(int fd, double deadline, size_t max_bytes, char **buf, size_t *len)
{
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (cap - *len < 4096) {
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > max_bytes + 4097) ncap = max_bytes + 4097; /* room to see one byte too many, and a NUL */
            if (ncap <= cap) return EMSGSIZE;
            char *nbuf = realloc(*buf, ncap);
            if (!nbuf) return ENOMEM;
            *buf = nbuf;
            cap = ncap;
        }
        ssize_t n = recv(fd, *buf + *len, cap - *len - 1, 0);
        if (n == 0) break;
        if (n > 0) {
            *len += (size_t)n;
            if (*len > max_bytes) return EMSGSIZE;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc) return rc;
    }
    if (!*buf) { /* nothing at all was received: still a string */
        *buf = malloc(1);
        if (!*buf) return ENOMEM;
    }
    (*buf)[*len] = '\0';
    return 0;
}

long cairn_http_header(const cairn_http_response *r, const char *name, char *buf, size_t buflen)
{
    size_t name_len = strlen(name);
    const char *line = r->head;
    while (line && *line) {
        const char *end = strstr(line, "\r\n");
        if (!end) end = line + strlen(line);
        if ((size_t)(end - line) > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < end && (*v == ' ' || *v == '\t')) v++;
            const char *ve = end;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            size_t n = (size_t)(ve - v);
            if (n >= buflen) return -1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return (long)n;
        }
        line = *end ? end + 2 : end;
    }
    return -1;
}

/* Split raw (len bytes, NUL-terminated) into status, head and body; raw's ownership moves to r. */
static int parse_response(char *raw, size_t len, cairn_http_response *r, char *err, size_t errlen, const char *url)
{
    if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || raw[8] != ' ' || raw[9] < '1' || raw[9] > '5' ||
        raw[10] < '0' || raw[10] > '9' || raw[11] < '0' || raw[11] > '9' ||
        (len > 12 && raw[12] != ' ' && raw[12] != '\r')) {
        free(raw);
        return fail(err, errlen, EPROTO, "%.300s: the response is not HTTP", url);
    }
    int status = (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
    char *line_end = strstr(raw, "\r\n");
    char *head_end = line_end ? strstr(line_end, "\r\n\r\n") : NULL;
    if (!line_end || !head_end || (size_t)(head_end - raw) > len) {
        free(raw);
        return fail(err, errlen, EPROTO, "%.300s: the response ends inside its header", url);
    }
    size_t head_len = line_end == head_end ? 0 : (size_t)(head_end - (line_end + 2));
    size_t body_at = (size_t)(head_end + 4 - raw), body_len = len - body_at;
    char *head = malloc(head_len + 1);
    char *body = malloc(body_len + 1);
    if (!head || !body) {
        free(head);
        free(body);
        free(raw);
        return fail(err, errlen, ENOMEM, "%.300s: out of memory", url);
    }
    memcpy(head, line_end + 2, head_len);
    head[head_len] = '\0';
    memcpy(body, raw + body_at, body_len);
    body[body_len] = '\0';
    free(raw);
    r->status = status;
    r->head = head;
    r->head_len = head_len;
    r->body = body;
    r->body_len = body_len;
    char value[64];
    long n = cairn_http_header(r, "transfer-encoding", value, sizeof value);
    if (n >= 0 && strcasecmp(value, "identity") != 0) {
        cairn_http_response_free(r);
        return fail(err, errlen, EPROTO, "%.300s: transfer encoding '%s' is not supported", url, value);
    }
    if (cairn_http_header(r, "content-length", value, sizeof value) >= 0) {
        char *end;
        errno = 0;
        unsigned long long cl = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-') {
            cairn_http_response_free(r);
            return fail(err, errlen, EPROTO, "%.300s: bad Content-Length '%s'", url, value);
        }
        if (cl > r->body_len) {
            size_t got = r->body_len;
            cairn_http_response_free(r);
            return fail(err, errlen, EPROTO, "%.300s: the body is truncated (%zu of %llu bytes)", url, got, cl);
        }
        r->body_len = (size_t)cl;
        r->body[cl] = '\0';
    }
    return CAIRN_OK;
}

int cairn_http_get(const char *url, double timeout_s, size_t max_bytes, cairn_http_response *out,
                   char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    url_parts u;
    int rc = parse_url(url, &u, err, errlen);
    if (rc) return rc;
    char req[PATH_MAX_LEN + HOST_MAX + 200];
    int req_len = snprintf(req, sizeof req,
        "GET %s HTTP/1.0\r\nHost: %s%s%s%s%s\r\nAccept: application/json\r\nUser-Agent: cairn/%s\r\n\r\n",
        u.path, strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "",
        strcmp(u.port, "80") ? ":" : "", strcmp(u.port, "80") ? u.port : "", CAIRN_VERSION_STRING);
    double deadline = now_s() + (timeout_s > 0 ? timeout_s : 0);
    int fd = -1;
    rc = connect_to(&u, deadline, timeout_s, &fd, url, err, errlen);
    if (rc) return rc;
    char *raw = NULL;
    size_t len = 0;
    rc = send_all(fd, req, (size_t)req_len, deadline);
    if (!rc) rc = read_all(fd, deadline, max_bytes, &raw, &len);
    close(fd);
    if (rc) {
        free(raw);
        if (rc == ETIMEDOUT) return fail(err, errlen, rc, "%.300s: no complete response within %g s", url, timeout_s);
        if (rc == EMSGSIZE) return fail(err, errlen, rc, "%.300s: the response is larger than %zu bytes", url, max_bytes);
        return fail(err, errlen, rc, "%.300s: %s", url, strerror(rc));
    }
    return parse_response(raw, len, out, err, errlen, url);
}

void cairn_http_response_free(cairn_http_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}
