/* dlopen'd modules and the accessor functions of the module ABI. See module.h. */
#include "module_loader.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config_props.h"
#include "request.h"

/* ---- loading ---- */

static gw_handler_result_t module_on_request(const gw_handler_t *self, gw_req_t *req)
{
    const gw_loaded_module_t *m = (const gw_loaded_module_t *)self;
    if (!m->def->handle) return GW_CONTINUE;
    switch (m->def->handle(m->state, (gw_mod_request_t *)req)) {
    case GW_MOD_DONE:
        return GW_DONE;
    case GW_MOD_ERROR:
        return GW_ERROR;
    default:
        return GW_CONTINUE;
    }
}

const char *gw_module_default_dir(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) return "/usr/local/lib/gateway/modules";
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    /* a path that does not fit is cut short and simply not found: no truncation warning wanted */
    int n1 = snprintf(buf, len, "%.*s/modules", (int)(len > 16 ? len - 16 : 0), exe);
    if (n1 < 0 || access(buf, F_OK) != 0)
        snprintf(buf, len, "%.*s/../lib/gateway/modules", (int)(len > 32 ? len - 32 : 0), exe);
    return buf;
}

static int load_entry(gw_loaded_module_t *m, const char *path, char *err, size_t errlen)
{
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl) {
        snprintf(err, errlen, "cannot load module '%s': %s", m->name, dlerror());
        return -1;
    }
    gw_module_entry_fn entry;
    *(void **)&entry = dlsym(m->dl, "gw_module_entry");
    if (!entry) {
        snprintf(err, errlen, "module '%s' (%s) does not export gw_module_entry", m->name, path);
        return -1;
    }
    m->def = entry();
    if (!m->def || m->def->abi_version != GW_MODULE_ABI_VERSION) {
        snprintf(err, errlen, "module '%s' was built for ABI version %u; this gateway has version %u", m->name,
                 m->def ? m->def->abi_version : 0u, GW_MODULE_ABI_VERSION);
        return -1;
    }
    return 0;
}

int gw_module_load(gw_loaded_module_t *m, const char *dir, const char *name, const gw_node_t *global, char *err,
                   size_t errlen)
{
    char dbuf[PATH_MAX], path[PATH_MAX + 80];
    memset(m, 0, sizeof(*m));
    if (strlen(name) >= sizeof(m->name) || strchr(name, '/') || name[0] == '.') {
        snprintf(err, errlen, "invalid module name '%s'", name);
        return -1;
    }
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s.so", dir ? dir : gw_module_default_dir(dbuf, sizeof(dbuf)), name);
    if (load_entry(m, path, err, errlen) != 0) {
        gw_module_unload(m);
        return -1;
    }
    m->handler = (gw_handler_t){m->name, module_on_request};
    if (m->def->init && m->def->init(&m->state, (const gw_mod_config_t *)global, err, errlen) != 0) {
        m->def = NULL; /* no cleanup for a module whose init failed */
        gw_module_unload(m);
        return -1;
    }
    return 0;
}

void gw_module_unload(gw_loaded_module_t *m)
{
    if (m->def && m->def->cleanup) m->def->cleanup(m->state);
    m->def = NULL;
    if (m->dl) dlclose(m->dl);
    m->dl = NULL;
}

/* ---- accessors (exported from the binary for modules) ---- */

#define REQ(r) ((gw_req_t *)(r))

static const char *slice_out(gw_slice_t s, size_t *len)
{
    if (len) *len = s.len;
    return s.base ? s.base : "";
}

const char *gw_mod_method(const gw_mod_request_t *req, size_t *len)
{
    return slice_out(REQ(req)->method, len);
}

const char *gw_mod_path(const gw_mod_request_t *req, size_t *len)
{
    return slice_out(REQ(req)->path, len);
}

const char *gw_mod_query(const gw_mod_request_t *req, size_t *len)
{
    return slice_out(REQ(req)->query, len);
}

const char *gw_mod_header(const gw_mod_request_t *req, const char *name, size_t *len)
{
    const gw_header_t *h = gw_req_header(REQ(req), name);
    return h ? slice_out(h->value, len) : NULL;
}

void *gw_mod_alloc(gw_mod_request_t *req, size_t size)
{
    return gw_arena_alloc(&REQ(req)->arena, size);
}

int gw_mod_add_header(gw_mod_request_t *req, const char *name, const char *value)
{
    gw_req_t *r = REQ(req);
    if (r->res_started) return -1;
    char *n = gw_arena_strndup(&r->arena, name, strlen(name));
    char *v = gw_arena_strndup(&r->arena, value, strlen(value));
    if (!n || !v) return -1;
    for (char *p = n; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32); /* HTTP/2 needs lower-case names */
    return gw_res_add_header(r, (gw_slice_t){n, strlen(n)}, (gw_slice_t){v, strlen(v)}) ? 0 : -1;
}

int gw_mod_respond(gw_mod_request_t *req, int status, const char *content_type, const void *body, size_t len)
{
    gw_req_t *r = REQ(req);
    if (r->res_started || status < 200 || status > 999) return -1;
    gw_send_inline(r, status, content_type, body, len);
    return 0;
}

void gw_mod_set_status(gw_mod_request_t *req, int status)
{
    if (!REQ(req)->res_started) REQ(req)->res.status = status;
}

const char *gw_mod_config_string(const gw_mod_config_t *config, const char *name)
{
    return gw_node_as_string(gw_yaml_map_get((const gw_node_t *)config, name));
}
