"""Loadable modules: the example module, and modules built here against the ABI header alone."""
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PORT_PLACEHOLDER, REPO_ROOT

HEADER = REPO_ROOT / "gateway" / "module.h"

GREETER = r'''
#include <stdio.h>
#include <string.h>
#include "module.h"

typedef struct { unsigned workers; char greeting[32]; } state_t;
static state_t the_state;

static int init(void **state, const gw_mod_config_t *cfg, char *err, size_t errlen)
{
    const char *g = gw_mod_config_string(cfg, "greeting");
    snprintf(the_state.greeting, sizeof(the_state.greeting), "%s", g ? g : "hi");
    *state = &the_state;
    return 0;
}

static int worker_init(void *state, unsigned id) { ((state_t *)state)->workers++; return 0; }

static gw_mod_result_t handle(void *state, gw_mod_request_t *req)
{
    size_t len;
    const char *path = gw_mod_path(req, &len);
    if (len < 6 || memcmp(path, "/greet", 6) != 0) return GW_MOD_CONTINUE;
    if (len == 11 && memcmp(path, "/greet/deny", 11) == 0) {
        gw_mod_set_status(req, 403);
        return GW_MOD_ERROR;
    }
    size_t ul = 0;
    const char *who = gw_mod_header(req, "x-name", &ul);
    char *body = gw_mod_alloc(req, 128); /* request-lifetime memory */
    int n = snprintf(body, 128, "%s %.*s", ((state_t *)state)->greeting, (int)ul, who ? who : "");
    gw_mod_add_header(req, "X-Module", "greeter");
    return gw_mod_respond(req, 200, "text/plain", body, (size_t)n) == 0 ? GW_MOD_DONE : GW_MOD_ERROR;
}

static const gw_module_def_t def = {
    .abi_version = ABI, .name = "greeter", .init = init, .worker_init = worker_init, .handle = handle,
};
const gw_module_def_t *gw_module_entry(void) { return &def; }
'''


def build_module(tmp_path, name, source, abi="GW_MODULE_ABI_VERSION", entry=True):
    """Compiles a module against a copy of module.h alone (proving the header is self-contained)."""
    inc = tmp_path / "include"
    inc.mkdir(exist_ok=True)
    shutil.copy(HEADER, inc / "module.h")
    src = tmp_path / f"{name}.c"
    text = source.replace("ABI", abi)
    if not entry:
        text = text.replace("gw_module_entry", "not_the_entry")
    src.write_text(text)
    out = tmp_path / "mods" / f"{name}.so"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(["cc", "-std=c17", "-shared", "-fPIC", "-Wall", "-Werror", f"-I{inc}", str(src), "-o", str(out)],
                   check=True, capture_output=True)
    return out.parent


def test_example_module_on_http1(start_gateway, wwwroot):
    gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  wwwroot: \"{wwwroot}\"\n"
                       "  loadModules: [example]\n")
    r = gw.get("/hello")
    assert r.status == 200 and r.body == b"Hello World!"
    assert gw.get("/hello/more").status == 404  # exactly /hello; others fall through
    assert gw.get("/").status == 200  # static files still answer


def test_example_module_on_http2(start_gateway, wwwroot):
    gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  wwwroot: \"{wwwroot}\"\n"
                       "  loadModules: [example]\n")
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}",
                          f"http://127.0.0.1:{gw.port}/hello"], capture_output=True, text=True, timeout=20)
    assert out.stdout == "Hello World! 2"


def test_third_party_module(start_gateway, tmp_path):
    mods = build_module(tmp_path, "greeter", GREETER)
    gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 2\n  modulesDir: \"{mods}\"\n"
                       "  loadModules: [greeter]\n  greeting: hello\n")
    r = gw.get("/greet", headers={"X-Name": "ada"})
    assert r.status == 200 and r.body == b"hello ada" and r.header("x-module") == "greeter"
    r = gw.get("/greet/deny")
    assert r.status == 403 and b"403 Forbidden" in r.body
    assert gw.get("/other").status == 404


def check(gateway_bin, tmp_path, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    return cfg, subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)


def test_wrong_abi_version_is_refused(gateway_bin, tmp_path):
    mods = build_module(tmp_path, "greeter", GREETER, abi="99")
    cfg, out = check(gateway_bin, tmp_path, f"global:\n  modulesDir: \"{mods}\"\n  loadModules:\n    - greeter\n")
    assert out.returncode == 1
    assert f"{cfg}:4:7: loadModules: module 'greeter' was built for ABI version 99" in out.stderr


def test_missing_entry_symbol_is_refused(gateway_bin, tmp_path):
    mods = build_module(tmp_path, "greeter", GREETER, entry=False)
    cfg, out = check(gateway_bin, tmp_path, f"global:\n  modulesDir: \"{mods}\"\n  loadModules: [greeter]\n")
    assert out.returncode == 1 and "does not export gw_module_entry" in out.stderr and f"{cfg}:3:17:" in out.stderr


def test_missing_module_file_is_refused(gateway_bin, tmp_path):
    cfg, out = check(gateway_bin, tmp_path, f"global:\n  modulesDir: \"{tmp_path}\"\n  loadModules: [nothere]\n")
    assert out.returncode == 1 and "cannot load module 'nothere'" in out.stderr


def test_module_names_cannot_escape_the_directory(gateway_bin, tmp_path):
    cfg, out = check(gateway_bin, tmp_path, "global:\n  loadModules: [\"../etc/evil\"]\n")
    assert out.returncode == 1 and "invalid module name" in out.stderr
