"""The container files (docker/), checked without a container engine or a cluster: every YAML file
parses and passes yamllint; the Dockerfile, Compose file and Kubernetes manifests have the shape
the gateway needs (ports, probes, image names, config paths, non-root user); the gateway configs
they carry pass `gateway -t`; docker/build.sh, the build the image runs, builds and installs
natively, and the runtime stage installs exactly the libraries `ldd` says the binary needs."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GATEWAY_BIN, REPO_ROOT, free_port, make_config

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")

DOCKER = REPO_ROOT / "docker"
K8S = DOCKER / "k8s"
IMAGE = "gateway:0.1.0"
# in debian:12-slim already (apt itself needs them)
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_objects():
    objs = {}
    for p in sorted(K8S.glob("*.yaml")):
        for d in load_all(p):
            objs[d["kind"]] = d
    return objs


def gateway_check(text, tmp_path, binary=GATEWAY_BIN, name="check.yaml"):
    """Runs `gateway -t` on a config, with the TLS directory moved into tmp_path (the development
    certificate is written there)."""
    cfg = tmp_path / name
    cfg.write_text(text.replace("/var/lib/gateway/tls", str(tmp_path / "tls")))
    return subprocess.run([str(binary), "-t", "-c", str(cfg)], capture_output=True, text=True, timeout=60,
                          cwd=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# YAML files
# ---------------------------------------------------------------------------------------------

YAML_FILES = sorted(list(DOCKER.rglob("*.yaml")) + [DOCKER / ".yamllint"])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_yaml_parses(path):
    assert load_all(path), f"{path} is empty"


@pytest.mark.skipif(not shutil.which("yamllint"), reason="yamllint is not installed")
def test_yamllint():
    p = subprocess.run(["yamllint", "-f", "parsable", "-c", str(DOCKER / ".yamllint"), str(DOCKER)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip(), p.stdout + p.stderr


# ---------------------------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------------------------


def dockerfile_instructions():
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        cur += (" " if cur else "") + s.rstrip("\\").strip()
        if s.endswith("\\"):
            continue
        ins, _, rest = cur.partition(" ")
        out.append((ins.upper(), rest.strip()))
        cur = ""
    assert not cur, "the Dockerfile ends inside a continuation"
    return out


def stages():
    """[(name, [(ins, args)...])] per FROM."""
    res = []
    for ins, args in dockerfile_instructions():
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", args, re.I)
            assert m, args
            res.append((m.group(2), [(ins, args)]))
        elif res:
            res[-1][1].append((ins, args))
    return res


def runtime_packages(boringssl_from_debian=True):
    runtime = stages()[-1][1]
    run = " ".join(a for i, a in runtime if i == "RUN" and "apt-get install" in a)
    m = re.search(r'pkgs="([^"]+)"', run)
    assert m, "the runtime stage lists its packages in pkgs=\"...\""
    pkgs = set(m.group(1).split())
    if boringssl_from_debian:
        m = re.search(r'if \[ -z "\$BORINGSSL_REF" \]; then pkgs="\$pkgs ([^"]+)"', run)
        assert m, "Debian's BoringSSL is added when BORINGSSL_REF is empty"
        pkgs |= set(m.group(1).split())
    return pkgs


def test_dockerfile_shape():
    ins = dockerfile_instructions()
    st = stages()
    names = [n for n, _ in st]
    assert names == ["builder", "runtime"], names
    args = {a.split("=")[0]: a.partition("=")[2].strip('"') for i, a in ins if i == "ARG"}
    assert args.get("DEBIAN_IMAGE") == "debian:12-slim"
    assert "BORINGSSL_REF" in args and args["BORINGSSL_REF"] == "", "Debian's BoringSSL by default"
    for _, body in st:
        assert body[0][1].startswith("${DEBIAN_IMAGE}"), body[0]
    builder = dict((i, a) for i, a in st[0][1] if i != "RUN")
    builder_runs = " ".join(a for i, a in st[0][1] if i == "RUN")
    assert "docker/build.sh" in builder_runs
    assert "BORINGSSL_ROOT=/opt/boringssl" in builder_runs
    assert "boringssl.googlesource.com" in builder_runs
    assert "COPY" in builder
    runtime = st[1][1]
    rins = [i for i, _ in runtime]
    for need in ("USER", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD"):
        assert need in rins, f"runtime stage lacks {need}"
    rd = {i: a for i, a in runtime}
    user = rd["USER"].split(":")[0]
    assert user not in ("root", "0"), "the runtime runs as a non-root user"
    assert re.search(rf"useradd .*--uid {user}\b", " ".join(a for i, a in runtime if i == "RUN")), \
        "the USER is created in the image"
    assert rins.index("USER") < rins.index("ENTRYPOINT")
    assert sorted(rd["EXPOSE"].split()) == ["8080", "8443"]
    assert rd["STOPSIGNAL"] == "SIGTERM"
    assert "/healthz" in rd["HEALTHCHECK"] and "127.0.0.1/8080" in rd["HEALTHCHECK"]
    assert "/etc/gateway/gateway.yaml" in rd["CMD"]
    copies = [a for i, a in runtime if i == "COPY"]
    assert any(a.startswith("--from=builder ") for a in copies)
    for a in copies:
        m = re.match(r"--from=(\S+)", a)
        assert m and m.group(1) in names, f"COPY {a} in the runtime stage must come from a stage"
    # nothing but the package lists is left behind; no `latest` tags
    for _, body in st:
        for i, a in body:
            if i == "RUN" and "apt-get install" in a:
                assert "--no-install-recommends" in a and "rm -rf /var/lib/apt/lists/*" in a, a
    assert ":latest" not in (DOCKER / "Dockerfile").read_text()


def dockerfile_instructions_by_stage(i):
    return stages()[i][1]


def healthcheck_cmd(port):
    """The HEALTHCHECK command (exec form, a JSON list) aimed at `port`."""
    hc = dict(dockerfile_instructions_by_stage(-1))["HEALTHCHECK"]
    m = re.search(r"\bCMD\s+(\[.*\])$", hc)
    assert m, hc
    return [c.replace("127.0.0.1/8080", f"127.0.0.1/{port}") for c in json.loads(m.group(1))]


def test_dockerfile_healthcheck_command_works(start_gateway, wwwroot):
    """The HEALTHCHECK command itself, against a running gateway."""
    gw = start_gateway(make_config(wwwroot))
    cmd = healthcheck_cmd(gw.port)
    assert subprocess.run(cmd, timeout=10).returncode == 0
    assert subprocess.run([c.replace("/healthz", "/nothing") for c in cmd], timeout=10).returncode != 0


# ---------------------------------------------------------------------------------------------
# docker/build.sh, natively, and the runtime libraries
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_install(tmp_path_factory):
    """docker/build.sh into a staging root, as the builder stage runs it. The build tree is kept
    in build-release/ (build.sh's default), so a second run is incremental."""
    root = tmp_path_factory.mktemp("release") / "root"
    env = dict(os.environ, DESTDIR=str(root), JOBS=str(os.cpu_count() or 2))
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "CC", "CFLAGS", "LDFLAGS"):
        env.pop(k, None)
    p = subprocess.run(["bash", str(DOCKER / "build.sh"), "/usr/local"], capture_output=True, text=True,
                       timeout=1800, env=env, cwd=str(REPO_ROOT))
    assert p.returncode == 0, "docker/build.sh failed:\n" + p.stderr[-6000:] + "\n--- stdout:\n" + p.stdout[-2000:]
    return root


