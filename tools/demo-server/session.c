/*
 * session.c - one demo-server connection: TLS handshake, read one HTTP
 * request (headers only, at most DS_REQ_MAX bytes), answer with the server's
 * name and whether the handshake resumed, close, and log one line:
 *
 *   conn id=C1-7 server=S1 resumed=1 version=TLSv1.3
 *
 * id is the client's X-Probe-Id header (hsmkeys-probe sends it), so tests
 * join the server's view with the client's connection by connection.
 *
 * Threat: the request is untrusted: bounded size, I/O timeout on the socket,
 * the id reduced to [A-Za-z0-9._-] before it is logged.
 */
#include "server.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#define DS_REQ_MAX 8192
#define DS_ID_MAX  48

static void request_id(const char *req, char id[DS_ID_MAX])
{
    strcpy(id, "-");
    const char *p = req;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, "X-Probe-Id:", 11))
            continue;
        p += 11;
        while (*p == ' ' || *p == '\t') p++;
        size_t j = 0;
        while (*p && *p != '\r' && *p != '\n' && j + 1 < DS_ID_MAX) {
            unsigned char ch = (unsigned char)*p++;
            id[j++] = (isalnum(ch) || ch == '.' || ch == '_' || ch == '-') ? (char)ch : '_';
        }
        id[j ? j : 1] = '\0';
        return;
    }
}

/* Read until the end of the headers.  0 ok, -1 error/oversize. */
static int read_request(SSL *ssl, char *buf)
{
    size_t have = 0;
    while (have < DS_REQ_MAX - 1) {
        int n = SSL_read(ssl, buf + have, (int)(DS_REQ_MAX - 1 - have));
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

void ds_serve(ds_server *s, int fd)
{
    const ds_opts *o = s->o;
    struct timeval tv = { .tv_sec = o->timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char req[DS_REQ_MAX], id[DS_ID_MAX] = "-";
    SSL *ssl = SSL_new(s->ctx);
    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1)
        goto out; /* scanners, aborted handshakes: nothing to log */
    int resumed = SSL_session_reused(ssl);
    const char *version = SSL_get_version(ssl);
    if (read_request(ssl, req) == 0) {
        request_id(req, id);
        char body[256], resp[512];
        int bl = snprintf(body, sizeof body, "server: %s\nresumed: %s\nprotocol: %s\n",
                          o->name, resumed ? "yes" : "no", version);
        int rl = snprintf(resp, sizeof resp,
                          "HTTP/1.1 200 OK\r\nX-Server: %s\r\nContent-Type: text/plain\r\n"
                          "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                          o->name, bl, body);
        if (rl > 0 && (size_t)rl < sizeof resp)
            SSL_write(ssl, resp, rl);
    }
    SSL_shutdown(ssl);
    pthread_mutex_lock(&s->lock);
    s->served++;
    s->resumed += (unsigned long)resumed;
    fprintf(s->log, "conn id=%s server=%s resumed=%d version=%s\n", id, o->name, resumed, version);
    fflush(s->log);
    pthread_mutex_unlock(&s->lock);
out:
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
}
