/* The plain TCP transport and connection helpers shared by codecs. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acl.h"

static ssize_t tcp_read(gw_conn_t *c, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(c->io.fd, buf, len);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t tcp_writev(gw_conn_t *c, const struct iovec *iov, int n, bool more)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    ssize_t w;
    do
        w = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : w;
}

static ssize_t tcp_sendfile(gw_conn_t *c, int fd, off_t *off, size_t len)
{
    ssize_t w;
    do
        w = sendfile(c->io.fd, fd, off, len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : w;
}

static void tcp_dispose(gw_conn_t *c)
{
    (void)c;
}

const gw_transport_ops_t gw_tcp_transport = {tcp_read, tcp_writev, tcp_sendfile, tcp_dispose, NULL};

void gw_conn_peer_text(const gw_conn_info_t *info, char *buf, size_t len)
{
    gw_ip_text(&info->peer.sin6_addr, buf, len);
}

const struct sockaddr_in6 *gw_conn_local(const gw_conn_info_t *info)
{
    if (info->local_pending) {
        gw_conn_info_t *own = (gw_conn_info_t *)info; /* see request.h */
        struct sockaddr_in6 a;
        socklen_t len = sizeof(a);
        if (getsockname(own->fd, (struct sockaddr *)&a, &len) == 0 && a.sin6_family == AF_INET6)
            own->local = a; /* else the listener's address stays: the best known */
        own->local_pending = false;
    }
    return &info->local;
}
