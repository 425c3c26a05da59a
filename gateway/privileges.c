/* Open-file limit and privilege drop. See privileges.h. */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

void gw_raise_nofile(uint32_t max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t need = (rlim_t)max_connections * 2 + 1024; /* a client and a backend each, files, logs */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need) return;
    struct rlimit want = rl;
    want.rlim_cur = need;
    if (want.rlim_max != RLIM_INFINITY && want.rlim_max < need) want.rlim_max = need; /* root may */
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
    want.rlim_max = rl.rlim_max;
    want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) want.rlim_cur = rl.rlim_cur;
    if (want.rlim_cur < (rlim_t)max_connections + 1024) /* not even the clients fit: say so */
        gw_log_error("warn", "open files are limited to %llu: maxConnections %u needs about %llu",
                     (unsigned long long)want.rlim_cur, max_connections, (unsigned long long)need);
}

static int lookup_group(const char *group, gid_t *gid, char *err, size_t errlen)
{
    char buf[4096];
    struct group gr, *g = NULL;
    if (getgrnam_r(group, &gr, buf, sizeof(buf), &g) != 0 || !g) {
        char *end;
        unsigned long n = strtoul(group, &end, 10);
        if (*group && !*end) {
            *gid = (gid_t)n;
            return 0;
        }
        snprintf(err, errlen, "group: no group named '%s'", group);
        return -1;
    }
    *gid = g->gr_gid;
    return 0;
}

int gw_drop_privileges(const char *user, const char *group, char *err, size_t errlen)
{
    if (!user && !group) return 0;
    if (geteuid() != 0) {
        gw_log_error("warn", "user/group are ignored: the gateway does not run as root");
        return 0;
    }
    char buf[4096];
    struct passwd pw, *p = NULL;
    uid_t uid = 0;
    gid_t gid = 0;
    bool have_gid = false;
    if (user) {
        if (getpwnam_r(user, &pw, buf, sizeof(buf), &p) != 0 || !p) {
            snprintf(err, errlen, "user: no user named '%s'", user);
            return -1;
        }
        uid = p->pw_uid;
        gid = p->pw_gid;
        have_gid = true;
    }
    if (group) {
        if (lookup_group(group, &gid, err, errlen) != 0) return -1;
        have_gid = true;
    }
    if (have_gid && (setgroups(0, NULL) != 0 || setgid(gid) != 0)) {
        snprintf(err, errlen, "group: cannot switch to group %u: %s", (unsigned)gid, strerror(errno));
        return -1;
    }
    if (user && (initgroups(user, gid) != 0 || setuid(uid) != 0)) {
        snprintf(err, errlen, "user: cannot switch to user '%s': %s", user, strerror(errno));
        return -1;
    }
    if (user && setuid(0) == 0) { /* must not be possible any more */
        snprintf(err, errlen, "user: privileges could not be dropped");
        return -1;
    }
    prctl(PR_SET_DUMPABLE, 1); /* setuid cleared it: keep core dumps and leak checks possible */
    gw_log_error("notice", "running as uid %u gid %u", (unsigned)getuid(), (unsigned)getgid());
    return 0;
}
