"""The man page docs/gateway.8: it renders without a warning, has the sections a man page needs,
and documents every command-line option, signal and environment variable `gateway --help` names."""
import re
import shutil
import subprocess

import pytest

from conftest import GATEWAY_BIN, REPO_ROOT

PAGE = REPO_ROOT / "docs" / "gateway.8"
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "FILES", "ENVIRONMENT", "EXIT STATUS",
            "SEE ALSO"]

pytestmark = pytest.mark.skipif(not shutil.which("groff"), reason="groff (Debian package groff-base) is not installed")


def render():
    """The page as man shows it, plain text; fails on any groff warning (-ww: all of them)."""
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-rLL=200n", "-P-cbou", str(PAGE)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
    return p.stdout.replace("\u2010", "-").replace("\u2212", "-")


def sections(text):
    """{heading: body} of the rendered page (headings are flush left, in capitals)."""
    out, name = {}, None
    for line in text.splitlines():
        if re.fullmatch(r"[A-Z][A-Z ]+", line):
            name = line
            out[name] = ""
        elif name:
            out[name] += line + "\n"
    return out


def usage():
    """`gateway --help` up to the property list: the usage, options, signals and environment."""
    p = subprocess.run([str(GATEWAY_BIN), "--help"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0
    return p.stdout.split("\nconfiguration properties", 1)[0]


def test_renders_without_warnings_with_every_section():
    got = sections(render())
    assert [s for s in SECTIONS if s not in got] == [], list(got)


@pytest.mark.skipif(not shutil.which("man"), reason="man (Debian package man-db) is not installed")
def test_man_shows_it():
    p = subprocess.run(["man", "--warnings", "-l", str(PAGE)], capture_output=True, text=True, timeout=30,
                       env={"MANPAGER": "cat", "MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
    assert "gateway - edge proxy" in p.stdout.replace("\u2010", "-")


def test_every_option_of_help_is_documented():
    options = set(re.findall(r"(?<![\w/-])(--?[a-z][a-z-]*)", usage()))
    assert {"-c", "-t", "-v", "--help"} <= options, options
    documented = sections(render())["OPTIONS"]
    missing = [o for o in sorted(options) if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", documented)]
    assert not missing, f"options of --help missing from the man page's OPTIONS: {missing}"


def test_every_signal_and_variable_of_help_is_documented():
    text = usage()
    signals = set(re.findall(r"\b(HUP|INT|QUIT|TERM|USR\d)\b", text))
    assert {"HUP", "TERM"} <= signals, text
    documented = sections(render())
    missing = [s for s in sorted(signals) if "SIG" + s not in documented["SIGNALS"]]
    assert not missing, f"signals of --help missing from SIGNALS: {missing}"
    for var in re.findall(r"\bGATEWAY_([A-Z0-9_]+)", text):
        assert "_" + var in documented["ENVIRONMENT"], var


def test_installed_with_the_binary():
    cmake = (REPO_ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"install\(FILES docs/gateway\.8 DESTINATION \$\{CMAKE_INSTALL_MANDIR\}/man8\)", cmake)
