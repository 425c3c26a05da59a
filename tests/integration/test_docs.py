"""The documentation against the binary: the configuration reference lists every registry property
(with scope, type, default, meaning and an example that `gateway -t` accepts), every ```yaml block
of the README and docs/ loads, and what docs/operations.md says about the command line, `gateway -t`
and the metrics is what the binary does."""
import importlib.util
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import REPO_ROOT, get, make_config
from tls_helpers import make_cert

DOCS = REPO_ROOT / "docs"
REFERENCE = DOCS / "configuration.md"
OPERATIONS = DOCS / "operations.md"
DOC_FILES = [REPO_ROOT / "README.md"] + sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```", re.M | re.S)
# warnings that depend on the machine or say honestly what is not built; anything else fails
ALLOWED_WARNINGS = re.compile(r"not supported by this build yet|is not in this build yet|cannot be opened")
# what an example needs besides itself to pass `-t` (files under /etc/gateway/ are made in tmp_path)
CONTEXT = {"secure": ["cert: /etc/gateway/tls/example.com.crt", "key: /etc/gateway/tls/example.com.key"],
           "proxyProtocol": ["proxyProtocolTrusted: [10.0.0.0/8]"]}
HTPASSWD = "alice:$2b$10$9om2gT7BTeqsNXFY/6Uvn./1CI/ZFySHUhlxgTFq.H/cPmrS/C7si\n"


def load_generator():
    spec = importlib.util.spec_from_file_location("config_reference", REPO_ROOT / "scripts" / "config-reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return load_generator()


@pytest.fixture(scope="module")
def props(gen, gateway_bin):
    return gen.properties(str(gateway_bin))


class Placeholders:
    """Files a documented config names under /etc/gateway/, made under a temporary directory so the
    config can be checked as written: certificates and keys, an htpasswd file, empty others."""

    def __init__(self, root):
        self.root = root
        self.cert, self.key = make_cert(root / "made", "example.com")

    def rewrite(self, text):
        for path in set(re.findall(r"/etc/gateway/[\w./*-]+", text)):
            self.make(path)
        return text.replace("/etc/gateway/", f"{self.root}/etc/gateway/")

    def make(self, path):
        target = self.root / path.lstrip("/")
        if "*" in path or target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if "ticket" in path:  # session-ticket keys: 80 bytes, as nginx writes them
            target.write_bytes(bytes(range(80)))
        elif path.endswith(".key"):
            shutil.copy(self.key, target)
        elif path.endswith((".crt", ".pem")):
            shutil.copy(self.cert, target)
        elif path.endswith("htpasswd"):
            target.write_text(HTPASSWD)
        else:
            target.write_bytes(b"")


@pytest.fixture(scope="module")
def placeholders(tmp_path_factory):
    return Placeholders(tmp_path_factory.mktemp("placeholders"))


def check(gateway_bin, path):
    return subprocess.run([str(gateway_bin), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)


def unexpected_warnings(stderr):
    return [line for line in stderr.splitlines() if line.strip() and not ALLOWED_WARNINGS.search(line)]


# ---- the configuration reference ----


def property_rows():
    """{property: its row} of the reference's property tables (six columns; the upstream group keys'
    table has four)."""
    rows = {}
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("| `") and len(re.split(r"(?<!\\)\|", line)) == 8:
            rows[line.split("`")[1]] = line
    return rows


def test_reference_covers_every_property(gen, props):
    assert len(props) > 100
    doc = REFERENCE.read_text()
    missing = [name for name, scope, *_ in props if f"| `{name}` | {gen.SCOPES[scope]} |" not in doc]
    assert not missing, f"docs/configuration.md is behind the registry (run scripts/config-reference.py): {missing}"


def test_reference_names_no_unknown_property(props):
    known = {p[0] for p in props}
    listed = set(property_rows())
    assert listed <= known, f"documented but unknown: {sorted(listed - known)}"


def test_reference_is_what_the_script_writes(gen, props):
    try:
        expected = gen.render(props)
    except ValueError as e:
        pytest.fail(f"scripts/config-reference.py: {e}")
    assert REFERENCE.read_text() == expected, "docs/configuration.md is stale: run scripts/config-reference.py"


def test_reference_has_type_default_meaning_and_example_for_each(props):
    rows = property_rows()
    for name, *_ in props:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", rows[name])[1:-1]]
        assert len(cells) == 6 and all(cells), rows[name]
        key = name.split(".")[0]  # healthCheck.path is a key of the healthCheck map
        assert cells[5].startswith(f"`{key}:"), f"{name}: the example sets another property: {cells[5]}"


