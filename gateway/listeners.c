/* Listening sockets. See listeners.h. */
#include "listeners.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "upgrade.h"

bool gw_listen_same(const gw_listen_t *a, const gw_listen_t *b)
{
    if (a->tls != b->tls || a->admin != b->admin || strcmp(a->unix_path, b->unix_path) != 0) return false;
    if (a->unix_path[0]) return true;
    return a->addr.sin6_port == b->addr.sin6_port &&
           memcmp(&a->addr.sin6_addr, &b->addr.sin6_addr, sizeof(a->addr.sin6_addr)) == 0;
}

bool gw_listen_is_wildcard(const struct in6_addr *a)
{
    static const uint8_t v4_any[16] = {[10] = 0xff, [11] = 0xff};
    return IN6_IS_ADDR_UNSPECIFIED(a) || memcmp(a->s6_addr, v4_any, sizeof(v4_any)) == 0;
}

bool gw_listen_overlap(const gw_listen_t *a, const gw_listen_t *b)
{
    if (a->unix_path[0] || b->unix_path[0]) return strcmp(a->unix_path, b->unix_path) == 0;
    if (a->addr.sin6_port != b->addr.sin6_port || !a->addr.sin6_port) return false; /* 0: any free port */
    return gw_listen_is_wildcard(&a->addr.sin6_addr) || gw_listen_is_wildcard(&b->addr.sin6_addr) ||
           memcmp(&a->addr.sin6_addr, &b->addr.sin6_addr, sizeof(a->addr.sin6_addr)) == 0;
}

static int open_tcp(const gw_listen_t *l)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1, zero = 0, defer = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)); /* [::] takes IPv4 too */
    if (bind(fd, (const struct sockaddr *)&l->addr, sizeof(l->addr)) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* accepted sockets inherit it */
    /* wake us only when the request bytes are there, so accept is followed by a useful read */
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
    return fd;
}

/* A socket file nobody listens on (left by a crash) is removed; a live one is an error. */
static int clear_stale(const struct sockaddr_un *un)
{
    struct stat st;
    if (lstat(un->sun_path, &st) != 0) return 0;
    if (!S_ISSOCK(st.st_mode)) return -EEXIST;
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return -errno;
    int live = connect(probe, (const struct sockaddr *)un, sizeof(*un)) == 0;
    close(probe);
    if (live) return -EADDRINUSE;
    return unlink(un->sun_path) == 0 ? 0 : -errno;
}

static int open_unix(const gw_listen_t *l)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", l->unix_path);
    int rc = clear_stale(&un);
    if (rc < 0) return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (const struct sockaddr *)&un, sizeof(un)) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int fcntl_dup(int fd)
{
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return d < 0 ? -errno : d;
}

/* A socket handed over by the process this one upgrades (upgrade.h), or a new one. When fewer were
 * handed over than there are workers, workers share them: binding anew could need a privilege the
 * process no longer has. */
static int open_one(const gw_listen_t *l, unsigned i, const int *fds, unsigned *inherited)
{
    int fd = gw_upgrade_take(l);
    if (fd >= 0) {
        ++*inherited;
        return fd;
    }
    if (*inherited) return fcntl_dup(fds[i % *inherited]);
    if (l->unix_path[0]) return i == 0 ? open_unix(l) : fcntl_dup(fds[0]);
    return open_tcp(l);
}

int gw_listen_open_all(const gw_listen_t *l, unsigned workers, int *fds)
{
    unsigned inherited = 0;
    for (unsigned i = 0; i < workers; i++) {
        fds[i] = open_one(l, i, fds, &inherited);
        if (fds[i] < 0) {
            int e = fds[i];
            while (i-- > 0) close(fds[i]);
            if (l->unix_path[0] && !inherited && e != -EADDRINUSE && e != -EEXIST) gw_listen_unlink(l);
            return e;
        }
    }
    return 0;
}

void gw_listen_unlink(const gw_listen_t *l)
{
    if (l->unix_path[0]) unlink(l->unix_path);
}
