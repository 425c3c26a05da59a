"""The configuration reference lists every property the binary knows, with the right scope."""
import importlib.util
from pathlib import Path

from conftest import REPO_ROOT


def load_generator():
    spec = importlib.util.spec_from_file_location("config_reference", REPO_ROOT / "scripts" / "config-reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_covers_every_property(gateway_bin):
    gen = load_generator()
    props = gen.properties(str(gateway_bin))
    assert len(props) > 100
    doc = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text()
    missing = [name for name, scope, _ in props if f"| `{name}` | {gen.SCOPES[scope]} |" not in doc]
    assert not missing, f"docs/CONFIGURATION.md is behind the registry (run scripts/config-reference.py): {missing}"


def test_reference_names_no_unknown_property(gateway_bin):
    gen = load_generator()
    known = {name for name, _, _ in gen.properties(str(gateway_bin))}
    doc = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text()
    listed = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `")}
    assert listed <= known, f"documented but unknown: {sorted(listed - known)}"


def test_reference_example_loads(gateway_bin, tmp_path):
    import subprocess
    doc = (REPO_ROOT / "docs" / "CONFIGURATION.md").read_text()
    example = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = tmp_path / "example.yaml"
    cfg.write_text(example)
    out = subprocess.run([str(gateway_bin), "-t", "-c", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