def example_config(name, scope, module, example):
    """The example placed where its scope allows (any-level ones in a location, the deepest; upstream
    group ones in a group that a proxyTo uses)."""
    settings = CONTEXT.get(name, []) + ([f"loadModules: [{module}]"] if module and name != "loadModules" else [])
    if scope == "G":
        settings.append(example)
    if scope == "U":
        settings += ["loadModules: [rproxy]", "proxyTo: http://app"]
    lines = ["global:"] + ["  " + s for s in settings] if settings else []
    host = ["hosts:", "  - domain: example.com"]
    lines += {
        "G": [],
        "U": ["upstreams:", "  app:", "    servers: [http://127.0.0.1:8080]", "    " + example],
        "A": host + ["    locations:", "      - path: /x", "        " + example],
        "H": ["hosts:", "  - " + example] if name in ("domain", "ip") else host + ["    " + example],
        "L": host + ["    locations:", "      - " + example],
        "E": host + ["    errorConfig:", "      - " + example],
    }[scope]
    return "\n".join(lines) + "\n"


def test_every_property_example_loads(gen, props, gateway_bin, tmp_path, placeholders):
    examples = gen.examples(props)
    assert len(examples) == len(props)

    def run(i_example):
        i, (name, scope, module, example) = i_example
        cfg = tmp_path / f"example-{i}.yaml"
        cfg.write_text(placeholders.rewrite(example_config(name, scope, module, example)))
        p = check(gateway_bin, cfg)
        if p.returncode != 0 or unexpected_warnings(p.stderr):
            return f"{name}: `{example}`:\n{p.stderr}"
        return None

    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(run, enumerate(examples)) if f]
    assert not failures, "\n".join(failures)


# ---- every YAML block of the documentation ----


def yaml_blocks():
    """(file, line, info, text) of every ```yaml fence in the README and docs/."""
    blocks = []
    for path in DOC_FILES:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) == "yaml":
                line = text.count("\n", 0, m.start()) + 1
                blocks.append((path.relative_to(REPO_ROOT), line, m.group(2).strip(), m.group(3)))
    return blocks


def test_docs_have_yaml_blocks():
    files = {str(f) for f, *_ in yaml_blocks()}
    for needed in ("README.md", "docs/configuration.md", "docs/operations.md", "docs/migrating-from-ferron.md"):
        assert needed in files, f"{needed} has no ```yaml example"


BLOCKS = [(f"{f}:{line}", info, text) for f, line, info, text in yaml_blocks()]