def test_build_sh_installs_a_release_gateway(release_install):
    root = release_install
    binary = root / "usr/local/bin/gateway"
    assert binary.is_file() and os.access(binary, os.X_OK)
    assert (root / "usr/local/lib/gateway/modules/example.so").is_file()
    assert (root / "usr/local/share/gateway/www/index.html").is_file()
    dyn = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True).stdout
    assert "BIND_NOW" in dyn or "NOW" in dyn, "full RELRO / immediate binding"
    assert "libasan" not in subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20).stdout
    assert out.startswith("gateway ") and "BoringSSL" in out


def ldd_packages(binary):
    """Debian packages of the shared libraries `binary` loads."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in out, out
    pkgs = {}
    for line in out.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m:
            continue
        lib = m.group(1)
        q = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if q.returncode != 0:
            q = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
        assert q.returncode == 0, f"{lib} belongs to no Debian package"
        pkgs[q.stdout.split(":")[0]] = lib
    return pkgs


def test_runtime_stage_installs_what_ldd_needs(release_install):
    root = release_install
    needed = {}
    for f in (root / "usr/local/bin/gateway", root / "usr/local/lib/gateway/modules/example.so"):
        needed.update(ldd_packages(f))
    listed = runtime_packages()
    missing = set(needed) - listed - BASE_PACKAGES
    assert not missing, f"the runtime stage does not install {missing} ({[needed[m] for m in missing]})"
    unneeded = listed - set(needed) - {"ca-certificates"}
    assert not unneeded, f"the runtime stage installs {unneeded}, which the binary does not load"
    assert not any(re.search(r"lib(ssl|crypto)\.so\.3", lib) for lib in needed.values())


def test_installed_gateway_runs_the_container_config(release_install, tmp_path):
    """The installed binary with docker/gateway.yaml (ports and paths moved into the test's
    reach): it starts, serves the demo site and answers the HEALTHCHECK."""
    root = release_install
    http, https = free_port(), free_port()
    text = (DOCKER / "gateway.yaml").read_text()
    text = text.replace("port: 8080", f"port: {http}").replace("sport: 8443", f"sport: {https}")
    text = text.replace("/usr/local/share/gateway/www", str(root / "usr/local/share/gateway/www"))
    text = text.replace("/var/lib/gateway/tls", str(tmp_path / "tls"))
    text = text.replace("logFilePath: /dev/stdout", f"logFilePath: {tmp_path / 'access.log'}")
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(text)
    binary = root / "usr/local/bin/gateway"
    proc = subprocess.Popen([str(binary), "-c", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "stderr", "wb"), cwd=str(tmp_path))
    try:
        cmd = healthcheck_cmd(http)
        deadline = time.monotonic() + 10
        while subprocess.run(cmd, stderr=subprocess.DEVNULL, timeout=10).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
            time.sleep(0.1)
        p = subprocess.run(["curl", "-s", f"http://127.0.0.1:{http}/hello"], capture_output=True, timeout=10) \
            if shutil.which("curl") else None
        if p is not None:
            assert p.stdout == b"Hello World!", p
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, (tmp_path / "stderr").read_text()


def test_container_config_passes_check(tmp_path):
    p = gateway_check((DOCKER / "gateway.yaml").read_text(), tmp_path)
    assert p.returncode == 0, p.stderr
    g = yaml.safe_load((DOCKER / "gateway.yaml").read_text())["global"]
    assert g["port"] == 8080 and g["sport"] == 8443
    assert g["healthPath"] == "/healthz" and g["readyPath"] == "/readyz"
    assert "127.0.0.0/8" in g["adminAllow"], "the HEALTHCHECK probes over loopback"


# ---------------------------------------------------------------------------------------------
# Compose
# ---------------------------------------------------------------------------------------------


def test_compose_shape(tmp_path):
    c = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    svcs = c["services"]
    assert {"gateway", "php", "backend", "auth"} <= set(svcs)
    gw = svcs["gateway"]
    assert gw["image"] == IMAGE
    assert gw["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER / gw["build"]["context"] / gw["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert sorted(p.split(":")[-1] for p in gw["ports"]) == ["8080", "8443"]
    assert gw["stop_signal"] == "SIGTERM"
    assert set(gw["depends_on"]) == {"php", "backend", "auth"}
    (cfg,) = [x for x in gw["configs"] if x["target"] == "/etc/gateway/gateway.yaml"]
    cfg_file = DOCKER / c["configs"][cfg["source"]]["file"]
    assert cfg_file.is_file()
    text = cfg_file.read_text()
    p = gateway_check(text, tmp_path)
    assert p.returncode == 0, p.stderr
    conf = yaml.safe_load(text)
    g = conf["global"]
    assert g["loadModules"] == ["fauth", "rproxy", "fcgi"]
    host = conf["hosts"][0]
    # backends are the Compose services
    assert host["fcgiTo"].startswith("tcp://php:9000")
    (api,) = [loc for loc in host["locations"] if loc.get("authTo")]
    assert api["authTo"].startswith("http://auth:9091/")
    group = api["proxyTo"].removeprefix("http://")
    assert [s["url"] for s in conf["upstreams"][group]["servers"]] == ["http://backend:80"]
    # the PHP files are at the same path in the gateway and in PHP-FPM
    mounts = {v.split(":")[1] for v in svcs["php"]["volumes"]}
    assert host["wwwroot"] in mounts and host["wwwroot"] in {v.split(":")[1] for v in gw["volumes"]}
    for v in svcs["php"]["volumes"]:
        assert (DOCKER / v.split(":")[0]).exists()
    # the forward-auth stand-in listens where authTo points
    assert "listen 9091;" in c["configs"]["auth-config"]["content"]
    test = gw["healthcheck"]["test"]
    assert test[0] == "CMD" and "/readyz" in test[-1]
    for name, s in svcs.items():
        assert ":" in s["image"] and not s["image"].endswith(":latest"), f"{name}: pin the image tag"


# ---------------------------------------------------------------------------------------------
# Kubernetes
# ---------------------------------------------------------------------------------------------


def test_k8s_objects_and_kustomization():
    objs = k8s_objects()
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "Kustomization"} <= set(objs)
    listed = set(objs["Kustomization"]["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert objs["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert objs["PodDisruptionBudget"]["apiVersion"] == "policy/v1"
    assert objs["Deployment"]["apiVersion"] == "apps/v1"


def test_k8s_deployment(tmp_path):
    objs = k8s_objects()
    dep = objs["Deployment"]
    spec = dep["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    ru = spec["strategy"]
    assert ru["type"] == "RollingUpdate" and ru["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "https": 8443}
    exposed = sorted(int(x) for x in dict(dockerfile_instructions_by_stage(-1))["EXPOSE"].split())
    assert sorted(ports.values()) == exposed

    def port_of(probe):
        p = probe["httpGet"]["port"]
        return ports[p] if isinstance(p, str) else p

    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and port_of(c["readinessProbe"]) == 8080
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and port_of(c["livenessProbe"]) == 8080
    res = c["resources"]
    assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"])
    sc = pod["securityContext"]
    user = dict(dockerfile_instructions_by_stage(-1))["USER"].split(":")[0]
    assert sc["runAsNonRoot"] is True and str(sc["runAsUser"]) == user
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # the config comes from the ConfigMap, at the path the image expects
    cm = objs["ConfigMap"]
    vols = {v["name"]: v for v in pod["volumes"]}
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/gateway"]
    assert vols[mount["name"]]["configMap"]["name"] == cm["metadata"]["name"]
    assert "gateway.yaml" in cm["data"]
    assert c["args"] == ["-c", "/etc/gateway/gateway.yaml"]
    # the drain fits in the grace period, after the preStop pause
    conf = yaml.safe_load(cm["data"]["gateway.yaml"])
    g = conf["global"]
    pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert g["gracefulShutdownTimeout"] / 1000 + pause < pod["terminationGracePeriodSeconds"]
    assert g["port"] == 8080 and g["sport"] == 8443
    assert g["healthPath"] == "/healthz" and g["readyPath"] == "/readyz"
    ann = spec["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/path"] == g["metricsPath"] and int(ann["prometheus.io/port"]) == 8080
    # the TLS secret lands where the config looks for the certificate
    (tls,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    assert g["cert"].startswith(tls["mountPath"] + "/") and g["key"].startswith(tls["mountPath"] + "/")
    p = gateway_check(cm["data"]["gateway.yaml"], tmp_path)
    assert p.returncode == 0, p.stderr


def test_k8s_service_hpa_pdb_point_at_the_deployment():
    objs = k8s_objects()
    dep = objs["Deployment"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    names = {p["name"] for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
    svc = objs["Service"]
    assert svc["spec"]["selector"].items() <= labels.items()
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in names, p
    hpa = objs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = objs["PodDisruptionBudget"]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["minAvailable"] < hpa["minReplicas"], "a node drain can always evict one pod"


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed")
def test_kubectl_kustomize_renders_offline():
    """Client-side only: server validation needs a cluster, which the tests never have."""
    p = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(p.stdout) if d)
    assert kinds == sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                            "Service"]), kinds


def test_build_sh_is_what_the_image_runs():
    """build.sh passes BORINGSSL_ROOT through to CMake and builds in release mode."""
    text = (DOCKER / "build.sh").read_text()
    assert "-DBORINGSSL_ROOT=" in text and "CMAKE_BUILD_TYPE=Release" in text
    assert "GW_SANITIZE=OFF" in text
    assert os.access(DOCKER / "build.sh", os.X_OK)