@pytest.mark.parametrize("where,info,text", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_doc_yaml_block_loads(where, info, text, gateway_bin, tmp_path, placeholders):
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text(placeholders.rewrite(text))
    p = check(gateway_bin, cfg)
    if info == "expect-error":  # shown on purpose with the output `gateway -t` gives (checked below)
        assert p.returncode == 1, f"{where}: this broken example loads"
        return
    assert info == "", f"{where}: unknown fence option {info!r}"
    assert p.returncode == 0, f"{where}:\n{p.stderr}"
    assert not unexpected_warnings(p.stderr), f"{where}:\n{p.stderr}"


# ---- docs/operations.md against the command line ----


def test_help_options_and_signals_are_documented(gateway_bin):
    out = subprocess.run([str(gateway_bin), "--help"], capture_output=True, text=True, timeout=20).stdout
    ops = OPERATIONS.read_text()
    usage = out.splitlines()[0]
    assert usage.startswith("usage: ") and f"`{usage[len('usage: '):]}`" in ops, usage
    options = re.findall(r"^  (-\S+)", out, re.M)
    assert {"-c", "-t", "-v", "--help"} <= set(options)
    for opt in options:
        assert re.search(rf"^\| `{re.escape(opt)}[ `]", ops, re.M), f"option {opt} is not in operations.md"
    for sig in re.findall(r"\b(HUP|USR1|TERM|INT|QUIT)\b", out):
        assert f"SIG{sig}" in ops, f"signal {sig} is in --help but not in operations.md"


def test_help_properties_are_the_documented_ones(props):
    assert {p[0] for p in props} == set(property_rows())


def documented_check_output():
    """The broken example of operations.md and the output it documents for it."""
    text = OPERATIONS.read_text()
    m = re.search(r"```yaml expect-error\n(.*?)```\n+```text\n\$ gateway -t -c (\S+)\n(.*?)```", text, re.S)
    assert m, "operations.md: no `gateway -t` error example (```yaml expect-error, then ```text with its output)"
    return m.group(1), m.group(2), m.group(3)


def normalise(output):
    return re.sub(r"^\[[0-9: -]+\] ", "[TIME] ", output, flags=re.M)


def test_check_error_output_is_as_documented(gateway_bin, tmp_path):
    config, name, expected = documented_check_output()
    (tmp_path / name).write_text(config)
    p = subprocess.run([str(gateway_bin), "-t", "-c", name], capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert p.returncode == 1
    assert normalise(p.stdout + p.stderr) == normalise(expected)


def test_check_success_message_is_as_documented(gateway_bin, tmp_path):
    (tmp_path / "gateway.yaml").write_text("global:\n  port: 8080\n")
    p = subprocess.run([str(gateway_bin), "-t", "-c", "gateway.yaml"], capture_output=True, text=True, timeout=20,
                       cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == ""
    assert f"$ gateway -t -c gateway.yaml\n{p.stdout}```" in OPERATIONS.read_text()


def test_metrics_are_as_documented(start_gateway, wwwroot):
    gw = start_gateway(make_config(wwwroot, metricsPath="/metrics"))
    r = get(gw.port, "/metrics")
    assert r.status == 200
    served = set(re.findall(r"^# TYPE (\S+) ", r.body.decode(), re.M))
    documented = set(re.findall(r"^\| `(gateway_[a-z_]+)", OPERATIONS.read_text(), re.M))
    assert served and served == documented, f"served only: {served - documented}, doc only: {documented - served}"


def test_documented_limit_defaults_are_the_registry_defaults(props):
    defaults = {name: default for name, _, _, _, _, default, _ in props}
    section = OPERATIONS.read_text().split("## Limits and their defaults", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M)
    assert len(rows) >= 10
    wrong = [(name, shown.strip(), defaults.get(name)) for name, shown in rows if defaults.get(name) != shown.strip()]
    assert not wrong, f"operations.md limits (property, documented, registry): {wrong}"


# ---- docs/modules.md: its C code is the example module, and compiles and works as described ----


def c_blocks():
    return [m.group(3) for m in FENCE.finditer((DOCS / "modules.md").read_text()) if m.group(1) == "c"]


def build_doc_module(tmp_path, source, name):
    inc = tmp_path / "include"
    inc.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "gateway" / "module.h", inc / "module.h")  # the installed header alone
    (tmp_path / f"{name}.c").write_text(source)
    out = tmp_path / "mods" / f"{name}.so"
    out.parent.mkdir(exist_ok=True)
    p = subprocess.run(["cc", "-std=c17", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", f"-I{inc}",
                        str(tmp_path / f"{name}.c"), "-o", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out.parent


def test_module_walkthrough_is_the_example_module():
    blocks = c_blocks()
    assert len(blocks) == 2
    assert blocks[0] == (REPO_ROOT / "modules" / "example" / "example.c").read_text()


def test_documented_stamp_module_works(start_gateway, tmp_path):
    mods = build_doc_module(tmp_path, c_blocks()[1], "stamp")
    gw = start_gateway(f"global:\n  port: @PORT@\n  workers: 1\n  modulesDir: \"{mods}\"\n  loadModules: [stamp]\n"
                       "  stampValue: edge-1\n")
    r = gw.get("/whoami", headers={"X-User": "ada"})
    assert r.status == 200 and r.body == b"ada" and r.header("x-stamp") == "edge-1"
    r = gw.get("/whoami")
    assert r.status == 401 and r.header("x-stamp") == "edge-1"
    assert "unused configuration property 'stampValue'" in gw.stderr()


# ---- links between the documents ----


def slug(heading):
    """GitHub's anchor for a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    return {slug(h) for h in re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)}


def test_relative_links_and_anchors_resolve():
    broken = []
    for doc in DOC_FILES:
        text = FENCE.sub("", doc.read_text())
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an external address
            file, _, fragment = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(REPO_ROOT)}: {target}: no such file")
            elif fragment and path.suffix == ".md" and fragment not in anchors(path):
                broken.append(f"{doc.relative_to(REPO_ROOT)}: {target}: no such heading")
    assert not broken, "\n".join(broken)
